"""Registration reads only the files that changed since the last one, and ends as a full scan."""

import gzip
from pathlib import Path

import pytest

import resources.corpus.parallel_scan as parallel_scan
from resources.corpus.ids import IdRegistryWriter, owners
from resources.corpus.manifest import (
    CorpusFileError,
    load_manifest,
    manifest_stamp,
    problems_path,
    register_corpus,
)
from resources.corpus.parallel_scan import ParallelScans
from resources.corpus.reader import stat_corpus
from tests.orchestration.conftest import write_docs


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three files; "shared" is in a.jsonl and again in c.jsonl, so a.jsonl owns it."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_docs(folder / "a.jsonl", ["a1", "shared", "a3"])
    write_docs(folder / "b.jsonl", ["b1", "b2"])
    write_docs(folder / "c.jsonl", ["c1", "shared"])
    return folder


@pytest.fixture
def scanned(monkeypatch) -> list[str]:
    """The names of the files registration reads, in order."""
    names: list[str] = []
    original = parallel_scan.scan_file

    def spy(source, *args):
        names.append(Path(source).name)
        return original(source, *args)

    monkeypatch.setattr(parallel_scan, "scan_file", spy)
    return names


def _register(corpus: Path, data: Path, **options):
    return register_corpus(str(corpus), 2, data, **options)


def _hashes(data: Path) -> dict[str, str]:
    return {key: spec.content_hash for key, spec in load_manifest(data).items()}


