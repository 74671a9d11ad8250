"""Calls to Weaviate that ride out a cluster's re-election and stop at once at a lost quorum.

Every call the pipeline makes (collection checks, schema reads and changes, counts, deletes and
the ingest's batches) meets the same servers, so all retry alike: a transient failure (a
restarting server, a lost connection, a request caught by a re-election) is retried with
exponential backoff for up to `retry_seconds`, each retry logged as a warning.

What a local three-node Weaviate 1.39.3 cluster answers through a node that stays up
(`tests/assets/test_cluster_ingest.py`):

- Its Raft leader killed: schema reads (does the collection exist, its properties) and schema
  changes go through the leader, and so do writes and deletes. One that reaches a survivor
  before it notices the loss waits on the dead leader, whatever happens meanwhile, until the
  client's deadline (`WeaviateTimeoutError ... Collection may not exist.`, a batch's
  DEADLINE_EXCEEDED) or until the survivor gives up on that leader about a minute later (500
  "failed to execute query: rpc error: code = Canceled desc = grpc: the client connection is
  closing"). The survivors keep naming the dead leader for about 10 s, elect another within
  about 15, and the retry succeeds. Counts are answered throughout.
- Two of three killed: the survivor elects no leader (one that led steps down within about
  4 s). A schema read waits until the client's deadline, or, once the survivor knows it has no
  leader, fails after 20 to 25 s of the server's own retries (500 "leader not found, can not
  resolve nodes [node2,node3]"); writes wait out their deadline; counts still answer. Its Raft
  statistics keep listing every voter, so they say which nodes are gone while its gossip
  forgets them (about 30 s).

So after a transient failure the cluster is asked how it stands (`ClusterView`): when most of
its Raft voters cannot be reached and the nodes left know no leader, nothing that needs the
leader succeeds until someone restarts nodes, and the call raises `ClusterDown` at once instead
of waiting out its budget; the first line of its message says which nodes and what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import weaviate
from weaviate.exceptions import WeaviateBaseError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Failures that a later attempt can get past. "resolve node name": a node that just restarted
# answers before its shards are loaded and routes writes to a node it cannot find yet (seen on
# Weaviate 1.37 right after a restart); in a cluster, the owner of a shard is down.
# "rst_stream": a request cut off by the server while a replica it waited on died (HTTP/2
# RST_STREAM, CANCEL), seen on a three-node Weaviate 1.37 cluster when a node was killed; most
# of such a batch was stored, and a retry overwrites it. "leader not found", "not the leader"
# and "connection" (is closing): a schema read or change while the cluster elects a leader
# (Weaviate 1.39). "not enough memory": a server over its soft memory limit (GOMEMLIMIT) refuses
# writes until its garbage collector catches up.
TRANSIENT_MARKERS = ("deadline", "unavailable", "connection", "timeout", "timed out", "reset",
                     "temporarily", "try again", "shutting down", "cancelled", "socket closed",
                     "broken pipe", "resolve node name", "rst_stream", "leader not found",
                     "not the leader", "not enough memory")  # fmt: skip
_VOTER = 0  # a Raft configuration member's suffrage: 0 votes, 1 does not
# A node that did not answer the statistics request at all. One that answered too slowly
# (TIMEOUT) is busy, not gone: on a loaded machine live nodes do that.
_UNREACHABLE = "UNAVAILABLE"


def is_transient(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in TRANSIENT_MARKERS)


class ClusterDown(RuntimeError):
    """Weaviate takes no writes and no schema changes until nodes come back: most of its Raft
    voters cannot be reached and those left know no leader. The message's first line says
    which and what to do."""


@dataclass(frozen=True)
class ClusterView:
    """The cluster's Raft voters as the node the client talks to sees them."""

    voters: tuple[str, ...]
    unreachable: tuple[str, ...]  # gone from the cluster's gossip, or refusing connections
    leader: str  # as the nodes that answer last heard; "" while they know none

    @property
    def quorum_lost(self) -> bool:
        """Too few voters answer to elect a leader, and those that answer know none.

        Both must hold: the nodes that answer drop a dead leader only when they stop hearing
        from it (about 10 s), and until then a write may still succeed; and a node named
        unreachable for a moment while a leader is elected must not end the step."""
        return (
            bool(self.voters) and 2 * len(self.unreachable) >= len(self.voters) and not self.leader
        )

    def summary(self) -> str:
        """Which nodes cannot be reached, and how many of all answer."""
        answering = len(self.voters) - len(self.unreachable)
        leader = "" if self.leader else "; no leader"
        return (
            f"{', '.join(self.unreachable)} cannot be reached ({answering} of "
            f"{len(self.voters)} nodes answer{leader})"
        )


def cluster_view(client: weaviate.WeaviateClient) -> ClusterView | None:
    """The Raft statistics of the node the client talks to; None when it does not give them
    (it cannot be reached itself, or it refuses)."""
    try:
        statistics = client.cluster.statistics().statistics
    except WeaviateBaseError:
        return None
    listed = {node.name for node in statistics if node.status != _UNREACHABLE}
    voters = sorted({member.node_id for node in statistics
                     for member in node.raft.latest_configuration
                     if member.suffrage == _VOTER})  # fmt: skip
    leader = next((node.leader_id for node in statistics if node.leader_id), "")
    unreachable = tuple(name for name in voters if name not in listed)
    return ClusterView(tuple(voters), unreachable, leader)


def describe_trouble(view: ClusterView, consistency: str | None) -> str:
    """One line: the nodes that are gone, why writes fail, and what to do."""
    level = (consistency or "QUORUM").upper()
    return (
        f"Weaviate cluster: {view.summary()}. Writes at {level} wait for enough copies of a "
        "shard and for a leader that a majority of the nodes elect, so they fail while too few "
        "nodes run: restart the nodes that are down (or wait for them), then re-run the failed "
        "partitions; objects already written are overwritten, not duplicated"
    )


def _trouble(view: ClusterView | None) -> str:
    return f" (Weaviate cluster: {view.summary()})" if view and view.unreachable else ""


@dataclass(frozen=True)
class Calls:
    """Calls to one Weaviate through `client` under one retry policy (see the module's
    docstring); `consistency` is the level writes use, named in a diagnosis."""

    client: weaviate.WeaviateClient
    retry_seconds: float = 120.0
    consistency: str | None = None
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 15.0
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, action: Callable[[], T], what: str) -> T:
        """`action()`, retried on transient failures for up to `retry_seconds` after the first
        (which may itself have waited out a long deadline); any other failure, or one that
        outlasts the budget, is raised, and a lost quorum raises `ClusterDown` at once."""
        deadline: float | None = None
        backoff = self.first_backoff_seconds
        while True:
            try:
                return action()
            except WeaviateBaseError as exc:
                if not is_transient(str(exc)):
                    raise
                failure = f"{type(exc).__name__}: {exc}"
                view = self.stop_if_quorum_lost(f"{what}: {failure}")
                deadline = deadline or time.monotonic() + self.retry_seconds
                if time.monotonic() + backoff > deadline:
                    raise
                log.warning(f"retrying {what} in {backoff:.1f}s: {failure}{_trouble(view)}")
                self.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)

    def stop_if_quorum_lost(self, detail: str = "") -> ClusterView | None:
        """Raise `ClusterDown` (its first line the diagnosis, `detail` below) when the cluster
        has lost its quorum; otherwise its view, for the caller to report."""
        view = cluster_view(self.client)
        if view is not None and view.quorum_lost:
            diagnosis = describe_trouble(view, self.consistency)
            raise ClusterDown(f"{diagnosis}\n{detail}" if detail else diagnosis)
        return view
