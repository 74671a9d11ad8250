"""`weaviate-indexer ARGS...` with nodes of a local cluster killed at a pipeline point.

python -m tests.orchestration.cluster_fault_command FAULT_JSON ARGS...

FAULT_JSON: {"root": the cluster's folder, "first_port": its first port, "kill": node names,
"nth": n}. The pipeline runs in the command's worker processes, so the fault is installed
there: before the worker opens its nth Weaviate client (a run's index step opens one, then its
count check), it kills those nodes and waits until the first node knows no leader any more
(about 10 s when the leader was among them).
"""

import functools
import json
import sys
import time
import urllib.request
from pathlib import Path

from orchestration.cli import main
from orchestration.run_pool import RunPool
from resources.weaviate import WeaviateResource
from resources.weaviate.cluster import LocalCluster
from resources.weaviate.server import LocalServer

LEADERLESS_SECONDS = 60.0


def _knows_a_leader(node: LocalServer) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{node.http_port}/v1/cluster/statistics",
        headers={"Authorization": f"Bearer {node.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return any(entry.get("leaderId") for entry in json.load(response)["statistics"])


def _kill(fault: dict) -> None:
    cluster = LocalCluster.at(Path(fault["root"]), first_port=fault["first_port"])
    for node in cluster.nodes:
        if node.node in fault["kill"]:
            node.kill()
    started = time.monotonic()
    while _knows_a_leader(cluster.nodes[0]):
        assert time.monotonic() - started < LEADERLESS_SECONDS, "a leader remained"
        time.sleep(0.2)


def _in_worker(fault: dict) -> None:
    real = WeaviateResource.client
    opened = 0

    def client(self, *args, **kwargs):
        nonlocal opened
        opened += 1
        if opened == fault["nth"]:
            _kill(fault)
        return real(self, *args, **kwargs)

    WeaviateResource.client = client


if __name__ == "__main__":
    RunPool.worker_initializer = functools.partial(_in_worker, json.loads(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
