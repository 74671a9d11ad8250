"""`weaviate-indexer index`: a corpus indexed from a terminal, and again after a kill -9."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, Definitions
from dagster._core.instance.ref import InstanceRef
from weaviate.classes.aggregate import GroupByAggregate

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import weaviate_index
from assets.partitions import shard_partitions
from assets.pools import GPU_POOL
from orchestration.headless import (
    describe,
    register,
    remove,
    run_groups,
    run_shards,
    shards_to_index,
)
from orchestration.jobs import index_shards, register_shards
from orchestration.removal import remove_shards
from resources.corpus.resource import CorpusResource
from resources.corpus.sample import SampleSpec, iter_documents
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource
from tests.conftest import assert_same_index, connect

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
                grpc_port=server.grpc_port, collection=collection, data_dir=data_dir,
            ),
        },
    )  # fmt: skip


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
    whole = run_shards(defs, instance, keys, say=lambda line: None, shards_per_run=2)
    assert whole.ok and len(whole.indexed) == 6 and whole.totals["documents"] == 48

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
    assert run_shards(defs, instance, pending, say=lambda line: None).ok

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
    summary = run_shards(defs, instance, pending, say=lambda line: None)
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
