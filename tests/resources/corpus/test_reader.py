import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resources.corpus.reader import list_corpus_files, read_shard, scan_shards


def _write_jsonl(path, records, blank_every=0):
    lines = []
    for i, record in enumerate(records):
        lines.append(json.dumps(record))
        if blank_every and i % blank_every == 0:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")


def _records(n, start=0):
    return [{"id": f"d{i}", "text": f"text number {i}", "n": i} for i in range(start, start + n)]


def test_jsonl_shards_cover_every_record_once_with_line_numbers(tmp_path):
    _write_jsonl(tmp_path / "a.jsonl", _records(25), blank_every=7)
    specs = list(scan_shards(str(tmp_path), shard_size=10))
    assert [(s.key, s.records) for s in specs] == [("a-s00000", 10), ("a-s00001", 10),
                                                    ("a-s00002", 5)]  # fmt: skip
    seen = [r for spec in specs for r in read_shard(spec)]
    assert [r.payload["id"] for r in seen] == [f"d{i}" for i in range(25)]
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    for record in seen:
        line_no = int(record.location.split("line ")[1])
        assert json.loads(lines[line_no - 1])["id"] == record.payload["id"]
        assert record.location.startswith("a.jsonl:")


def test_shards_never_span_files_and_keys_follow_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    _write_jsonl(tmp_path / "a.jsonl", _records(3))
    _write_jsonl(tmp_path / "sub" / "b.jsonl", _records(3, 3))
    (tmp_path / "notes.txt").write_text("ignored")
    keys = [s.key for s in scan_shards(str(tmp_path), shard_size=2)]
    assert keys == ["a-s00000", "a-s00001", "sub_b-s00000", "sub_b-s00001"]
    assert len(list_corpus_files(str(tmp_path))) == 2


def test_content_hash_changes_only_for_the_shard_that_changed(tmp_path):
    records = _records(20)
    _write_jsonl(tmp_path / "a.jsonl", records)
    before = {s.key: s.content_hash for s in scan_shards(str(tmp_path), 10)}
    records[15]["text"] = "edited"
    _write_jsonl(tmp_path / "a.jsonl", records)
    after = {s.key: s.content_hash for s in scan_shards(str(tmp_path), 10)}
    assert before["a-s00000"] == after["a-s00000"]
    assert before["a-s00001"] != after["a-s00001"]


def test_parquet_shards_read_only_their_rows(tmp_path):
    table = pa.Table.from_pylist(_records(45))
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=7)
    specs = list(scan_shards(str(tmp_path / "p.parquet"), shard_size=20))
    assert [s.records for s in specs] == [20, 20, 5]
    rows = list(read_shard(specs[1]))
    assert [r.payload["id"] for r in rows] == [f"d{i}" for i in range(20, 40)]
    assert rows[0].location == "p.parquet:row 20"


def test_fsspec_urls_are_read_like_paths(tmp_path):
    _write_jsonl(tmp_path / "a.jsonl", _records(4))
    specs = list(scan_shards(f"file://{tmp_path}", shard_size=3))
    assert [r.payload["id"] for s in specs for r in read_shard(s)] == ["d0", "d1", "d2", "d3"]


def test_missing_corpus_and_truncated_parquet_say_which_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(scan_shards(str(tmp_path / "nowhere"), 10))
    pq.write_table(pa.Table.from_pylist(_records(5)), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.parquet"):
        list(scan_shards(str(tmp_path / "t.parquet"), 10))


def test_a_byte_order_mark_before_the_first_record_is_not_part_of_it(tmp_path):
    _write_jsonl(tmp_path / "a.jsonl", _records(3))
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "a.jsonl").read_bytes())
    ids: list[str] = []
    specs = list(scan_shards(str(tmp_path), shard_size=2, on_id=lambda i, *_: ids.append(i)))
    records = [r for spec in specs for r in read_shard(spec)]
    assert [r.error for r in records] == [None, None, None]
    assert [r.payload["id"] for r in records] == ["d0", "d1", "d2"] == ids
