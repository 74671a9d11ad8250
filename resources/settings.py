"""Every setting a user makes in the environment: its variable and its default, each written
once, and the one place the environment is read for them.

Resources take these as their fields' `default_factory`, not as values set in code: Dagster
builds a resource for each run from the run config and the fields' defaults, and a run config
that sets one field of a resource (`rejects: quarantine` in the launchpad, say) replaces every
value set in code, while defaults that read the environment keep the others. The plain classes
below the resources (`ConnectionSettings`, `LocalServer`, `EngineConfig`) take a setting's
`default` as theirs, so no two modules disagree on a port. A few settings shape the definitions
themselves (a backfill policy, the sensors, the schedule) and are read when the definitions
load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import Field

from resources.tokenizer.model_source import DEFAULT_MODEL

PROJECT_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """An environment variable and the value it stands for when unset or empty.

    Calling it reads the variable then, so it serves as a pydantic `default_factory`, called
    whenever a resource is built.
    """

    variable: str
    default: T
    parse: Callable[[str], T]

    def __call__(self) -> T:
        text = os.environ.get(self.variable)
        if not text:
            return self.default
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ValueError(f"{self.variable}={text!r}: {exc}") from None

    def field(self, meaning: str) -> T:
        """A resource field that takes this setting as its default, described as `meaning` with
        where the value comes from (the UI shows it beside the field)."""
        default = "" if self.default is None else f", else {self.default}"
        description = f"{meaning} (default: {self.variable}{default})"
        return Field(default_factory=self, description=description)


def _flag(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise ValueError("use true or false")
    return words[text.lower()]


# Files and the corpus.
data_dir = Setting("INDEXER_DATA_DIR", str(PROJECT_ROOT / ".data"), str)
shard_size = Setting("SHARD_SIZE", 1000, int)


def corpus_path() -> str:
    """The corpus: CORPUS_PATH, else `corpus` in the data folder (wherever that is)."""
    return os.environ.get("CORPUS_PATH") or str(Path(data_dir()) / "corpus")


# How a backfill runs its shards (read when the definitions load: a backfill policy is fixed).
shards_per_run = Setting("SHARDS_PER_RUN", 16, int)
# 0: the run's share of the machine's cores (`resources/capacity.py`).
chunk_processes = Setting("CHUNK_PROCESSES", 0, int)
cpu_stage_niceness = Setting("CPU_STAGE_NICENESS", 10, int)

# Embedding.
embedding_model = Setting("EMBEDDING_MODEL", DEFAULT_MODEL, str)
embedding_device = Setting("EMBEDDING_DEVICE", "auto", str)
# None: a slot per GPU the machine has.
gpu_pool_slots: Setting[int | None] = Setting("GPU_POOL_SLOTS", None, int)
embedding_lease_dir = Setting(
    "EMBEDDING_LEASE_DIR", os.path.join(tempfile.gettempdir(), "weaviate-indexer-gpu-leases"), str
)

# Weaviate: which server. The managed server's HTTP and gRPC ports are those weaviate-client's
# `connect_to_embedded` defaults to, beside Weaviate's own 8080 and 50051 (a server at
# WEAVIATE_URL); its cluster ports are the four from WEAVIATE_MANAGED_CLUSTER_PORT.
weaviate_mode = Setting("WEAVIATE_MODE", "auto", str)
weaviate_url: Setting[str | None] = Setting("WEAVIATE_URL", None, str)
weaviate_grpc_port = Setting("WEAVIATE_GRPC_PORT", 50051, int)
# Read where a client connects, never as a resource field's default: a field's value belongs to
# the run's config, which the UI shows.
weaviate_api_key: Setting[str | None] = Setting("WEAVIATE_API_KEY", None, str)
weaviate_collection = Setting("WEAVIATE_COLLECTION", "Chunks", str)
weaviate_managed_port = Setting("WEAVIATE_MANAGED_PORT", 8079, int)
weaviate_managed_grpc_port = Setting("WEAVIATE_MANAGED_GRPC_PORT", 50050, int)
weaviate_managed_cluster_port = Setting("WEAVIATE_MANAGED_CLUSTER_PORT", 7110, int)
weaviate_async_indexing = Setting("WEAVIATE_ASYNC_INDEXING", True, _flag)
weaviate_cache = Setting(
    "WEAVIATE_INDEXER_CACHE", str(Path.home() / ".cache" / "weaviate-indexer"), str
)
# Weaviate: the ingest.
weaviate_batch_size = Setting("WEAVIATE_BATCH_SIZE", 200, int)
weaviate_concurrent_requests = Setting("WEAVIATE_CONCURRENT_REQUESTS", 2, int)
weaviate_batch_timeout_seconds = Setting("WEAVIATE_BATCH_TIMEOUT_SECONDS", 30, int)
# None: QUORUM when replicated, the server's default otherwise.
weaviate_consistency: Setting[str | None] = Setting("WEAVIATE_CONSISTENCY", None, str)
# Weaviate: a new collection's layout.
# 64, half Weaviate's own default: at 1M objects it stored 1.58x as fast to searchable (9,232
# objects/s against 5,859 on 16 cores) with recall@10 0.991 against 0.992 at the queries' width
# below (BENCHMARKS.md, "A node's time"); the graph's build is what bounds a node's load.
weaviate_ef_construction = Setting("WEAVIATE_EF_CONSTRUCTION", 64, int)
weaviate_max_connections = Setting("WEAVIATE_MAX_CONNECTIONS", 32, int)
# The layout chosen from one node's measured variants (BENCHMARKS.md, "A node's time"): RQ
# compression and no filter index of the text stored 1.17x as fast as neither at 1M objects,
# with the same recall, BM25 and filters, and 3.2 GiB less server memory once loaded; a flat index
# stores 2.5x as fast but answers a vector query in 26 ms instead of 5 at 1M, growing with N.
weaviate_compression = Setting("WEAVIATE_COMPRESSION", "rq", str)
weaviate_vector_index = Setting("WEAVIATE_VECTOR_INDEX", "hnsw", str)
# Queries' HNSW search width. Weaviate's dynamic one (-1: limit x 8, between 100 and 500) found
# 0.977 of the exact top 10 at 1M objects and 0.956 at 2M, falling as the graph grows; 256 found
# 0.995 at 1M in 11 ms instead of 5.5 (BENCHMARKS.md, "A node's time"), a margin for 7.8M.
weaviate_ef = Setting("WEAVIATE_EF", 256, int)
weaviate_text_filterable = Setting("WEAVIATE_TEXT_FILTERABLE", False, _flag)
# 0: a shard per CPU for the managed server, Weaviate's own default for another.
weaviate_shards = Setting("WEAVIATE_SHARDS", 0, int)
weaviate_replication_factor = Setting("WEAVIATE_REPLICATION_FACTOR", 1, int)
weaviate_replica_sync_seconds = Setting("WEAVIATE_REPLICA_SYNC_SECONDS", 5, int)

# Keeping the index fresh (read when the definitions load).
index_schedule_cron = Setting("INDEX_SCHEDULE_CRON", "0 2 * * *", str)
corpus_on_removed = Setting("CORPUS_ON_REMOVED", "flag", str)
index_max_attempts = Setting("INDEX_MAX_ATTEMPTS", 3, int)
