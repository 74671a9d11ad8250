"""How much of this machine a bulk load takes at once: runs at a time, chunk processes per run.

A run's stages take turns (read, chunk, embed, ingest): one run at a time leaves the GPU idle
while Weaviate ingests and Weaviate idle while the GPU embeds. Several runs at once drift out of
step and keep the cores, the GPU and the server busy together. The number is derived from the
machine here, once, and written into the Dagster instance's settings (`concurrency: runs:
max_concurrent_runs`) by `weaviate-indexer instance`, so a UI backfill's run queue and the
`index` command's workers use the same number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from resources.processes import usable_cpus

# On one 16-core H200 machine, four runs at once with a quarter of the cores each in chunk
# processes stored the most objects per second of the arrangements measured (BENCHMARKS.md,
# "Files to searchable"): the server shares those cores, and more runs only queue on it.
CPUS_PER_RUN = 4
# What one run may hold at its peak: the run's process with the model and a shard group's
# chunks and vectors, and its chunk processes (BENCHMARKS.md, "What it costs").
RUN_MEMORY_BYTES = 4 * 2**30
# Left to the managed server beside the runs: the float vectors of the 1.25M-document reference
# corpus (7.8M chunks x 384 x 4 bytes, 11.2 GiB) and its graph.
SERVER_MEMORY_BYTES = 16 * 2**30


@dataclass(frozen=True)
class Machine:
    cpus: int
    gpus: int
    memory_bytes: int

    @classmethod
    def this(cls) -> Machine:
        """This process's CPUs (its affinity), the GPUs it sees, the machine's memory."""
        import torch

        return cls(usable_cpus(), torch.cuda.device_count(), physical_memory())

    def describe(self) -> str:
        return f"{self.cpus} CPUs, {self.gpus} GPUs, {self.memory_bytes / 2**30:.0f} GiB"


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def server_memory_limit(machine: Machine) -> int:
    """The managed server's soft memory limit (GOMEMLIMIT): the memory the runs leave, less a
    tenth for the page cache and the rest of the machine. Without one, Weaviate 1.39's memory
    checks (refusing batches, holding compactions) never act and an overfull machine kills the
    server instead; with one, the server refuses a batch ("not enough memory") and the ingest
    retries it once garbage collection has caught up."""
    left = machine.memory_bytes - concurrent_runs(machine) * RUN_MEMORY_BYTES
    return int(0.9 * max(left, SERVER_MEMORY_BYTES // 2))


def concurrent_runs(machine: Machine) -> int:
    """Runs at once: a run per `CPUS_PER_RUN` cores, and at least one per GPU so that every GPU
    has a run to embed for; no more than the memory left beside the server holds."""
    wanted = max(machine.cpus // CPUS_PER_RUN, machine.gpus, 1)
    fits = (machine.memory_bytes - SERVER_MEMORY_BYTES) // RUN_MEMORY_BYTES
    return max(1, min(wanted, fits))


def chunk_processes(machine: Machine) -> int:
    """A run's chunk processes: its share of the cores when `concurrent_runs` run at once, and
    no more than a quarter of them on a machine too small for four runs, where the server and
    the run's own process need the rest."""
    return max(1, machine.cpus // max(concurrent_runs(machine), CPUS_PER_RUN))
