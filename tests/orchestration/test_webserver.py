"""The UI's server starts on the project's workspace and its GraphQL API lists the assets."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } partitionDefinition { name } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_webserver_lists_the_assets_with_their_shard_partitions(tmp_path):
    port = _free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    server = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        body = None
        while time.monotonic() < deadline:
            try:
                body = _graphql(port, QUERY)
                if body.get("data", {}).get("assetNodes"):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert body is not None, "the webserver did not answer within 180 s"
        partitions = {
            "/".join(node["assetKey"]["path"]): (node["partitionDefinition"] or {}).get("name")
            for node in body["data"]["assetNodes"]
        }
        assert partitions == {
            "corpus_shard": "shards",
            "chunks": "shards",
            "embeddings": "shards",
            "weaviate_index": "shards",
            "embedding_profile": None,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
