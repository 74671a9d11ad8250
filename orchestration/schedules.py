"""The scheduled catch-up: index whatever is not indexed at its current content, and nothing else.

`build_schedule_from_partitioned_job` would launch every partition on every tick; this schedule
compares the corpus with what the instance says is indexed and launches only the difference:
new shards, changed shards, and shards whose last run did not reach Weaviate.
"""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.partitions import shard_partitions
from orchestration.changes import compare_shards, run_key, slices
from orchestration.indexed import indexed_hashes, partitions_in_flight
from orchestration.jobs import index_shards
from orchestration.sensors import TRIGGER_TAG
from resources import settings
from resources.corpus.manifest import register_corpus
from resources.corpus.resource import CorpusResource

_PARTITION_SLICE = 1000


def build_index_schedule(cron: str = settings.index_schedule_cron.default) -> ScheduleDefinition:
    @schedule(
        name="index_changed_shards",
        cron_schedule=cron,
        job=index_shards,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description="Registers the corpus's shards and indexes those not indexed at their "
        "current content (new, changed, or failed since).",
    )
    def index_changed_shards(
        context: ScheduleEvaluationContext, corpus: CorpusResource
    ) -> list[RunRequest] | SkipReason:
        scan = register_corpus(
            corpus.corpus_path, corpus.shard_size, corpus.data_dir, corpus.strict
        )
        current = {spec.key: spec.content_hash for spec in scan.shards}
        instance = context.instance
        registered = set(instance.get_dynamic_partitions(shard_partitions.name))
        for part in slices([k for k in sorted(current) if k not in registered], _PARTITION_SLICE):
            instance.add_dynamic_partitions(shard_partitions.name, part)
        stale = compare_shards(indexed_hashes(instance, current), current).to_index
        busy = partitions_in_flight(instance)
        wanted = [key for key in stale if key not in busy]
        if not wanted:
            return SkipReason(
                f"all {len(current)} shards are indexed at their current content"
                + (f" or being indexed ({len(busy)})" if busy else "")
            )
        context.log.info(f"{len(wanted)} of {len(current)} shards to index")
        return [
            RunRequest(
                run_key=run_key(key, current[key], "scheduled"),
                partition_key=key,
                tags={TRIGGER_TAG: "index_changed_shards"},
            )
            for key in wanted
        ]

    return index_changed_shards
