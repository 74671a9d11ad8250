"""Sensors: partitions that follow the corpus, and reruns of shards whose runs failed.

Both ship stopped; turn them on in the UI (Automation). Their settings come from the
environment when the definitions load (see the README, "Keeping the index fresh").
"""

from collections.abc import Mapping
from dataclasses import replace

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from assets.partitions import run_shards, shard_partitions
from orchestration.changes import (
    CorpusCursor,
    compare_shards,
    run_key,
    short_hash,
)
from orchestration.indexed import INDEX_ASSET, indexed_hashes
from orchestration.jobs import index_shards, register_shards
from orchestration.removal import RemoveShardsConfig, remove_shards
from resources import settings
from resources.corpus.manifest import load_manifest, manifest_stamp
from resources.corpus.reader import stat_corpus
from resources.corpus.resource import CorpusResource

ON_REMOVED = ("flag", "remove")
ATTEMPT_TAG = "indexer/attempt"
RETRY_OF_TAG = "indexer/retry_of"
TRIGGER_TAG = "indexer/trigger"
WILL_RETRY_TAG = "dagster/will_retry"


def build_corpus_sensor(
    on_removed: str = settings.corpus_on_removed.default, interval_seconds: int = 60
) -> SensorDefinition:
    """The sensor that registers new shards and indexes new or changed ones.

    `on_removed`: "flag" logs shards whose input is gone and keeps them (objects and
    partitions); "remove" requests a `remove_shards` run that deletes both.
    """
    if on_removed not in ON_REMOVED:
        raise ValueError(f"on_removed must be one of {ON_REMOVED}, not {on_removed!r}")

    @sensor(
        name="corpus_changes",
        jobs=[register_shards, index_shards, remove_shards],
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description="Registers the shards of new or changed corpus input (a register_shards run), "
        f"then indexes new or changed shards; shards whose input is gone are handled by "
        f"{on_removed!r}.",
    )
    def corpus_changes(
        context: SensorEvaluationContext, corpus: CorpusResource
    ) -> SensorResult | SkipReason:
        if _in_flight(context.instance, register_shards.name):
            return SkipReason("a register_shards run is in flight; its manifest comes next")
        previous = CorpusCursor.from_json(context.cursor)
        stamps = stat_corpus(corpus.corpus_path)
        if stamps != previous.files:
            # Scanning takes minutes at 1.25M documents, longer than a sensor tick may: a run
            # does it, and a later tick compares the manifest it writes.
            request = RunRequest(
                run_key=f"register/{replace(previous, files=stamps).fingerprint()}",
                job_name=register_shards.name,
                tags={TRIGGER_TAG: "corpus_changes"},
            )
            cursor = replace(previous, files=stamps)
            return SensorResult(run_requests=[request], cursor=cursor.to_json())
        manifest = manifest_stamp(corpus.data_dir)
        if manifest is None or manifest == previous.manifest:
            return SkipReason("no corpus file changed and no new manifest since the last tick")
        current = {key: spec.content_hash for key, spec in load_manifest(corpus.data_dir).items()}
        if previous.shards is not None:
            recorded = previous.shards
        else:
            # Never compared: the instance's record of what is indexed is the starting point.
            registered = set(context.instance.get_dynamic_partitions(shard_partitions.name))
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
        shards = {key: short_hash(h) for key, h in current.items()}
        cursor = CorpusCursor(files=stamps, manifest=manifest, shards=shards)
        return SensorResult(run_requests=run_requests, cursor=cursor.to_json())

    return corpus_changes


def _in_flight(instance: DagsterInstance, job_name: str) -> bool:
    runs = instance.get_run_records(
        filters=RunsFilter(job_name=job_name, statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1
    )
    return bool(runs)


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
    keys = run_shards(instance, run.tags)
    if not keys:
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


def build_retry_sensor(max_attempts: int = settings.index_max_attempts.default) -> SensorDefinition:
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
