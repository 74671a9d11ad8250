"""`weaviate-indexer index`: a corpus indexed from a terminal, and again after a kill -9."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from assets.pools import GPU_POOL
from resources.corpus.sample import SampleSpec, iter_documents
from tests.conftest import assert_same_index

ROOT = Path(__file__).resolve().parents[2]


def _corpus(folder: Path) -> Path:
    docs = list(iter_documents(SampleSpec(docs=48, seed=11, median_tokens=80, max_tokens=500)))
    folder.mkdir(parents=True)
    for name, part in (("a.jsonl", docs[:24]), ("b.jsonl", docs[24:])):
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in part))
    return folder


def _environment(root: Path, corpus: Path, server, collection: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CORPUS_PATH": str(corpus), "SHARD_SIZE": "8", "SHARDS_PER_RUN": "2",
        "INDEXER_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home"),
        "EMBEDDING_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "WEAVIATE_MODE": "custom",
        "WEAVIATE_URL": f"http://127.0.0.1:{server.http_port}",
        "WEAVIATE_GRPC_PORT": str(server.grpc_port), "WEAVIATE_COLLECTION": collection,
    }  # fmt: skip
    env.pop("WEAVIATE_API_KEY", None)
    return env


def _command(env, *args, kill=None) -> subprocess.CompletedProcess:
    module = ["-m", "orchestration.cli"]
    if kill is not None:
        module = ["-m", "tests.orchestration.killed_command", json.dumps(kill)]
    return subprocess.run(
        [sys.executable, *module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600, start_new_session=True,
    )  # fmt: skip


def test_index_is_killed_inside_an_embedding_and_finishes_when_run_again(
    tmp_path, weaviate_server, two_collections
):
    corpus = _corpus(tmp_path / "corpus")
    reference, resumed = two_collections

    whole = _command(_environment(tmp_path / "whole", corpus, weaviate_server, reference), "index")
    assert whole.returncode == 0, whole.stdout + whole.stderr[-3000:]
    assert "6 shards registered" in whole.stdout
    assert "indexed 6/6 shards (48 documents" in whole.stdout
    assert "ETA" in whole.stdout

    env = _environment(tmp_path / "killed", corpus, weaviate_server, resumed)
    # Dies as the third shard's embedding starts: inside the second run, its GPU slot held.
    killed = _command(env, "index", kill={"point": "inside_embedding", "nth": 3})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-3000:]
    assert "indexed" not in killed.stdout

    again = _command(env, "index")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "was left running by a dead process" in again.stdout + again.stderr
    assert "indexed 4/4 shards" in again.stdout  # the first run's two shards were done
    assert "2 were already indexed" in again.stdout

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))
    statuses = [run.status for run in instance.get_runs()]
    assert DagsterRunStatus.STARTED not in statuses and DagsterRunStatus.FAILURE in statuses
    assert not instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots

    assert assert_same_index(weaviate_server, reference, resumed) > 48

    nothing = _command(env, "index")
    assert "all 6 shards are indexed at their current content; nothing to do" in nothing.stdout
