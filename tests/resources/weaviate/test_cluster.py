"""Several real Weaviate nodes on one machine forming one cluster (`LocalCluster`)."""

from pathlib import Path

import pytest
from weaviate.classes.config import Configure

from resources.weaviate.cluster import LocalCluster, healthy_nodes
from resources.weaviate.schema import IndexLayout, ensure_collection
from resources.weaviate.server import WEAVIATE_VERSION
from tests.conftest import connect


def test_every_node_joins_every_other_and_the_raft_voters_are_named_with_their_ports():
    cluster = LocalCluster.at(Path("/data"), size=3, first_port=18100)
    env = [node.environment() for node in cluster.nodes]
    assert [e["CLUSTER_HOSTNAME"] for e in env] == ["node1", "node2", "node3"]
    assert env[1]["CLUSTER_JOIN"] == "127.0.0.1:18102,127.0.0.1:18122"
    assert {e["RAFT_JOIN"] for e in env} == {"node1:18104,node2:18114,node3:18124"}
    assert {e["RAFT_BOOTSTRAP_EXPECT"] for e in env} == {"3"}
    # Localhost mode finds a peer's Raft RPC port at its Raft port + 1.
    assert all(int(e["RAFT_INTERNAL_RPC_PORT"]) == int(e["RAFT_PORT"]) + 1 for e in env)
    assert env[2]["PERSISTENCE_DATA_PATH"] == "/data/node3/data"
    assert cluster.environment() == {
        "WEAVIATE_URL": "http://127.0.0.1:18100",
        "WEAVIATE_GRPC_PORT": "18101",
        "WEAVIATE_REPLICATION_FACTOR": "3",
    }


def test_a_lone_server_is_a_cluster_of_one():
    env = LocalCluster.at(Path("/data"), size=1).nodes[0].environment()
    assert (env["RAFT_BOOTSTRAP_EXPECT"], env["RAFT_JOIN"]) == ("1", "node1:18104")
    assert "CLUSTER_JOIN" not in env


def test_reading_the_settings_makes_no_secret(tmp_path: Path):
    cluster = LocalCluster.at(tmp_path, size=3)
    assert [node.api_key_file for node in cluster.nodes] == [tmp_path / "api-key"] * 3
    env = [node.environment() for node in cluster.nodes]
    assert list(tmp_path.iterdir()) == []
    assert not [e for e in env if "AUTHENTICATION_APIKEY_ALLOWED_KEYS" in e]


def test_the_nodes_share_one_key_and_one_cluster_password_and_never_log_them(weaviate_cluster):
    root = weaviate_cluster.nodes[0].root.parent
    files = [root / "api-key", root / "cluster-password"]
    key, password = (file.read_text().strip() for file in files)
    assert {oct(file.stat().st_mode & 0o777) for file in files} == {"0o600"}
    assert {node.api_key for node in weaviate_cluster.nodes} == {key}
    logs = [node.log_file.read_text() for node in weaviate_cluster.nodes]
    assert not [log for log in logs if key in log or password in log]


def test_node_names_stay_apart():
    with pytest.raises(ValueError, match="1 to 9 nodes"):
        LocalCluster.at(Path("/data"), size=10)


def test_the_cluster_is_healthy_and_a_replicated_collection_spans_every_node(weaviate_cluster):
    assert [healthy_nodes(node) for node in weaviate_cluster.nodes] == [3, 3, 3]
    assert weaviate_cluster.leader() in weaviate_cluster.nodes
    with connect(weaviate_cluster.nodes[1]) as client:
        ensure_collection(client, "Spread", IndexLayout(shards=3, replication_factor=3))
        try:
            config = client.collections.get("Spread").config.get()
            nodes = client.cluster.nodes("Spread", output="verbose")
        finally:
            client.collections.delete("Spread")
    replication = config.replication_config
    assert (replication.factor, replication.async_enabled) == (3, True)
    assert replication.deletion_strategy.value == "TimeBasedResolution"
    assert replication.async_config.frequency == 5000
    # Three shards, each kept on all three nodes, every node the pinned release.
    assert sorted(len(node.shards) for node in nodes) == [3, 3, 3]
    assert {node.version for node in nodes} == {WEAVIATE_VERSION}


def test_every_replicated_collection_replicates_asynchronously(weaviate_cluster):
    """Since Weaviate 1.38 the per-collection switch is gone: asked off, the server keeps it on
    (only its ASYNC_REPLICATION_DISABLED turns it off); one copy has nothing to replicate."""
    with connect(weaviate_cluster.nodes[0]) as client:
        try:
            for name, factor in (("AskedOff", 3), ("OneCopy", 1)):
                client.collections.create(
                    name,
                    vector_config=Configure.Vectors.self_provided(),
                    replication_config=Configure.replication(factor=factor, async_enabled=False),
                )
            configs = {
                name: client.collections.get(name).config.get().replication_config
                for name in ("AskedOff", "OneCopy")
            }
        finally:
            client.collections.delete(["AskedOff", "OneCopy"])
    assert {name: (c.factor, c.async_enabled) for name, c in configs.items()} == {
        "AskedOff": (3, True),
        "OneCopy": (1, False),
    }
