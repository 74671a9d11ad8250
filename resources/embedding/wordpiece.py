"""A cached WordPiece path for ASCII text: the model tokenizer's exact ids, several times faster.

Why by hand: the `tokenizers` library pushes every text through an alignment-tracking string
(cleaning, lowercasing, accent stripping) and runs WordPiece again for every word it meets, about
0.4 M tokens/s on one core, while one GPU consumes 8 M. For ASCII text BERT's normalizer reduces
to dropping control characters and lowercasing, and its pre-tokenizer to splitting on whitespace
and ASCII punctuation: CPython's string methods and one regular expression do that at C speed.
The pieces of each distinct word still come from the library's own WordPiece model, cached per
word (natural text repeats its words). Texts this path cannot reproduce exactly (any non-ASCII
character, a special token written in the text) are left to the library, and so is every
tokenizer of another shape. Tests compare the two paths token for token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from tokenizers import Tokenizer

# BERT's pre-tokenizer isolates every ASCII punctuation character (what `char::is_ascii_punctuation`
# accepts: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) and splits on whitespace.
_PUNCTUATION = r"!-/:-@\[-`{-~"
_WORDS = re.compile(rf"[^\s{_PUNCTUATION}]+|[{_PUNCTUATION}]")
# BERT's `clean_text` drops NUL and control characters other than tab, newline and return (which
# become spaces, as the split then ignores them anyway).
_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])
# Bounds the cache on corpora of endless distinct words (numbers, hashes); a clear costs a refill.
_MAX_CACHED_WORDS = 1 << 20


class AsciiWordPiece:
    """Token ids, special tokens included and cut to `max_length`, for ASCII texts."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int,
        prefix: list[int],
        suffix: list[int],
        lowercase: bool,
        special_texts: list[str],
    ) -> None:
        self._model = tokenizer.model
        self._content_length = max_length - len(prefix) - len(suffix)
        self._prefix = prefix
        self._suffix = suffix
        self._lowercase = lowercase
        self._special_texts = special_texts
        self._pieces: dict[str, list[int]] = {}

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
        return [self._encode(text) if text.isascii() else None for text in texts]

    def _encode(self, text: str) -> list[int] | None:
        cleaned = text.translate(_CONTROL)
        folded = cleaned.lower()
        if any(special in folded for special in self._special_texts):
            return None
        pieces = self._pieces
        content: list[int] = []
        for word in _WORDS.findall(folded if self._lowercase else cleaned):
            ids = pieces.get(word)
            if ids is None:
                ids = self._word_pieces(word)
            content.extend(ids)
            if len(content) >= self._content_length:
                del content[self._content_length :]
                break
        return self._prefix + content + self._suffix

    def _word_pieces(self, word: str) -> list[int]:
        if len(self._pieces) >= _MAX_CACHED_WORDS:
            self._pieces.clear()
        ids = self._pieces[word] = [token.id for token in self._model.tokenize(word)]
        return ids


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
