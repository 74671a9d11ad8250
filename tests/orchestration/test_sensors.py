"""The sensors, evaluated the way the daemon does it, on a real (ephemeral) Dagster instance.

`tick` evaluates the corpus sensor and then does what the daemon does with the result: adds the
requested partitions and keeps the cursor. No test here embeds anything: what a sensor decides
is visible in its run requests.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    Failure,
    SensorResult,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
    evaluate_automation_conditions,
    job,
    op,
)
from dagster._core.test_utils import create_run_for_test
from weaviate.classes.data import DataObject
from weaviate.util import generate_uuid5

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import weaviate_index
from assets.partitions import shard_partitions
from orchestration.automation import following_upstream
from orchestration.changes import CorpusCursor
from orchestration.jobs import register_shards
from orchestration.removal import remove_shards
from orchestration.resources import build_resources
from orchestration.sensors import (
    ATTEMPT_TAG,
    build_corpus_sensor,
    build_retry_sensor,
)
from resources.corpus.manifest import manifest_path
from resources.corpus.reader import scan_shards
from resources.corpus.resource import CorpusResource
from resources.weaviate import WeaviateResource
from resources.weaviate.schema import ensure_collection
from tests.conftest import connect
from tests.orchestration.conftest import write_docs


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """Entered, so that the definitions' state storage Dagster looks up while evaluating
    sensors and automation conditions is this live instance's for the whole test (a storage
    left registered by an instance already collected fails with "undefined DagsterInstance
    weakref", depending on when the collector ran)."""
    with DagsterInstance.ephemeral() as instance:
        yield instance


def tick(sensor, instance: DagsterInstance, corpus: CorpusResource, cursor: str | None):
    """One evaluation, applied as the daemon applies it: (result, the cursor it leaves).

    A tick that asks for a registration is followed by that run, done, and the next tick, whose
    result is returned: the sensor never scans the corpus itself.
    """
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"corpus": corpus})
    result = sensor(context)
    if isinstance(result, SkipReason):
        return result, cursor
    assert isinstance(result, SensorResult)
    if [r.job_name for r in result.run_requests] == ["register_shards"]:
        assert register_shards.execute_in_process(
            instance=instance, resources={"corpus": corpus}
        ).success
        return tick(sensor, instance, corpus, result.cursor)
    return result, result.cursor


def requested(result) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests if r.partition_key)


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_new_files_become_partitions_and_runs(instance, corpus) -> None:
    sensor = build_corpus_sensor()

    result, _ = tick(sensor, instance, corpus, cursor=None)

    assert requested(result) == ["a-s00000", "a-s00001", "b-s00000"]
    assert sorted(instance.get_dynamic_partitions("shards")) == requested(result)
    assert {r.job_name for r in result.run_requests} == {"index_shards"}


def test_unchanged_files_launch_nothing_and_are_not_reread(instance, corpus) -> None:
    sensor = build_corpus_sensor()
    _, cursor = tick(sensor, instance, corpus, cursor=None)

    result, _ = tick(sensor, instance, corpus, cursor)
    assert isinstance(result, SkipReason)

    touch_later(Path(corpus.corpus_path) / "a.jsonl")  # re-read, but the same content
    result, _ = tick(sensor, instance, corpus, cursor)
    assert isinstance(result, SensorResult) and result.run_requests == []


def test_a_changed_file_reruns_exactly_the_shards_that_changed(instance, corpus) -> None:
    sensor = build_corpus_sensor()
    _, cursor = tick(sensor, instance, corpus, cursor=None)
    folder = Path(corpus.corpus_path)

    write_docs(folder / "a.jsonl", ["a1", "a2", "a3", "a4"])  # the last shard grows
    write_docs(folder / "b.jsonl", ["b1", "b2"], text="edited")  # every shard of b changes
    result, cursor = tick(sensor, instance, corpus, cursor)

    assert requested(result) == ["a-s00001", "b-s00000"]


def test_the_cursor_survives_a_restart(instance, corpus) -> None:
    _, cursor = tick(build_corpus_sensor(), instance, corpus, cursor=None)
    write_docs(Path(corpus.corpus_path) / "c.jsonl", ["c1"])
    first, saved = tick(build_corpus_sensor(), instance, corpus, cursor)
    assert requested(first) == ["c-s00000"]

    # A new sensor object (a restarted daemon) from the saved cursor launches nothing new.
    after_restart, _ = tick(build_corpus_sensor(), instance, corpus, saved)
    assert isinstance(after_restart, SkipReason)

    # Died before the cursor was saved: the tick is evaluated again with the same run keys,
    # which Dagster has already launched, so nothing runs twice.
    again, _ = tick(build_corpus_sensor(), instance, corpus, cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]


