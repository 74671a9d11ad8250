"""`weaviate-indexer index`: a corpus indexed from a terminal, several runs at once, again after a
kill -9, and stopped by Ctrl-C or SIGTERM."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, Definitions, RunsFilter
from dagster._core.instance.ref import InstanceRef
from weaviate.classes.aggregate import GroupByAggregate

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import weaviate_index
from assets.partitions import shard_partitions
from assets.pools import GPU_POOL
from orchestration.headless import (
    IndexSummary,
    describe,
    register,
    remove,
    run_groups,
    shards_to_index,
)
from orchestration.jobs import index_shards, register_shards
from orchestration.liveness import PID_TAG
from orchestration.removal import remove_shards
from orchestration.run_pool import execute_group
from resources.corpus.resource import CorpusResource
from resources.corpus.sample import SampleSpec, iter_documents
from resources.embedding import EmbeddingResource
from resources.processes import process_alive
from resources.weaviate import WeaviateResource
from tests.conftest import assert_same_index, connect

ROOT = Path(__file__).resolve().parents[2]


def _corpus(folder: Path, docs: int = 48, median_tokens: float = 80) -> Path:
    spec = SampleSpec(docs=docs, seed=11, median_tokens=median_tokens, max_tokens=6 * median_tokens)
    docs = list(iter_documents(spec))
    folder.mkdir(parents=True)
    half = len(docs) // 2
    for name, part in (("a.jsonl", docs[:half]), ("b.jsonl", docs[half:])):
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
        "WEAVIATE_API_KEY": server.api_key,
    }  # fmt: skip
    return env


def _definitions(corpus: Path, shard_size: int, data_dir: str, server, collection: str):
    """The project's indexing definitions with resources of a test's own."""
    return Definitions(
        assets=[corpus_shard, chunks, embeddings, weaviate_index],
        jobs=[register_shards, index_shards, remove_shards],
        resources={
            "corpus": CorpusResource(corpus_path=str(corpus), shard_size=shard_size,
                                     data_dir=data_dir),
            "embedder": EmbeddingResource(device="cpu", data_dir=data_dir),
            "weaviate": WeaviateResource(
                mode="custom", url=f"http://127.0.0.1:{server.http_port}",
                grpc_port=server.grpc_port, api_key=server.api_key, collection=collection,
                data_dir=data_dir,
            ),
        },
    )  # fmt: skip


def _index_in_process(defs, instance, keys: list[str], shards_per_run: int = 16) -> IndexSummary:
    """The runs the command makes, one after another in this process (a reference)."""
    job = defs.resolve_job_def("index_shards")
    summary = IndexSummary(to_index=keys)
    partitions = instance.get_dynamic_partitions(shard_partitions.name)
    for part in run_groups(partitions, keys, shards_per_run):
        summary.add(execute_group(job, instance, part))
    return summary


def _runs_at_once(env: dict[str, str], runs: int) -> None:
    """The instance prepared as the commands do, with `runs` runs at once (what a machine with
    `runs` times 4 cores gets)."""
    subprocess.run([sys.executable, "-m", "orchestration.cli", "instance"], cwd=ROOT, env=env,
                   check=True, capture_output=True)  # fmt: skip
    settings = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    text = settings.read_text()
    settings.write_text(re.sub(r"max_concurrent_runs: \d+", f"max_concurrent_runs: {runs}", text))


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
    # The uninterrupted reference, in this process: the runs the command makes.
    defs = _definitions(corpus, 8, str(tmp_path / "whole"), weaviate_server, reference)
    instance = DagsterInstance.ephemeral()
    register(defs, instance)
    keys = instance.get_dynamic_partitions(shard_partitions.name)
    whole = _index_in_process(defs, instance, keys, shards_per_run=2)
    assert whole.ok and len(whole.indexed) == 6 and whole.totals["documents"] == 48

    env = _environment(tmp_path / "killed", corpus, weaviate_server, resumed)
    # Dies as the third shard's embedding starts: inside the second run, its GPU slot held.
    killed = _command(env, "index", kill={"point": "inside_embedding", "nth": 3})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-3000:]
    assert "indexed" not in killed.stdout

    # Again, two runs at once: the four shards left are two runs, which overlap.
    _runs_at_once(env, 2)
    again = _command(env, "index")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "was left running by a dead process" in again.stdout + again.stderr
    assert "4 shards to index in 2 runs, 2 at once" in again.stdout
    assert "indexed 4/4 shards" in again.stdout  # the first run's two shards were done
    assert "2 were already indexed" in again.stdout
    assert "files to searchable: " in again.stdout
    stages = r"stages: [\d,]+ documents read/s, [\d,]+ tokens chunked/s, [\d,]+ tokens embedded/s, "
    assert re.search(stages + r"[\d,]+ objects stored/s", again.stdout), again.stdout

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))
    statuses = [run.status for run in instance.get_runs()]
    assert DagsterRunStatus.STARTED not in statuses and DagsterRunStatus.FAILURE in statuses
    assert not instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots
    last_two = [instance.get_run_stats(run.run_id) for run in instance.get_runs(limit=2)]
    assert max(r.start_time for r in last_two) < min(r.end_time for r in last_two)  # overlapped

    assert assert_same_index(weaviate_server, reference, resumed) > 48

    nothing = _command(env, "index")
    assert "all 6 shards are indexed at their current content; nothing to do" in nothing.stdout


def test_runs_are_consecutive_partitions_of_the_shards_to_run():
    # Registration order, not key order: a file added later registers its shards last.
    partitions = ["b-s0", "b-s1", "c-s0", "a-s0", "a-s1", "a-s2"]
    to_run = ["b-s0", "b-s1", "a-s0", "a-s1", "a-s2"]
    assert run_groups(partitions, to_run, 16) == [["b-s0", "b-s1"], ["a-s0", "a-s1", "a-s2"]]
    assert run_groups(partitions, to_run, 2) == [["b-s0", "b-s1"], ["a-s0", "a-s1"], ["a-s2"]]
    assert run_groups(partitions, [], 2) == []


def test_a_shard_whose_input_is_gone_is_skipped_kept_and_removed_on_request(
    tmp_path, weaviate_server, two_collections
):
    folder = tmp_path / "corpus"
    docs = list(iter_documents(SampleSpec(docs=32, seed=5, median_tokens=40, max_tokens=120)))
    folder.mkdir()
    for name, part in (("a.jsonl", docs[:16]), ("b.jsonl", docs[16:24]), ("c.jsonl", docs[24:])):
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in part))
    data_dir = str(tmp_path / "data")
    collection = two_collections[0]
    defs = _definitions(folder, 8, data_dir, weaviate_server, collection)
    instance = DagsterInstance.ephemeral()
    register(defs, instance)
    pending, missing, registered = shards_to_index(instance, data_dir, every=False)
    assert (pending, missing, registered) == (
        ["a-s00000", "a-s00001", "b-s00000", "c-s00000"],
        [],
        4,
    )
    assert _index_in_process(defs, instance, pending).ok

    # b's file goes; a's second shard and c's shard change. The two shards to run lie on both
    # sides of b's partition, which no run may cover: its shard is no longer in the manifest.
    (folder / "b.jsonl").unlink()
    docs[8]["text"] += " Changed."
    docs[24]["text"] += " Changed."
    for name, part in (("a.jsonl", docs[:16]), ("c.jsonl", docs[24:])):
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in part))
    register(defs, instance)
    pending, missing, registered = shards_to_index(instance, data_dir, every=False)
    assert (pending, missing, registered) == (["a-s00001", "c-s00000"], ["b-s00000"], 3)
    summary = _index_in_process(defs, instance, pending)
    assert summary.ok and summary.indexed == ["a-s00001", "c-s00000"]
    summary.shards, summary.missing = registered, missing
    assert "1 registered shards have no input any more (b-s00000): kept" in describe(summary)

    with connect(weaviate_server) as client:
        chunks_of = _chunk_counts(client.collections.get(collection))
    assert set(chunks_of) == {"a-s00000", "a-s00001", "b-s00000", "c-s00000"}  # b's are kept

    remove(defs, instance, missing)
    with connect(weaviate_server) as client:
        assert _chunk_counts(client.collections.get(collection)) == {
            key: count for key, count in chunks_of.items() if key != "b-s00000"
        }
    assert instance.get_dynamic_partitions(shard_partitions.name) == [
        "a-s00000", "a-s00001", "c-s00000",
    ]  # fmt: skip


def _chunk_counts(collection) -> dict[str, int]:
    counts = collection.aggregate.over_all(group_by=GroupByAggregate(prop="shard"))
    return {group.grouped_by.value: group.total_count for group in counts.groups}


def _start(env, *args, stderr) -> subprocess.Popen:
    """The command in a process group of its own, as a terminal starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
    )  # fmt: skip


