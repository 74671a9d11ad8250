import json

import pytest

from resources.corpus.loading import BadRecordError, load_shard, write_quarantine
from resources.corpus.reader import scan_shards


def _corpus(tmp_path):
    lines = [
        json.dumps({"id": "a", "text": "first"}),
        "{not json",
        json.dumps({"id": "b", "text": ""}),
        json.dumps({"id": "a", "text": "again"}),
        json.dumps({"id": "c", "text": "third", "year": 1999}),
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    [spec] = scan_shards(str(tmp_path), shard_size=100)
    return spec


def test_bad_records_are_quarantined_with_file_and_line(tmp_path):
    contents = load_shard(_corpus(tmp_path))
    assert [d.id for d in contents.documents] == ["a", "c"]
    assert [(r.location, r.reason.split(":")[0]) for r in contents.rejects] == [
        ("c.jsonl:line 2", "malformed JSON"),
        ("c.jsonl:line 3", "field 'text' is empty (document 'b')"),
        ("c.jsonl:line 4", "duplicate id 'a' (first at c.jsonl"),
    ]
    path = tmp_path / "q" / "shard.jsonl"
    write_quarantine(path, contents.rejects)
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert [s["location"] for s in saved] == ["c.jsonl:line 2", "c.jsonl:line 3", "c.jsonl:line 4"]
    write_quarantine(path, [])
    assert not path.exists()


def test_strict_mode_fails_on_the_first_bad_record(tmp_path):
    with pytest.raises(BadRecordError, match=r"c.jsonl:line 2: malformed JSON"):
        load_shard(_corpus(tmp_path), strict=True)


def test_keys_of_one_property_refuse_the_record_and_each_rename_is_listed_once(tmp_path):
    lines = [
        {"id": "a", "text": "t", "Year": 1999, "tag": "x"},
        {"id": "b", "text": "t", "Year": 2000, "year": 2001},
        {"id": "c", "text": "t", "Year": 2002, "Tag": "y"},
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    [spec] = scan_shards(str(tmp_path), shard_size=100)

    contents = load_shard(spec, property_name=str.lower)

    assert [d.id for d in contents.documents] == ["a", "c"]
    assert [(r.location, r.reason) for r in contents.rejects] == [
        ("c.jsonl:line 2", "metadata fields 'Year' and 'year' would both be Weaviate property "
         "'year', one value overwriting the other (document 'b')"),
    ]  # fmt: skip
    assert contents.renamed == {"Year": "year", "Tag": "tag"}
