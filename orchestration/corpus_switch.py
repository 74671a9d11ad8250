"""Indexing another corpus where one is indexed: refused, with the flag that replaces it.

The shard manifest, the Dagster partitions and the Weaviate collection hold one corpus. Shards
of the one registered before that are not in the new corpus would stay in the collection,
flagged as having no input, and every search would return both corpora. So the commands stop
before registering another corpus and say what to do: `--remove-missing` indexes it in place of
the other (whose objects and partitions it deletes), while a data folder, Dagster instance and
collection of its own keep both apart. A file gone from the same corpus is not this case: its
shards are kept and flagged, as the corpus sensor keeps them.
"""

from __future__ import annotations

import json
from pathlib import Path

from resources.corpus.manifest import manifest_path


class OtherCorpusError(ValueError):
    """Another corpus than the registered one, without the flag that replaces it."""


def _same_place(a: str, b: str) -> bool:
    """Two spellings of one corpus location: a relative and an absolute path, a trailing slash."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def refuse_another_corpus(data_dir: str, corpus_path: str, remove_missing: bool) -> None:
    """Raises `OtherCorpusError` when `data_dir` holds the shards of a corpus other than
    `corpus_path` and `remove_missing` does not say to replace them."""
    manifest = manifest_path(data_dir)
    if remove_missing or not manifest.is_file():
        return
    registered = json.loads(manifest.read_text())
    previous, shards = registered["corpus_path"], len(registered["shards"])
    if not shards or _same_place(previous, corpus_path):
        return
    raise OtherCorpusError(
        f"{corpus_path} is not the corpus indexed here ({shards} shards of {previous}): its "
        "shards would join those in the same collection, and searches would return both. "
        f"Run `weaviate-indexer index --corpus {corpus_path} --remove-missing` to index it in "
        "place of the other (whose objects and partitions are deleted), or give it an "
        "INDEXER_DATA_DIR, DAGSTER_HOME and WEAVIATE_COLLECTION of its own to keep both."
    )
