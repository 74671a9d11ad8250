import json

from resources.corpus.chunking import Chunker, ChunkingConfig, windows
from resources.corpus.records import Document
from resources.corpus.sample import (
    SampleSpec,
    chunk_count,
    corpus_totals,
    embedded_tokens,
    make_document,
    write_sample_corpus,
)
from resources.tokenizer.model_source import load_tokenizer


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


def test_output_is_byte_identical_whatever_the_worker_count(tmp_path):
    spec = SampleSpec(docs=45, seed=2, docs_per_file=10)
    one = write_sample_corpus(tmp_path / "one", spec, workers=1)
    three = write_sample_corpus(tmp_path / "three", spec, workers=3)
    assert one == three and one["documents"] == 45 and one["files"] == 5
    for name in sorted(p.name for p in (tmp_path / "one").iterdir()):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "three" / name).read_bytes()
    assert not list((tmp_path / "three").glob("*.partial"))


def test_chunk_count_matches_the_window_arithmetic_and_the_real_chunker():
    # Sample tokens are whole words: every position is a word start.
    for n in [*range(1, 1200), 49_999, 50_000]:
        assert chunk_count(n) == len(windows(n, [True] * n, 254, 32)), n
    chunker = Chunker(load_tokenizer(), ChunkingConfig(max_tokens=256, overlap=32))
    spec = SampleSpec(docs=12, seed=9, median_tokens=900)
    docs = [make_document(i, spec) for i in range(12)]
    for doc in docs:
        chunks = list(chunker.chunk([Document(doc["id"], doc["text"])]))
        assert len(chunks) == chunk_count(doc["tokens"]), doc["tokens"]
        assert sum(len(c.token_ids) for c in chunks) == embedded_tokens(doc["tokens"])


def test_totals_of_a_corpus_are_known_without_writing_it(tmp_path):
    spec = SampleSpec(docs=120, seed=4, docs_per_file=50)
    stats = write_sample_corpus(tmp_path, spec)
    totals = corpus_totals(spec)
    assert (totals["documents"], totals["tokens"], totals["chunks"]) == (
        stats["documents"], stats["tokens"], stats["chunks"]
    )  # fmt: skip
    assert totals["embedded_tokens"] == sum(
        embedded_tokens(make_document(i, spec)["tokens"]) for i in range(120)
    )


def test_statistics_count_chunks_and_exact_percentiles(tmp_path):
    spec = SampleSpec(docs=300, seed=1, docs_per_file=100)
    stats = write_sample_corpus(tmp_path, spec, workers=2)
    lengths = sorted(make_document(i, spec)["tokens"] for i in range(300))
    assert stats["tokens"] == sum(lengths)
    assert stats["chunks"] == sum(chunk_count(n) for n in lengths)
    assert stats["p90_tokens"] == lengths[270] and stats["p50_tokens"] == lengths[150]
    assert stats["min_tokens"] == lengths[0] and stats["max_tokens"] == lengths[-1]
