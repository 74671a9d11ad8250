"""Streaming reads of corpus files (JSONL and Parquet, local paths or fsspec URLs).

Nothing here holds more than one shard in memory. JSONL shards are addressed by byte range, so a
shard deep inside a large file is read with one seek; Parquet shards by row range, reading only
the row groups that overlap it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from resources.corpus.records import RawRecord

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
# A corpus file name followed by one of these is a compressed file: reported, never read.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass(frozen=True)
class ShardSpec:
    """Where one shard's records live. `content_hash` changes whenever any of its bytes do."""

    key: str
    source: str
    index: int
    first_record: int
    records: int
    content_hash: str
    byte_start: int | None = None
    byte_end: int | None = None
    first_line: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _fs_and_root(corpus_path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(corpus_path)
    return fs, root


def list_corpus_files(corpus_path: str) -> list[str]:
    """Corpus files under `corpus_path` (a file or a folder), sorted, as fsspec URLs/paths."""
    fs, root = _fs_and_root(corpus_path)
    if not fs.exists(root):
        raise FileNotFoundError(f"corpus path {corpus_path!r} does not exist")
    paths = [root] if fs.isfile(root) else sorted(fs.find(root))
    found = [p for p in paths if p.endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES)]
    if fs.isfile(root) and not found:
        raise ValueError(f"{corpus_path!r} is neither a .jsonl nor a .parquet file")
    return [fs.unstrip_protocol(p) if "://" in corpus_path else p for p in found]


def compressed_corpus_files(corpus_path: str) -> list[str]:
    """Compressed corpus files under a folder (`part-0.jsonl.gz`), sorted.

    A shard is read with one seek to its byte or row range, which a compressed stream cannot
    do: such a file is not read, and registration reports it rather than pass over it.
    """
    fs, root = _fs_and_root(corpus_path)
    if not fs.isdir(root):
        return []
    corpus_suffixes = JSONL_SUFFIXES + PARQUET_SUFFIXES
    found = [
        path for path in sorted(fs.find(root))
        if any(path.endswith(s + c) for s in corpus_suffixes for c in COMPRESSED_SUFFIXES)
    ]  # fmt: skip
    return [fs.unstrip_protocol(p) if "://" in corpus_path else p for p in found]


def stat_corpus(corpus_path: str) -> dict[str, str]:
    """Each corpus file's "size:modified" stamp, from a listing: no file is opened.

    The modified part is empty where the filesystem reports no time; such a file never counts
    as unchanged.
    """
    fs, _ = _fs_and_root(corpus_path)
    stamps = {}
    for source in list_corpus_files(corpus_path):
        info = fs.info(source)
        modified = next(
            (info[k] for k in ("mtime", "LastModified", "updated", "ETag") if info.get(k)), ""
        )
        stamps[source] = f"{info.get('size')}:{modified}"
    return stamps


def shard_key(source: str, corpus_path: str, index: int) -> str:
    """A readable, stable partition key: the file's path in the corpus, then the shard number."""
    fs, root = _fs_and_root(corpus_path)
    _, path = fsspec.core.url_to_fs(source)
    relative = PurePosixPath(path).relative_to(root) if path != root else PurePosixPath(path).name
    stem = str(relative).rsplit(".", 1)[0]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "corpus"
    return f"{slug}-s{index:05d}"


IdSink = Callable[[str, str, str], None]
"""Told (document id, shard key, location) for each record whose id can be read."""


_BOM = b"\xef\xbb\xbf"


def _unmarked(line: bytes, line_no: int) -> bytes:
    """A file's first line without the UTF-8 byte order mark some editors write before it."""
    return line.removeprefix(_BOM) if line_no == 1 else line


def _scan_jsonl(
    source: str, corpus_path: str, shard_size: int, on_id: IdSink | None
) -> Iterator[ShardSpec]:
    name = file_name(source)
    with fsspec.open(source, "rb") as handle:
        index = records = 0
        offset = start = 0
        line_no = first_line = 0
        digest = hashlib.sha256()
        key = shard_key(source, corpus_path, index)
        for line in handle:
            line_no += 1
            if records == 0:
                start, first_line = offset, line_no
            offset += len(line)
            if not line.strip():
                continue
            digest.update(line)
            records += 1
            if on_id is not None:
                _report_id(on_id, _unmarked(line, line_no), key, f"{name}:line {line_no}")
            if records == shard_size:
                yield ShardSpec(
                    key, source, index, index * shard_size, records, digest.hexdigest(),
                    start, offset, first_line,
                )  # fmt: skip
                index, records, digest = index + 1, 0, hashlib.sha256()
                key = shard_key(source, corpus_path, index)
        if records:
            yield ShardSpec(
                key, source, index, index * shard_size, records, digest.hexdigest(),
                start, offset, first_line,
            )  # fmt: skip


