"""A cached WordPiece path for mostly-ASCII text: the model tokenizer's exact ids, faster.

Why by hand: the `tokenizers` library pushes every text through an alignment-tracking string
(cleaning, lowercasing, accent stripping) and runs WordPiece again for every word it meets, about
0.4 M tokens/s on one core, while one GPU consumes 8 M. For ASCII text BERT's normalizer reduces
to dropping control characters and lowercasing, and its pre-tokenizer to splitting on whitespace
and ASCII punctuation: CPython's string methods and one regular expression do that at C speed.
The pieces of each distinct word still come from the library's own WordPiece model, cached per
word (natural text repeats its words). A run of text between ASCII whitespace that holds a
non-ASCII character goes to the library whole, and is cached too: a curly quote or an accented
name costs one library call, not the whole text's. Texts that write out a special token are left
to the library, and so is every tokenizer of another shape. Tests compare the two paths token for
token.

On the mixed benchmark corpus this is 3.5x the library per core for ASCII texts and 2x with one
non-ASCII word in every text; on text of nothing but distinct made-up words (no cache hits) it is
slower than the library.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

# BERT's pre-tokenizer isolates every ASCII punctuation character (what `char::is_ascii_punctuation`
# accepts: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) and splits on whitespace.
_PUNCTUATION = r"!-/:-@\[-`{-~"
_WORDS = re.compile(rf"[^\s{_PUNCTUATION}]+|[{_PUNCTUATION}]")
_WORD_SPLIT = re.compile(rf"([^\s{_PUNCTUATION}]+|[{_PUNCTUATION}])")
# A run between ASCII whitespace that holds a non-ASCII character goes to the library, run by run
# (cached like words): BERT's normalizer works character by character and its pre-tokenizer
# splits at whitespace, so a run comes out as it would in its text.
_FOREIGN = re.compile(r"([^ \t\n\r]*[^\x00-\x7f][^ \t\n\r]*)")
# BERT's `clean_text` drops NUL and control characters other than tab, newline and return (which
# become spaces, as the split then ignores them anyway).
_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])
_HAS_CONTROL = re.compile("[" + "".join(re.escape(chr(code)) for code in _CONTROL) + "]")
# Bounds the cache on corpora of endless distinct words (numbers, hashes); a clear costs a refill.
_MAX_CACHED_WORDS = 1 << 20


@dataclass
class WordTokens:
    """A text's tokens: ids, each token's character span, whether it starts a word."""

    ids: list[int]
    starts: list[int]
    ends: list[int]
    word_starts: list[bool]

    def extend(self, other: WordTokens) -> None:
        self.ids += other.ids
        self.starts += other.starts
        self.ends += other.ends
        self.word_starts += other.word_starts


class _WordCache(dict[str, list[int]]):
    """Word -> WordPiece ids, filled on a miss; also each piece's character span in the word.

    A dict subclass so that a hit is a C-level lookup: `map(cache.__getitem__, words)` runs a
    text's words without a Python frame per word, and only a miss calls `__missing__`.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self._model = model
        # Each piece's (start, end) in the word, flattened: start, end, start, end, ...
        self.spans: dict[str, list[int]] = {}

    def __missing__(self, word: str) -> list[int]:
        self.make_room(1)
        return self.store(word)

    def store(self, word: str) -> list[int]:
        tokens = self._model.tokenize(word)
        self.spans[word] = [offset for token in tokens for offset in token.offsets]
        ids = self[word] = [token.id for token in tokens]
        return ids

    def make_room(self, words: int) -> bool:
        """Empty the cache when `words` more would overflow it; True when it did."""
        if len(self) + words <= _MAX_CACHED_WORDS:
            return False
        self.clear()
        self.spans.clear()
        return True


