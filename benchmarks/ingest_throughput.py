"""Client-side ingest throughput: objects/s of `write_objects` against a discarding server.

The sandbox runs as its own process in discard mode (`weaviate-indexer sandbox --discard`), so
it stores nothing and what is timed is the project's ingest code and the weaviate-client under
it: building protobuf objects, cutting batches, sending them. Objects look like
`resources/weaviate/objects.py` builds them: 384-dimension float32 vectors, a chunk's text of
about 1,200 characters and the usual properties. Every configuration runs in the same invocation,
so ratios compare like with like; with `--processes N` each configuration also runs in N
processes at once, each with its own client and its own shard key.

`--server store` runs the sandbox as the full run does instead (storing, persisting to a
scratch folder): that measures the sandbox, one Python process, more than the client, and tells
how far the full run's ingest numbers are the sandbox's.

The first row is the path `write_objects` took up to commit 06c855a (batches cut by a JSON size
estimate, each sent through weaviate-client's `insert_many`), kept here as the reference the
hand-built requests are measured against.

    python benchmarks/ingest_throughput.py --objects 20000 --processes 2 [--server store]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import weaviate
from weaviate.classes.data import DataObject

from resources.weaviate.ingest import IngestObject, IngestPolicy, IngestReport, write_objects
from resources.weaviate.schema import VECTOR_NAME, ensure_collection

Writer = Callable[[weaviate.collections.Collection, IngestReport, list[IngestObject],
                   IngestPolicy], None]  # fmt: skip


def write_with_insert_many(
    collection: weaviate.collections.Collection,
    report: IngestReport,
    objects: list[IngestObject],
    policy: IngestPolicy,
) -> None:
    """The 06c855a path, less its retries (never taken here): JSON-estimated batches through
    `insert_many`, `concurrent_requests` at a time."""

    def size(obj: IngestObject) -> int:
        return (
            len(obj.vector) * 4 + len(json.dumps(dict(obj.properties), default=str).encode()) + 96
        )

    def send(batch: list[IngestObject]) -> None:
        result = collection.data.insert_many(
            [DataObject(properties=dict(o.properties), uuid=o.uuid,
                        vector={VECTOR_NAME: o.vector.tolist()}) for o in batch]
        )  # fmt: skip
        assert not result.errors, result.errors

    def cut() -> Iterator[list[IngestObject]]:
        batch: list[IngestObject] = []
        used = 0
        for obj in objects:
            obj_size = size(obj)
            if batch and (len(batch) >= policy.max_objects or used + obj_size > policy.max_bytes):
                yield batch
                batch, used = [], 0
            batch.append(obj)
            used += obj_size
        yield batch

    with ThreadPoolExecutor(policy.concurrent_requests) as pool:  # sends while it cuts
        report.batches = len(list(pool.map(send, cut())))
    report.attempted = len(objects)


CONFIGS: dict[str, tuple[Writer, IngestPolicy]] = {
    "insert_many, 200 objects, 2 in flight (06c855a)": (write_with_insert_many, IngestPolicy()),
    "hand-built, 200 objects, 2 in flight": (write_objects, IngestPolicy()),
    "hand-built, 1000 objects, 2 in flight": (write_objects, IngestPolicy(max_objects=1000)),
    "hand-built, 1000 objects, 4 in flight": (
        write_objects,
        IngestPolicy(max_objects=1000, concurrent_requests=4),
    ),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _objects(n: int, shard: str) -> list[IngestObject]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    text = ("the quiet river crossed an old bridge near the northern city . " * 20)[:1200]
    return [
        IngestObject(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{shard}:{i}")),
            {
                "doc_id": f"doc-{i // 5:07d}",
                "chunk_index": i % 5,
                "text": text,
                "token_count": 254,
                "shard": shard,
                "shard_version": "v1",
                "title": "The old bridge",
                "topic": "history",
                "year": 1950,
            },  # fmt: skip
            vectors[i],
        )
        for i in range(n)
    ]


def _run_one(args: tuple[int, int, str, int, str]) -> tuple[int, float]:
    """One process: its own client (never shared across a fork) and its own shard's objects."""
    http_port, grpc_port, config, n, shard = args
    objects = _objects(n, shard)
    client = weaviate.connect_to_local(port=http_port, grpc_port=grpc_port)
    try:
        report = IngestReport(shard=shard)
        start = time.perf_counter()
        writer, policy = CONFIGS[config]
        writer(client.collections.get("Bench"), report, objects, policy)
        seconds = time.perf_counter() - start
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} objects failed: {report.failed[0]}")
        return report.attempted, seconds
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=20_000, help="per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--server", choices=["discard", "store"], default="discard")
    args = parser.parse_args()
    http_port, grpc_port = _free_port(), _free_port()
    scratch = tempfile.mkdtemp(prefix="ingest-")
    mode = ["--discard"] if args.server == "discard" else ["--data-dir", scratch]
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "sandbox", *mode,
         "--port", str(http_port), "--grpc-port", str(grpc_port)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        server.stdout.readline()
        time.sleep(1.0)
        if args.server == "store":
            with weaviate.connect_to_local(port=http_port, grpc_port=grpc_port) as client:
                ensure_collection(client, "Bench")
        context = multiprocessing.get_context("spawn")
        print(
            "| configuration | processes | objects | seconds | objects/s | per process | x base |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for processes in sorted({1, args.processes}):
            base = None
            with context.Pool(processes) as pool:
                for config in CONFIGS:
                    jobs = [(http_port, grpc_port, config, args.objects, f"s{p}")
                            for p in range(processes)]  # fmt: skip
                    start = time.perf_counter()
                    results = pool.map(_run_one, jobs)
                    wall = time.perf_counter() - start
                    total = sum(count for count, _ in results)
                    per_process = sum(count / seconds for count, seconds in results) / processes
                    rate = sum(count / seconds for count, seconds in results)
                    base = base or rate
                    print(f"| {config} | {processes} | {total:,} | {wall:.2f} | {rate:,.0f} | "
                          f"{per_process:,.0f} | {rate / base:.2f} |", flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
