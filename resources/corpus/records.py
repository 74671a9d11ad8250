"""Turning raw records into documents, or into rejects that say what was wrong and where.

A record is `{"id": str, "text": str, ...metadata}`. Metadata values must be scalars because each
key becomes a typed Weaviate property; nested values are refused here rather than by the server,
where the error would be far from the line that caused it.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """A record that was not indexed, with its location (`file:line N` or `file:row N`)."""

    location: str
    reason: str
    raw: str = ""

    def as_json(self) -> str:
        return json.dumps({"location": self.location, "reason": self.reason, "raw": self.raw})


@dataclass(frozen=True)
class RawRecord:
    """What a reader produced at one location: a decoded object, or why it could not decode."""

    location: str
    payload: Any = None
    error: str | None = None
    raw: str = ""


_RAW_EXCERPT = 500


def _excerpt(raw: str) -> str:
    return raw if len(raw) <= _RAW_EXCERPT else raw[:_RAW_EXCERPT] + "..."


def _excerpt_payload(payload: Any) -> str:
    """A short JSON rendering that never serializes a huge text in full."""
    if isinstance(payload, dict) and isinstance(payload.get("text"), str):
        payload = {**payload, "text": _excerpt(payload["text"])}
    return _excerpt(json.dumps(payload, default=str))


def validate(record: RawRecord, max_chars: int | None = None) -> Document | Reject:
    """Check one record's shape and normalize its text (Unicode NFC).

    `max_chars` refuses documents far beyond what the corpus is meant to hold (a stray
    multi-megabyte file body) instead of turning them into thousands of chunks.
    """
    if record.error is not None:
        return Reject(record.location, record.error, _excerpt(record.raw))
    payload = record.payload
    # Rejects carry this excerpt; it never serializes a whole long text.
    raw = _excerpt(record.raw) if record.raw else _excerpt_payload(payload)
    if not isinstance(payload, dict):
        return Reject(record.location, f"record is a {type(payload).__name__}, not an object", raw)
    doc_id, text = payload.get("id"), payload.get("text")
    if not isinstance(doc_id, str):
        kind = "missing" if doc_id is None else f"a {type(doc_id).__name__}, not a string"
        return Reject(record.location, f"field 'id' is {kind}", raw)
    if not doc_id.strip():
        return Reject(record.location, "field 'id' is empty", raw)
    if not isinstance(text, str):
        kind = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return Reject(record.location, f"field 'text' is {kind} (document {doc_id!r})", raw)
    if not text.strip():
        return Reject(record.location, f"field 'text' is empty (document {doc_id!r})", raw)
    if max_chars is not None and len(text) > max_chars:
        return Reject(
            record.location,
            f"field 'text' has {len(text):,} characters, over the limit of {max_chars:,} "
            f"(document {doc_id!r}; raise corpus.max_document_chars to index it)",
            raw[:200],
        )
    metadata: dict[str, MetadataValue] = {}
    for key, value in payload.items():
        if key in ("id", "text") or value is None:
            continue
        if not isinstance(value, MetadataValue):
            return Reject(
                record.location,
                f"metadata field {key!r} is a {type(value).__name__}; only strings, numbers and "
                f"booleans are supported (document {doc_id!r})",
                raw,
            )
        metadata[key] = value
    return Document(doc_id.strip(), unicodedata.normalize("NFC", text), metadata)
