"""The pipeline against a three-node Weaviate cluster that keeps every shard on every node.

Nodes are killed and restarted at pipeline events (an ingest batch, a schema read, a count
check), not at moments in seconds, and each case ends compared object by object with an index
built without a fault.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from weaviate.classes.config import ConsistencyLevel

import resources.weaviate.ingest as ingest
from assets import stages
from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.partitions import shard_partitions
from orchestration.jobs import register_shards
from resources.corpus.resource import CorpusResource
from resources.corpus.sample import SampleSpec, iter_documents
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource
from resources.weaviate.cluster import LocalCluster
from resources.weaviate.server import LocalServer
from tests.conftest import connect

ASSETS = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]
Snapshot = dict[str, tuple[dict, np.ndarray]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three shards of eight short documents."""
    folder = tmp_path_factory.mktemp("cluster-corpus")
    docs = list(iter_documents(SampleSpec(docs=24, seed=3, median_tokens=80, max_tokens=400)))
    for name, part in (("a.jsonl", docs[:16]), ("b.jsonl", docs[16:])):
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in part))
    return folder


def _resources(
    cluster: LocalCluster,
    corpus: Path,
    data_dir: Path,
    collection: str,
    entry: int = 0,
    retry_seconds: float = 8.0,
) -> dict:
    """Replicated on all three nodes, written at QUORUM (the default when replicated), four
    objects a batch so that a shard takes several batches; the client talks to node `entry`,
    a request times out after 5 s and is retried for `retry_seconds`."""
    node = cluster.nodes[entry]
    return {
        "corpus": CorpusResource(corpus_path=str(corpus), shard_size=8, data_dir=str(data_dir)),
        "embedder": EmbeddingResource(device="cpu", data_dir=str(data_dir)),
        "weaviate": WeaviateResource(
            mode="custom",
            url=f"http://127.0.0.1:{node.http_port}",
            grpc_port=node.grpc_port,
            api_key=node.api_key,
            collection=collection,
            data_dir=str(data_dir),
            replication_factor=3,
            shards=3,
            batch_size=4,
            concurrent_requests=1,
            batch_timeout_seconds=5,
            retry_seconds=retry_seconds,
        ),  # fmt: skip
    }


def _index(resources: dict, instance: DagsterInstance | None = None) -> dict:
    """Register the corpus, then materialize every shard, as a backfill of one shard a run."""
    instance = instance or DagsterInstance.ephemeral()
    register_shards.execute_in_process(instance=instance, resources={"corpus": resources["corpus"]})
    return {
        key: materialize(ASSETS, partition_key=key, instance=instance, resources=resources,
                         raise_on_error=False)
        for key in instance.get_dynamic_partitions(shard_partitions.name)
    }  # fmt: skip


def _snapshot(node: LocalServer, collection: str, level: ConsistencyLevel) -> Snapshot:
    """Every object as read through `node` at `level`: at ONE, a node answers from its own
    copy, so that is what the node holds."""
    with connect(node) as client:
        objects = client.collections.get(collection).with_consistency_level(level)
        return {
            str(o.uuid): (o.properties, np.array(o.vector["default"]))
            for o in objects.iterator(include_vector=True)
        }


def _assert_same(actual: Snapshot, expected: Snapshot) -> None:
    assert set(actual) == set(expected)
    for object_id, (properties, vector) in expected.items():
        assert actual[object_id][0] == properties
        np.testing.assert_allclose(actual[object_id][1], vector, atol=1e-6)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, _session_cluster: LocalCluster, corpus: Path) -> Iterator[dict]:
    """The corpus indexed with every node up; its chunks and vectors are reused by the cases."""
    _session_cluster.start()
    root = tmp_path_factory.mktemp("cluster-reference")
    collection = f"Reference_{uuid.uuid4().hex[:6]}"
    results = _index(_resources(_session_cluster, corpus, root / "data", collection))
    assert all(result.success for result in results.values())
    snapshot = _snapshot(_session_cluster.nodes[0], collection, ConsistencyLevel.ALL)
    assert len(snapshot) > 24
    yield {"snapshot": snapshot, "data": root / "data"}
    with connect(_session_cluster.nodes[0]) as client:
        client.collections.delete(collection)


@pytest.fixture
def collection(cluster_collection: str) -> str:
    return cluster_collection


class Batches:
    """Counts the ingest's BatchObjects calls and runs a test's action before the n-th one: a
    fault between two batches of a shard."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.actions: dict[int, Callable[[], object]] = {}
        real = ingest.grpc_batch_call

        def counted(collection):
            call = real(collection)

            def send(messages):
                self.calls += 1
                if self.calls in self.actions:
                    self.actions.pop(self.calls)()
                return call(messages)

            return send

        monkeypatch.setattr(ingest, "grpc_batch_call", counted)

    def before(self, nth: int, action: Callable[[], object]) -> None:
        self.actions[nth] = action


def _before_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, nth: int, action: Callable
) -> None:
    """Runs `action` before the `nth` call of `owner.name`: a fault at a pipeline event."""
    real = getattr(owner, name)
    calls = 0

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == nth:
            action()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def _step_events(instance: DagsterInstance, run_id: str, step: str) -> dict[str, float]:
    """When each event of a run's step was recorded, by its type."""
    return {
        entry.dagster_event.event_type_value: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.dagster_event and entry.dagster_event.step_key == step
    }


def _wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until `condition()` held; fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds}s"
        time.sleep(0.5)
    return time.monotonic() - started


