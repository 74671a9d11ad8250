"""A backfill killed at any moment and then resumed ends exactly where an unbroken one ends.

The corpus changes from version A to version B (documents removed, added, shortened, their
metadata edited) so that the backfill under test overwrites, adds and deletes stale chunks.
Each case indexes A, runs the B backfill in a child process that SIGKILLs itself at one moment,
re-runs the partitions that did not finish, and compares Weaviate object by object with a B
backfill that was never interrupted.
"""

import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from weaviate.classes.data import DataObject

from resources.corpus.sample import SampleSpec, iter_documents
from tests.assets.backfill_driver import backfill, instance_at
from tests.conftest import connect, snapshot

ROOT = Path(__file__).resolve().parents[2]
SHARD_SIZE = 20


def _write(folder: Path, files: dict[str, list[dict]]) -> str:
    folder.mkdir(parents=True)
    for name, docs in files.items():
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in docs))
    return str(folder)


def _versions(root: Path) -> tuple[str, str]:
    docs = list(iter_documents(SampleSpec(docs=126, seed=5, median_tokens=90, max_tokens=700)))
    a = {"a.jsonl": docs[:40], "b.jsonl": docs[40:80], "c.jsonl": docs[80:120]}
    added = docs[120:126]
    b_a = [d for i, d in enumerate(a["a.jsonl"]) if i not in (3, 17)] + added[:2]
    longest = sorted(range(40), key=lambda i: -a["b.jsonl"][i]["tokens"])[:5]
    b_b = []
    for i, doc in enumerate(a["b.jsonl"]):
        doc = dict(doc)
        if i in longest:
            doc["text"] = ". ".join(doc["text"].split(". ")[:3]) + "."
        if i % 9 == 0:
            doc["topic"] = "edited"
        b_b.append(doc)
    version_a = _write(root / "corpus-a", a)
    version_b = _write(root / "corpus-b", {"a.jsonl": b_a, "b.jsonl": b_b, "c.jsonl": a["c.jsonl"]})
    return version_a, version_b


def _config(server, corpus, data_dir, home, collection, kill=None) -> dict:
    return {
        "corpus": corpus, "shard_size": SHARD_SIZE, "data_dir": str(data_dir),
        "dagster_home": str(home), "collection": collection, "kill": kill,
        "http_port": server.http_port, "grpc_port": server.grpc_port, "api_key": server.api_key,
    }  # fmt: skip


@pytest.fixture
def collection(weaviate_server) -> Iterator[str]:
    """A collection name of the test's own, dropped afterwards."""
    name = f"Resume_{uuid.uuid4().hex[:6]}"
    yield name
    with connect(weaviate_server) as client:
        client.collections.delete(name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, weaviate_server):
    """Version A indexed (its stage files, schema and objects kept as a template), then B
    indexed without interruption."""
    root = tmp_path_factory.mktemp("resume")
    version_a, version_b = _versions(root)
    collection = f"Reference_{uuid.uuid4().hex[:6]}"
    data = root / "reference-data"
    backfill(_config(weaviate_server, version_a, data, root / "home-a", collection))
    shutil.copytree(data, root / "template-a")
    with connect(weaviate_server) as client:
        schema = client.collections.get(collection).config.get().to_dict()
    index_a = (schema, snapshot(weaviate_server, collection))
    backfill(_config(weaviate_server, version_b, data, root / "home-b", collection))
    yield {"root": root, "a": version_a, "b": version_b, "index_a": index_a,
           "events": _events(root / "home-b"),
           "snapshot": snapshot(weaviate_server, collection)}  # fmt: skip
    with connect(weaviate_server) as client:
        client.collections.delete(collection)


def _index_version_a(reference, server, tmp_path: Path, collection: str) -> Path:
    """Version A as its backfill left it: the stage files, and the collection's schema and
    objects, copied from the template (the B backfill under test starts from there)."""
    data = tmp_path / "data"
    shutil.copytree(reference["root"] / "template-a", data)
    schema, objects = reference["index_a"]
    with connect(server) as client:
        client.collections.create_from_dict({**schema, "class": collection})
        copied = client.collections.get(collection).data.insert_many([
            DataObject(properties, uuid=object_id, vector={"default": vector.tolist()})
            for object_id, (properties, vector) in objects.items()
        ])  # fmt: skip
    assert not copied.errors
    return data


