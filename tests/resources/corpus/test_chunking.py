import pytest
from weaviate.util import generate_uuid5

from resources.corpus.chunking import Chunker, ChunkingConfig, chunk_uuid, windows
from resources.corpus.records import Document
from resources.corpus.sample import SampleSpec, make_document
from resources.tokenizer.model_source import load_tokenizer
from tests.text_samples import random_ascii_texts, random_mixed_texts


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_windows_cover_everything_with_the_requested_overlap():
    starts = [True] * 1000
    spans = windows(1000, starts, width=254, overlap=32)
    assert spans[0] == (0, 254) and spans[-1][1] == 1000
    for (_, a_end), (b_start, b_end) in zip(spans, spans[1:], strict=False):
        assert a_end - b_start == 32
        assert b_end - b_start <= 254
    assert windows(10, [True] * 10, width=254, overlap=32) == [(0, 10)]


def test_windows_never_cut_inside_a_word():
    starts = [i % 3 == 0 for i in range(100)]  # every word is three pieces
    for start, end in windows(100, starts, width=20, overlap=4):
        assert starts[start]
        assert end == 100 or starts[end]


def test_short_documents_are_one_chunk_of_the_whole_text(tokenizer):
    chunker = Chunker(tokenizer)
    [chunk] = chunker.chunk([Document("d1", "A short text about rivers.")])
    assert chunk.text == "A short text about rivers."
    assert chunk.token_ids == tokenizer.encode(chunk.text).ids
    assert chunk.token_count == len(chunk.token_ids) - 2
    assert chunk.uuid == chunk_uuid("d1", 0)


def test_long_documents_become_overlapping_windows_that_fit_the_model(tokenizer):
    text = " ".join(f"word{i} unbelievably" for i in range(600))
    chunker = Chunker(tokenizer, ChunkingConfig(max_tokens=128, overlap=16))
    chunks = list(chunker.chunk([Document("long", text)]))
    assert len(chunks) > 5
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert len(chunk.token_ids) <= 128
        # The chunk's text re-tokenizes to exactly the ids that get embedded.
        assert tokenizer.encode(chunk.text).ids == chunk.token_ids
        assert chunk.text in text
    assert text.startswith(chunks[0].text) and text.endswith(chunks[-1].text)
    assert len({c.uuid for c in chunks}) == len(chunks)


def test_documents_without_tokens_are_reported_not_lost(tokenizer):
    empty = []
    chunks = list(Chunker(tokenizer).chunk([Document("z", "\u200b"), Document("a", "ok")],
                                           on_empty=empty.append))  # fmt: skip
    assert [c.doc_id for c in chunks] == ["a"]
    assert [d.id for d in empty] == ["z"]


def test_uuid_is_deterministic_and_distinct_per_chunk():
    assert chunk_uuid("doc-1", 0) == chunk_uuid("doc-1", 0)
    assert chunk_uuid("doc-1", 0) != chunk_uuid("doc-1", 1)
    assert chunk_uuid("doc-1", 11) != chunk_uuid("doc-11", 1)


@pytest.mark.parametrize("config", [ChunkingConfig(), ChunkingConfig(max_tokens=16, overlap=2)])
def test_the_ascii_path_cuts_exactly_the_chunks_the_library_does(tokenizer, config):
    spec = SampleSpec(docs=6, seed=3, median_tokens=700)
    documents = [Document(d["id"], d["text"]) for d in (make_document(i, spec) for i in range(6))]
    documents += [
        Document(f"ascii-{i}", text) for i, text in enumerate(random_ascii_texts(60, seed=5))
    ]
    documents.append(Document("long-words", "supercalifragilisticexpialidocious " * 40))
    documents.append(Document("non-ascii", "café naïve " * 50))
    documents += [
        Document(f"mixed-{i}", text) for i, text in enumerate(random_mixed_texts(40, seed=6))
    ]
    documents.append(Document("cjk", "东京都" * 400))
    documents.append(Document("control", "tab\there \x07bell " * 50))
    fast = Chunker(tokenizer, config)
    library = Chunker(tokenizer, config)
    library._fast = None
    assert fast._fast is not None
    assert list(fast.chunk(documents)) == list(library.chunk(documents))


def test_chunk_ids_are_the_ones_weaviate_client_generates():
    assert chunk_uuid("doc-7", 3) == generate_uuid5("doc-7:3")
