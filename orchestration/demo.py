"""The main job: make a sample corpus and index it end to end through the Dagster definitions.

Runs go through a persistent Dagster instance (DAGSTER_HOME, by default `.dagster_home` in the
project), so `dagster dev` shows them afterwards, with each partition's metadata.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_SHOWN = ("documents", "chunks", "objects")
# Step events go to the Dagster instance (and the UI); the terminal gets warnings and the summary.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _configure_environment(data_dir: Path, shard_size: int) -> Path:
    os.environ.setdefault("INDEXER_DATA_DIR", str(data_dir))
    corpus = Path(os.environ.setdefault("CORPUS_PATH", str(data_dir / "sample-corpus")))
    os.environ.setdefault("SHARD_SIZE", str(shard_size))
    return corpus


def run_demo(docs: int, shard_size: int, data_dir: Path, query: str | None) -> int:
    corpus_dir = _configure_environment(data_dir, shard_size)
    from dagster import DagsterInstance

    from orchestration.definitions import build_resources, defs
    from orchestration.instance import prepare_instance
    from resources.corpus.sample import SampleSpec, write_sample_corpus

    prepare_instance()
    if not (corpus_dir / "corpus_stats.json").is_file():
        spec = SampleSpec(docs=docs, median_tokens=250, max_tokens=4000, docs_per_file=100)
        stats = write_sample_corpus(corpus_dir, spec)
        print(
            f"sample corpus: {stats['documents']} documents, {stats['tokens']} tokens "
            f"(median {stats['p50_tokens']}, max {stats['max_tokens']}) in {corpus_dir}"
        )
    else:
        print(f"corpus: {corpus_dir}")

    instance = DagsterInstance.get()
    registered = defs.resolve_job_def("register_shards").execute_in_process(
        instance=instance, run_config=_QUIET
    )
    keys: list[str] = registered.output_for_node("register_corpus_shards")
    resources = build_resources(resolved=True)
    weaviate = resources["weaviate"]
    print(f"{len(keys)} shard partitions registered")
    target = weaviate.target()
    print(f"Weaviate: {target.description}")
    server = target.settings.managed_server() if target.mode == "managed" else None
    server_was_running = server is not None and server.ready()

    job = defs.resolve_job_def("index_shards")
    failed: list[str] = []
    started = time.perf_counter()
    for key in keys:
        result = job.execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False, run_config=_QUIET
        )
        metadata = _materialization_metadata(result)
        status = "ok" if result.success else "FAILED"
        counts = " ".join(f"{name}={metadata.get(name, '?')}" for name in _SHOWN)
        print(f"  {key}: {status}  {counts}")
        if not result.success:
            failed.append(key)
    seconds = time.perf_counter() - started
    print(f"indexed {len(keys) - len(failed)}/{len(keys)} shards in {seconds:.1f}s")
    _print_collection_and_search(resources, query)
    if server is not None and not server_was_running:
        server.stop()
        print(f"stopped the Weaviate server this command started; its data stays in {server.root}")
    if failed:
        print(f"failed shards: {', '.join(failed)}; re-run them from the UI or with this command")
        return 1
    return 0


def _materialization_metadata(result) -> dict:
    """The first value of each metadata key across the run's materializations."""
    merged: dict = {}
    for event in result.get_asset_materialization_events():
        for name, value in event.materialization.metadata.items():
            merged.setdefault(name, getattr(value, "value", value))
    return merged


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