def _events(home: Path) -> int:
    """How many events the Dagster instance at `home` recorded, over all its runs."""
    instance = instance_at(str(home))
    return sum(len(instance.all_logs(run.run_id)) for run in instance.get_runs())


def _run_until_killed(config: dict, tmp_path: Path) -> None:
    """The backfill in a child process that SIGKILLs itself at `config["kill"]`, together with
    the processes it started (its own session: the kill takes its process group)."""
    config_file = tmp_path / "killed-run.json"
    config_file.write_text(json.dumps(config))
    killed = subprocess.run(
        [sys.executable, "-m", "tests.assets.backfill_driver", str(config_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, start_new_session=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-3000:]
    assert "backfill finished" not in killed.stdout, "the kill came after the end"


KILLS = [
    {"point": "chunking", "nth": 3},
    {"point": "embedding", "nth": 2, "delay": 0.2},
    {"point": "checkpoint_rename", "nth": 5},
    {"point": "between_ingest_batches", "nth": 4},
    {"point": "stale_deletion", "nth": 1},
    # A random moment of the run's progress: right after its nth Dagster event (each step's start
    # and end, its log lines, materializations, ...), n drawn between 10% and 60% of the events
    # the uninterrupted B backfill records. A moment in seconds would depend on the machine's
    # speed and load, and land after the end on a machine that ran the killed run faster.
    {"point": "random", "seed": 1, "window": [0.1, 0.6]},
]


def _in_events(kill: dict, reference: dict) -> dict:
    if kill["point"] != "random":
        return kill
    return {**kill, "window": [f * reference["events"] for f in kill["window"]]}


@pytest.mark.parametrize("kill", KILLS, ids=lambda k: f"{k['point']}-{k.get('nth', k.get('seed'))}")
def test_a_killed_backfill_resumes_to_the_uninterrupted_state(
    reference, weaviate_server, tmp_path, collection, kill
):
    data = _index_version_a(reference, weaviate_server, tmp_path, collection)

    kill = _in_events(kill, reference)
    config = _config(weaviate_server, reference["b"], data, tmp_path / "home-b", collection, kill)
    _run_until_killed(config, tmp_path)

    resumed = backfill({**config, "kill": None})
    assert resumed, "the killed run had finished every partition: the kill came too late"

    expected, actual = reference["snapshot"], snapshot(weaviate_server, collection)
    assert set(actual) == set(expected)
    for object_id, (properties, vector) in expected.items():
        assert actual[object_id][0] == properties
        np.testing.assert_allclose(actual[object_id][1], vector, atol=1e-6)


def test_a_killed_multi_shard_run_redoes_only_the_unfinished_shard(
    reference, weaviate_server, tmp_path, collection
):
    """A backfill groups shards into runs; re-executing a killed run skips the finished ones."""
    data = _index_version_a(reference, weaviate_server, tmp_path, collection)
    # B changes four shards (a-*, b-*); the run dies in the ingest of the last of them.
    kill = {"point": "inside_shard_ingest", "shard": "b-s00001", "after_objects": 15}
    config = {**_config(weaviate_server, reference["b"], data, tmp_path / "home-b", collection,
                        kill), "one_run": True}  # fmt: skip
    _run_until_killed(config, tmp_path)

    rerun = backfill({**config, "kill": None})
    embedded = rerun.asset_materializations_for_node("embeddings")
    assert len(embedded) == 6 and {m.metadata["shards_in_run"].value for m in embedded} == {6}
    assert all(m.metadata["reused_checkpoint"].value for m in embedded)  # all checkpointed
    # Each shard's materialization holds its own numbers: only the killed shard wrote objects;
    # the others repeat the figures of the ingest that wrote them, marked reused.
    indexed = {
        m.partition: m.metadata for m in rerun.asset_materializations_for_node("weaviate_index")
    }
    chunks_file = Path(data) / "chunks" / "b-s00001.parquet"
    killed = indexed.pop("b-s00001")
    assert killed["objects"].value == pq.read_metadata(chunks_file).num_rows
    assert killed["reused_checkpoint"].value is False
    assert len(indexed) == 5 and all(m["reused_checkpoint"].value for m in indexed.values())
    actual = snapshot(weaviate_server, collection)
    assert set(actual) == set(reference["snapshot"])
    for object_id, (properties, _) in reference["snapshot"].items():
        assert actual[object_id][0] == properties
