import os
import sys
import threading
from types import SimpleNamespace

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.partitions import shard_partitions
from assets.shards import for_each_shard, shard_asset


class Context(SimpleNamespace):
    """What `for_each_shard` uses of an asset's context."""

    def __init__(self, keys):
        super().__init__(
            partition_keys=keys, metadata={}, events=[], log=SimpleNamespace(info=print)
        )
        self.asset_key = AssetKey("stage")

    def add_asset_metadata(self, metadata, partition_key):
        self.metadata[partition_key] = metadata

    def log_event(self, event):
        self.events.append(event)


def own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_every_shard_gets_its_own_metadata_in_order():
    context = Context(["b", "a", "c"])
    result = for_each_shard(context, lambda key: {"key": key})
    assert list(context.metadata) == ["b", "a", "c"]
    assert context.metadata["a"] == {"key": "a"}
    assert result.metadata == {"shards_in_run": 3}


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_cpu_stages_run_at_lower_priority_and_the_caller_keeps_its_own():
    before = own_niceness()
    seen = {}

    def work(key):
        seen[key] = own_niceness()
        return {}

    for_each_shard(Context(["x", "y"]), work, niceness=5)
    assert seen == {"x": min(19, before + 5), "y": min(19, before + 5)}
    assert own_niceness() == before


def test_a_failing_shard_fails_the_step_with_its_own_error():
    def work(key):
        if key == "bad":
            raise ValueError("shard bad: broken record 7")
        return {}

    context = Context(["good", "bad", "later"])
    with pytest.raises(ValueError, match="broken record 7"):
        for_each_shard(context, work, niceness=5)
    # The shard finished before the failure is materialized; the others are not.
    assert [(e.partition, e.metadata) for e in context.events] == [("good", {})]


def test_a_failed_run_of_several_shards_materializes_those_it_finished():
    def work(key):
        if key == "s2":
            raise ValueError("shard s2: broken record 7")
        return {"chunks": 3}

    @shard_asset()
    def stage(context):
        return for_each_shard(context, work)

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(shard_partitions.name, ["s1", "s2", "s3"])
    result = materialize(
        [stage],
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": "s1",
            "dagster/asset_partition_range_end": "s3",
        },
    )
    assert not result.success
    assert instance.get_materialized_partitions(stage.key) == {"s1"}
    record = instance.fetch_materializations(stage.key, limit=1).records[0]
    assert record.partition_key == "s1"
    assert record.asset_materialization.metadata["chunks"].value == 3


def where_it_ran(key):
    """Module level, so that spawned worker processes can unpickle it."""
    if key == "bad":
        raise ValueError("shard bad: broken record 7")
    return {"key": key, "pid": os.getpid(), "niceness": os.nice(0)}


def test_shards_cut_in_worker_processes_report_in_key_order():
    context = Context(["c", "a", "b"])
    for_each_shard(context, where_it_ran, niceness=5, processes=2)
    assert [m["key"] for m in context.metadata.values()] == ["c", "a", "b"]
    pids = {m["pid"] for m in context.metadata.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    if sys.platform == "linux":
        assert {m["niceness"] for m in context.metadata.values()} == {min(19, os.nice(0) + 5)}


def test_a_failing_shard_in_a_worker_process_fails_the_step_with_its_own_error():
    with pytest.raises(ValueError, match="broken record 7"):
        for_each_shard(Context(["good", "bad", "later"]), where_it_ran, processes=2)
