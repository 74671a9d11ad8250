"""The embedding profile: token budgets swept on this device, with an HTML report."""

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from assets.pools import GPU_POOL
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.embedding.profiling import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_BUDGETS,
    profile_token_ids,
    run_profile,
    write_report,
)


class ProfileConfig(Config):
    docs: int = 400
    max_document_tokens: int = 8000
    budgets: list[int] = list(DEFAULT_BUDGETS)
    batch_sizes: list[int] = list(DEFAULT_BATCH_SIZES)


@asset(group_name="profiling", pool=GPU_POOL, kinds={"pytorch", "html"})
def embedding_profile(
    context: AssetExecutionContext,
    config: ProfileConfig,
    corpus: CorpusResource,
    embedder: EmbeddingResource,
) -> MaterializeResult:
    """Throughput and peak memory per token budget (and per fixed batch size, to compare);
    the recommended budget becomes the learned budget that later runs start from."""
    token_ids = profile_token_ids(config.docs, config.max_document_tokens, embedder.model)
    holder = f"run {context.run.run_id[:8]} step {context.op_execution_context.op_handle}"
    with embedder.leased(holder, context.log.info) as gpu:
        # The sweep builds an engine per budget, each on the leased GPU.
        profile = run_profile(token_ids, gpu.engine.config, config.budgets, config.batch_sizes)
    report = write_report(profile, corpus.reports_dir / "embedding-profile.html")
    best = max(profile.rows, key=lambda r: r.tokens_per_second)
    context.log.info(f"profile report: {report}")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.url(report.resolve().as_uri()),
            "report_path": MetadataValue.path(str(report)),
            "recommended_budget": profile.recommended_budget or 0,
            "best_tokens_per_second": best.tokens_per_second,
            "texts": len(token_ids),
            "device": profile.device,
        }
    )
