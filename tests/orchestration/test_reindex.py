"""The full re-index against the real server: a new collection, then the alias, and only then.

Searches go through the alias throughout; the old collection holds one marker object, so which
collection the alias points at is visible in what a search returns.
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import weaviate
from dagster import DagsterInstance
from weaviate.classes.data import DataObject

from assets import stages
from orchestration.reindex import reindex
from resources.corpus.manifest import register_corpus
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource
from resources.weaviate.aliases import alias_target, point_alias
from resources.weaviate.schema import IndexLayout, ensure_collection
from tests.conftest import connect

MARKER = "in-the-old-collection"


@pytest.fixture
def client(weaviate_server) -> Iterator[weaviate.WeaviateClient]:
    with connect(weaviate_server) as c:
        yield c


def live_index(client: weaviate.WeaviateClient, layout: IndexLayout | None = None) -> str:
    """An alias on a collection holding one marker object; the alias's name."""
    name = f"Index_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, f"{name}_old", layout)
    client.collections.get(f"{name}_old").data.insert_many(
        [DataObject({"doc_id": MARKER, "shard": "old"}, vector={"default": [1.0] * 384})]
    )
    client.alias.create(alias_name=name, target_collection=f"{name}_old")
    return name


def drop_index(client: weaviate.WeaviateClient, name: str) -> None:
    client.alias.delete(alias_name=name)
    for collection in (f"{name}_old", f"{name}_new"):
        client.collections.delete(collection)


@pytest.fixture
def alias(client: weaviate.WeaviateClient) -> Iterator[str]:
    name = live_index(client)
    yield name
    drop_index(client, name)


def write_corpus(folder: Path, broken: bool = False) -> None:
    """Three shards of two short documents; `broken` puts a malformed line in the last one."""
    folder.mkdir()
    lines = [json.dumps({"id": f"a{i}", "text": f"the river bank number {i}"}) for i in range(4)]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    second = '{"id": "b1", "text": ' if broken else '{"id": "b1", "text": "a forest"}'
    (folder / "b.jsonl").write_text('{"id": "b0", "text": "a meadow"}\n' + second + "\n")


def run_reindex(tmp_path: Path, server, alias: str, broken: bool = False, replicas: int = 1):
    data_dir = str(tmp_path / "data")
    corpus = CorpusResource(
        corpus_path=str(tmp_path / "corpus"), shard_size=2, data_dir=data_dir, strict=True
    )
    write_corpus(tmp_path / "corpus", broken)
    register_corpus(corpus.corpus_path, corpus.shard_size, data_dir, strict=True)
    resources = {
        "corpus": corpus,
        "embedder": EmbeddingResource(device="cpu", data_dir=data_dir),
        "weaviate": WeaviateResource(
            mode="local",
            url=f"http://127.0.0.1:{server.http_port}",
            grpc_port=server.grpc_port,
            api_key=server.api_key,
            collection=alias,
            data_dir=data_dir,
            retry_seconds=1.0,
            replication_factor=replicas,
        ),
    }
    return reindex.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        resources=resources,
        run_config={"ops": {"create_collection": {"config": {"collection": f"{alias}_new"}}}},
        raise_on_error=False,
    )


def doc_ids(client: weaviate.WeaviateClient, name: str) -> set[str]:
    objects = client.collections.get(name).query.fetch_objects(limit=100).objects
    return {str(o.properties["doc_id"]) for o in objects}


def test_reindex_fills_a_new_collection_then_switches_the_alias(
    tmp_path, weaviate_server, client, alias
) -> None:
    result = run_reindex(tmp_path, weaviate_server, alias)

    assert result.success
    assert alias_target(client, alias) == f"{alias}_new"
    assert doc_ids(client, alias) == {"a0", "a1", "a2", "a3", "b0", "b1"}
    assert doc_ids(client, f"{alias}_old") == {MARKER}, "the old collection is kept"
    assert result.output_for_node("switch_alias") == f"{alias}_new"


def test_a_failure_mid_way_leaves_the_alias_on_the_old_collection(
    tmp_path, weaviate_server, client, alias
) -> None:
    result = run_reindex(tmp_path, weaviate_server, alias, broken=True)

    assert not result.success
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"index_shard_into[b_s00000_2]"}
    assert "switch_alias" not in {e.step_key for e in result.get_step_success_events()}
    assert alias_target(client, alias) == f"{alias}_old"
    assert doc_ids(client, alias) == {MARKER}, "searches still see only the old index"
    assert doc_ids(client, f"{alias}_new") == {"a0", "a1", "a2", "a3"}, "the rest is written"


