"""A tiny corpus shared by the sensor and schedule tests."""

import json
from pathlib import Path

import pytest

from resources.corpus.resource import CorpusResource


def write_docs(path: Path, ids: list[str], text: str = "words") -> None:
    path.write_text("".join(json.dumps({"id": i, "text": f"{text} {i}"}) + "\n" for i in ids))


@pytest.fixture
def corpus(tmp_path: Path) -> CorpusResource:
    """Two files, two documents a shard: a-s00000, a-s00001 (one document) and b-s00000."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_docs(folder / "a.jsonl", ["a1", "a2", "a3"])
    write_docs(folder / "b.jsonl", ["b1", "b2"])
    return CorpusResource(corpus_path=str(folder), shard_size=2, data_dir=str(tmp_path / "data"))