class AsciiWordPiece:
    """Token ids, special tokens included and cut to `max_length`; ASCII words cached one by one."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int,
        prefix: list[int],
        suffix: list[int],
        lowercase: bool,
        special_texts: list[str],
    ) -> None:
        self._content_length = max_length - len(prefix) - len(suffix)
        self._prefix = prefix
        self._suffix = suffix
        self._lowercase = lowercase
        self._special_texts = special_texts
        self._pieces = _WordCache(tokenizer.model)
        self._library = Tokenizer.from_str(tokenizer.to_str())
        self._library.no_truncation()
        self._library.no_padding()
        self._runs: dict[str, WordTokens] = {}

    @classmethod
    def for_tokenizer(cls, tokenizer: Tokenizer, max_length: int) -> AsciiWordPiece | None:
        """This path for a BERT-shaped tokenizer (the sentence-transformers norm), else None."""
        config = json.loads(tokenizer.to_str())
        normalizer = config.get("normalizer") or {}
        if (
            normalizer.get("type") != "BertNormalizer"
            or not normalizer.get("clean_text")
            or (config.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer"
            or config["model"].get("type") != "WordPiece"
        ):
            return None
        edges = _template_edges(config.get("post_processor") or {})
        if edges is None or max_length <= len(edges[0]) + len(edges[1]):
            return None
        specials = [token["content"].lower() for token in config.get("added_tokens", [])]
        return cls(tokenizer, max_length, *edges, bool(normalizer.get("lowercase")), specials)

    def encode(self, texts: Sequence[str]) -> list[list[int] | None]:
        """Ids per text, or None for a text this path leaves to the library."""
        return [self._encode(text) for text in texts]

    def _encode(self, text: str) -> list[int] | None:
        # Per text, only C-level calls: no Python loop over words (the bulk of the time).
        cleaned = text.translate(_CONTROL) if _HAS_CONTROL.search(text) else text
        folded = cleaned.lower()
        if self._names_a_special_token(folded):
            return None
        limit = self._content_length
        content: list[int] = []
        parts = [cleaned] if cleaned.isascii() else _FOREIGN.split(cleaned)
        for index, part in enumerate(parts):
            if index % 2:
                content += self._run(part).ids
            else:
                words = _WORDS.findall(part.lower() if self._lowercase else part)
                # Every word is at least one token: no more words than tokens still wanted count.
                del words[limit - len(content) :]
                content += itertools.chain.from_iterable(map(self._pieces.__getitem__, words))
            if len(content) >= limit:
                break
        del content[limit:]
        return self._prefix + content + self._suffix

    def words(self, text: str) -> WordTokens | None:
        """Untruncated ids without special tokens, with character offsets into `text` and word
        starts: what the chunker cuts windows from. None as in `encode`; also for text with
        control characters, whose removal would shift the offsets.

        Whole documents go through here, so the per-word work is kept to C-level maps over the
        words, and the per-token offsets are assembled with numpy.
        """
        if _HAS_CONTROL.search(text):
            return None
        if self._names_a_special_token(text.lower()):
            return None
        if text.isascii():
            return self._ascii_words(text, 0)
        tokens = WordTokens([], [], [], [])
        offset = 0
        for index, part in enumerate(_FOREIGN.split(text)):
            if part:
                tokens.extend(
                    self._run(part, offset) if index % 2 else self._ascii_words(part, offset)
                )
            offset += len(part)
        return tokens

    def _names_a_special_token(self, folded: str) -> bool:
        return any(special in folded for special in self._special_texts)

    def _ascii_words(self, text: str, offset: int) -> WordTokens:
        # Splitting on the words (a capturing group) returns them at odd positions between the
        # whitespace runs; their offsets follow from the lengths. Much faster than `finditer`.
        parts = _WORD_SPLIT.split(text.lower() if self._lowercase else text)
        words = parts[1::2]
        part_lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        begins = (np.cumsum(part_lengths) - part_lengths)[1::2] + offset
        # Fill the cache first (emptying it at most once), so no word's spans can be cleared
        # between the two lookups below.
        missing = set(words).difference(self._pieces)
        if self._pieces.make_room(len(missing)):
            missing = set(words)
        for word in missing:
            self._pieces.store(word)
        entries = list(map(self._pieces.__getitem__, words))
        counts = np.fromiter(map(len, entries), dtype=np.int64, count=len(entries))
        spans = np.fromiter(
            itertools.chain.from_iterable(map(self._pieces.spans.__getitem__, words)),
            dtype=np.int64,
            count=2 * int(counts.sum()),
        ).reshape(-1, 2)
        word_begin = np.repeat(begins, counts)
        first = np.zeros(len(spans), dtype=bool)
        first[np.cumsum(counts) - counts] = True
        return WordTokens(
            ids=list(itertools.chain.from_iterable(entries)),
            starts=(word_begin + spans[:, 0]).tolist(),
            ends=(word_begin + spans[:, 1]).tolist(),
            word_starts=first.tolist(),
        )

    def _run(self, run: str, offset: int = 0) -> WordTokens:
        """A run with non-ASCII characters, as the library tokenizes it, offsets moved by
        `offset`."""
        tokens = self._runs.get(run)
        if tokens is None:
            if len(self._runs) >= _MAX_CACHED_WORDS:
                self._runs.clear()
            encoding = self._library.encode(run, add_special_tokens=False)
            words = encoding.word_ids
            tokens = self._runs[run] = WordTokens(
                ids=encoding.ids,
                starts=[start for start, _ in encoding.offsets],
                ends=[end for _, end in encoding.offsets],
                word_starts=[i == 0 or words[i] != words[i - 1] for i in range(len(words))],
            )
        if offset == 0:
            return tokens
        return WordTokens(
            tokens.ids,
            [start + offset for start in tokens.starts],
            [end + offset for end in tokens.ends],
            tokens.word_starts,
        )


def _template_edges(post_processor: dict) -> tuple[list[int], list[int]] | None:
    """Special-token ids before and after a single sequence, for the templates BERT models use."""
    if post_processor.get("type") == "BertProcessing":
        return [post_processor["cls"][1]], [post_processor["sep"][1]]
    if post_processor.get("type") != "TemplateProcessing":
        return None
    special_ids = {name: token["ids"] for name, token in post_processor["special_tokens"].items()}
    edges: tuple[list[int], list[int]] = ([], [])
    side = 0
    for piece in post_processor["single"]:
        if "Sequence" in piece:
            side += 1
        else:
            edges[min(side, 1)].extend(special_ids[piece["SpecialToken"]["id"]])
    return edges if side == 1 else None
