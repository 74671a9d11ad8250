"""The full re-index against the real server: a new collection, then the alias, and only then.

Searches go through the alias throughout; the old collection holds one marker object, so which
collection the alias points at is visible in what a search returns.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import weaviate
from dagster import DagsterInstance
from weaviate.classes.data import DataObject

from orchestration.reindex import reindex
from resources.corpus.manifest import register_corpus
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource
from resources.weaviate.aliases import alias_target, point_alias
from resources.weaviate.schema import ensure_collection
from tests.conftest import connect

MARKER = "in-the-old-collection"


@pytest.fixture
def client(weaviate_server) -> Iterator[weaviate.WeaviateClient]:
    with connect(weaviate_server) as c:
        yield c


@pytest.fixture
def alias(client: weaviate.WeaviateClient) -> Iterator[str]:
    """A live index: the alias on a collection holding one marker object."""
    name = f"Index_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, f"{name}_old")
    client.collections.get(f"{name}_old").data.insert_many(
        [DataObject({"doc_id": MARKER, "shard": "old"}, vector={"default": [1.0] * 384})]
    )
    client.alias.create(alias_name=name, target_collection=f"{name}_old")
    yield name
    client.alias.delete(alias_name=name)
    for collection in (f"{name}_old", f"{name}_new"):
        client.collections.delete(collection)


def write_corpus(folder: Path, broken: bool = False) -> None:
    """Three shards of two short documents; `broken` puts a malformed line in the last one."""
    folder.mkdir()
    lines = [json.dumps({"id": f"a{i}", "text": f"the river bank number {i}"}) for i in range(4)]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    second = '{"id": "b1", "text": ' if broken else '{"id": "b1", "text": "a forest"}'
    (folder / "b.jsonl").write_text('{"id": "b0", "text": "a meadow"}\n' + second + "\n")


def run_reindex(tmp_path: Path, server, alias: str, broken: bool = False):
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
            collection=alias,
            data_dir=data_dir,
            retry_seconds=1.0,
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


def test_an_index_from_before_aliases_is_replaced_by_the_alias(client) -> None:
    name = f"Legacy_{uuid.uuid4().hex[:8]}"
    ensure_collection(client, name)  # the index under its public name, no alias yet
    ensure_collection(client, f"{name}_new")

    assert point_alias(client, name, f"{name}_new") is None

    assert alias_target(client, name) == f"{name}_new"
    assert client.collections.exists(name), "the name now resolves through the alias"
    client.alias.delete(alias_name=name)
    client.collections.delete(f"{name}_new")
