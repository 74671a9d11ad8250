import json

from resources.corpus.sample import SampleSpec, make_document, write_sample_corpus
from resources.embedding.model_source import load_tokenizer


def test_token_counts_are_exact_for_the_model_tokenizer():
    tokenizer = load_tokenizer()
    spec = SampleSpec(docs=20, seed=3)
    for index in range(20):
        doc = make_document(index, spec)
        ids = tokenizer.encode(doc["text"], add_special_tokens=False).ids
        assert len(ids) == doc["tokens"]
        assert 100 <= doc["tokens"] <= 50_000


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path):
    spec = SampleSpec(docs=30, seed=7, docs_per_file=10)
    first = write_sample_corpus(tmp_path / "a", spec)
    second = write_sample_corpus(tmp_path / "b", spec)
    other = write_sample_corpus(tmp_path / "c", SampleSpec(docs=30, seed=8, docs_per_file=10))
    for name in ("part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first == second
    assert (tmp_path / "a" / "part-00000.jsonl").read_bytes() != (
        tmp_path / "c" / "part-00000.jsonl"
    ).read_bytes()
    assert other["documents"] == 30


def test_lengths_are_heavy_tailed_within_bounds(tmp_path):
    stats = write_sample_corpus(tmp_path, SampleSpec(docs=2000, docs_per_file=1000))
    assert stats["documents"] == 2000
    assert stats["min_tokens"] >= 100 and stats["max_tokens"] <= 50_000
    # Most documents short, a long tail: the 99th percentile is many times the median.
    assert stats["p50_tokens"] < 1000
    assert stats["p99_tokens"] > 8 * stats["p50_tokens"]
    assert json.loads((tmp_path / "corpus_stats.json").read_text()) == stats
    lines = (tmp_path / "part-00001.jsonl").read_text().splitlines()
    assert len(lines) == 1000
    record = json.loads(lines[0])
    assert record["id"] == "doc-0001000"
    assert set(record) == {"id", "text", "title", "topic", "year", "tokens"}
