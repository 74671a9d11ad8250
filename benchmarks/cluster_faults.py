"""How long a replicated ingest pauses when a Weaviate node dies, and how long a restarted node
takes to catch up: a three-node `LocalCluster` on this machine, replication factor 3, QUORUM
writes through the project's own ingest.

For each case, a shard of objects is written, one node is SIGKILLed, and a second version of
the shard is written through another node while it is down; each BatchObjects call is timed.
Cases: the node that leads the cluster's Raft, and a node that does not. The killed node is then
restarted and read at ONE (its own copy) until it holds the second version of every object.
Last, two of the three nodes are killed and the time until the ingest gives up is taken.

    python benchmarks/cluster_faults.py [--objects 2000] [--batch-timeout 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from weaviate.classes.config import ConsistencyLevel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import resources.weaviate.ingest as ingest  # noqa: E402
from resources.weaviate.cluster import LocalCluster  # noqa: E402
from resources.weaviate.connection import ConnectionSettings, resolve  # noqa: E402
from resources.weaviate.ingest import IngestError, IngestObject, IngestPolicy  # noqa: E402
from resources.weaviate.schema import IndexLayout, ensure_collection  # noqa: E402
from resources.weaviate.server import LocalServer  # noqa: E402

SHARD = "s1"


def objects(count: int, version: str) -> list[IngestObject]:
    rng = np.random.default_rng(len(version))
    vectors = rng.standard_normal((count, 384)).astype("float32")
    return [
        IngestObject(
            f"00000000-0000-4000-8000-{i:012d}",
            {
                "doc_id": f"d{i}",
                "chunk_index": 0,
                "text": f"text {i}",
                "token_count": 2,
                "shard": SHARD,
                "shard_version": version,
            },
            vectors[i],
        )  # fmt: skip
        for i in range(count)
    ]


class TimedCalls:
    """Times every BatchObjects call the ingest makes."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        real = ingest.grpc_batch_call

        def timed(collection):
            call = real(collection)

            def send(messages):
                started = time.monotonic()
                try:
                    return call(messages)
                finally:
                    self.seconds.append(time.monotonic() - started)

            return send

        ingest.grpc_batch_call = timed


def connect(node: LocalServer, batch_timeout: float):
    settings = ConnectionSettings(
        mode="custom", url=f"http://127.0.0.1:{node.http_port}", grpc_port=node.grpc_port,
        api_key=node.api_key, batch_timeout_seconds=batch_timeout,
    )  # fmt: skip
    return resolve(settings).connect()


def versions_held(node: LocalServer, collection: str, version: str) -> int:
    """Objects of `version` in the node's own copy (reads at ONE answer from it)."""
    with connect(node, 30) as client:
        local = client.collections.get(collection).with_consistency_level(ConsistencyLevel.ONE)
        return sum(1 for o in local.iterator() if o.properties["shard_version"] == version)


def node_loss(cluster: LocalCluster, args, lost: LocalServer, name: str, timed: TimedCalls):
    entry = next(node for node in cluster.nodes if node != lost)
    policy = IngestPolicy(max_objects=200, consistency="QUORUM", retry_seconds=120)
    with connect(entry, args.batch_timeout) as client:
        ensure_collection(client, name, IndexLayout(shards=3, replication_factor=3))
        ingest.ingest_shard(client, name, SHARD, "v1", objects(args.objects, "v1"),
                            args.objects, policy)  # fmt: skip
        lost.kill()
        timed.seconds.clear()
        started = time.monotonic()
        report = ingest.ingest_shard(client, name, SHARD, "v2", objects(args.objects, "v2"),
                                     args.objects, policy)  # fmt: skip
        written = time.monotonic() - started
    calls = list(timed.seconds)
    started = time.monotonic()
    lost.start(progress=lambda line: None)
    cluster.wait_healthy()
    rejoined = time.monotonic() - started
    while versions_held(lost, name, "v2") < args.objects:
        time.sleep(0.5)
    caught_up = time.monotonic() - started
    return {
        "killed": lost.node,
        "shard_written_seconds": round(written, 2),
        "longest_call_seconds": round(max(calls), 2),
        "median_call_seconds": round(float(np.median(calls)), 3),
        "retries": report.retries,
        "written": report.written,
        "restart_to_healthy_seconds": round(rejoined, 2),
        "restart_to_caught_up_seconds": round(caught_up, 2),
    }


def quorum_loss(cluster: LocalCluster, args, name: str) -> dict:
    entry, *others = cluster.nodes
    policy = IngestPolicy(max_objects=200, consistency="QUORUM", retry_seconds=args.retry)
    with connect(entry, args.batch_timeout) as client:
        ensure_collection(client, name, IndexLayout(shards=3, replication_factor=3))
        for node in others:
            node.kill()
        started = time.monotonic()
        try:
            ingest.ingest_shard(client, name, SHARD, "v1", objects(args.objects, "v1"),
                                args.objects, policy)  # fmt: skip
            message = "written"
        except IngestError as exc:
            message = str(exc).splitlines()[0]
        failed = time.monotonic() - started
    cluster.start(progress=lambda line: None)
    return {"failed_after_seconds": round(failed, 2), "message": message}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--batch-timeout", type=float, default=30.0)
    parser.add_argument("--retry", type=float, default=60.0, help="retry budget, quorum case")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cluster-faults-"))
    cluster = LocalCluster.on_free_ports(root)
    started = time.monotonic()
    cluster.start(progress=lambda line: None)
    report: dict = {
        "cluster_start_seconds": round(time.monotonic() - started, 2),
        "objects": args.objects,
        "batch_timeout_seconds": args.batch_timeout,
    }
    timed = TimedCalls()
    try:
        leader = cluster.leader()
        report["leader_lost"] = node_loss(cluster, args, leader, "LeaderLost", timed)
        follower = next(node for node in cluster.nodes if node != cluster.leader())
        report["follower_lost"] = node_loss(cluster, args, follower, "FollowerLost", timed)
        report["quorum_lost"] = quorum_loss(cluster, args, "QuorumLost")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
