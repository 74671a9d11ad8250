"""Cutting documents into overlapping windows of the embedding model's own tokens.

Windows are measured in model tokens, not characters, so every chunk fits the model exactly and
nothing is truncated silently. Window edges are moved back to the start of a word: a chunk never
begins or ends inside a word piece, so its text re-tokenizes to the same ids that are embedded.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from tokenizers import Encoding, Tokenizer

from resources.corpus.records import Document
from resources.tokenizer.wordpiece import AsciiWordPiece, WordTokens


@dataclass(frozen=True)
class ChunkingConfig:
    """`max_tokens` counts the model's special tokens too: 256 is all-MiniLM-L6-v2's window."""

    max_tokens: int = 256
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not 0 <= self.overlap < (self.max_tokens - 2) // 2:
            raise ValueError("overlap must be at least 0 and under half the window")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_index: int
    text: str
    token_ids: list[int]  # with the model's special tokens, ready for the encoder
    token_count: int  # content tokens, without the special ones

    @property
    def uuid(self) -> str:
        return chunk_uuid(self.doc_id, self.chunk_index)


def chunk_uuid(doc_id: str, chunk_index: int) -> str:
    """Deterministic object id: a re-run overwrites the same object instead of adding one.

    The id weaviate-client's `generate_uuid5` gives (uuid5 in the DNS namespace), computed with
    the standard library so that chunking workers need not import the client (0.8 s each).
    """
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{doc_id}:{chunk_index}"))


def _word_tokens(encoding: Encoding) -> WordTokens:
    """The library's encoding in the form the ASCII path gives."""
    words = encoding.word_ids
    return WordTokens(
        ids=encoding.ids,
        starts=[start for start, _ in encoding.offsets],
        ends=[end for _, end in encoding.offsets],
        word_starts=[
            i == 0 or words[i] is None or words[i] != words[i - 1] for i in range(len(words))
        ],
    )


def _back_to_word_start(position: int, floor: int, starts: list[bool]) -> int:
    """The nearest word start at or before `position`, but not below `floor` (huge words)."""
    for candidate in range(position, floor, -1):
        if starts[candidate]:
            return candidate
    return position


def windows(n_tokens: int, starts: list[bool], width: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) token ranges covering `n_tokens` with `overlap` tokens shared by neighbours."""
    if n_tokens <= width:
        return [(0, n_tokens)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + width, n_tokens)
        if end < n_tokens:
            end = _back_to_word_start(end, start + width // 2, starts)
        spans.append((start, end))
        if end == n_tokens:
            return spans
        start = max(_back_to_word_start(end - overlap, start + 1, starts), start + 1)


class Chunker:
    def __init__(self, tokenizer: Tokenizer, config: ChunkingConfig | None = None) -> None:
        self.tokenizer = tokenizer
        self.config = config or ChunkingConfig()
        template = tokenizer.encode("", add_special_tokens=True).ids
        self._prefix, self._suffix = template[:1], template[1:]
        self._width = self.config.max_tokens - len(template)
        # Exact and several times faster for ASCII documents (see wordpiece.py).
        self._fast = AsciiWordPiece.for_tokenizer(tokenizer, max_length=sys.maxsize)

    def chunk(
        self,
        documents: Iterable[Document],
        on_empty: Callable[[Document], None] | None = None,
        batch_size: int = 256,
    ) -> Iterator[Chunk]:
        """Chunks of each document in order; the tokenizer runs on whole batches in parallel.

        A document whose text has no token at all (only control or zero-width characters) gives
        no chunk; `on_empty` hears of it so that the caller can record it rather than lose it.
        """
        batch: list[Document] = []
        for document in documents:
            batch.append(document)
            if len(batch) == batch_size:
                yield from self._chunk_batch(batch, on_empty)
                batch = []
        if batch:
            yield from self._chunk_batch(batch, on_empty)

    def _chunk_batch(
        self, documents: list[Document], on_empty: Callable[[Document], None] | None
    ) -> Iterator[Chunk]:
        encodings = [self._fast.words(d.text) if self._fast else None for d in documents]
        left = [i for i, encoding in enumerate(encodings) if encoding is None]
        if left:
            texts = [documents[i].text for i in left]
            for i, encoding in zip(
                left, self.tokenizer.encode_batch(texts, add_special_tokens=False), strict=True
            ):
                encodings[i] = _word_tokens(encoding)
        for document, tokens in zip(documents, encodings, strict=True):
            ids = tokens.ids
            if not ids:
                if on_empty is not None:
                    on_empty(document)
                continue
            spans = windows(len(ids), tokens.word_starts, self._width, self.config.overlap)
            for index, (start, end) in enumerate(spans):
                text = document.text[tokens.starts[start] : tokens.ends[end - 1]]
                yield Chunk(
                    document.id,
                    index,
                    text if len(spans) > 1 else document.text.strip(),
                    self._prefix + ids[start:end] + self._suffix,
                    end - start,
                )
