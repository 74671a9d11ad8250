"""The main job: index the configured corpus end to end through the Dagster definitions, with
Python's own help topics where there is no corpus yet, and ask it a question.

It uses the settings every entry point uses (`resources/settings.py`): the corpus at
CORPUS_PATH (by default `.data/corpus`), shards of SHARD_SIZE documents, the Dagster instance at
DAGSTER_HOME (by default `.dagster_home`). So `make ui` afterwards shows these runs and their
metadata, and its `register_shards` finds the same corpus and the same shards.

The question has a known answer: the help topic that answers it, for the help corpus, or the
document whose first sentence it is, for any other corpus; the demo says whether that document
came first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from resources import settings
from resources.corpus.reader import list_corpus_files


def _has_files(corpus: Path) -> bool:
    try:
        return bool(list_corpus_files(str(corpus)))
    except FileNotFoundError:
        return False


def run_demo(docs: int | None, query: str | None) -> int:
    from orchestration.corpus_switch import refuse_another_corpus
    from orchestration.headless import describe, index_corpus
    from orchestration.resources import build_resources
    from resources.corpus.python_help import write_help_corpus

    corpus_dir = Path(settings.corpus_path())
    refuse_another_corpus(settings.data_dir(), str(corpus_dir), remove_missing=False)
    if not _has_files(corpus_dir):
        print(f"corpus: {write_help_corpus(corpus_dir, docs)} in {corpus_dir}")
    else:
        print(f"corpus: {corpus_dir} (shards of {settings.shard_size()} documents)")

    resources = build_resources()
    target = resources["weaviate"].target()
    print(f"Weaviate: {target.description}")
    server = target.settings.managed_server() if target.mode == "managed" else None
    server_was_running = server is not None and server.ready()
    summary = index_corpus()
    print(describe(summary))
    question = _ask(resources, corpus_dir, query)
    if server is not None and not server_was_running:
        server.stop()
        print(f"stopped the Weaviate server this command started; its data stays in {server.root}")
    command = Path(os.path.relpath(Path(sys.executable).parent / "weaviate-indexer"))
    question = question or "your question"
    print(f'to search it: {command} search "{question}" (-k for more hits)')
    return 0 if summary.ok else 1


def _ask(resources: dict, corpus_dir: Path, query: str | None) -> str:
    """Asks the collection `query`, or a question with a known answer; returns the question."""
    from weaviate.classes.query import Filter

    from resources.corpus import python_help
    from resources.weaviate.search import nearest_chunks

    weaviate = resources["weaviate"]
    embedder = resources["embedder"]
    with weaviate.client() as client:
        collection = client.collections.get(weaviate.collection)
        total = collection.aggregate.over_all(total_count=True).total_count
        print(f"collection {weaviate.collection}: {total} objects")
        expected = None
        if query is None and python_help.is_help_corpus(corpus_dir):
            query, expected = python_help.QUESTION, python_help.ANSWER
        elif query is None:
            first = collection.query.fetch_objects(
                filters=Filter.by_property("chunk_index").equal(0), limit=1
            ).objects
            if not first:
                return ""
            expected = str(first[0].properties["doc_id"])
            query = str(first[0].properties["text"]).split(".")[0] + "."
            print(f"(the question is the first sentence of {expected})")
        vector = embedder.embed([query]).vectors[0]
        print(f"question: {query!r}")
        hits = nearest_chunks(client, weaviate.collection, vector, k=5)
    for hit in hits:
        preview = " ".join(hit.text[:90].split())
        print(f"  {hit.distance:.4f}  {hit.doc_id}#{hit.chunk_index}  {preview}...")
    if expected is not None and hits:
        verdict = "the expected document" if hits[0].doc_id == expected else f"not {expected}"
        print(f"top hit: {hits[0].doc_id}, {verdict}")
    return query