def test_a_node_lost_during_ingest_loses_nothing_and_catches_up_after_its_restart(
    tmp_path, weaviate_cluster, corpus, reference, collection, monkeypatch
):
    # The Raft leader: losing it holds the writes in flight until their deadline (5 s here)
    # while the others elect a new one, where losing another node holds nothing. The client
    # talks to another node, and retries a batch for 30 s.
    lost = weaviate_cluster.leader()
    assert lost is not None
    entry = next(k for k, node in enumerate(weaviate_cluster.nodes) if node != lost)
    batches = Batches(monkeypatch)
    batches.before(3, lost.kill)  # inside the first shard's ingest
    batches.before(8, lost.start)  # a shard later: back with what it had, and rejoined
    resources = _resources(weaviate_cluster, corpus, tmp_path / "data", collection, entry, 30)
    results = _index(resources)

    assert all(result.success for result in results.values())
    events = [e.event_type_value for result in results.values() for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events, "the ingest rode through; no step failed"
    assert batches.calls > 8 and not batches.actions, "the kill and restart came mid-ingest"
    checks = [
        evaluation.passed
        for result in results.values()
        for evaluation in result.get_asset_check_evaluations()
    ]
    assert checks == [True] * len(results)
    written = sum(
        m.metadata["objects_in_weaviate"].value
        for result in results.values()
        for m in result.asset_materializations_for_node("weaviate_index")
    )
    assert written == len(reference["snapshot"])

    _assert_same(
        _snapshot(weaviate_cluster.nodes[entry], collection, ConsistencyLevel.ALL),
        reference["snapshot"],
    )
    # The restarted node's own copy fills up by asynchronous replication.
    expected = set(reference["snapshot"])
    _wait_for(lambda: set(_snapshot(lost, collection, ConsistencyLevel.ONE)) == expected, 60)
    _assert_same(_snapshot(lost, collection, ConsistencyLevel.ONE), reference["snapshot"])


# Schema reads go through the Raft leader: one that meets its loss waits on it until the
# client's deadline, and is retried (with the warning that begins as given) once the others
# have elected a new leader. Where: (owner, method, before its nth call).
SCHEMA_READS = {
    # The first shard's count check opens the second client, which checks the collection.
    "the count check's collection check": (WeaviateResource, "client", 2, "retrying checking"),
    "the index step's read of the collection's properties": (
        stages, "ensure_metadata_properties", 1, "retrying reading"
    ),
}  # fmt: skip


@pytest.mark.parametrize("before", list(SCHEMA_READS))
def test_losing_the_leader_before_a_schema_read_fails_no_step(
    tmp_path, weaviate_cluster, corpus, reference, collection, monkeypatch, caplog, before
):
    lost = weaviate_cluster.leader()
    assert lost is not None
    entry = next(k for k, node in enumerate(weaviate_cluster.nodes) if node != lost)
    owner, name, nth, warning = SCHEMA_READS[before]
    _before_call(monkeypatch, owner, name, nth, lost.kill)
    resources = _resources(weaviate_cluster, corpus, tmp_path / "data", collection, entry, 30)
    results = _index(resources)

    assert not lost.ready(), "the leader was killed"
    assert all(result.success for result in results.values())
    events = [e.event_type_value for result in results.values() for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events, "no step failed"
    checks = [
        evaluation.passed
        for result in results.values()
        for evaluation in result.get_asset_check_evaluations()
    ]
    assert checks == [True] * len(results)
    retries = [r for r in caplog.records if r.getMessage().startswith(warning)]
    assert retries and {r.levelname for r in retries} == {"WARNING"}, "the read was retried"
    # Two copies of three are a quorum: every object is there.
    _assert_same(
        _snapshot(weaviate_cluster.nodes[entry], collection, ConsistencyLevel.QUORUM),
        reference["snapshot"],
    )


def test_losing_the_quorum_fails_each_step_at_once_naming_the_lost_nodes_and_a_rerun_completes(
    tmp_path, weaviate_cluster, corpus, reference, collection, monkeypatch
):
    node2, node3 = weaviate_cluster.nodes[1:]
    killed: list[float] = []
    batches = Batches(monkeypatch)
    batches.before(3, lambda: (node2.kill(), node3.kill(), killed.append(time.time())))
    # The client talks to node1; a request times out after 5 s and is retried for 30 s.
    resources = _resources(weaviate_cluster, corpus, tmp_path / "data", collection,
                           retry_seconds=30)  # fmt: skip
    instance = DagsterInstance.ephemeral()
    results = _index(resources, instance)

    assert killed and not any(result.success for result in results.values())
    diagnosis = (
        "Weaviate cluster: node2, node3 cannot be reached (1 of 3 nodes answer; no leader). "
        "Writes at QUORUM wait for enough copies of a shard"
    )
    for result in results.values():
        events = result.all_events
        assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in events]
        assert not result.asset_materializations_for_node("weaviate_index")
        (failure,) = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
        first = failure.step_failure_data.user_failure_data.description.split("\n")[0]
        assert first.startswith(diagnosis) and "re-run the failed partitions" in first
    # The first shard's step failed once a write had timed out (5 s a try) and the node left
    # knew no leader (within about 10 s), not after the 30 s of retries; every later one as it
    # began.
    first_run, *later_runs = [result.run_id for result in results.values()]
    assert _step_events(instance, first_run, "weaviate_index")["STEP_FAILURE"] - killed[0] < 25
    for run_id in later_runs:
        step = _step_events(instance, run_id, "weaviate_index")
        assert step["STEP_FAILURE"] - step["STEP_START"] < 3

    # What the message says to do: restart the nodes, run the failed partitions again.
    weaviate_cluster.start()
    results = _index(resources)
    assert all(result.success for result in results.values())
    _assert_same(
        _snapshot(weaviate_cluster.nodes[0], collection, ConsistencyLevel.ALL),
        reference["snapshot"],
    )
