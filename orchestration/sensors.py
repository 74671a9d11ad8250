"""Sensors: partitions that follow the corpus, and reruns of shards whose runs failed.

Both ship stopped; turn them on in the UI (Automation). Their settings come from the
environment when the definitions load (see the README, "Keeping the index fresh").
"""

from collections.abc import Mapping

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    PartitionKeyRange,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    partition_loading_context,
    run_failure_sensor,
    sensor,
)
from dagster._core.events import DagsterEventType

from orchestration.changes import (
    CorpusCursor,
    compare_shards,
    run_key,
    short_hash,
    slices,
    stat_corpus,
)
from orchestration.indexed import INDEX_ASSET, indexed_hashes
from orchestration.jobs import index_shards
from orchestration.partitions import shard_partitions
from orchestration.removal import RemoveShardsConfig, remove_shards
from resources.corpus.manifest import register_corpus
from resources.corpus.resource import CorpusResource

ON_REMOVED = ("flag", "remove")
ATTEMPT_TAG = "indexer/attempt"
RETRY_OF_TAG = "indexer/retry_of"
TRIGGER_TAG = "indexer/trigger"
WILL_RETRY_TAG = "dagster/will_retry"
_PARTITION_SLICE = 1000


def build_corpus_sensor(on_removed: str = "flag", interval_seconds: int = 60) -> SensorDefinition:
    """The sensor that registers new shards and indexes new or changed ones.

    `on_removed`: "flag" logs shards whose input is gone and keeps them (objects and
    partitions); "remove" requests a `remove_shards` run that deletes both.
    """
    if on_removed not in ON_REMOVED:
        raise ValueError(f"on_removed must be one of {ON_REMOVED}, not {on_removed!r}")

    @sensor(
        name="corpus_changes",
        jobs=[index_shards, remove_shards],
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description="Registers shards of new corpus input and indexes new or changed shards; "
        f"shards whose input is gone are handled by {on_removed!r}.",
    )
    def corpus_changes(
        context: SensorEvaluationContext, corpus: CorpusResource
    ) -> SensorResult | SkipReason:
        previous = CorpusCursor.from_json(context.cursor)
        stamps = stat_corpus(corpus.corpus_path)
        if previous.files == stamps:
            return SkipReason("no corpus file changed since the last tick")
        scan = register_corpus(
            corpus.corpus_path, corpus.shard_size, corpus.data_dir, corpus.strict
        )
        for problem in scan.problems:
            context.log.warning(f"{problem.location}: {problem.reason}")
        current = {spec.key: spec.content_hash for spec in scan.shards}
        registered = set(context.instance.get_dynamic_partitions(shard_partitions.name))
        # Without a cursor, the instance's record of what is indexed is the starting point.
        if previous.files is not None:
            recorded = previous.shards
        else:
            known = {key: current.get(key, "") for key in registered | set(current)}
            recorded = indexed_hashes(context.instance, known)
        changes = compare_shards(recorded, current)
        tag = previous.fingerprint()
        run_requests = [
            RunRequest(
                run_key=run_key(key, current[key], tag),
                job_name=index_shards.name,
                partition_key=key,
                tags={TRIGGER_TAG: "corpus_changes"},
            )
            for key in changes.to_index
        ]
        if changes.removed:
            gone = ", ".join(changes.removed[:10])
            if on_removed == "flag":
                context.log.warning(
                    f"{len(changes.removed)} shards lost their input and are kept (flag mode): "
                    f"{gone}{'...' if len(changes.removed) > 10 else ''}"
                )
            else:
                run_requests.append(_removal_request(changes.removed, tag))
        new_partitions = [key for key in sorted(current) if key not in registered]
        cursor = CorpusCursor(stamps, {k: short_hash(h) for k, h in current.items()})
        return SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[
                AddDynamicPartitionsRequest(shard_partitions.name, part)
                for part in slices(new_partitions, _PARTITION_SLICE)
            ],
            cursor=cursor.to_json(),
        )

    return corpus_changes


def _removal_request(keys: list[str], tag: str) -> RunRequest:
    return RunRequest(
        run_key=f"remove:{short_hash(run_key(','.join(keys), '', tag))}",
        job_name=remove_shards.name,
        run_config=RunConfig(ops={"remove_shard_objects": RemoveShardsConfig(shards=keys)}),
        tags={TRIGGER_TAG: "corpus_changes"},
    )


def next_attempt(tags: Mapping[str, str], max_attempts: int) -> int | None:
    """The attempt number a rerun of a failed run would be, or None when none is due.

    The first run is attempt 1; reruns carry their number in ATTEMPT_TAG. Runs that Dagster
    retries by itself (run retries in dagster.yaml) are left to it, so the two never stack.
    """
    if tags.get(WILL_RETRY_TAG) == "true":
        return None
    attempt = int(tags.get(ATTEMPT_TAG, "1")) + 1
    return attempt if attempt <= max_attempts else None


def unfinished_partitions(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    """The shards of the run that did not reach Weaviate and are still registered.

    A run covers one partition, or a range of them when a backfill policy groups shards;
    shards that the run did index are not run again.
    """
    tags = run.tags
    if "dagster/partition" in tags:
        keys = [tags["dagster/partition"]]
    elif "dagster/asset_partition_range_start" in tags:
        shard_range = PartitionKeyRange(
            tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
        )
        with partition_loading_context(dynamic_partitions_store=instance):
            keys = list(shard_partitions.get_partition_keys_in_range(shard_range))
    else:
        return []
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    indexed = {
        r.event_log_entry.dagster_event.partition
        for r in records
        if r.event_log_entry.dagster_event.asset_key == INDEX_ASSET
    }
    return [
        key
        for key in keys
        if key not in indexed and instance.has_dynamic_partition(shard_partitions.name, key)
    ]


def build_retry_sensor(max_attempts: int = 3) -> SensorDefinition:
    """Reruns the unfinished shards of failed `index_shards` runs, up to `max_attempts` runs
    per shard in all (the first run included)."""

    @run_failure_sensor(
        name="retry_failed_shards",
        monitored_jobs=[index_shards],
        request_job=index_shards,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Reruns the failed shards of failed index runs, {max_attempts} runs "
        "per shard at most; runs Dagster retries by itself are skipped.",
    )
    def retry_failed_shards(context: RunFailureSensorContext) -> list[RunRequest] | SkipReason:
        run = context.dagster_run
        if run.status != DagsterRunStatus.FAILURE:
            return SkipReason(f"run {run.run_id} did not fail")
        attempt = next_attempt(run.tags, max_attempts)
        if attempt is None:
            reason = (
                "Dagster retries it by itself"
                if run.tags.get(WILL_RETRY_TAG) == "true"
                else f"its shards failed {max_attempts} runs; re-execute them by hand"
            )
            context.log.warning(f"run {run.run_id} not rerun: {reason}")
            return SkipReason(f"run {run.run_id} not rerun: {reason}")
        keys = unfinished_partitions(context.instance, run)
        if not keys:
            return SkipReason(f"run {run.run_id} left no registered shard unfinished")
        return [
            RunRequest(
                run_key=f"retry:{run.run_id}:{key}",
                partition_key=key,
                tags={ATTEMPT_TAG: str(attempt), RETRY_OF_TAG: run.run_id},
            )
            for key in keys
        ]

    return retry_failed_shards
