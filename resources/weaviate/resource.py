"""`WeaviateResource`: the Dagster face of connection modes, the schema and the ingest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import weaviate
from dagster import ConfigurableResource
from pydantic import Field

from resources import settings as defaults
from resources.processes import usable_cpus
from resources.weaviate.connection import ConnectionSettings, Target, resolve
from resources.weaviate.ingest import IngestPolicy
from resources.weaviate.schema import IndexLayout, ensure_collection

MAX_DEFAULT_SHARDS = 16
# The ingest's own defaults, for the fields that have no variable.
_INGEST = IngestPolicy()


class WeaviateResource(ConfigurableResource):
    """Where the index lives and how it is written.

    A field with a variable takes it as its default (`resources/settings.py`), read whenever
    the resource is built, for each run too: a run config that sets other fields keeps it. The
    API key is no field's default: it is read when a client connects, so it is in no run's
    config.
    """

    mode: str = defaults.weaviate_mode.field("auto | managed | local | custom | cloud")
    url: str | None = defaults.weaviate_url.field("http(s)://host:port of a Weaviate server")
    grpc_port: int = defaults.weaviate_grpc_port.field("gRPC port of the server at `url`")
    grpc_host: str | None = Field(default=None, description="gRPC host if not the URL's host")
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="API key in place of WEAVIATE_API_KEY, which is read when connecting; a "
        "key set here shows in the run's config. Never logged. With neither, the managed "
        "server uses the one generated in its data folder",
    )
    collection: str = defaults.weaviate_collection.field("collection that holds the chunks")
    data_dir: str = defaults.data_dir.field("the managed server's data lives here")
    managed_port: int = defaults.weaviate_managed_port.field("HTTP port of the managed server")
    managed_grpc_port: int = defaults.weaviate_managed_grpc_port.field(
        "gRPC port of the managed server"
    )
    managed_cluster_port: int = defaults.weaviate_managed_cluster_port.field(
        "first of the managed server's four cluster ports"
    )
    batch_size: int = defaults.weaviate_batch_size.field("most objects per ingest request")
    max_batch_bytes: int = Field(
        default=_INGEST.max_bytes,
        description="most bytes per ingest request; lowered to half the server's gRPC limit",
    )
    concurrent_requests: int = defaults.weaviate_concurrent_requests.field(
        "ingest requests in flight"
    )
    retry_seconds: float = Field(
        default=_INGEST.retry_seconds,
        description="how long a batch is retried on transient failures",
    )
    batch_timeout_seconds: int = defaults.weaviate_batch_timeout_seconds.field(
        "how long one request (a batch, a delete, a schema read) may take before it is "
        "retried; a cluster that loses its Raft leader holds the calls in flight until then"
    )
    hnsw_ef_construction: int = defaults.weaviate_ef_construction.field(
        "HNSW build-time search width of a new collection"
    )
    hnsw_max_connections: int = defaults.weaviate_max_connections.field(
        "HNSW neighbours per node of a new collection"
    )
    compression: str = defaults.weaviate_compression.field(
        'vector compression of a new collection: "none", "rq", "bq", "pq" or "sq"'
    )
    vector_index: str = defaults.weaviate_vector_index.field(
        'vector index of a new collection: "hnsw" (a graph), "hfresh" (clusters of vectors '
        'on disk) or "flat" (every vector compared; with "rq" compression, from memory)'
    )
    ef: int = defaults.weaviate_ef.field(
        "HNSW search width of a new collection's queries (-1: Weaviate's dynamic width); "
        "wider finds more of the true nearest chunks, slower"
    )
    text_filterable: bool = defaults.weaviate_text_filterable.field(
        "whether a new collection keeps a filter index of the chunk text beside its BM25 "
        "index; without it, filters on words of the text still work, through the BM25 index"
    )
    shards: int = defaults.weaviate_shards.field(
        "shards of a new collection; 0: as many as the CPUs of the machine the managed "
        "server runs on (at most 16), or Weaviate's default (a shard per node) for another "
        "server"
    )
    replication_factor: int = defaults.weaviate_replication_factor.field(
        "nodes that keep a copy of each shard of a new collection"
    )
    replica_sync_seconds: int = defaults.weaviate_replica_sync_seconds.field(
        "with several copies, how often replicas compare and repair each other "
        "(asynchronous replication), so a node that was down catches up"
    )
    consistency: str | None = defaults.weaviate_consistency.field(
        'replicas that must acknowledge each write, delete and count: "ONE", "QUORUM" or '
        '"ALL"; unset: QUORUM when replicated, the server\'s default otherwise'
    )
    async_indexing: bool = defaults.weaviate_async_indexing.field(
        "the managed server indexes vectors in the background (ASYNC_INDEXING): writes "
        "return before the HNSW insert, searchable once its queue is empty"
    )
    rejects: str = Field(
        default="fail",
        description='objects Weaviate refuses: "fail" the shard, or "quarantine" them to a '
        "rejects file that the count check reports",
    )

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            mode=self.mode,
            url=self.url or None,
            grpc_port=self.grpc_port,
            grpc_host=self.grpc_host,
            api_key=self.api_key or defaults.weaviate_api_key(),
            data_dir=self.data_dir,
            managed_port=self.managed_port,
            managed_grpc_port=self.managed_grpc_port,
            managed_cluster_port=self.managed_cluster_port,
            async_indexing=self.async_indexing,
            batch_timeout_seconds=self.batch_timeout_seconds,
        )

    def layout(self) -> IndexLayout:
        return IndexLayout(
            ef_construction=self.hnsw_ef_construction,
            max_connections=self.hnsw_max_connections,
            compression=self.compression,
            vector_index_type=self.vector_index,
            ef=self.ef,
            text_filterable=self.text_filterable,
            shards=self.shards or self._default_shards(),
            replication_factor=self.replication_factor,
            replica_sync_seconds=self.replica_sync_seconds,
        )

    def ingest_policy(self) -> IngestPolicy:
        return IngestPolicy(
            max_objects=self.batch_size,
            max_bytes=self.max_batch_bytes,
            concurrent_requests=self.concurrent_requests,
            retry_seconds=self.retry_seconds,
            consistency=self.consistency or ("QUORUM" if self.replication_factor > 1 else None),
        )

    def _default_shards(self) -> int | None:
        """A bulk load into one node stores fastest with about a shard per core, whose HNSW
        graphs grow in parallel: on 16 cores, 16 shards stored 1.37x as many objects per
        second as 4 at 309k objects, with better recall, and 32 shards no more than 16
        (BENCHMARKS.md, "Files to searchable"). The managed server shares this machine's CPUs;
        another server's cores are not known here."""
        if self.target().mode != "managed":
            return None
        return min(MAX_DEFAULT_SHARDS, usable_cpus())

    def target(self) -> Target:
        """The mode that will be used and why; resolves `auto` without connecting."""
        return resolve(self.settings())

    @contextmanager
    def client(self, target: Target | None = None) -> Iterator[weaviate.WeaviateClient]:
        """A connected client whose collection exists; closed on exit."""
        client = (target or self.target()).connect()
        try:
            calls = self.ingest_policy().calls(client)
            ensure_collection(client, self.collection, self.layout(), calls)
            yield client
        finally:
            client.close()
