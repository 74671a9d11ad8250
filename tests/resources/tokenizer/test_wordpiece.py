import json

import pytest
from tokenizers import Tokenizer

from resources.embedding.tokenization import truncating_tokenizer
from resources.tokenizer.model_source import DEFAULT_MODEL, load_tokenizer
from resources.tokenizer.wordpiece import AsciiWordPiece
from tests.text_samples import random_ascii_texts, random_mixed_texts

TRICKY = [
    "",
    "Hello, World!",
    "UPPER lower MiXeD",
    "tabs\tnew\nlines\r\nand  many   spaces",
    "control\x00chars\x01\x07\x0b\x0c\x1b\x1f\x7fremoved",
    "punctuation!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~everywhere",
    "numbers 3.14159 and 1,000,000 and 0x1F",
    "unaffable tokenization ##ing [unused0]",
    "a" * 101 + " after a word too long for WordPiece",
    "special [MASK] and [cls] tokens written in the text",
    "e-mail: someone@example.com, url: https://example.com/a_b?c=d",
]


def library_ids(texts: list[str], max_length: int) -> list[list[int]]:
    tokenizer = truncating_tokenizer(DEFAULT_MODEL, max_length)
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


def fast_ids(texts: list[str], max_length: int) -> list[list[int] | None]:
    fast = AsciiWordPiece.for_tokenizer(truncating_tokenizer(DEFAULT_MODEL, max_length), max_length)
    assert fast is not None
    return fast.encode(texts)


@pytest.mark.parametrize("max_length", [8, 64, 256])
def test_ascii_texts_get_the_libraries_ids_exactly(max_length):
    texts = TRICKY + random_ascii_texts(400, seed=max_length)
    expected = library_ids(texts, max_length)
    got = fast_ids(texts, max_length)
    handled = [(g, e) for g, e in zip(got, expected, strict=True) if g is not None]
    assert [g for g, _ in handled] == [e for _, e in handled]
    # Only the texts that name a special token are left to the library.
    assert [t for t, g in zip(texts, got, strict=True) if g is None] == [TRICKY[9]]


@pytest.mark.parametrize("max_length", [8, 256])
def test_texts_with_non_ascii_words_get_the_libraries_ids_exactly(max_length):
    texts = random_mixed_texts(300, seed=max_length) + ["naïve café", "emoji 🙂", "东京" * 300]
    got = fast_ids(texts, max_length)
    expected = library_ids(texts, max_length)
    assert [g for g in got if g is not None] == [
        e for g, e in zip(got, expected, strict=True) if g is not None
    ]
    assert None not in got  # no text here writes out a special token


def test_the_cache_answers_the_same_the_second_time():
    fast = AsciiWordPiece.for_tokenizer(truncating_tokenizer(DEFAULT_MODEL, 64), 64)
    texts = random_ascii_texts(50, seed=1)
    assert fast.encode(texts) == fast.encode(texts) == library_ids(texts, 64)


def test_tokenizers_of_another_shape_take_the_library_path():
    config = json.loads(load_tokenizer(DEFAULT_MODEL).to_str())
    config["pre_tokenizer"] = {"type": "Whitespace"}
    other = Tokenizer.from_str(json.dumps(config))
    assert AsciiWordPiece.for_tokenizer(other, 64) is None
    assert AsciiWordPiece.for_tokenizer(truncating_tokenizer(DEFAULT_MODEL, 2), 2) is None


def test_a_full_cache_is_emptied_without_changing_any_ids(monkeypatch):
    monkeypatch.setattr("resources.tokenizer.wordpiece._MAX_CACHED_WORDS", 5)
    texts = random_ascii_texts(100, seed=2)
    fast = AsciiWordPiece.for_tokenizer(truncating_tokenizer(DEFAULT_MODEL, 64), 64)
    assert fast.encode(texts) == library_ids(texts, 64)
    assert len(fast._pieces) <= 5
    # Whole texts with their offsets, as the chunker asks (None: left to the library).
    untruncated = load_tokenizer(DEFAULT_MODEL)
    compared = [(fast.words(text), text) for text in texts]
    compared = [(words, text) for words, text in compared if words is not None]
    assert len(compared) >= 5
    for words, text in compared:
        assert words.ids == untruncated.encode(text, add_special_tokens=False).ids