def _report_id(on_id: IdSink, line: bytes, key: str, location: str) -> None:
    try:
        payload = json.loads(line)
    except ValueError:
        return  # reported, with its reason, when the shard is read
    doc_id = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(doc_id, str) and doc_id.strip():
        on_id(doc_id.strip(), key, location)


def _hash_table(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _scan_parquet(
    source: str, corpus_path: str, shard_size: int, on_id: IdSink | None
) -> Iterator[ShardSpec]:
    name = file_name(source)
    with fsspec.open(source, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"{name}: not a readable Parquet file ({exc})") from exc
        pending: list[pa.RecordBatch] = []
        rows = index = 0
        for batch in parquet.iter_batches(batch_size=shard_size):
            pending.append(batch)
            rows += batch.num_rows
            while rows >= shard_size:
                table = pa.Table.from_batches(pending)
                shard, rest = table.slice(0, shard_size), table.slice(shard_size)
                yield _parquet_shard(source, corpus_path, index, shard_size, shard, on_id)
                index += 1
                pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            table = pa.Table.from_batches(pending)
            yield _parquet_shard(source, corpus_path, index, shard_size, table, on_id)


def _parquet_shard(
    source: str, corpus_path: str, index: int, shard_size: int, table: pa.Table,
    on_id: IdSink | None,
) -> ShardSpec:  # fmt: skip
    key = shard_key(source, corpus_path, index)
    first = index * shard_size
    if on_id is not None and "id" in table.column_names:
        name = file_name(source)
        for row, doc_id in enumerate(table.column("id").to_pylist()):
            if isinstance(doc_id, str) and doc_id.strip():
                on_id(doc_id.strip(), key, f"{name}:row {first + row}")
    return ShardSpec(key, source, index, first, table.num_rows, _hash_table(table))


def scan_file(
    source: str, corpus_path: str, shard_size: int, on_id: IdSink | None = None
) -> Iterator[ShardSpec]:
    """Cut one corpus file into shards of `shard_size` records, streaming it once."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    if source.endswith(PARQUET_SUFFIXES):
        return _scan_parquet(source, corpus_path, shard_size, on_id)
    return _scan_jsonl(source, corpus_path, shard_size, on_id)


def scan_shards(
    corpus_path: str, shard_size: int, on_id: IdSink | None = None
) -> Iterator[ShardSpec]:
    """Every file's shards. Shards never span files: a changed file touches only its own."""
    for source in list_corpus_files(corpus_path):
        yield from scan_file(source, corpus_path, shard_size, on_id)


def file_name(source: str) -> str:
    return PurePosixPath(fsspec.core.url_to_fs(source)[1]).name


def _read_jsonl(spec: ShardSpec) -> Iterator[RawRecord]:
    assert spec.byte_start is not None and spec.byte_end is not None
    name = file_name(spec.source)
    with fsspec.open(spec.source, "rb") as handle:
        handle.seek(spec.byte_start)
        data = handle.read(spec.byte_end - spec.byte_start)
    line_no = (spec.first_line or 1) - 1
    for line in data.splitlines():
        line_no += 1
        line = _unmarked(line, line_no)
        if not line.strip():
            continue
        location = f"{name}:line {line_no}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raw = line.decode("utf-8", "replace")
            yield RawRecord(location, error=f"invalid UTF-8 at byte {exc.start}", raw=raw)
            continue
        try:
            yield RawRecord(location, payload=json.loads(text), raw=text)
        except json.JSONDecodeError as exc:
            yield RawRecord(location, error=_json_error(exc), raw=text)


def _json_error(exc: json.JSONDecodeError) -> str:
    """The decoder's reason and column; some reasons end in "at" ("Unterminated string starting
    at"), which the column completes."""
    return f"malformed JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"


def _read_parquet(spec: ShardSpec) -> Iterator[RawRecord]:
    name = file_name(spec.source)
    first, last = spec.first_record, spec.first_record + spec.records
    with fsspec.open(spec.source, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            groups: list[int] = []
            row, groups_start = 0, 0
            for group in range(parquet.metadata.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                if row < last and row + size > first:
                    groups_start = row if not groups else groups_start
                    groups.append(group)
                row += size
            table = parquet.read_row_groups(groups)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"{name}: cannot read rows {first}-{last - 1} ({exc})") from exc
    rows = table.slice(first - groups_start, spec.records).to_pylist()
    for offset, row_dict in enumerate(rows):
        yield RawRecord(f"{name}:row {first + offset}", payload=row_dict)


def read_shard(spec: ShardSpec) -> Iterator[RawRecord]:
    """The raw records of one shard, each tagged with its file and line or row."""
    if spec.source.endswith(PARQUET_SUFFIXES):
        return _read_parquet(spec)
    return _read_jsonl(spec)
