"""The full re-index: every shard into a new collection, then the alias switched to it.

For a new model, or a new collection layout. The live index keeps serving through the alias
(`weaviate.collection`) while the new collection fills; the alias moves only in the last step,
which runs only when every shard's step succeeded, so a failure anywhere leaves searches on the
old collection. Re-executing the failed run from its failure resumes into the same collection.

Chunks and vectors of the re-index are written under `<data dir>/reindex/<collection>/`, apart
from the live pipeline's stage files; vectors the live pipeline already holds for the same
chunks and model are reused instead of being computed again.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import weaviate as weaviate_client
from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field

from orchestration.retries import TRANSIENT
from resources.corpus.chunking import Chunker
from resources.corpus.loading import BadRecordError
from resources.corpus.manifest import load_manifest
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import chunks_content_hash, stage_path, write_chunks
from resources.embedding import EmbeddingResource
from resources.embedding.model_source import load_tokenizer
from resources.vectors import VectorFile, is_current, read_vectors, write_vectors
from resources.weaviate import WeaviateResource
from resources.weaviate.aliases import point_alias
from resources.weaviate.ingest import IngestError, ingest_shard
from resources.weaviate.objects import build_objects, metadata_samples, objects_version
from resources.weaviate.schema import ensure_collection, ensure_metadata_properties


class NewCollectionConfig(Config):
    collection: str = Field(
        default="",
        description="name of the new collection; empty: the alias's name plus the run id",
    )


class SwitchConfig(Config):
    drop_previous: bool = Field(
        default=False,
        description="drop the collection the alias pointed at before; kept by default, for a "
        "switch back with `client.alias.update`",
    )


@contextmanager
def _connected(weaviate: WeaviateResource) -> Iterator[weaviate_client.WeaviateClient]:
    """A client that, unlike `WeaviateResource.client`, creates nothing under the alias name."""
    client = weaviate.target().connect()
    try:
        yield client
    finally:
        client.close()


@op
def create_collection(
    context: OpExecutionContext, config: NewCollectionConfig, weaviate: WeaviateResource
) -> str:
    """An empty collection with the index's schema, under a name no collection has yet."""
    name = config.collection or f"{weaviate.collection}_{context.run_id.split('-')[0]}"
    name = name[:1].upper() + name[1:]
    if name == weaviate.collection:
        raise Failure("the new collection needs a name other than the alias", allow_retries=False)
    with _connected(weaviate) as client:
        if client.collections.exists(name):
            raise Failure(
                f"collection {name} already exists: name another one, or re-execute the "
                "failed re-index run from its failure to resume it",
                allow_retries=False,
            )
        ensure_collection(client, name)
    context.log.info(f"re-indexing into collection {name}")
    return name


@op(out=DynamicOut(str))
def list_shards(corpus: CorpusResource) -> Iterator[DynamicOutput[str]]:
    """One step per shard of the registered corpus (the manifest)."""
    keys = sorted(load_manifest(corpus.data_dir))
    if not keys:
        raise Failure("the manifest lists no shards: run register_shards first")
    for index, key in enumerate(keys):
        yield DynamicOutput(key, mapping_key=f"{re.sub(r'[^A-Za-z0-9_]', '_', key)}_{index}")


def _chunk(corpus: CorpusResource, embedder: EmbeddingResource, key: str, path: Path) -> pa.Table:
    try:
        documents = corpus.load(key).documents
    except BadRecordError as exc:
        raise Failure(f"shard {key} (strict mode): {exc}", allow_retries=False) from None
    metadata_json = {d.id: json.dumps(d.metadata, sort_keys=True) for d in documents}
    chunker = Chunker(load_tokenizer(embedder.model), corpus.chunking(embedder.max_length))
    return write_chunks(path, ((c, metadata_json[c.doc_id]) for c in chunker.chunk(documents)))


def _vectors(
    context: OpExecutionContext,
    corpus: CorpusResource,
    embedder: EmbeddingResource,
    key: str,
    table: pa.Table,
    own: Path,
) -> tuple[VectorFile, bool]:
    """The shard's vectors and whether they were reused from a checkpoint."""
    content_hash = chunks_content_hash(table)
    model = embedder.model_identity()
    for path in (own, corpus.stage_file("embeddings", key)):
        if is_current(path, content_hash, model):
            return read_vectors(path), True
    holder = f"run {context.run_id[:8]} step {context.op_handle}"
    with embedder.leased(holder, context.log.info) as gpu:
        result = gpu.engine.embed_token_ids(table.column("token_ids").to_pylist())
    write_vectors(own, table.column("uuid").to_pylist(), result.vectors, content_hash, model)
    return read_vectors(own), False


@op(retry_policy=TRANSIENT)
def index_shard_into(
    context: OpExecutionContext,
    corpus: CorpusResource,
    embedder: EmbeddingResource,
    weaviate: WeaviateResource,
    collection: str,
    key: str,
) -> int:
    """One shard chunked, embedded (or its vectors reused) and written to the new collection."""
    base = Path(corpus.data_dir) / "reindex" / collection
    table = _chunk(corpus, embedder, key, stage_path(base, "chunks", key))
    own = stage_path(base, "embeddings", key)
    stored, reused = _vectors(context, corpus, embedder, key, table, own)
    version = objects_version(table, stored.content_hash, stored.model)
    with _connected(weaviate) as client:
        types = ensure_metadata_properties(client, collection, metadata_samples(table))
        objects = build_objects(table, stored.vectors, key, version, types)
        try:
            report = ingest_shard(
                client, collection, key, version, objects, expected=table.num_rows,
                policy=weaviate.ingest_policy(),
            )  # fmt: skip
        except IngestError as exc:
            raise Failure(str(exc), allow_retries=exc.report.transient_only) from None
    context.log.info(
        f"shard {key}: {report.written} objects in {collection}"
        f"{' (vectors reused)' if reused else ''}"
    )
    return report.written


@op
def switch_alias(
    context: OpExecutionContext,
    config: SwitchConfig,
    weaviate: WeaviateResource,
    collection: str,
    written: list[int],
) -> str:
    """Runs only after every shard's step succeeded: the alias moves to the full collection."""
    alias = weaviate.collection
    with _connected(weaviate) as client:
        total = client.collections.get(collection).aggregate.over_all(total_count=True)
        if total.total_count != sum(written):
            raise Failure(
                f"{collection} holds {total.total_count} objects, the shards wrote "
                f"{sum(written)}: the alias stays where it is",
                allow_retries=False,
            )
        previous = point_alias(client, alias, collection)
        if previous is not None and config.drop_previous:
            client.collections.delete(previous)
    context.log.info(f"alias {alias} now points at {collection} (before: {previous or 'none'})")
    context.add_output_metadata(
        {
            "alias": alias,
            "collection": collection,
            "previous_collection": previous or "",
            "objects": sum(written),
            "shards": len(written),
        }
    )
    return collection


@job(
    description="Re-index every shard into a new collection, then switch the alias "
    "(weaviate.collection) to it; searches never see a half-built index."
)
def reindex() -> None:
    collection = create_collection()
    written = list_shards().map(lambda key: index_shard_into(collection, key))
    switch_alias(collection, written.collect())
