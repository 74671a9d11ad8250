"""The main job: index the configured corpus end to end through the Dagster definitions, with
a generated sample corpus where there is none yet, and search it.

It uses the settings every entry point uses (`resources/settings.py`): the corpus at
CORPUS_PATH (by default `.data/corpus`), shards of SHARD_SIZE documents, the Dagster instance at
DAGSTER_HOME (by default `.dagster_home`). So `make ui` afterwards shows these runs and their
metadata, and its `register_shards` finds the same corpus and the same shards.
"""

from __future__ import annotations

from pathlib import Path

from resources import settings
from resources.corpus.reader import list_corpus_files


def _has_files(corpus: Path) -> bool:
    try:
        return bool(list_corpus_files(str(corpus)))
    except FileNotFoundError:
        return False


def run_demo(docs: int, query: str | None) -> int:
    from orchestration.headless import describe, index_corpus
    from orchestration.resources import build_resources
    from resources.corpus.sample import SampleSpec, write_sample_corpus

    corpus_dir = Path(settings.corpus_path())
    if not _has_files(corpus_dir):
        spec = SampleSpec(docs=docs, median_tokens=250, max_tokens=4000, docs_per_file=100)
        stats = write_sample_corpus(corpus_dir, spec)
        print(
            f"sample corpus: {stats['documents']} documents, {stats['tokens']} tokens "
            f"(median {stats['p50_tokens']}, max {stats['max_tokens']}) in {corpus_dir}"
        )
    else:
        print(f"corpus: {corpus_dir} (shards of {settings.shard_size()} documents)")

    resources = build_resources(resolved=True)
    target = resources["weaviate"].target()
    print(f"Weaviate: {target.description}")
    server = target.settings.managed_server() if target.mode == "managed" else None
    server_was_running = server is not None and server.ready()
    summary = index_corpus()
    print(describe(summary))
    _print_collection_and_search(resources, query)
    if server is not None and not server_was_running:
        server.stop()
        print(f"stopped the Weaviate server this command started; its data stays in {server.root}")
    return 0 if summary.ok else 1


def _print_collection_and_search(resources: dict, query: str | None) -> None:
    from weaviate.classes.query import Filter

    from resources.weaviate.search import nearest_chunks

    weaviate = resources["weaviate"]
    embedder = resources["embedder"]
    with weaviate.client() as client:
        collection = client.collections.get(weaviate.collection)
        total = collection.aggregate.over_all(total_count=True).total_count
        print(f"collection {weaviate.collection}: {total} objects")
        if query is None:
            first = collection.query.fetch_objects(
                filters=Filter.by_property("chunk_index").equal(0), limit=1
            ).objects
            if not first:
                return
            query = str(first[0].properties["text"]).split(".")[0] + "."
            print(f"(the query is the first sentence of {first[0].properties['doc_id']})")
        vector = embedder.embed([query]).vectors[0]
        print(f"search: {query!r}")
        for hit in nearest_chunks(client, weaviate.collection, vector, k=5):
            preview = hit.text[:70].replace("\n", " ")
            print(f"  {hit.distance:.4f}  {hit.doc_id}#{hit.chunk_index}  {preview}...")