def test_a_file_that_returns_to_earlier_content_is_indexed_again(instance, corpus) -> None:
    sensor = build_corpus_sensor()
    path = Path(corpus.corpus_path) / "b.jsonl"
    _, cursor = tick(sensor, instance, corpus, cursor=None)
    keys = []
    for text in ("edited", "words"):  # b changes, then is put back as it was
        write_docs(path, ["b1", "b2"], text=text)
        touch_later(path)
        result, cursor = tick(sensor, instance, corpus, cursor)
        keys += [r.run_key for r in result.run_requests]
    assert len(keys) == 2 and len(set(keys)) == 2


def test_turned_on_over_an_indexed_corpus_it_launches_only_what_is_not_indexed(
    instance, corpus
) -> None:
    shards = {s.key: s.content_hash for s in scan_shards(corpus.corpus_path, 2)}
    instance.add_dynamic_partitions("shards", list(shards))
    for key in ("a-s00000", "b-s00000"):  # indexed by earlier runs; a-s00001 never was
        instance.report_runless_asset_event(
            AssetMaterialization(
                "corpus_shard", partition=key, metadata={"source_content_hash": shards[key]}
            )
        )
        instance.report_runless_asset_event(AssetMaterialization("weaviate_index", partition=key))

    result, _ = tick(build_corpus_sensor(), instance, corpus, cursor=None)

    assert requested(result) == ["a-s00001"]


def test_removed_input_is_flagged_and_kept(instance, corpus) -> None:
    sensor = build_corpus_sensor(on_removed="flag")
    _, cursor = tick(sensor, instance, corpus, cursor=None)

    (Path(corpus.corpus_path) / "b.jsonl").unlink()
    result, cursor = tick(sensor, instance, corpus, cursor)

    assert result.run_requests == []
    assert "b-s00000" in instance.get_dynamic_partitions("shards")
    assert "b-s00000" not in CorpusCursor.from_json(cursor).shards, "flagged once, not each tick"


def test_removed_input_is_removed_from_weaviate_and_the_partitions(
    instance, corpus, weaviate_server
) -> None:
    sensor = build_corpus_sensor(on_removed="remove")
    _, cursor = tick(sensor, instance, corpus, cursor=None)
    (Path(corpus.corpus_path) / "b.jsonl").unlink()

    result, _ = tick(sensor, instance, corpus, cursor)

    [removal] = result.run_requests
    assert removal.job_name == "remove_shards"
    assert removal.run_config["ops"]["remove_shard_objects"]["config"]["shards"] == ["b-s00000"]

    # The job it requests deletes the shard's objects (and only them), then the partition.
    name = f"Removal_{uuid.uuid4().hex[:8]}"
    weaviate = WeaviateResource(
        mode="local",
        url=f"http://127.0.0.1:{weaviate_server.http_port}",
        grpc_port=weaviate_server.grpc_port,
        api_key=weaviate_server.api_key,
        collection=name,
    )
    objects = [
        DataObject(
            {"shard": shard, "doc_id": f"{shard}-{i}"},
            uuid=generate_uuid5(f"{shard}-{i}"),
            vector={"default": [1.0, 0.0, float(i)]},
        )
        for shard in ("a-s00000", "b-s00000")
        for i in range(3)
    ]
    with connect(weaviate_server) as client:
        ensure_collection(client, name)
        try:
            assert not client.collections.get(name).data.insert_many(objects).has_errors
            run = remove_shards.execute_in_process(
                instance=instance,
                resources={"weaviate": weaviate},
                run_config=removal.run_config,
            )
            assert run.success
            left = client.collections.get(name).query.fetch_objects(limit=10).objects
        finally:
            client.collections.delete(name)
    assert run.output_for_node("remove_shard_objects") == 3
    assert sorted(o.properties["doc_id"] for o in left) == [f"a-s00000-{i}" for i in range(3)]
    assert "b-s00000" not in instance.get_dynamic_partitions("shards")


# -- reruns of failed runs -----------------------------------------------------------------


@op
def fail_like_an_unreachable_weaviate() -> None:
    raise Failure("Weaviate unreachable")


@job(partitions_def=shard_partitions)
def failing_index() -> None:
    fail_like_an_unreachable_weaviate()


@job
def failing_backfill_run() -> None:
    fail_like_an_unreachable_weaviate()


