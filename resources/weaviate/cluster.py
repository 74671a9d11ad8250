"""Several Weaviate nodes on one machine, forming one replicated cluster.

For the test suite and for trying replication locally: production clusters run a node per
machine (Weaviate's Helm chart), with the same settings the nodes get here. Node k listens on a
block of ports from `first_port + 10 * (k - 1)`: HTTP, gRPC, then its gossip, data, Raft and
Raft RPC ports; its data and log are in `root/nodek`. Every node lists every other one to join,
so any node can be killed and restarted alone, as a lost machine would be. The nodes share one
API key and one cluster password, kept in `root` (`server.py`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from resources.weaviate.server import (
    READY_SECONDS,
    LocalServer,
    Progress,
    ServerError,
    free_port_block,
    install_binary,
)

NODE_PORTS = 10
# Weaviate chooses its Raft voters by name substring ("node1" is in "node10"): at most 9 nodes.
MAX_NODES = 9


@dataclass(frozen=True)
class LocalCluster:
    nodes: tuple[LocalServer, ...]

    @classmethod
    def at(
        cls,
        root: Path,
        size: int = 3,
        first_port: int = 18100,
        api_key: str | None = None,
        extra_env: tuple[tuple[str, str], ...] = (),
    ) -> LocalCluster:
        if not 1 <= size <= MAX_NODES:
            raise ValueError(f"a local cluster has 1 to {MAX_NODES} nodes, not {size}")
        ports = {f"node{k}": first_port + NODE_PORTS * (k - 1) for k in range(1, size + 1)}
        members = tuple((name, port + 2) for name, port in ports.items())
        return cls(
            tuple(
                LocalServer(
                    root=root / name,
                    http_port=port,
                    grpc_port=port + 1,
                    cluster_port=port + 2,
                    configured_api_key=api_key,
                    extra_env=extra_env,
                    node=name,
                    members=members,
                    secrets_dir=root,
                )  # fmt: skip
                for name, port in ports.items()
            )
        )

    @classmethod
    def on_free_ports(
        cls, root: Path, size: int = 3, extra_env: tuple[tuple[str, str], ...] = ()
    ) -> LocalCluster:
        return cls.at(root, size, free_port_block(NODE_PORTS * size), extra_env=extra_env)

    @property
    def url(self) -> str:
        """Where clients connect (the first node; any node serves the whole cluster)."""
        return f"http://127.0.0.1:{self.nodes[0].http_port}"

    def describe(self) -> str:
        first = self.nodes[0]
        return (
            f"local Weaviate cluster of {len(self.nodes)} nodes: HTTP 127.0.0.1:"
            f"{first.http_port}, gRPC {first.grpc_port} (node1; node k on ports "
            f"+{NODE_PORTS}*(k-1)), data {first.root.parent}"
        )

    def environment(self) -> dict[str, str]:
        """The project's settings for an index replicated on every node."""
        return {
            "WEAVIATE_URL": self.url,
            "WEAVIATE_GRPC_PORT": str(self.nodes[0].grpc_port),
            "WEAVIATE_REPLICATION_FACTOR": str(len(self.nodes)),
        }

    def start(self, progress: Progress = print, wait_seconds: float = READY_SECONDS) -> list[str]:
        """Start the nodes that are not running and wait until every node sees all of them
        healthy; the names of the nodes this call started."""
        binary = install_binary(self.nodes[0].version, progress)
        started = [node.node for node in self.nodes if node.launch(binary)]
        self.wait_healthy(wait_seconds)
        return started

    def wait_healthy(self, wait_seconds: float = READY_SECONDS) -> float:
        """Seconds until every node answers ready and reports every node HEALTHY."""
        began = time.monotonic()
        while time.monotonic() - began < wait_seconds:
            if all(node.ready() and healthy_nodes(node) == len(self.nodes) for node in self.nodes):
                return time.monotonic() - began
            dead = [node for node in self.nodes if node.pid() is None and not node.ready()]
            if dead:
                raise ServerError(
                    f"{dead[0].describe()} is not running; the end of its log "
                    f"({dead[0].log_file}):\n{dead[0].log_tail()}"
                )
            time.sleep(0.2)
        raise ServerError(
            f"{self.describe()}: not every node healthy within {wait_seconds:.0f}s; "
            + "; ".join(f"{node.node} sees {healthy_nodes(node)} healthy" for node in self.nodes)
        )

    def leader(self) -> LocalServer | None:
        """The node that leads the cluster's Raft (schema changes go through it), if one does.

        Losing it costs more than losing another node: writes in flight wait out their
        deadline while the others elect a new leader (BENCHMARKS.md, "A three-node cluster").
        """
        for node in self.nodes:
            stats = _get_json(node, "/v1/cluster/statistics")
            for entry in (stats or {}).get("statistics", []):
                if entry.get("raft", {}).get("state") == "Leader":
                    return next((n for n in self.nodes if n.node == entry.get("name")), None)
        return None

    def stop(self) -> list[str]:
        return [node.node for node in self.nodes if node.stop()]

    def status(self) -> str:
        leader = self.leader()
        return "\n".join(
            f"{node.status()}; sees {healthy_nodes(node)}/{len(self.nodes)} healthy"
            + ("; Raft leader" if leader == node else "")
            for node in self.nodes
        )


def _get_json(node: LocalServer, path: str) -> dict | None:
    request = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}")
    request.add_header("Authorization", f"Bearer {node.api_key}")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def healthy_nodes(node: LocalServer) -> int:
    """How many nodes `node` reports HEALTHY (0 when it does not answer)."""
    nodes = (_get_json(node, "/v1/nodes") or {}).get("nodes", [])
    return sum(1 for entry in nodes if entry.get("status") == "HEALTHY")
