"""Runs a backfill of every shard partition that is not yet indexed, like the UI's
"re-execute failed partitions": used by the kill-and-resume tests, in process and as a child
process that kills itself (SIGKILL) at a chosen moment, with every process it started when it
runs in a session of its own.

    python -m tests.assets.backfill_driver CONFIG.json
"""

import json
import os
import random
import shutil
import signal
import sys
import threading
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.chunks import chunks
from assets.corpus import corpus_shard
from assets.embeddings import embeddings
from assets.index import object_count_matches_chunks, weaviate_index
from assets.partitions import shard_partitions
from assets.pools import GPU_POOL
from orchestration.instance import SETTINGS_FILE
from orchestration.jobs import register_shards
from orchestration.liveness import fail_dead_runs, process_tags
from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource

ASSETS = [corpus_shard, chunks, embeddings, weaviate_index, object_count_matches_chunks]


def instance_at(home: str) -> DagsterInstance:
    """A persistent SQLite instance with the project's settings (the GPU pool among them),
    shared by the killed run and the one that resumes it."""
    Path(home).mkdir(parents=True, exist_ok=True)
    shutil.copy(SETTINGS_FILE, Path(home) / "dagster.yaml")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(home))
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    return instance


def resources_for(config: dict) -> dict:
    return {
        "corpus": CorpusResource(corpus_path=config["corpus"], shard_size=config["shard_size"],
                                 data_dir=config["data_dir"]),
        "embedder": EmbeddingResource(device="cpu", data_dir=config["data_dir"]),
        "weaviate": WeaviateResource(
            mode="local", url=f"http://127.0.0.1:{config['http_port']}",
            grpc_port=config["grpc_port"], api_key=config["api_key"],
            collection=config["collection"],
            data_dir=config["data_dir"], batch_size=10,
        ),
    }  # fmt: skip


def backfill(config: dict):
    """Register shards, then materialize each partition whose index is not materialized yet.

    With `"one_run": true` all of them go into one run over the partition range, as a backfill
    with a multi-partition policy launches them; the run's result is returned.
    """
    instance = instance_at(config["dagster_home"])
    # As the project's commands do: a run a killed process left behind gives its slots back.
    fail_dead_runs(instance)
    resources = resources_for(config)
    tags = process_tags()
    register_shards.execute_in_process(
        instance=instance, resources={"corpus": resources["corpus"]}, tags=tags
    )
    done = instance.get_materialized_partitions(AssetKey("weaviate_index"))
    keys = [k for k in instance.get_dynamic_partitions(shard_partitions.name) if k not in done]
    if config.get("one_run"):
        tags[ASSET_PARTITION_RANGE_START_TAG] = keys[0]
        tags[ASSET_PARTITION_RANGE_END_TAG] = keys[-1]
        return materialize(ASSETS, instance=instance, resources=resources, tags=tags)
    for key in keys:
        result = materialize(ASSETS, partition_key=key, instance=instance, resources=resources,
                             raise_on_error=False, tags=tags)  # fmt: skip
        if not result.success:
            raise RuntimeError(f"partition {key} failed")
    return keys


def _die() -> None:
    """SIGKILL, as a lost machine or the OOM killer would; when this process leads its own
    process group, the whole group dies with it, as a killed pod's processes all do. Dagster's
    step log capture runs `tail` and a watcher that stops it when this process dies; a kill
    between the two starts would leave `tail` running, holding this process's stdout."""
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(owner, name: str, nth: int, after: bool) -> None:
    """Replace owner.name so that its nth call kills the process (before or after it runs)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        this_call = calls["n"]  # calls may overlap (concurrent ingest requests)
        if this_call == nth and not after:
            _die()
        result = original(*args, **kwargs)
        if this_call == nth and after:
            _die()
        return result

    setattr(owner, name, wrapper)


def _kill_during_call(owner, name: str, nth: int, delay: float) -> None:
    """The nth call starts a timer that kills the process while the call is still running."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            threading.Timer(delay, _die).start()
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _kill_inside_ingest(ingest, shard: str, after_objects: int) -> None:
    """Kill once `after_objects` objects of `shard` have been handed to the batcher."""
    original = ingest.write_objects

    def wrapper(collection, report, objects, *rest):
        if report.shard != shard:
            return original(collection, report, objects, *rest)

        def counted():
            for handed, obj in enumerate(objects):
                if handed == after_objects:
                    _die()
                yield obj

        return original(collection, report, counted(), *rest)

    ingest.write_objects = wrapper


def install_kill(kill: dict) -> None:
    import resources.corpus.chunking as chunking
    import resources.files as files
    import resources.weaviate.ingest as ingest
    from resources.embedding.engine import EmbeddingEngine

    point, nth = kill["point"], kill.get("nth", 1)
    if point == "chunking":
        _kill_on_call(chunking.Chunker, "_chunk_batch", nth, after=False)
    elif point == "inside_embedding":  # the nth shard's embedding, as it starts
        _kill_on_call(EmbeddingEngine, "embed_tokenized", nth, after=False)
    elif point == "embedding":
        _kill_during_call(EmbeddingEngine, "embed_tokenized", nth, delay=kill.get("delay", 0.5))
    elif point == "checkpoint_rename":
        _kill_on_call(files.os, "replace", nth, after=False)
    elif point == "between_ingest_batches":
        _kill_on_call(ingest._BatchSender, "send", nth, after=True)
    elif point == "inside_shard_ingest":
        _kill_inside_ingest(ingest, kill["shard"], kill["after_objects"])
    elif point == "stale_deletion":
        _kill_on_call(ingest, "delete_stale", nth, after=True)
    elif point == "random":
        # After the nth event the run records, n drawn from `window` by the seed.
        nth = round(random.Random(kill["seed"]).uniform(*kill["window"]))
        _kill_on_call(DagsterInstance, "handle_new_event", max(nth, 1), after=True)
    else:
        raise ValueError(f"unknown kill point {point!r}")


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text())
    if config.get("kill"):
        install_kill(config["kill"])
    backfill(config)
    print("backfill finished without being killed")