def fail(instance: DagsterInstance, key: str | None, tags: dict[str, str] | None = None):
    """A failed run of one shard (or of the range in `tags`), and the context the failure
    sensor sees for it."""
    if key is None:
        result = failing_backfill_run.execute_in_process(
            instance=instance, tags=tags or {}, raise_on_error=False
        )
    else:
        result = failing_index.execute_in_process(
            partition_key=key, instance=instance, tags=tags or {}, raise_on_error=False
        )
    assert not result.success
    return build_run_status_sensor_context(
        sensor_name="retry_failed_shards",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


def test_a_failed_shard_is_rerun_until_its_attempts_are_spent(instance) -> None:
    instance.add_dynamic_partitions("shards", ["a-s00000"])
    sensor = build_retry_sensor(max_attempts=3)

    runs, tags = 0, {}
    while True:
        runs += 1
        outcome = sensor(fail(instance, "a-s00000", tags))
        if isinstance(outcome, SkipReason):
            break
        [rerun] = outcome
        assert rerun.partition_key == "a-s00000"
        tags = dict(rerun.tags)

    assert runs == 3, "the first run and two reruns"
    assert tags[ATTEMPT_TAG] == "3"
    assert "3 runs" in outcome.skip_message


def test_runs_dagster_retries_by_itself_are_skipped(instance) -> None:
    instance.add_dynamic_partitions("shards", ["a-s00000"])
    outcome = build_retry_sensor()(fail(instance, "a-s00000", {"dagster/will_retry": "true"}))
    assert isinstance(outcome, SkipReason)
    assert "Dagster retries it" in outcome.skip_message


def test_shards_no_longer_registered_are_not_rerun(instance) -> None:
    instance.add_dynamic_partitions("shards", ["gone-s00000"])
    context = fail(instance, "gone-s00000")
    instance.delete_dynamic_partition("shards", "gone-s00000")
    assert isinstance(build_retry_sensor()(context), SkipReason)


def test_every_shard_of_a_failed_backfill_run_is_rerun_on_its_own(instance) -> None:
    instance.add_dynamic_partitions("shards", ["a-s00000", "a-s00001", "b-s00000", "c-s00000"])
    shard_range = {
        "dagster/asset_partition_range_start": "a-s00001",
        "dagster/asset_partition_range_end": "c-s00000",
    }

    reruns = build_retry_sensor()(fail(instance, None, shard_range))

    assert [r.partition_key for r in reruns] == ["a-s00001", "b-s00000", "c-s00000"]


# -- the index follows its upstream ---------------------------------------------------------


def test_the_index_follows_vectors_that_changed_without_it(instance) -> None:
    instance.add_dynamic_partitions("shards", ["a-s00000", "b-s00000"])
    assets = Definitions(
        assets=[corpus_shard, chunks, embeddings, following_upstream(weaviate_index)],
        resources=build_resources(),
    )
    for key in ("a-s00000", "b-s00000"):
        for asset in ("corpus_shard", "chunks", "embeddings", "weaviate_index"):
            instance.report_runless_asset_event(AssetMaterialization(asset, partition=key))
    first = evaluate_automation_conditions(defs=assets, instance=instance)
    assert first.total_requested == 0, "all indexed"

    # a-s00000's vectors are recomputed alone; b-s00000 goes through the whole pipeline.
    instance.report_runless_asset_event(AssetMaterialization("embeddings", partition="a-s00000"))
    for asset in ("embeddings", "weaviate_index"):
        instance.report_runless_asset_event(AssetMaterialization(asset, partition="b-s00000"))
    second = evaluate_automation_conditions(defs=assets, instance=instance, cursor=first.cursor)

    assert second.get_requested_partitions(AssetKey("weaviate_index")) == {"a-s00000"}


def test_changed_files_start_a_registration_run_not_a_scan_in_the_tick(instance, corpus) -> None:
    sensor = build_corpus_sensor()
    context = build_sensor_context(instance=instance, resources={"corpus": corpus})
    result = sensor(context)

    assert [r.job_name for r in result.run_requests] == ["register_shards"]
    assert not manifest_path(corpus.data_dir).exists()  # the tick read no corpus file

    # While a registration is in flight, ticks wait for the manifest it will write.
    create_run_for_test(instance, job_name="register_shards", status=DagsterRunStatus.STARTED)
    waiting = sensor(build_sensor_context(instance=instance, cursor=result.cursor,
                                          resources={"corpus": corpus}))  # fmt: skip
    assert isinstance(waiting, SkipReason) and "in flight" in waiting.skip_message
