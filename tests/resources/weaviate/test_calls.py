"""When a call is retried and when a cluster counts as down, from answers a three-node Weaviate
1.39.3 cluster gave (`resources/weaviate/calls.py`), without a server."""

import logging
from types import SimpleNamespace

import httpx
import pytest
from weaviate.cluster.models import ClusterStatistics
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateTimeoutError

from resources.weaviate.calls import Calls, ClusterDown, ClusterView, cluster_view

VOTERS = [{"id": name, "address": f"127.0.0.1:{port}", "suffrage": 0}
          for name, port in (("node1", 1), ("node2", 2), ("node3", 3))]  # fmt: skip


def _node(name: str, state: str = "", leader: str = "", status: str = "HEALTHY") -> dict:
    """A node's entry in /v1/cluster/statistics: one that cannot be reached has no Raft state."""
    raft = {"state": state, "latestConfiguration": VOTERS} if state else {}
    return {"name": name, "status": status, "leaderId": leader, "raft": raft}


def _client(*nodes: dict) -> SimpleNamespace:
    statistics = ClusterStatistics._from_weaviate({"statistics": list(nodes)})
    return SimpleNamespace(cluster=SimpleNamespace(statistics=lambda: statistics))


DEAD = [_node("node2", status="UNAVAILABLE"), _node("node3", status="UNAVAILABLE")]


@pytest.mark.parametrize(
    ("survivor", "lost"),
    [
        # Two killed, node1 a follower: it names the dead leader until its election starts.
        (_node("node1", "Follower", "node3", "UNHEALTHY"), False),
        (_node("node1", "Candidate", "", "UNHEALTHY"), True),
        # Two killed, node1 the leader: it steps down within seconds.
        (_node("node1", "Leader", "node1", "UNHEALTHY"), False),
        (_node("node1", "Follower", "", "UNHEALTHY"), True),
    ],
)
def test_most_voters_gone_and_no_leader_known_is_a_lost_quorum(survivor, lost):
    view = cluster_view(_client(survivor, *DEAD))
    voters = ("node1", "node2", "node3")
    assert view == ClusterView(voters, ("node2", "node3"), survivor["leaderId"])
    assert view.quorum_lost is lost
    # Once its gossip has forgotten them (about 30 s), its Raft voters still name them.
    assert cluster_view(_client(survivor)) == view


def test_nodes_too_busy_to_answer_in_time_are_not_gone():
    busy = [_node("node2", status="TIMEOUT"), _node("node3", status="TIMEOUT")]
    view = cluster_view(_client(_node("node1", "Candidate"), *busy))
    assert view.unreachable == () and not view.quorum_lost


def test_one_node_gone_is_an_election_not_a_lost_quorum():
    # The leader killed: the others name it until they elect another.
    for leader in ("node3", ""):
        nodes = [_node("node1", "Follower", leader), _node("node2", "Candidate", leader)]
        view = cluster_view(_client(*nodes, _node("node3", status="UNAVAILABLE")))
        assert view.unreachable == ("node3",) and not view.quorum_lost


def _failing(*errors: Exception):
    pending = list(errors)

    def action() -> str:
        if pending:
            raise pending.pop(0)
        return "answer"

    return action


def _leader_not_found() -> UnexpectedStatusCodeError:
    body = {"error": [{"message": "failed to execute query: leader not found, can not resolve "
                                  "nodes [node2,node3]"}]}  # fmt: skip
    return UnexpectedStatusCodeError("Collection may not exist.", httpx.Response(500, json=body))


def test_a_call_caught_by_an_election_is_retried_with_a_warning(caplog):
    client = _client(_node("node1", "Candidate"), _node("node2", "Candidate"), DEAD[1])
    calls = Calls(client, retry_seconds=60, sleep=lambda _: None)
    action = _failing(WeaviateTimeoutError("Collection may not exist."), _leader_not_found())
    with caplog.at_level(logging.WARNING):
        assert calls(action, "checking collection Chunks") == "answer"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all(
        w.startswith("retrying checking collection") for w in warnings
    )
    assert (
        "(Weaviate cluster: node3 cannot be reached (2 of 3 nodes answer; no leader))"
        in (warnings[0])
    )


def test_a_call_that_meets_a_lost_quorum_fails_at_once_naming_the_nodes():
    calls = Calls(_client(_node("node1", "Candidate"), *DEAD), consistency="QUORUM")
    action = _failing(WeaviateTimeoutError("Collection may not exist."))
    with pytest.raises(ClusterDown) as caught:
        calls(action, "checking collection Chunks")
    first, second = str(caught.value).split("\n")
    assert first.startswith(
        "Weaviate cluster: node2, node3 cannot be reached (1 of 3 nodes answer; no leader). "
        "Writes at QUORUM wait for enough copies of a shard"
    )
    assert first.endswith("re-run the failed partitions; objects already written are "
                          "overwritten, not duplicated")  # fmt: skip
    assert second.startswith("checking collection Chunks: WeaviateTimeoutError: ")
