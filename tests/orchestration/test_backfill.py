"""A backfill of several shards through a real Dagster instance and the project's job."""

import json
import uuid

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.partitions import shard_partitions
from assets.shards import SHARDS_PER_RUN
from orchestration.jobs import index_shards, register_shards
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource
from tests.conftest import connect


def test_a_backfill_run_materializes_every_shard_exactly_once(tmp_path, weaviate_server):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [{"id": f"d{i}", "text": f"Short document {i} about a river."} for i in range(9)]
    (corpus / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    data = str(tmp_path / "data")
    collection = f"Backfill_{uuid.uuid4().hex[:6]}"
    resources = {
        "corpus": CorpusResource(corpus_path=str(corpus), shard_size=3, data_dir=data),
        "embedder": EmbeddingResource(device="cpu", data_dir=data),
        "weaviate": WeaviateResource(
            mode="local", url=f"http://127.0.0.1:{weaviate_server.http_port}",
            grpc_port=weaviate_server.grpc_port, api_key=weaviate_server.api_key,
            collection=collection, data_dir=data,
        ),
    }  # fmt: skip
    project = Definitions(
        assets=[corpus_shard, chunks, embeddings, weaviate_index],
        asset_checks=[object_count_matches_chunks],
        jobs=[register_shards, index_shards],
        resources=resources,
    )
    instance = DagsterInstance.ephemeral()
    register = project.resolve_job_def("register_shards")
    assert register.execute_in_process(instance=instance).success
    keys = instance.get_dynamic_partitions(shard_partitions.name)
    assert keys == ["a-s00000", "a-s00001", "a-s00002"] and len(keys) <= SHARDS_PER_RUN

    # What a backfill with the assets' multi-run policy launches: one run over the range.
    index = project.resolve_job_def("index_shards")
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    result = index.execute_in_process(instance=instance, tags=tags)
    assert result.success

    for asset in ("corpus_shard", "chunks", "embeddings", "weaviate_index"):
        records = instance.fetch_materializations(AssetKey(asset), limit=100).records
        partitions = sorted(r.event_log_entry.dagster_event.partition for r in records)
        assert partitions == keys, asset
    # Each shard's materialization holds its own numbers, not the run's totals.
    records = instance.fetch_materializations(AssetKey("chunks"), limit=100).records
    for record in records:
        metadata = record.event_log_entry.asset_materialization.metadata
        assert (metadata["documents"].value, metadata["shards_in_run"].value) == (3, 3)
    with connect(weaviate_server) as client:
        try:
            objects = client.collections.get(collection).iterator()
            stored = sorted((o.properties["shard"], o.properties["doc_id"]) for o in objects)
        finally:
            client.collections.delete(collection)
    assert stored == [(f"a-s0000{i // 3}", f"d{i}") for i in range(9)]