def test_an_unchanged_corpus_is_not_read_again_and_the_manifest_is_kept(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    first = _register(corpus, data)
    assert scanned == ["a.jsonl", "b.jsonl", "c.jsonl"] and first.duplicate_ids == 1
    stamp, hashes = manifest_stamp(data), _hashes(data)

    again = _register(corpus, data)

    assert scanned == ["a.jsonl", "b.jsonl", "c.jsonl"]  # nothing read the second time
    assert manifest_stamp(data) == stamp
    assert again.shards == first.shards and again.records == 7
    assert (again.files, again.reused_files, again.duplicate_ids) == (3, 3, 1)
    assert _hashes(data) == hashes


def test_only_a_changed_file_is_read_and_the_result_equals_a_full_scan(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    _register(corpus, data)
    before = _hashes(data)
    write_docs(corpus / "b.jsonl", ["b1", "b2", "b3"], text="edited")

    scan = _register(corpus, data)

    assert scanned[3:] == ["b.jsonl"] and scan.reused_files == 2
    after = _hashes(data)
    assert {k for k in after if after[k] != before.get(k)} == {"b-s00000", "b-s00001"}
    full = _register(corpus, tmp_path / "full", rescan=True)
    assert scanned[4:] == ["a.jsonl", "b.jsonl", "c.jsonl"] and full.reused_files == 0
    assert after == _hashes(tmp_path / "full")
    assert scan.duplicate_ids == full.duplicate_ids == 1
    assert owners(data, ["b3", "shared"]) == owners(tmp_path / "full", ["b3", "shared"])


def test_an_id_passes_to_its_next_occurrence_when_its_owner_file_drops_it(corpus, tmp_path):
    data = tmp_path / "data"
    _register(corpus, data)
    assert owners(data, ["shared"]) == {"shared": ("a-s00000", "a.jsonl:line 2")}
    write_docs(corpus / "a.jsonl", ["a1", "a3"])  # c.jsonl, unchanged, is not read again

    scan = _register(corpus, data)

    assert scan.reused_files == 2 and scan.duplicate_ids == 0
    assert owners(data, ["shared"]) == {"shared": ("c-s00000", "c.jsonl:line 2")}


def test_removed_and_added_files_are_reflected(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    _register(corpus, data)
    (corpus / "a.jsonl").unlink()
    write_docs(corpus / "d.jsonl", ["d1"])

    scan = _register(corpus, data)

    assert scanned[3:] == ["d.jsonl"]
    assert sorted(_hashes(data)) == ["b-s00000", "c-s00000", "d-s00000"]
    assert owners(data, ["shared", "a1", "d1"]) == {
        "shared": ("c-s00000", "c.jsonl:line 2"),
        "d1": ("d-s00000", "d.jsonl:line 1"),
    }
    assert scan.reused_files == 2 and scan.duplicate_ids == 0


def test_another_shard_size_or_corpus_path_reads_everything(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    _register(corpus, data)
    register_corpus(str(corpus), 3, data)
    assert scanned[3:] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert sorted(_hashes(data)) == ["a-s00000", "b-s00000", "c-s00000"]


def test_a_problem_file_is_read_every_time_and_its_report_kept(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    (corpus / "empty.jsonl").write_text("\n")
    _register(corpus, data)
    _register(corpus, data)
    assert scanned == ["a.jsonl", "b.jsonl", "c.jsonl", "empty.jsonl", "empty.jsonl"]
    assert "empty.jsonl" in problems_path(data).read_text()
    (corpus / "empty.jsonl").unlink()
    _register(corpus, data)
    assert not problems_path(data).exists()


def test_a_compressed_file_added_to_an_unchanged_corpus_is_reported(corpus, tmp_path, scanned):
    data = tmp_path / "data"
    _register(corpus, data)
    (corpus / "d.jsonl.gz").write_bytes(gzip.compress(b'{"id": "d1", "text": "t"}\n'))

    scan = _register(corpus, data)

    assert scanned == ["a.jsonl", "b.jsonl", "c.jsonl"] and scan.reused_files == 3
    assert [(p.location, p.reason.split(":")[0]) for p in scan.problems] == [
        ("d.jsonl.gz", "file skipped")
    ]
    assert "d.jsonl.gz" in problems_path(data).read_text()
    with pytest.raises(CorpusFileError, match=r"^d.jsonl.gz: compressed files are not read"):
        _register(corpus, data, strict=True)


def test_files_read_by_worker_processes_register_as_one_pass_in_order_does(corpus, tmp_path):
    (corpus / "d.parquet").write_bytes(b"not parquet at all")
    serial = _register(corpus, tmp_path / "serial", workers=1)

    parallel = _register(corpus, tmp_path / "parallel", workers=2)

    assert parallel.shards == serial.shards and len(parallel.shards) == 4
    assert parallel.problems == serial.problems and "d.parquet" in parallel.problems[0].location
    assert parallel.duplicate_ids == serial.duplicate_ids == 1
    ids = ["a1", "shared", "a3", "b1", "b2", "c1"]
    assert owners(tmp_path / "parallel", ids) == owners(tmp_path / "serial", ids)
    assert owners(tmp_path / "parallel", ["shared"])["shared"][0] == "a-s00000"
    assert sorted(p.name for p in (tmp_path / "parallel" / "manifest").iterdir()) == [
        "ids.sqlite", "problems.jsonl", "shards.json"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="d.parquet"):
        _register(corpus, tmp_path / "strict", workers=2, strict=True)
    assert not (tmp_path / "strict" / "manifest" / "ids.sqlite").exists()
    assert [p.name for p in (tmp_path / "strict" / "manifest").iterdir()] == []


def test_a_worker_process_that_dies_names_the_file_it_was_reading(corpus, tmp_path):
    stamps = stat_corpus(str(corpus))
    writer = IdRegistryWriter(tmp_path / "ids.sqlite")
    with ParallelScans(stamps, str(corpus), 2, tmp_path, workers=2) as reads:
        for process in reads._pool._processes.values():  # as the kernel's OOM killer would
            process.kill()
        with pytest.raises(RuntimeError, match="a.jsonl ended abruptly"):
            reads.result(next(iter(stamps)), writer)
    writer.abort()
    assert not list(tmp_path.glob(".scan-*"))
