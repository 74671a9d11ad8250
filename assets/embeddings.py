"""Stage 3: vectors for every chunk, computed on the GPU and checkpointed per shard."""

from concurrent.futures import Future, ThreadPoolExecutor

from dagster import AssetExecutionContext, MaterializeResult

from assets import stages
from assets.chunks import chunks
from assets.pools import GPU_POOL
from assets.retries import TRANSIENT
from assets.shards import Metadata, for_each_shard, shard_asset
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.vectors import write_vectors


@shard_asset(
    deps=[chunks],
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

    def write_behind(*args) -> None:
        wait_for_write()
        pending.append(writer.submit(write_vectors, *args))

    def embed(key: str) -> Metadata:
        files = corpus.files(key)
        metadata = stages.embed(lambda: gpu.engine, files, model, context.log.info, write_behind)
        if metadata["reused_checkpoint"]:
            context.log.info(f"shard {key}: vectors for these chunks and this model exist; reused")
        return {**metadata, **gpu.metadata()}

    holder = f"run {context.run.run_id[:8]} step {context.op_execution_context.op_handle}"
    with (
        embedder.leased(holder, context.log.info) as gpu,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-vectors") as writer,
    ):
        outcome = for_each_shard(context, embed)
        wait_for_write()
    return outcome
