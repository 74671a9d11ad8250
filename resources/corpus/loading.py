"""Reading one shard into valid documents plus a record of every record that was refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resources.corpus.reader import ShardSpec, read_shard
from resources.corpus.records import Document, Reject, validate
from resources.files import write_lines


class BadRecordError(ValueError):
    """Raised in strict mode: the message names the file and line or row."""


@dataclass
class ShardContents:
    """`renamed`: each metadata key stored as a Weaviate property of another name (`_id` as
    `meta__id`), in corpus order, so a user who looks for the key learns where it went."""

    documents: list[Document] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


def load_shard(
    spec: ShardSpec,
    strict: bool = False,
    max_chars: int | None = None,
    id_owners: Callable[[list[str]], Mapping[str, tuple[str, str]]] | None = None,
    property_name: Callable[[str], str] = str,
) -> ShardContents:
    """Validate every record of the shard.

    `property_name` is how the index names a metadata key (default: as it is); a record with
    two keys of one name is refused, naming both. An id seen earlier in the shard, or owned by
    another shard (`id_owners`, from the id registry), is refused with the location of its
    first occurrence.
    """
    contents = ShardContents()
    first_seen: dict[str, str] = {}
    validated = [(raw, validate(raw, max_chars)) for raw in read_shard(spec)]
    ids = [doc.id for _, doc in validated if isinstance(doc, Document)]
    owned_elsewhere = {
        doc_id: owner for doc_id, owner in (id_owners(ids) if id_owners else {}).items()
        if owner[0] != spec.key
    }  # fmt: skip
    for raw, result in validated:
        if isinstance(result, Document):
            result = _check_properties(result, raw.location, raw.raw, property_name)
        if isinstance(result, Document):
            result = _check_unique(result, raw.location, raw.raw, first_seen, owned_elsewhere)
        if isinstance(result, Reject):
            if strict:
                raise BadRecordError(f"{result.location}: {result.reason}")
            contents.rejects.append(result)
            continue
        first_seen[result.id] = raw.location
        contents.documents.append(result)
        for key in result.metadata:
            if property_name(key) != key:
                contents.renamed.setdefault(key, property_name(key))
    return contents


def _check_properties(
    document: Document, location: str, raw: str, property_name: Callable[[str], str]
) -> Document | Reject:
    """Refuses a record whose metadata keys would share a Weaviate property (`my-key` and
    `my_key`, `Id` and `meta_id`): the object would keep one value and lose the other."""
    keys: dict[str, str] = {}
    for key in document.metadata:
        name = property_name(key)
        if name in keys:
            reason = (
                f"metadata fields {keys[name]!r} and {key!r} would both be Weaviate property "
                f"{name!r}, one value overwriting the other (document {document.id!r})"
            )
            return Reject(location, reason, raw[:500])
        keys[name] = key
    return document


def _check_unique(
    document: Document,
    location: str,
    raw: str,
    first_seen: Mapping[str, str],
    owned_elsewhere: Mapping[str, tuple[str, str]],
) -> Document | Reject:
    if document.id in owned_elsewhere:
        shard, first = owned_elsewhere[document.id]
        reason = f"duplicate id {document.id!r} (first at {first}, in shard {shard})"
        return Reject(location, reason, raw[:500])
    if document.id in first_seen:
        reason = f"duplicate id {document.id!r} (first at {first_seen[document.id]})"
        return Reject(location, reason, raw[:500])
    return document


def write_quarantine(path: Path, rejects: list[Reject]) -> None:
    """One JSON line per refused record; an earlier run's file is removed when none remain."""
    write_lines(path, [r.as_json() for r in rejects])
