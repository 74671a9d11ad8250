"""Stage 3: vectors for every chunk, computed on the GPU and checkpointed per shard."""

from concurrent.futures import Future, ThreadPoolExecutor

from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.chunks import chunks
from assets.pools import GPU_POOL
from assets.shards import BACKFILL_POLICY, Metadata, for_each_shard
from orchestration.partitions import shard_partitions
from orchestration.retries import TRANSIENT
from resources.corpus.resource import CorpusResource
from resources.corpus.tables import chunks_content_hash, read_chunks, token_arrays
from resources.embedding import EmbeddingResource
from resources.embedding.tokenization import Tokenized
from resources.vectors import is_current, write_vectors


@asset(
    deps=[chunks],
    partitions_def=shard_partitions,
    backfill_policy=BACKFILL_POLICY,
    group_name="indexing",
    retry_policy=TRANSIENT,
    pool=GPU_POOL,
    kinds={"pytorch", "parquet"},
)
def embeddings(
    context: AssetExecutionContext, corpus: CorpusResource, embedder: EmbeddingResource
) -> MaterializeResult:
    """Unit vectors in chunk order. Unchanged chunks and model: the checkpoint is reused.

    The step embeds on a GPU it leases for itself (a backfill's concurrent steps each get
    their own; the `gpu` pool has a slot per GPU). A shard's vectors are written on a second
    thread while the next shard embeds, so the GPU does not wait for Parquet; the step ends
    only once every file is complete, so a shard is reported done only when its checkpoint
    exists.
    """
    model = embedder.model_identity()
    pending: list[Future[None]] = []  # at most one write in flight: memory stays one shard's

    def wait_for_write() -> None:
        if pending:
            pending.pop().result()  # a failed write fails the step

    def embed(key: str) -> Metadata:
        table = read_chunks(corpus.stage_file("chunks", key), columns=["uuid", "token_ids"])
        ids, lengths = token_arrays(table)
        content_hash = chunks_content_hash(table, (ids, lengths))
        path = corpus.stage_file("embeddings", key)
        if is_current(path, content_hash, model):
            context.log.info(f"shard {key}: vectors for these chunks and this model exist; reused")
            return {"chunks": table.num_rows, "reused_checkpoint": True, "texts": 0}
        result = gpu.engine.embed_tokenized(Tokenized(ids, lengths))
        uuids = table.column("uuid").to_pylist()
        wait_for_write()
        pending.append(
            writer.submit(write_vectors, path, uuids, result.vectors, content_hash, model)
        )
        return {
            "chunks": table.num_rows,
            "reused_checkpoint": False,
            "model": model["name"],
            **result.stats.as_metadata(),
            **gpu.metadata(),
        }

    holder = f"run {context.run_id[:8]} step {context.op_execution_context.op_handle}"
    with (
        embedder.leased(holder, context.log.info) as gpu,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-vectors") as writer,
    ):
        outcome = for_each_shard(context, embed)
        wait_for_write()
    return outcome
