"""`weaviate-indexer index` into a local three-node cluster that loses its quorum mid-command."""

import json
import subprocess
import sys

import pytest

from tests.orchestration.test_headless import (
    ROOT,
    _corpus,
    _environment,
    _index_runs,
    _runs_at_once,
)


@pytest.fixture
def collection(cluster_collection: str) -> str:
    return cluster_collection


def _command(env: dict[str, str], fault: dict, *args: str) -> subprocess.CompletedProcess:
    module = ["-m", "tests.orchestration.cluster_fault_command", json.dumps(fault)]
    return subprocess.run(
        [sys.executable, *module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_losing_the_quorum_stops_the_command_after_the_run_it_failed(
    tmp_path, weaviate_cluster, collection
):
    # Six shards of four documents, two a run, one run at once: three runs.
    corpus = _corpus(tmp_path / "corpus", docs=24)
    first = weaviate_cluster.nodes[0]
    env = {
        **_environment(tmp_path / "home", corpus, first, collection),
        **weaviate_cluster.environment(),
        "SHARD_SIZE": "4",
        "WEAVIATE_BATCH_TIMEOUT_SECONDS": "5",
    }
    _runs_at_once(env, 1)
    # The nodes the command does not talk to die as the second run's count check begins:
    # its two shards are in Weaviate, the third run has not started.
    root = first.root.parent
    fault = {"root": str(root), "first_port": first.http_port, "kill": ["node2", "node3"],
             "nth": 4}  # fmt: skip
    lost = _command(env, fault, "index")

    out = lost.stdout
    assert lost.returncode == 1, out + lost.stderr[-3000:]
    diagnosis = "Weaviate cluster: node2, node3 cannot be reached (1 of 3 nodes answer; no leader)"
    assert f"stopping: {diagnosis}" in out
    assert "indexed 4/6 shards" in out
    assert f"stopped after a run failed with: {diagnosis}" in out
    assert "2 shards not indexed; run the command again once Weaviate takes writes" in out
    assert "failed shards" not in out
    assert len(_index_runs(env["DAGSTER_HOME"])) == 2, "no run started after the failed one"

    # Once the nodes are back, running it again indexes the two shards it named, no others.
    weaviate_cluster.start()
    again = _command(env, {**fault, "nth": 0}, "index")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "2 shards to index in 1 runs" in again.stdout
    assert "indexed 2/2 shards" in again.stdout and "4 were already indexed" in again.stdout
