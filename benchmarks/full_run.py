"""The whole pipeline over the first documents of the reference corpus, from files to a
searchable index, by one of the paths a user takes or by the harness's own runs, and projected
to the 1.25M-document corpus.

    python benchmarks/full_run.py --docs 20000 --out /tmp/full-run --device cuda   # the command
    python benchmarks/full_run.py --via ui ...       # a backfill through the run queue, as the UI
    python benchmarks/full_run.py --via runs --shards-per-run 8 --concurrent-runs 4 ...  # harness
    WEAVIATE_COMPRESSION=rq python benchmarks/full_run.py --docs 20000 --out /tmp/full-run-rq \
        --vectors-from /tmp/full-run     # the same documents, the vectors of the first run

`--via` picks how the shards are indexed, each on the same corpus, server and instance settings
(the project's dagster.yaml with this machine's runs at once):

- `command` (default): `weaviate-indexer index`, the product's own command, with its defaults;
  it registers the corpus, runs its runs, and waits until the index is searchable;
- `ui`: `register_shards`, then a backfill of the indexing assets over every partition created
  as the UI's "Materialize all" creates it, carried out by Dagster's daemon (`dagster-daemon
  run`): its runs wait in the instance's run queue and start through the run launcher;
- `runs`: the harness's own arrangement, described below: `--concurrent-runs` processes of
  `--shards-per-run` shards, started by this script.

What `runs` runs:

1. `sample-corpus` writes the reference corpus's first N documents (each document is drawn from
   its own random stream, so these are exactly documents 0..N-1 of the 1.25M);
2. the `register_shards` job;
3. runs of the `index_shards` job (chunks, embeddings, weaviate_index and its count check) over
   consecutive ranges of --shards-per-run shards, each one a `dagster job execute` process like
   those the run launcher starts, at most --concurrent-runs at a time, on a Dagster instance
   with the project's dagster.yaml (so the GPU pool holds), against the project's managed
   Weaviate (the pinned server binary, `resources/weaviate/server.py`) started here on free
   loopback ports with its data in the output folder and stopped at the end, or against the
   Weaviate at --weaviate-url. The runs reach the managed server in `managed` mode, as a
   backfill on one machine does; it is started before the first run so that no run's ingest
   pays for its start.

What it reports, from the runs' own materialization metadata and step statistics: embedding
tokens/s (tokens over the engine's wall seconds), ingest objects/s (objects over the ingest
seconds), the backfill's wall time and the part of it not spent embedding or ingesting
(orchestration overhead: run and step processes, model loading, reading and writing stage
files, chunking, the count check), and the projection to the reference corpus:

- embedding time: the reference corpus's embedded tokens (known exactly without writing it,
  `corpus_totals`) over the measured tokens/s;
- ingest time: its chunks over the measured objects/s, divided by the concurrent runs;
- backfill wall time: ramp-up (start to the first embeddings step) and drain (last embeddings
  step to the end) as measured, plus the steady state between them scaled by embedded tokens.
  In the steady state the GPU pool runs one embeddings step after another while other runs
  start, chunk and ingest beside it; the first N documents are a sample of the same length
  distribution, and runs hold the same number of shards of the same size, so per-token and
  per-run costs carry over. `steady_gpu_pool_idle_seconds` says whether the pool ever waited
  for chunks (then the sample was too small to be in a steady state, or the CPU stages are the
  bottleneck);
- overhead: the same split, with the time spent embedding or ingesting inside the steady state
  scaled alike; `overhead_fraction_chunking_as_work` also counts the chunks steps (the
  pipeline's tokenization) as work, which leaves what orchestration itself costs;
- `per_run_phases`: a run's mean seconds from its process's start to its end, phase by phase;
- `searchable`: once the last run ends, how long until every object is in the vector index
  (with asynchronous indexing the server's queue drains after the writes; without it, at
  once), the server's memory then, and recall@10 of Weaviate's HNSW search against exact
  search over the stored vectors, for 200 chunks' vectors as queries;
- `stages`: documents per second read (`corpus_shard` steps), tokens per second chunked
  (`chunks`), embedded (`embeddings`, engine wall) and objects per second stored
  (`weaviate_index`), each over the union of its steps' time (steps of concurrent runs overlap);
- `per_gpu`: for each GPU the steps leased (by UUID, from the `gpus` metadata), its shards, its
  device seconds and engine seconds, and those as a fraction of the backfill's wall time (how
  busy each GPU was). `--gpu-slots 1 --device cuda:0` against the default (a slot and a lease
  per GPU) compares one GPU with all of them on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster import AssetKey, DagsterInstance  # noqa: E402
from dagster._core.storage.tags import (  # noqa: E402
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.partitions import shard_partitions  # noqa: E402
from orchestration.instance import prepare_instance, runs_at_once  # noqa: E402
from orchestration.rates import step_intervals, union_seconds  # noqa: E402
from resources.corpus.sample import SampleSpec, corpus_totals, write_sample_corpus  # noqa: E402
from resources.processes import resident_bytes  # noqa: E402
from resources.weaviate.server import LocalServer  # noqa: E402

REFERENCE_DOCS = 1_250_000
REFERENCE_ESTIMATE_HOURS = (35, 50)  # one A40, the documents the project started from
STAGES = ("chunks", "embeddings", "weaviate_index")


def managed_server(out: Path, async_indexing: bool) -> LocalServer:
    """The managed server of the run's data directory, on free ports (HTTP, gRPC and its four
    cluster ports in one block), where `WEAVIATE_MODE=managed` runs look for it; with the API
    key the runs will send, if WEAVIATE_API_KEY is set."""
    return LocalServer.on_free_ports(
        out / "data" / "weaviate",
        api_key=os.environ.get("WEAVIATE_API_KEY") or None,
        extra_env=(("ASYNC_INDEXING", "true" if async_indexing else "false"),),
    )


def _environment(args: argparse.Namespace, out: Path, server: LocalServer | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(out / "dagster_home"),
        INDEXER_DATA_DIR=str(out / "data"),
        CORPUS_PATH=str(args.corpus.resolve() if args.corpus else out / "corpus"),
        SHARD_SIZE=str(args.shard_size),
        EMBEDDING_DEVICE=args.device,
        WEAVIATE_ASYNC_INDEXING=str(args.indexing == "async").lower(),
        GPU_POOL_SLOTS=str(args.gpu_slots or ""),
        WEAVIATE_COLLECTION="FullRun",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        FULL_RUN_DEFINITIONS=str(args.definitions.resolve()) if args.definitions else "",
    )
    # The product's defaults unless told otherwise.
    for name, value in (("SHARDS_PER_RUN", args.shards_per_run),
                        ("CHUNK_PROCESSES", args.chunk_processes)):  # fmt: skip
        if value:
            env[name] = str(value)
        else:
            env.pop(name, None)
    if server is None:
        env.update(WEAVIATE_MODE="custom", WEAVIATE_URL=args.weaviate_url)
    else:
        env.pop("WEAVIATE_URL", None)
        env.update(
            WEAVIATE_MODE="managed",
            WEAVIATE_MANAGED_PORT=str(server.http_port),
            WEAVIATE_MANAGED_GRPC_PORT=str(server.grpc_port),
            WEAVIATE_MANAGED_CLUSTER_PORT=str(server.cluster_port),
        )
    return env


class _Run:
    """A `dagster job execute` process, its output in a log file: a pipe nobody reads while
    other runs are awaited would fill and stall it."""

    def __init__(self, env: dict[str, str], job: str, name: str, tags: dict | None = None):
        where = ["-f", env["FULL_RUN_DEFINITIONS"]] if env.get("FULL_RUN_DEFINITIONS") else [
            "-m", "orchestration.definitions"]  # fmt: skip
        command = [sys.executable, "-m", "dagster", "job", "execute", *where, "-j", job]
        if tags:
            command += ["--tags", json.dumps(tags)]
        self.name = name
        self.log = Path(env["DAGSTER_HOME"]).parent / "logs" / f"{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out,
                                            stderr=subprocess.STDOUT)  # fmt: skip

    def done(self) -> bool:
        """True once the process exited; stops the benchmark if it failed."""
        if self.process.poll() is None:
            return False
        if self.process.returncode != 0:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise SystemExit(f"{self.name} failed (exit {self.process.returncode}):\n{tail}")
        return True

    def wait(self) -> None:
        self.process.wait()
        self.done()


def run_backfill(
    env: dict[str, str], keys: list[str], per_run: int, concurrent: int
) -> tuple[float, dict[str, float]]:
    """Runs over consecutive key ranges, at most `concurrent` at once; returns wall seconds and
    when each run's process was started (wall clock), by its first key."""
    ranges = [keys[i : i + per_run] for i in range(0, len(keys), per_run)]
    running: list[_Run] = []
    launched: dict[str, float] = {}
    started = time.perf_counter()
    for part in ranges:
        running = [run for run in running if not run.done()]
        while len(running) >= concurrent:
            time.sleep(0.2)
            running = [run for run in running if not run.done()]
        tags = {ASSET_PARTITION_RANGE_START_TAG: part[0], ASSET_PARTITION_RANGE_END_TAG: part[-1]}
        launched[part[0]] = time.time()
        running.append(_Run(env, "index_shards", f"run-{part[0]}..{part[-1]}", tags))
    for run in running:
        run.wait()
    return time.perf_counter() - started, launched


