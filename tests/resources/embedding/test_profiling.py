"""The profiling report, on the CPU with a small sweep."""

import json
import re

from dagster import materialize

from assets.profile import embedding_profile
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.embedding.profiling import ProfileRow, profile_token_ids, recommend


def _row(value, tokens_per_second, peak, ooms=0, kind="budget"):
    return ProfileRow(kind, value, 10, 1000, 1.0, tokens_per_second, peak, 0.1, 3, ooms)


def test_the_recommendation_is_the_fastest_budget_that_fits():
    rows = [
        _row(4096, 1000.0, 100),
        _row(8192, 1500.0, 200),
        _row(16384, 1900.0, 400, ooms=2),  # fastest, but only after OOM recoveries
        _row(32768, 2000.0, 900),  # over the memory limit
        _row(64, 5000.0, 50, kind="batch size"),  # fixed batch sizes are for comparison
    ]
    assert recommend(rows, memory_limit_bytes=500) == 8192
    assert recommend(rows[3:4], memory_limit_bytes=500) is None


def test_profile_inputs_are_pipeline_chunks_of_mixed_length():
    ids = profile_token_ids(docs=30, max_tokens=2000, model="all-MiniLM-L6-v2")
    lengths = [len(row) for row in ids]
    assert len(ids) >= 30 and max(lengths) <= 256 and min(lengths) < 100


def test_the_profile_asset_writes_a_report_and_stores_the_budget(tmp_path):
    data_dir = str(tmp_path)
    result = materialize(
        [embedding_profile],
        resources={
            "corpus": CorpusResource(data_dir=data_dir),
            "embedder": EmbeddingResource(device="cpu", data_dir=data_dir),
        },
        run_config={"ops": {"embedding_profile": {"config": {
            "docs": 12, "max_document_tokens": 600, "budgets": [512, 2048],
            "batch_sizes": [4, 16]}}}},
    )  # fmt: skip
    metadata = result.asset_materializations_for_node("embedding_profile")[0].metadata
    recommended = metadata["recommended_budget"].value
    assert recommended in (512, 2048)
    report = tmp_path / "reports" / "embedding-profile.html"
    assert metadata["report"].value == report.resolve().as_uri()
    page = report.read_text()
    assert '<img id="plots"' in page and "data:image/png;base64," in page
    assert f"Recommended token budget: <b>{recommended:,}</b>" in page
    assert len(re.findall(r"<tr><td>(?:budget|batch size)</td>", page)) == 4
    [learned] = (tmp_path / "budgets").glob("*.json")
    saved = json.loads(learned.read_text())
    assert (saved["token_budget"], saved["source"]) == (recommended, "profile")