def _wait_for_step(home: str, step: str, seconds: float = 300) -> DagsterRun:
    """The first index_shards run, once its `step` has begun."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (Path(home) / "history").exists():
            instance = DagsterInstance.from_ref(InstanceRef.from_dir(home))
            for run in instance.get_runs(filters=RunsFilter(job_name="index_shards")):
                steps = instance.get_run_step_stats(run.run_id)
                if any(s.step_key.startswith(step) for s in steps):
                    return run
        time.sleep(0.2)
    raise AssertionError(f"no index_shards run reached {step} in {seconds}s")


def _index_runs(home: str) -> list[DagsterRun]:
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(home))
    return instance.get_runs(filters=RunsFilter(job_name="index_shards"))


def test_ctrl_c_stops_the_command_and_running_it_again_finishes(
    tmp_path, weaviate_server, two_collections
):
    # 4 shards of long documents, 2 a run: 2 runs one at a time, each embedding for seconds.
    corpus = _corpus(tmp_path / "corpus", docs=16, median_tokens=1000)
    env = _environment(tmp_path / "home", corpus, weaviate_server, two_collections[0])
    env["SHARD_SIZE"] = "4"
    _runs_at_once(env, 1)
    command = _start(env, "index", stderr=subprocess.PIPE)
    _wait_for_step(env["DAGSTER_HOME"], "embeddings")
    os.killpg(command.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = command.communicate(timeout=600)

    assert command.returncode == 130, out + err[-3000:]
    assert "SIGINT: stopping; no new run starts" in err
    assert "stopped by SIGINT: 4 shards not indexed; run the command again to finish" in out
    (run,) = _index_runs(env["DAGSTER_HOME"])  # no run started after the signal
    assert run.status == DagsterRunStatus.FAILURE  # ended inside its embeddings step
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))
    assert not instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots

    again = _command(env, "index")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    chunks_written = re.search(r"indexed 4/4 shards \(16 documents, (\d+) chunks", again.stdout)
    assert chunks_written, again.stdout
    with connect(weaviate_server) as client:
        stored = client.collections.get(two_collections[0]).aggregate.over_all(total_count=True)
    assert stored.total_count == int(chunks_written.group(1)) > 16


def test_sigterm_stops_the_command_and_a_second_signal_ends_it_at_once(
    tmp_path, weaviate_server, two_collections
):
    corpus = _corpus(tmp_path / "corpus")
    env = _environment(tmp_path / "home", corpus, weaviate_server, two_collections[0])
    _runs_at_once(env, 1)
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stderr:
        command = _start(env, "index", stderr=stderr)
        run = _wait_for_step(env["DAGSTER_HOME"], "chunks")
        os.killpg(command.pid, signal.SIGTERM)  # what a pod's runtime sends
        while "SIGTERM: stopping" not in errors.read_text():
            time.sleep(0.1)
        os.killpg(command.pid, signal.SIGINT)
        out, _ = command.communicate(timeout=600)

    assert command.returncode == 143, out + errors.read_text()[-3000:]
    assert "indexed" not in out  # ended at once: no summary
    # Its worker, which ran the run in a session of its own, went with it.
    assert not process_alive(int(run.tags[PID_TAG]))
    assert len(_index_runs(env["DAGSTER_HOME"])) == 1

    again = _command(env, "index")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "indexed 6/6 shards (48 documents" in again.stdout
    assert DagsterRunStatus.STARTED not in {r.status for r in _index_runs(env["DAGSTER_HOME"])}
