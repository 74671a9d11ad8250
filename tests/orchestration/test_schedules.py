"""The nightly schedule launches only shards not indexed at their current content.

"Indexed" is what the instance records: a `corpus_shard` materialization with the shard's
content hash, followed by a `weaviate_index` materialization. Tests record those directly (as a
finished run would) instead of embedding anything.
"""

from pathlib import Path

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SkipReason,
    build_schedule_context,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.schedules import build_index_schedule
from resources.corpus.reader import scan_shards
from resources.corpus.resource import CorpusResource
from tests.orchestration.conftest import write_docs


@pytest.fixture
def instance(tmp_path: Path) -> DagsterInstance:
    """A throwaway instance with storage on disk: schedule contexts need one they can reload."""
    (tmp_path / "dagster").mkdir()
    return DagsterInstance.local_temp(str(tmp_path / "dagster"))


def night(instance: DagsterInstance, corpus: CorpusResource) -> list[str] | SkipReason:
    """One evaluation of the schedule: the shards it launches, or why it launches none."""
    context = build_schedule_context(instance=instance, resources={"corpus": corpus})
    result = build_index_schedule()(context)
    if isinstance(result, SkipReason):
        return result
    return sorted(request.partition_key for request in result)


def index_everything(instance: DagsterInstance, corpus: CorpusResource) -> None:
    """What a successful run of each shard leaves in the instance."""
    for spec in scan_shards(corpus.corpus_path, corpus.shard_size):
        mark(instance, spec.key, spec.content_hash, reached_weaviate=True)


def mark(instance: DagsterInstance, key: str, content_hash: str, reached_weaviate: bool) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            "corpus_shard", partition=key, metadata={"source_content_hash": content_hash}
        )
    )
    if reached_weaviate:
        instance.report_runless_asset_event(AssetMaterialization("weaviate_index", partition=key))


def test_nightly_by_default_and_configurable() -> None:
    assert build_index_schedule().cron_schedule == "0 2 * * *"
    assert build_index_schedule("*/15 * * * *").cron_schedule == "*/15 * * * *"


def test_first_night_registers_and_indexes_every_shard(instance, corpus) -> None:
    assert night(instance, corpus) == ["a-s00000", "a-s00001", "b-s00000"]
    assert sorted(instance.get_dynamic_partitions("shards")) == [
        "a-s00000",
        "a-s00001",
        "b-s00000",
    ]


def test_nothing_changed_nothing_launched(instance, corpus) -> None:
    night(instance, corpus)
    index_everything(instance, corpus)

    outcome = night(instance, corpus)

    assert isinstance(outcome, SkipReason)
    assert "all 3 shards are indexed" in outcome.skip_message


def test_only_the_shards_that_changed_since_the_last_run(instance, corpus) -> None:
    night(instance, corpus)
    index_everything(instance, corpus)
    folder = Path(corpus.corpus_path)
    write_docs(folder / "b.jsonl", ["b1", "b2"], text="edited")
    write_docs(folder / "c.jsonl", ["c1"])

    assert night(instance, corpus) == ["b-s00000", "c-s00000"]


def test_a_shard_whose_run_failed_before_weaviate_is_launched_again(instance, corpus) -> None:
    night(instance, corpus)
    index_everything(instance, corpus)
    spec = next(s for s in scan_shards(corpus.corpus_path, 2) if s.key == "a-s00001")
    mark(instance, spec.key, spec.content_hash, reached_weaviate=False)  # read, then failed

    assert night(instance, corpus) == ["a-s00001"]


def running(instance: DagsterInstance, job_name: str, tags: dict[str, str]) -> None:
    """A run of the job that has started and not ended."""
    instance.add_run(DagsterRun(job_name=job_name, status=DagsterRunStatus.STARTED, tags=tags))


def test_shards_already_being_indexed_are_left_to_their_run(instance, corpus) -> None:
    night(instance, corpus)
    running(instance, "index_shards", {"dagster/partition": "a-s00000"})

    assert night(instance, corpus) == ["a-s00001", "b-s00000"]


def test_shards_of_a_backfill_run_in_flight_are_left_to_it(instance, corpus) -> None:
    """A backfill from the UI runs the implicit asset job over a range of shards."""
    night(instance, corpus)
    tags = {ASSET_PARTITION_RANGE_START_TAG: "a-s00000", ASSET_PARTITION_RANGE_END_TAG: "a-s00001"}
    running(instance, "__ASSET_JOB", tags)

    assert night(instance, corpus) == ["b-s00000"]
