"""`WeaviateResource`: the Dagster face of connection modes, the schema and the ingest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import weaviate
from dagster import ConfigurableResource
from pydantic import Field

from resources.processes import usable_cpus
from resources.weaviate.connection import ConnectionSettings, Target, resolve
from resources.weaviate.ingest import IngestPolicy
from resources.weaviate.schema import IndexLayout, ensure_collection

MAX_DEFAULT_SHARDS = 16


class WeaviateResource(ConfigurableResource):
    """Where the index lives. See the README's configuration table for each field's variable."""

    mode: str = Field(default="auto", description="auto | managed | local | custom | cloud")
    url: str | None = Field(default=None, description="http(s)://host:port of a Weaviate server")
    grpc_port: int = Field(default=50051, description="gRPC port of the server at `url`")
    grpc_host: str | None = Field(default=None, description="gRPC host if not the URL's host")
    api_key: str | None = Field(
        default=None,
        description="API key; never logged. Unset, the managed server uses the one generated in "
        "its data folder",
    )
    collection: str = Field(default="Chunks", description="collection that holds the chunks")
    data_dir: str = Field(default=".data", description="the managed server's data lives here")
    managed_port: int = Field(default=8079, description="HTTP port of the managed server")
    managed_grpc_port: int = Field(default=50050, description="gRPC port of the managed server")
    managed_cluster_port: int = Field(
        default=7110, description="first of the managed server's four cluster ports"
    )
    batch_size: int = Field(default=200, description="most objects per ingest request")
    max_batch_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="most bytes per ingest request; lowered to half the server's gRPC limit",
    )
    concurrent_requests: int = Field(default=2, description="ingest requests in flight")
    retry_seconds: float = Field(
        default=120.0, description="how long a batch is retried on transient failures"
    )
    batch_timeout_seconds: int = Field(
        default=30,
        description="how long one ingest request may take before it is retried; a cluster "
        "that loses its Raft leader holds the writes in flight until then",
    )
    hnsw_ef_construction: int = Field(
        default=128, description="HNSW build-time search width of a new collection"
    )
    hnsw_max_connections: int = Field(
        default=32, description="HNSW neighbours per node of a new collection"
    )
    compression: str = Field(
        default="none",
        description='vector compression of a new collection: "none", "rq", "bq", "pq" or "sq"',
    )
    shards: int = Field(
        default=0,
        description="shards of a new collection; 0: as many as the CPUs of the machine the "
        "managed server runs on (at most 16), or Weaviate's default (a shard per node) for "
        "another server",
    )
    replication_factor: int = Field(
        default=1, description="nodes that keep a copy of each shard of a new collection"
    )
    replica_sync_seconds: int = Field(
        default=5,
        description="with several copies, how often replicas compare and repair each other "
        "(asynchronous replication), so a node that was down catches up",
    )
    consistency: str | None = Field(
        default=None,
        description='replicas that must acknowledge each write, delete and count: "ONE", '
        '"QUORUM" or "ALL"; default: QUORUM when replicated, the server\'s default otherwise',
    )
    async_indexing: bool = Field(
        default=True,
        description="the managed server indexes vectors in the background (ASYNC_INDEXING): "
        "writes return before the HNSW insert, searchable once its queue is empty",
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
            api_key=self.api_key or None,
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
            ensure_collection(client, self.collection, self.layout())
            yield client
        finally:
            client.close()
