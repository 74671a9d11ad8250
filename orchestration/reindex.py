"""The full re-index: every shard into a new collection, then the alias switched to it.

For a new model, or a new collection layout. The live index keeps serving through the alias
(`weaviate.collection`) while the new collection fills; the alias moves only in the last step,
which runs only when every shard's step succeeded, so a failure anywhere leaves searches on the
old collection. Re-executing the failed run from its failure resumes into the same collection.

Chunks and vectors of the re-index are written under `<data dir>/reindex/<collection>/`, apart
from the live pipeline's stage files; vectors the live pipeline already holds for the same
chunks and model are reused instead of being computed again.
"""

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

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

from assets import stages
from assets.pools import GPU_POOL
from assets.retries import TRANSIENT
from resources.corpus.manifest import load_manifest
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.embedding.resource import Engine
from resources.shard_files import ShardFiles
from resources.weaviate import WeaviateResource
from resources.weaviate.aliases import point_alias
from resources.weaviate.schema import ensure_collection


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
        ensure_collection(client, name, weaviate.layout())
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


@op(retry_policy=TRANSIENT, pool=GPU_POOL)
def index_shard_into(
    context: OpExecutionContext,
    corpus: CorpusResource,
    embedder: EmbeddingResource,
    weaviate: WeaviateResource,
    collection: str,
    key: str,
) -> int:
    """One shard through the pipeline's own stages into the new collection, with its stage
    files kept apart; vectors the live pipeline holds for the same chunks and model are reused."""
    root = Path(corpus.data_dir) / "reindex" / collection
    files = ShardFiles(root, key)
    holder = f"run {context.run_id[:8]} step {context.op_handle}"
    metadata = stages.load(corpus, files, context.log)
    metadata |= stages.chunker(corpus, embedder, root)(key)
    with ExitStack() as lease:

        def engine() -> Engine:
            return lease.enter_context(embedder.leased(holder, context.log.info)).engine

        live = corpus.files(key).embeddings
        embedded = stages.embed(
            engine, files, embedder.model_identity(), context.log.info, reuse_from=[live]
        )
    metadata |= embedded
    with stages.connected(lambda: _connected(weaviate)) as client:
        metadata |= stages.index(
            client, collection, files, weaviate.ingest_policy(), weaviate.rejects, context.log
        )
    written = int(metadata["objects_in_weaviate"])
    context.log.info(
        f"shard {key}: {written} objects in {collection}"
        f"{' (vectors reused)' if embedded['reused_checkpoint'] else ''}"
    )
    context.add_output_metadata(metadata)
    return written


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