def run_phases(
    instance: DagsterInstance,
    runs: list,
    runs_steps: list[list[tuple[float, float, str]]],
    launched: dict[str, float],
) -> dict:
    """Mean seconds per run from its process's start to its end, phase by phase.

    `start-up` is the process start to the run's start (interpreter, imports, definitions);
    `before <step>` is the wait for a step after the previous one ended (for the embeddings
    step, mostly the GPU pool); the steps themselves include their resources' set-up.
    """
    phases: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        phases[name] = phases.get(name, 0.0) + max(0.0, seconds)

    for run, steps in zip(runs, runs_steps, strict=True):
        stats = instance.get_run_stats(run.run_id)
        add("start-up", stats.start_time - launched[run.tags[ASSET_PARTITION_RANGE_START_TAG]])
        ended = stats.start_time
        for began, finished, name in steps:
            add(f"before {name}", began - ended)
            add(name, finished - began)
            ended = max(ended, finished)
        add("after the last step", stats.end_time - ended)
    return {name: round(total / len(runs), 2) for name, total in phases.items()}


def _metadata(instance: DagsterInstance, asset: str) -> list[dict]:
    """Per run: the sums of its shards' numeric metadata, at the time the step ended; a shard
    whose work was reused (its figures are the run's that did it) counts for nothing."""
    records = instance.fetch_materializations(AssetKey(asset), limit=10_000).records
    per_run: dict[str, dict] = {}
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        reused = materialization.metadata.get("reused_checkpoint")
        if reused is not None and getattr(reused, "value", reused):
            continue
        run = per_run.setdefault(record.run_id, {"timestamp": 0.0})
        run["timestamp"] = max(run["timestamp"], record.timestamp)
        for name, value in materialization.metadata.items():
            value = getattr(value, "value", value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                run[name] = run.get(name, 0) + value
    return list(per_run.values())


def _index_runs(instance: DagsterInstance) -> list:
    """The runs that indexed shards: every run but the registration."""
    return [run for run in instance.get_runs() if run.job_name != "register_shards"]


def _finished_steps(instance: DagsterInstance, run) -> list[tuple[float, float, str]]:
    """(start, end, step name) of a run's finished steps, in start order."""
    return sorted(
        (step.start_time, step.end_time, step.step_key.split("[")[0])
        for step in instance.get_run_step_stats(run.run_id)
        if step.start_time and step.end_time
    )


def _clip(intervals: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi]


def measure(
    instance: DagsterInstance,
    started: float,
    wall: float,
    concurrent: int,
    launched: dict[str, float],
) -> dict:
    """Throughputs, and the backfill's time split into ramp-up, steady state and drain.

    `started` is the backfill's start on the wall clock. The steady state is the window from
    the first embeddings step's start to the last one's end: the GPU pool is the backfill's
    bottleneck there, and it is the part that grows with the corpus.
    """
    embedded = [m for m in _metadata(instance, "embeddings") if m.get("wall_seconds")]
    ingested = [m for m in _metadata(instance, "weaviate_index") if m.get("ingest_seconds")]
    chunked = _metadata(instance, "chunks")
    embed_seconds = sum(m["wall_seconds"] for m in embedded)
    ingest_seconds = sum(m["ingest_seconds"] for m in ingested)
    # Each materialization closes its step; its work is placed at the step's end, which is
    # exact for sequential runs and close for overlapping ones.
    work = [(m["timestamp"] - m["wall_seconds"], m["timestamp"]) for m in embedded] + [
        (m["timestamp"] - m["ingest_seconds"], m["timestamp"]) for m in ingested
    ]
    busy = union_seconds(work)
    runs = _index_runs(instance)
    runs_steps = [_finished_steps(instance, run) for run in runs]
    steps = step_intervals(instance, [run.run_id for run in runs])
    gpu_steps = steps.get("embeddings", [])
    first, last = min(a for a, _ in gpu_steps), max(b for _, b in gpu_steps)
    window = last - first
    busy_in_window = union_seconds(_clip(work, first, last))
    # Chunking is the pipeline's tokenizer: counted as work too, what is left is orchestration.
    staged = work + steps.get("chunks", [])
    staged_in_window = union_seconds(_clip(staged, first, last))
    tokens = sum(m["tokens"] for m in embedded)
    objects = sum(m["objects"] for m in ingested)
    return {
        "runs": len(runs),
        "documents": sum(m["documents"] for m in chunked),
        "chunks": sum(m["chunks"] for m in chunked),
        "embedded_tokens": tokens,
        "wall_seconds": wall,
        "embed_seconds": embed_seconds,
        "embed_tokens_per_second": tokens / embed_seconds if embed_seconds else 0.0,
        "device_seconds": sum(m.get("device_seconds", 0.0) for m in embedded),
        "embeddings_step_seconds": sum(b - a for a, b in gpu_steps),
        "ingest_seconds": ingest_seconds,
        "ingest_objects_per_second": objects / ingest_seconds if ingest_seconds else 0.0,
        "overhead_seconds": wall - busy,
        "overhead_fraction": (wall - busy) / wall,
        "overhead_fraction_chunking_as_work": (wall - union_seconds(staged)) / wall,
        "ramp_up_seconds": first - started,
        "steady_seconds": window,
        "steady_busy_seconds": busy_in_window,
        "steady_busy_or_chunking_seconds": staged_in_window,
        "steady_gpu_pool_idle_seconds": window - union_seconds(gpu_steps),
        "drain_seconds": started + wall - last,
        "step_seconds": {
            name: round(sum(b - a for a, b in spans), 2) for name, spans in sorted(steps.items())
        },
        "concurrent_runs": concurrent,
        "per_run_phases": run_phases(instance, runs, runs_steps, launched) if launched else {},
        "per_gpu": per_gpu(instance, wall),
    }


def per_gpu(instance: DagsterInstance, wall: float) -> dict[str, dict]:
    """Each leased GPU's shards, device and engine seconds, and their share of the wall time."""
    records = instance.fetch_materializations(AssetKey("embeddings"), limit=10_000).records
    gpus: dict[str, dict] = {}
    for record in records:
        metadata = {
            name: getattr(value, "value", value)
            for name, value in record.event_log_entry.asset_materialization.metadata.items()
        }
        if not metadata.get("wall_seconds"):
            continue  # a reused checkpoint, or a run's summary
        gpu = gpus.setdefault(
            str(metadata.get("gpus") or metadata.get("device", "?")),
            {"shards": 0, "device_seconds": 0.0, "engine_seconds": 0.0},
        )
        gpu["shards"] += 1
        gpu["device_seconds"] += metadata.get("device_seconds", 0.0)
        gpu["engine_seconds"] += metadata["wall_seconds"]
    for gpu in gpus.values():
        gpu["device_busy_fraction"] = gpu["device_seconds"] / wall
        gpu["engine_busy_fraction"] = gpu["engine_seconds"] / wall
    return gpus


def searchable(server: LocalServer | None, env: dict[str, str], out: Path) -> dict:
    """Time until the vector queue is empty, server memory, recall@10 against exact search."""
    import numpy as np
    import weaviate
    from weaviate.classes.query import MetadataQuery

    from resources.vectors import read_vectors
    from resources.weaviate.schema import VECTOR_NAME

    if server is None:
        return {}
    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=server.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=server.grpc_port, grpc_secure=False,
        auth_credentials=server.api_key,
    )  # fmt: skip
    collection = env["WEAVIATE_COLLECTION"]
    began = time.perf_counter()
    with client:
        while True:
            shards = [s for node in client.cluster.nodes(collection, output="verbose")
                      for s in node.shards or []]  # fmt: skip
            queued = sum(s.vector_queue_length for s in shards)
            if queued == 0 and all(s.vector_indexing_status == "READY" for s in shards):
                break
            time.sleep(0.5)
        waited = time.perf_counter() - began
        files = sorted((out / "data" / "embeddings").glob("*.parquet"))
        stored = [read_vectors(path) for path in files]
        uuids = [u for file in stored for u in file.uuids]
        vectors = np.concatenate([file.vectors for file in stored])
        rng = np.random.default_rng(0)
        picks = rng.choice(len(uuids), size=min(200, len(uuids)), replace=False)
        # Exact search: the 10 largest cosines (the vectors are unit length) of each query.
        exact = np.argpartition(-(vectors[picks] @ vectors.T), 10, axis=1)[:, :10]
        chunks = client.collections.get(collection)
        config = chunks.config.get()
        index = config.vector_config[VECTOR_NAME].vector_index_config
        layout = {
            "shards": config.sharding_config.desired_count,
            "vector_index": index.vector_index_type(),
            # A flat or HFresh index has no graph settings.
            "ef_construction": getattr(index, "ef_construction", None),
            "max_connections": getattr(index, "max_connections", None),
            "quantizer": type(index.quantizer).__name__ if index.quantizer else None,
        }
        hits = 0
        for row, pick in enumerate(picks):
            found = chunks.query.near_vector(
                vectors[pick].tolist(), limit=10, return_metadata=MetadataQuery(distance=True)
            ).objects
            hits += len({str(o.uuid) for o in found} & {uuids[i] for i in exact[row]})
    pid = server.pid()
    rss = resident_bytes(pid) if pid is not None else 0
    return {
        "seconds_after_last_run": round(waited, 2),
        "objects": len(uuids),
        "recall_at_10": hits / (10 * len(picks)),
        "layout": layout,
        "server_rss_bytes": rss,
    }


