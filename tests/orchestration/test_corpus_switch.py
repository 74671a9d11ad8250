"""Another corpus is not indexed into the collection of the one registered before, unless the
command is told to replace it; the same corpus, however its path is spelled, is indexed."""

import json
from pathlib import Path

import pytest

from orchestration.corpus_switch import OtherCorpusError, refuse_another_corpus
from resources.corpus.manifest import register_corpus


def write_corpus(folder: Path, ids: list[str]) -> Path:
    folder.mkdir(parents=True)
    lines = [json.dumps({"id": i, "text": f"text of {i}"}) for i in ids]
    (folder / "part.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def registered(tmp_path) -> tuple[Path, Path]:
    """A corpus registered in a data folder, as `make run` leaves it: (corpus, data folder)."""
    first = write_corpus(tmp_path / "first", ["a", "b", "c"])
    register_corpus(str(first), 2, tmp_path / "data")
    return first, tmp_path / "data"


def test_another_corpus_is_refused_with_the_flag_that_replaces_it(registered, tmp_path):
    first, data = registered
    other = write_corpus(tmp_path / "other", ["x"])
    with pytest.raises(OtherCorpusError) as refused:
        refuse_another_corpus(str(data), str(other), remove_missing=False)
    assert str(refused.value) == (
        f"{other} is not the corpus indexed here (2 shards of {first}): its shards would join "
        "those in the same collection, and searches would return both. Run `weaviate-indexer "
        f"index --corpus {other} --remove-missing` to index it in place of the other (whose "
        "objects and partitions are deleted), or give it an INDEXER_DATA_DIR, DAGSTER_HOME and "
        "WEAVIATE_COLLECTION of its own to keep both."
    )
    refuse_another_corpus(str(data), str(other), remove_missing=True)


def test_the_same_corpus_or_a_first_one_is_indexed(registered, tmp_path, monkeypatch):
    first, data = registered
    monkeypatch.chdir(tmp_path)
    for spelling in (str(first), "first", "./first/"):
        refuse_another_corpus(str(data), spelling, remove_missing=False)
    refuse_another_corpus(str(tmp_path / "new-data"), str(first), remove_missing=False)
