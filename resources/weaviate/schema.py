"""The collection that holds the chunks, declared explicitly.

Every property has a declared type: Weaviate's auto-schema would guess types from the first
object it sees and tokenize ids as words, so `doc_id == "doc-7"` would match by word. Id-like
fields use field tokenization, which makes filters on them exact. Metadata properties are added
as new keys appear, typed from their values. Every call goes through `calls.Calls`: a cluster
electing a new leader holds schema reads and changes until their deadline, and they are retried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    ReplicationDeletionStrategy,
    Tokenization,
    VectorDistances,
)
from weaviate.collections import Collection
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateInvalidInputError

from resources import settings
from resources.weaviate.calls import Calls

VECTOR_NAME = "default"

# (name, type, tokenization) of the properties the pipeline itself writes.
CORE_PROPERTIES: tuple[tuple[str, DataType, Tokenization | None], ...] = (
    ("doc_id", DataType.TEXT, Tokenization.FIELD),
    ("chunk_index", DataType.INT, None),
    ("text", DataType.TEXT, Tokenization.WORD),
    ("token_count", DataType.INT, None),
    ("shard", DataType.TEXT, Tokenization.FIELD),
    ("shard_version", DataType.TEXT, Tokenization.FIELD),
)
# Ids are filtered on (a shard's stale chunks, a document's chunks), never ranked by keywords:
# no BM25 index of their own, so a keyword search does not match a query against shard names.
_IDS = frozenset({"doc_id", "shard", "shard_version"})
CORE_NAMES = frozenset(name for name, _, _ in CORE_PROPERTIES)
_RESERVED = CORE_NAMES | {"id", "_id", "_additional", "vector"}


def property_name(key: str) -> str:
    """A metadata key as a valid, non-clashing Weaviate property name (GraphQL name rules)."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", key)
    if not name or name[0].isdigit():
        name = f"m_{name}"
    name = name[0].lower() + name[1:]
    return f"meta_{name}" if name in _RESERVED else name


def data_type_of(value: object) -> DataType:
    if isinstance(value, bool):
        return DataType.BOOL
    if isinstance(value, int):
        return DataType.INT
    if isinstance(value, float):
        return DataType.NUMBER
    return DataType.TEXT


def _property(
    name: str,
    data_type: DataType,
    tokenization: Tokenization | None,
    filterable: bool | None = None,
    searchable: bool | None = None,
) -> Property:
    return Property(
        name=name,
        data_type=data_type,
        tokenization=tokenization,
        index_filterable=filterable,
        index_searchable=searchable,
    )


COMPRESSIONS = ("none", "rq", "bq", "pq", "sq")
VECTOR_INDEXES = ("hnsw", "hfresh", "flat")


@dataclass(frozen=True)
class IndexLayout:
    """How a new collection indexes and spreads its vectors; fixed once it is created.

    HNSW's `ef_construction` and `max_connections` trade import speed and memory for recall;
    `compression` quantizes the vectors the index keeps in memory (rotational, binary, product
    or scalar quantization; the full vectors stay on disk for rescoring); `vector_index_type`
    is the index itself (an HNSW graph, HFresh's clusters on disk, or a flat scan); `ef` is
    the HNSW queries' search width (-1: Weaviate's dynamic one); `text_filterable` keeps a
    filter index of the text beside its BM25 index (filters on its words work without it,
    through the BM25 index); `shards` spreads the collection over that many shards (on several
    nodes, over the nodes; None: Weaviate's own default, a shard per node);
    `replication_factor` keeps each shard on that many nodes. Defaults: Weaviate's own HNSW
    build settings with RQ and no filter index of the text, which stored a million of the
    pipeline's chunks 1.17x as fast as neither, with the same recall, queries 256 wide, for
    recall that holds as the graph grows (BENCHMARKS.md, "A node's time"); Weaviate's own
    sharding; one copy.

    With several copies, a node that was down comes back without the writes it missed;
    asynchronous replication repairs it: replicas compare hash trees every
    `replica_sync_seconds` (5 at the least; Weaviate raises shorter periods to 5 s) and copy
    what differs. Weaviate's default timings (30 s) took 60 to 65 s to repair a restarted node
    of a local three-node cluster; 5 s took about 5. Without it, Weaviate repairs an object
    only when a read at ALL meets it. A stale chunk deleted while a node was down must stay
    deleted, and a chunk written again after its deletion must stay: the later of the two wins
    (time-based resolution).

    Since Weaviate 1.38 asynchronous replication is on for every collection with more than one
    copy: the per-collection switch is gone (the server ignores it and reports it on), and
    only the server's `ASYNC_REPLICATION_DISABLED` turns it off, for every collection. The
    per-collection timings still apply, unless the server's own `ASYNC_REPLICATION_FREQUENCY`
    (and the other `ASYNC_REPLICATION_*` settings) override them for every collection. Older
    servers need the switch, which is why it is still sent.
    """

    ef_construction: int = settings.weaviate_ef_construction.default
    max_connections: int = settings.weaviate_max_connections.default
    compression: str = settings.weaviate_compression.default
    vector_index_type: str = settings.weaviate_vector_index.default
    ef: int = settings.weaviate_ef.default
    text_filterable: bool = settings.weaviate_text_filterable.default
    shards: int | None = None
    replication_factor: int = settings.weaviate_replication_factor.default
    replica_sync_seconds: float = settings.weaviate_replica_sync_seconds.default

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression {self.compression!r}: use one of {COMPRESSIONS}")
        if self.vector_index_type not in VECTOR_INDEXES:
            raise ValueError(
                f"vector index {self.vector_index_type!r}: use one of {VECTOR_INDEXES}"
            )

    def vector_index(self):
        quantizer = None
        if self.compression != "none":
            quantizer = getattr(Configure.VectorIndex.Quantizer, self.compression)()
        if self.vector_index_type == "flat":
            return Configure.VectorIndex.flat(
                distance_metric=VectorDistances.COSINE, quantizer=quantizer
            )
        if self.vector_index_type == "hfresh":
            return Configure.VectorIndex.hfresh(
                distance_metric=VectorDistances.COSINE, quantizer=quantizer
            )
        return Configure.VectorIndex.hnsw(
            distance_metric=VectorDistances.COSINE,
            ef_construction=self.ef_construction,
            max_connections=self.max_connections,
            ef=self.ef,
            quantizer=quantizer,
        )

    def properties(self) -> list[Property]:
        """The pipeline's own properties as this layout indexes them."""
        return [
            _property(
                name,
                kind,
                tokenization,
                filterable=self.text_filterable if name == "text" else None,
                searchable=False if name in _IDS else None,
            )
            for name, kind, tokenization in CORE_PROPERTIES
        ]

    def replication(self):
        if self.replication_factor == 1:
            return Configure.replication(factor=1)
        return Configure.replication(
            factor=self.replication_factor,
            async_enabled=True,
            deletion_strategy=ReplicationDeletionStrategy.TIME_BASED_RESOLUTION,
            async_config=Configure.Replication.async_config(
                frequency=round(self.replica_sync_seconds * 1000),
                frequency_while_propagating=1000,
                propagation_delay=1000,
            ),
        )


