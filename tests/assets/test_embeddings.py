"""The embeddings step on one long shard: it says it is alive while it embeds."""

import json
import re

import pytest
from dagster import DagsterInstance, materialize

import assets.shards
from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from orchestration.jobs import register_shards
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource

PROGRESS = re.compile(
    r"shard a-s00000: ([\d,]+)/([\d,]+) chunks, ([\d,]+)/([\d,]+) tokens embedded, "
    r"[\d,]+ tokens/s, ETA \d+s"
)


@pytest.mark.parametrize("interval", [0.0, 3600.0])
def test_a_long_shard_logs_its_embedding_progress_at_the_steps_pace(
    tmp_path, monkeypatch, interval
):
    monkeypatch.setattr(assets.shards, "PROGRESS_INTERVAL_SECONDS", interval)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    records = [{"id": f"d{i}", "text": f"Document {i} is about rivers. " * 60} for i in range(6)]
    (corpus / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    resources = {
        "corpus": CorpusResource(corpus_path=str(corpus), data_dir=str(tmp_path / "data")),
        "embedder": EmbeddingResource(device="cpu", batch_size=4, data_dir=str(tmp_path)),
    }
    instance = DagsterInstance.ephemeral()
    register_shards.execute_in_process(instance=instance, resources=resources)

    result = materialize([corpus_shard, chunks, embeddings], partition_key="a-s00000",
                         instance=instance, resources=resources)  # fmt: skip

    metadata = result.asset_materializations_for_node("embeddings")[0].metadata
    total_chunks, batches = metadata["chunks"].value, metadata["batches"].value
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    progress = [[int(n.replace(",", "")) for n in m.groups()]
                for m in map(PROGRESS.match, messages) if m]  # fmt: skip
    if interval:
        assert progress == []  # the shard took less than the interval: nothing to say
        return
    assert total_chunks > 4 and len(progress) == batches
    embedded = [done for done, _, _, _ in progress]
    assert embedded == sorted(set(embedded))
    assert progress[-1][:2] == [total_chunks, total_chunks]
    assert progress[-1][2] == progress[-1][3] == metadata["tokens"].value
