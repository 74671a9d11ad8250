"""The whole pipeline through Dagster's `materialize`, checked by what ends up in Weaviate."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize
from sentence_transformers import SentenceTransformer
from weaviate.classes.query import Filter, MetadataQuery

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.partitions import shard_partitions
from orchestration.jobs import register_shards
from resources.corpus.chunking import Chunker
from resources.corpus.records import Document
from resources.corpus.resource import CorpusResource
from resources.corpus.sample import SampleSpec, iter_documents
from resources.embedding import EmbeddingResource
from resources.tokenizer.model_source import load_tokenizer, resolve_model_path
from resources.weaviate import WeaviateResource
from tests.conftest import connect

ASSETS = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]
DOCS = 200


def _write_corpus(folder):
    """150 documents as JSONL in two files, 50 more as Parquet: both readers are exercised."""
    folder.mkdir()
    spec = SampleSpec(docs=DOCS, seed=11, median_tokens=120, max_tokens=1200)
    documents = list(iter_documents(spec))
    for name, part in (("a.jsonl", documents[:80]), ("b.jsonl", documents[80:150])):
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in part))
    pq.write_table(pa.Table.from_pylist(documents[150:]), folder / "c.parquet", row_group_size=16)
    return documents


def _materialize_all(instance, resources):
    keys = instance.get_dynamic_partitions(shard_partitions.name)
    return {
        key: materialize(ASSETS, partition_key=key, instance=instance, resources=resources)
        for key in keys
    }


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, weaviate_server):
    root = tmp_path_factory.mktemp("pipeline")
    documents = _write_corpus(root / "corpus")
    data_dir = str(root / "data")
    collection = f"Pipeline_{uuid.uuid4().hex[:8]}"
    resources = {
        "corpus": CorpusResource(
            corpus_path=str(root / "corpus"), shard_size=50, data_dir=data_dir
        ),
        "embedder": EmbeddingResource(device="cpu", data_dir=data_dir),
        "weaviate": WeaviateResource(
            mode="local",
            url=f"http://127.0.0.1:{weaviate_server.http_port}",
            grpc_port=weaviate_server.grpc_port,
            api_key=weaviate_server.api_key,
            collection=collection,
            data_dir=data_dir,
        ),  # fmt: skip
    }
    instance = DagsterInstance.ephemeral()
    registered = register_shards.execute_in_process(
        instance=instance, resources={"corpus": resources["corpus"]}
    )
    assert registered.success
    results = _materialize_all(instance, resources)
    client = connect(weaviate_server)
    yield {
        "documents": documents,
        "results": results,
        "resources": resources,
        "instance": instance,
        "client": client,
        "collection": client.collections.get(collection),
    }
    client.collections.delete(collection)
    client.close()


def _expected_chunks(documents):
    chunker = Chunker(load_tokenizer())
    docs = [Document(d["id"], d["text"], {k: v for k, v in d.items() if k not in ("id", "text")})
            for d in documents]  # fmt: skip
    metadata = {d.id: d.metadata for d in docs}
    return {c.uuid: (c, metadata[c.doc_id]) for c in chunker.chunk(docs)}


def _all_objects(collection):
    return list(collection.iterator(include_vector=True))


def test_every_shard_registers_and_materializes(indexed):
    results = indexed["results"]
    assert sorted(results) == ["a-s00000", "a-s00001", "b-s00000", "b-s00001", "c-s00000"]
    assert all(r.success for r in results.values())
    documents = sum(
        r.asset_materializations_for_node("corpus_shard")[0].metadata["documents"].value
        for r in results.values()
    )
    assert documents == DOCS


def test_weaviate_holds_exactly_the_expected_chunks_with_their_properties(indexed):
    expected = _expected_chunks(indexed["documents"])
    objects = _all_objects(indexed["collection"])
    assert len(objects) == len(expected)
    assert {str(o.uuid) for o in objects} == set(expected)
    for obj in objects:
        chunk, metadata = expected[str(obj.uuid)]
        props = obj.properties
        assert props["doc_id"] == chunk.doc_id
        assert props["chunk_index"] == chunk.chunk_index
        assert props["text"] == chunk.text
        assert props["token_count"] == chunk.token_count
        assert (props["title"], props["topic"], props["year"]) == (
            metadata["title"], metadata["topic"], metadata["year"],
        )  # fmt: skip
        assert props["shard"].split("-s")[0] in ("a", "b", "c")


def test_vectors_match_sentence_transformers(indexed):
    model = SentenceTransformer(str(resolve_model_path()), device="cpu")
    objects = _all_objects(indexed["collection"])[:40]
    reference = model.encode([o.properties["text"] for o in objects], normalize_embeddings=True)
    stored = np.array([o.vector["default"] for o in objects], dtype=np.float32)
    cosine = np.sum(stored * reference, axis=1)
    assert cosine.min() >= 0.999


def test_a_documents_own_text_finds_that_document_first(indexed):
    documents = {d["id"]: d for d in indexed["documents"]}
    single = next(d for d in documents.values() if d["tokens"] < 200)
    model = SentenceTransformer(str(resolve_model_path()), device="cpu")
    query = model.encode([single["text"]], normalize_embeddings=True)[0]
    hits = indexed["collection"].query.near_vector(
        near_vector=query.tolist(), target_vector="default", limit=3
    )
    assert hits.objects[0].properties["doc_id"] == single["id"]


def test_the_count_check_passed_for_every_shard(indexed):
    for result in indexed["results"].values():
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.passed
        metadata = evaluation.metadata
        assert metadata["expected_objects"].value == metadata["objects_in_weaviate"].value > 0


def _written(collection) -> dict:
    """Each object's properties, vector and the server's own time of its last write."""
    objects = collection.iterator(
        include_vector=True, return_metadata=MetadataQuery(last_update_time=True)
    )
    return {str(o.uuid): (o.properties, o.vector, o.metadata.last_update_time) for o in objects}


def test_an_unchanged_rematerialization_does_no_gpu_work_and_writes_nothing(indexed):
    collection = indexed["collection"]
    before = _written(collection)
    vectors_file = Path(indexed["resources"]["corpus"].files("b-s00001").embeddings)
    vectors_written = vectors_file.stat().st_mtime_ns
    rematerialized_from = datetime.now(UTC)
    again = materialize(
        ASSETS,
        partition_key="b-s00001",
        instance=indexed["instance"],
        resources=indexed["resources"],
    )
    assert again.success
    embedded = again.asset_materializations_for_node("embeddings")[0].metadata
    assert embedded["reused_checkpoint"].value is True
    # The numbers of the run that computed the vectors, so the UI's plots stay whole.
    first = indexed["results"]["b-s00001"].asset_materializations_for_node("embeddings")[0].metadata
    assert {name: embedded[name].value for name in ("texts", "tokens", "batches")} == {
        name: first[name].value for name in ("texts", "tokens", "batches")
    }
    assert vectors_file.stat().st_mtime_ns == vectors_written
    index = again.asset_materializations_for_node("weaviate_index")[0].metadata
    assert index["reused_checkpoint"].value is True
    # Likewise the figures of the ingest that wrote the objects: the plots show the current state's.
    ingest = indexed["results"]["b-s00001"].asset_materializations_for_node("weaviate_index")
    first_index = ingest[0].metadata
    assert first_index["reused_checkpoint"].value is False
    figures = ("objects", "stale_deleted", "ingest_batches", "ingest_seconds",
               "ingest_objects_per_second")  # fmt: skip
    assert {name: index[name].value for name in figures} == {
        name: first_index[name].value for name in figures
    }
    assert index["objects"].value == index["objects_in_weaviate"].value > 0
    # The server rewrote no object: every one keeps the time of its last write, and that write
    # came before this materialization (Weaviate stamps even an identical overwrite).
    after = _written(collection)
    assert after == before
    assert all(updated < rematerialized_from for _, _, updated in after.values())
    shard = collection.query.fetch_objects(
        filters=Filter.by_property("shard").equal("b-s00001"), limit=10_000
    )
    assert len(shard.objects) == index["objects_in_weaviate"].value > 0