def test_on_a_cluster_searches_through_the_alias_never_meet_a_half_built_collection(
    tmp_path, weaviate_cluster, monkeypatch
) -> None:
    """Nodes 2 and 3 answer searches through the alias while the job writes through node 1:
    after each shard the new collection holds (one search per shard, made then), and all along
    (a loop on another thread)."""
    writer, reader, looper = weaviate_cluster.nodes
    full = {"a0", "a1", "a2", "a3", "b0", "b1"}
    with connect(writer) as client:
        name = live_index(client, IndexLayout(replication_factor=3))

    def search(node) -> set[str]:
        with connect(node) as client:
            hits = client.collections.get(name).query.near_vector([1.0] * 384, limit=10)
            return {str(o.properties["doc_id"]) for o in hits.objects}

    after_shard: list[set[str]] = []
    index_shard = stages.index

    def index_then_search(*args, **kwargs):
        metadata = index_shard(*args, **kwargs)
        after_shard.append(search(reader))
        return metadata

    monkeypatch.setattr(stages, "index", index_then_search)
    looped: list[set[str]] = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            looped.append(search(looper))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        result = run_reindex(tmp_path, writer, name, replicas=3)
    finally:
        done.set()
        thread.join()
    try:
        assert result.success
        assert after_shard == [{MARKER}] * 3, "mid-job searches answer from the old collection"
        assert looped and all(hits in ({MARKER}, full) for hits in looped)
        assert wait_for(lambda: search(reader) == full and search(looper) == full, 30)
    finally:
        with connect(writer) as client:
            drop_index(client, name)


def wait_for(condition, seconds: float) -> bool:
    """The switch reaches the other nodes through Raft, a moment after the job ends."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_an_index_from_before_aliases_is_replaced_by_the_alias(client) -> None:
    name = f"Legacy_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)  # the index under its public name, no alias yet
    ensure_collection(client, f"{name}_new")

    assert point_alias(client, name, f"{name}_new") is None

    assert alias_target(client, name) == f"{name}_new"
    assert client.collections.exists(name), "the name now resolves through the alias"
    client.alias.delete(alias_name=name)
    client.collections.delete(f"{name}_new")


def test_the_reindex_quarantines_records_and_refuses_exactly_as_the_assets_do(
    tmp_path, weaviate_server, client, alias
) -> None:
    from dagster import materialize

    from assets.chunks import chunks
    from assets.corpus import corpus_shard
    from assets.embeddings import embeddings
    from assets.index import object_count_matches_chunks, weaviate_index
    from orchestration.jobs import register_shards
    from resources.shard_files import ShardFiles

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [{"id": f"d{i}", "text": f"Document {i} is about rivers.", "label": "river"}
            for i in range(6)]  # fmt: skip
    docs[4]["label"] = 42  # `label` is text by the first document: Weaviate refuses this one
    lines = [json.dumps(d) for d in docs]
    lines.insert(2, '{"id": "broken", "text": ')  # malformed: quarantined while loading
    lines.append(json.dumps({"id": "blank", "text": "\u200b\u200b"}))  # no token for the model
    (corpus / "a.jsonl").write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    live = f"{alias}_live"

    def resources(collection: str) -> dict:
        return {
            "corpus": CorpusResource(corpus_path=str(corpus), data_dir=str(data)),
            "embedder": EmbeddingResource(device="cpu", data_dir=str(data)),
            "weaviate": WeaviateResource(
                mode="local", url=f"http://127.0.0.1:{weaviate_server.http_port}",
                grpc_port=weaviate_server.grpc_port, api_key=weaviate_server.api_key,
                collection=collection, data_dir=str(data), rejects="quarantine",
            ),
        }  # fmt: skip

    instance = DagsterInstance.ephemeral()
    register_shards.execute_in_process(instance=instance, resources=resources(live))
    assets = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]
    pipeline = materialize(
        assets, partition_key="a-s00000", instance=instance, resources=resources(live)
    )
    reindexed = reindex.execute_in_process(
        instance=instance,
        resources=resources(alias),
        run_config={"ops": {"create_collection": {"config": {"collection": f"{alias}_new"}}}},
    )
    try:
        assert pipeline.success and reindexed.success
        by_assets = ShardFiles(data, "a-s00000")
        by_reindex = ShardFiles(data / "reindex" / f"{alias}_new", "a-s00000")
        assert by_reindex.quarantine.read_text() == by_assets.quarantine.read_text()
        assert "line 3" in by_assets.quarantine.read_text()
        assert by_reindex.chunking_quarantine.read_text() == (
            by_assets.chunking_quarantine.read_text()
        )
        assert "'blank'" in by_assets.chunking_quarantine.read_text()

        def refused(files: ShardFiles) -> list[tuple[str, str]]:
            rows = [json.loads(line) for line in files.weaviate_rejects.read_text().splitlines()]
            return [(row["uuid"], row["doc_id"]) for row in rows]

        assert refused(by_reindex) == refused(by_assets) and len(refused(by_assets)) == 1
        assert refused(by_assets)[0][1] == "d4"

        def stored(name: str) -> dict:
            objects = client.collections.get(name).iterator()
            return {str(o.uuid): o.properties for o in objects}

        assert stored(f"{alias}_new") == stored(live) and len(stored(live)) == 5
        recorded = {
            **pipeline.asset_materializations_for_node("corpus_shard")[0].metadata,
            **pipeline.asset_materializations_for_node("chunks")[0].metadata,
            **pipeline.asset_materializations_for_node("weaviate_index")[0].metadata,
        }
        [shard_step] = [
            event for event in reindexed.all_events
            if event.is_successful_output and event.step_key.startswith("index_shard_into")
        ]  # fmt: skip
        by_op = shard_step.event_specific_data.metadata
        for name in ("documents", "rejected", "documents_without_tokens", "failed_objects"):
            assert by_op[name].value == recorded[name].value, name
    finally:
        client.collections.delete(live)