def stage_rates(instance: DagsterInstance) -> dict:
    """Each stage's throughput over the union of its steps' time."""
    steps = step_intervals(instance, [run.run_id for run in _index_runs(instance)])
    shards = {name: _metadata(instance, name) for name in STAGES + ("corpus_shard",)}

    def total(asset: str, name: str) -> float:
        return sum(m.get(name, 0) for m in shards[asset])

    def rate(amount: float, step: str) -> float:
        seconds = union_seconds(steps.get(step, []))
        return round(amount / seconds, 1) if seconds else 0.0

    return {
        "documents_read_per_second": rate(total("corpus_shard", "documents"), "corpus_shard"),
        "tokens_chunked_per_second": rate(total("chunks", "tokens"), "chunks"),
        "tokens_embedded_per_second": rate(total("embeddings", "tokens"), "embeddings"),
        "objects_stored_per_second": rate(total("weaviate_index", "objects"), "weaviate_index"),
    }


def run_command(env: dict[str, str], out: Path) -> tuple[float, float | None]:
    """`weaviate-indexer index` with its defaults; its wall seconds and the files-to-searchable
    seconds it printed."""
    log = out / "logs" / "index.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as output:
        done = subprocess.run([sys.executable, "-m", "orchestration.cli", "index"], env=env,
                              cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        raise SystemExit(f"index failed (exit {done.returncode}):\n{text[-4000:]}")
    found = re.search(r"files to searchable: ([\d.]+)s", text)
    print(text[-2000:])
    return wall, float(found.group(1)) if found else None


def run_ui_backfill(env: dict[str, str], instance: DagsterInstance, out: Path) -> float:
    """A backfill of the indexing assets over every partition, created as the UI's launch
    creates it, carried out by Dagster's daemon through the instance's run queue; its wall
    seconds from its creation to its end."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    selection = [key for key in graph.get_all_asset_keys() if key.path[-1] in
                 ("corpus_shard", "chunks", "embeddings", "weaviate_index")]  # fmt: skip
    backfill_id = uuid.uuid4().hex[:8]
    log = out / "logs" / "daemon.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "dagster._daemon", "run", "-w", str(ROOT / "workspace.yaml")],
            env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        started = time.perf_counter()
        instance.add_backfill(
            PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id, asset_graph=graph, partition_names=None,
                asset_selection=selection, backfill_timestamp=time.time(), tags={},
                dynamic_partitions_store=instance, all_partitions=True, title=None,
                description=None, run_config=None,
            )
        )  # fmt: skip
        ended = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS,
                 BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED,
                 BulkActionStatus.CANCELED}  # fmt: skip
        while (backfill := instance.get_backfill(backfill_id)).status not in ended:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited:\n{log.read_text()[-4000:]}")
            time.sleep(1.0)
        wall = time.perf_counter() - started
        if backfill.status not in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS):
            raise SystemExit(f"backfill {backfill_id} ended {backfill.status}")
        return wall
    finally:
        daemon.terminate()
        daemon.wait(60)


class MemoryPeaks:
    """Peak resident memory, sampled each second: the server's, and that of every other process
    this one started (the command and its workers, the daemon and its runs, chunk processes)."""

    def __init__(self, server: LocalServer | None):
        self.server_pid = server.pid() if server else None
        self.server = self.pipeline = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemoryPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            parents, rss = {}, {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    pid = int(stat.parent.name)
                    parents[pid], rss[pid] = (
                        int(fields[1]),
                        int(fields[21]) * os.sysconf("SC_PAGE_SIZE"),
                    )
                except (OSError, ValueError, IndexError):
                    continue
            mine = {os.getpid()}
            for _ in range(6):  # descendants, a few generations down
                mine |= {pid for pid, parent in parents.items() if parent in mine}
            mine.discard(os.getpid())
            server = rss.get(self.server_pid, 0) if self.server_pid else 0
            mine.discard(self.server_pid)
            self.server = max(self.server, server)
            self.pipeline = max(self.pipeline, sum(rss.get(pid, 0) for pid in mine))


def project(measured: dict, reference: dict) -> dict:
    """The reference corpus's times: the steady state scales with embedded tokens, ramp-up
    (first run's start-up and chunking) and drain (last ingest) stay as measured."""
    scale = reference["embedded_tokens"] / measured["embedded_tokens"]
    embed = reference["embedded_tokens"] / measured["embed_tokens_per_second"]
    ingest = reference["chunks"] / measured["ingest_objects_per_second"]
    fixed = measured["ramp_up_seconds"] + measured["drain_seconds"]
    wall = fixed + measured["steady_seconds"] * scale
    busy = measured["steady_busy_seconds"] * scale
    return {
        "scale": scale,
        "embedding_minutes": embed / 60,
        "embeddings_step_minutes": measured["embeddings_step_seconds"] * scale / 60,
        "ingest_minutes": ingest / measured["concurrent_runs"] / 60,
        "backfill_hours": wall / 3600,
        "overhead_fraction": 1 - busy / wall,
        "overhead_fraction_chunking_as_work": (
            1 - measured["steady_busy_or_chunking_seconds"] * scale / wall
        ),
        "reference_estimate_hours": REFERENCE_ESTIMATE_HOURS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--via", choices=["command", "ui", "runs"], default="command")
    parser.add_argument("--shards-per-run", type=int, default=0,
                        help="SHARDS_PER_RUN (0: the product's default)")  # fmt: skip
    parser.add_argument("--concurrent-runs", type=int, default=0,
                        help="--via runs: runs at once (0: the instance's)")  # fmt: skip
    parser.add_argument(
        "--chunk-processes", type=int, default=0, help="CHUNK_PROCESSES (0: the asset's default)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--indexing", choices=["async", "sync"], default="async",
        help="the managed server indexes vectors in the background (ASYNC_INDEXING), or not",
    )  # fmt: skip
    parser.add_argument("--gpu-slots", type=int, default=0, help="GPU_POOL_SLOTS (0: one per GPU)")
    parser.add_argument(
        "--weaviate-url", default=None,
        help="a running Weaviate (default: the managed server, started in --out)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(".data/full-run"))
    parser.add_argument(
        "--corpus", type=Path, default=None,
        help="where the sample corpus is (written there if it is not): several runs over one "
        "corpus write it once (default: in --out)",
    )  # fmt: skip
    parser.add_argument(
        "--vectors-from", type=Path, default=None,
        help="the --out of an earlier run over the same documents: its vector files are copied "
        "in, so the embeddings steps reuse them (how collection settings are compared without "
        "embedding again, on a machine where embedding is slow)",
    )  # fmt: skip
    parser.add_argument(
        "--definitions", type=Path, default=None,
        help="a Python file with other Definitions (default: orchestration/definitions.py)",
    )  # fmt: skip
    args = parser.parse_args()

    out = args.out.resolve()
    LocalServer(root=out / "data" / "weaviate").stop()  # one an interrupted run left behind
    shutil.rmtree(out, ignore_errors=True)
    if args.vectors_from is not None:
        shutil.copytree(
            args.vectors_from.resolve() / "data" / "embeddings", out / "data" / "embeddings"
        )
    started = time.perf_counter()
    corpus = args.corpus.resolve() if args.corpus else out / "corpus"
    if (corpus / "corpus_stats.json").is_file():  # written by an earlier run: the same documents
        sample = json.loads((corpus / "corpus_stats.json").read_text())
        assert sample["documents"] == args.docs, f"{corpus} holds {sample['documents']} documents"
    else:
        sample = write_sample_corpus(corpus, SampleSpec(docs=args.docs), workers=os.cpu_count())
    corpus_seconds = time.perf_counter() - started
    reference = corpus_totals(SampleSpec(docs=REFERENCE_DOCS))

    server = None if args.weaviate_url else managed_server(out, args.indexing == "async")
    env = _environment(args, out, server)
    os.environ.update(DAGSTER_HOME=env["DAGSTER_HOME"], GPU_POOL_SLOTS=env["GPU_POOL_SLOTS"])
    prepare_instance()  # the project's dagster.yaml for this machine, the gpu pool's slots
    register_seconds = 0.0
    try:
        if server is not None:
            server.start()
        with DagsterInstance.get() as instance, MemoryPeaks(server) as memory:
            concurrent = args.concurrent_runs or runs_at_once(instance)
            began, started, launched = time.time(), time.perf_counter(), {}
            printed = None
            if args.via == "command":
                wall, printed = run_command(env, out)
            else:
                _Run(env, "register_shards", "register_shards").wait()
                register_seconds = time.perf_counter() - started
                began = time.time()
                if args.via == "ui":
                    wall = run_ui_backfill(env, instance, out)
                else:
                    keys = instance.get_dynamic_partitions(shard_partitions.name)
                    per_run = args.shards_per_run or 16
                    wall, launched = run_backfill(env, keys, per_run, concurrent)
            keys = instance.get_dynamic_partitions(shard_partitions.name)
            measured = measure(instance, began, wall, concurrent, launched)
            measured["stages"] = stage_rates(instance)
            measured["searchable"] = searchable(server, env, out)
        files_to_searchable = printed or (
            register_seconds + wall + measured["searchable"].get("seconds_after_last_run", 0.0)
        )
        measured["files_to_searchable_seconds"] = round(files_to_searchable, 1)
        objects = measured["searchable"].get("objects", 0)
        measured["objects_per_second_to_searchable"] = round(objects / files_to_searchable, 1)
        measured["peak_rss_bytes"] = {"server": memory.server, "pipeline": memory.pipeline}
    finally:
        if server is not None:
            server.stop()
    report = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "weaviate": server.describe() if server else f"custom at {args.weaviate_url}",
        "corpus": sample,
        "corpus_seconds": corpus_seconds,
        "register_seconds": register_seconds,
        "shards": len(keys),
        "measured": measured,
        "reference": reference,
        "projection": project(measured, reference),
    }
    (out / "full_run.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