def ensure_collection(
    client: weaviate.WeaviateClient,
    name: str,
    layout: IndexLayout | None = None,
    calls: Calls | None = None,
) -> None:
    """Create the collection with self-provided cosine vectors unless it exists.

    Every client the pipeline opens checks its collection here first, so a cluster that has
    lost its quorum is caught here at once (`ClusterDown`), before a schema read waits on a
    leader that no longer exists.
    """
    calls = calls or Calls(client)
    calls.stop_if_quorum_lost()
    layout = layout or IndexLayout()
    calls(lambda: _create_unless_exists(client, name, layout), f"checking collection {name}")


def _create_unless_exists(client: weaviate.WeaviateClient, name: str, layout: IndexLayout) -> None:
    """Asks again on a retry: a creation whose answer timed out may have taken place."""
    if client.collections.exists(name):
        return
    client.collections.create(
        name,
        properties=layout.properties(),
        vector_config=Configure.Vectors.self_provided(
            name=VECTOR_NAME, vector_index_config=layout.vector_index()
        ),
        sharding_config=Configure.sharding(desired_count=layout.shards) if layout.shards else None,
        replication_config=layout.replication(),
    )


def _properties_of(collection: Collection) -> dict[str, DataType]:
    return {p.name: p.data_type for p in collection.config.get().properties}


def ensure_metadata_properties(
    client: weaviate.WeaviateClient,
    name: str,
    samples: Iterable[Mapping[str, object]],
    calls: Calls | None = None,
) -> dict[str, DataType]:
    """Add a typed property for each metadata key not yet in the collection.

    An int key seen with floats elsewhere becomes a number. Returns the collection's property
    types, which the ingest uses to coerce values (an int into a number property).
    """
    calls = calls or Calls(client)
    collection = client.collections.get(name)
    known = calls(lambda: _properties_of(collection), f"reading {name}'s properties")
    wanted = _new_properties(known, samples)
    if wanted:
        known = calls(lambda: _add_missing(collection, wanted), f"adding properties to {name}")
    return known


def _new_properties(
    known: Mapping[str, DataType], samples: Iterable[Mapping[str, object]]
) -> dict[str, DataType]:
    wanted: dict[str, DataType] = {}
    for metadata in samples:
        for key, value in metadata.items():
            prop = property_name(key)
            if prop in known:
                continue
            kind, previous = data_type_of(value), wanted.get(prop)
            if previous is None:
                wanted[prop] = kind
            elif {previous, kind} == {DataType.INT, DataType.NUMBER}:
                wanted[prop] = DataType.NUMBER
    return wanted


def _add_missing(collection: Collection, wanted: Mapping[str, DataType]) -> dict[str, DataType]:
    """Reads the properties again first: on a retry, an addition whose answer timed out may
    have taken place. Runs ingesting at once add the same new key together: the one that
    comes second is told the property "already exists" (by the client, which reads the schema
    first) or is "already in use" (by the server), and takes it as it was added."""
    known = _properties_of(collection)
    for prop, kind in wanted.items():
        if prop in known:
            continue
        tokenization = Tokenization.WORD if kind == DataType.TEXT else None
        try:
            collection.config.add_property(_property(prop, kind, tokenization))
        except (UnexpectedStatusCodeError, WeaviateInvalidInputError) as exc:
            if "already" not in str(exc):
                raise
            known = _properties_of(collection)
            if prop not in known:
                raise
            continue
        known[prop] = kind
    return known
