import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from orchestration.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sample_corpus_writes_files_and_statistics(tmp_path, capsys):
    assert main(["sample-corpus", "--docs", "25", "--out", str(tmp_path), "--docs-per-file",
                 "10", "--seed", "4"]) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "corpus_stats.json", "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl",
    ]  # fmt: skip
    stats = json.loads((tmp_path / "corpus_stats.json").read_text())
    assert stats["documents"] == 25 and stats["seed"] == 4
    assert "documents=25" in capsys.readouterr().out


def test_demo_indexes_a_corpus_into_a_sandbox_it_starts_and_stops(tmp_path):
    """What `make run` does, on a tiny corpus, with the sandbox started as its own process."""
    http_port, grpc_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "INDEXER_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "WEAVIATE_MODE": "sandbox",
        "WEAVIATE_SANDBOX_PORT": str(http_port),
        "WEAVIATE_SANDBOX_GRPC_PORT": str(grpc_port),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("WEAVIATE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "demo", "--docs", "12", "--shard-size", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "sample corpus: 12 documents" in out
    assert "3 shard partitions registered" in out
    assert f"Weaviate: sandbox server on 127.0.0.1:{http_port}" in out
    assert "indexed 3/3 shards" in out
    assert "(the query is the first sentence of doc-0000000)" in out
    first_hit = out.split("search: ")[1].splitlines()[1]
    assert "doc-0000000#0" in first_hit
    assert "stopped the sandbox server this command started" in out
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", http_port)) != 0
    # Runs went to the persistent instance, so the UI shows them afterwards.
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()
    assert any((tmp_path / "dagster").rglob("*.db"))
