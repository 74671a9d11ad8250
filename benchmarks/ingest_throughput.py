"""Client-side ingest throughput: objects/s of `write_objects` against a discarding server.

The sandbox runs as its own process in discard mode (`weaviate-indexer sandbox --discard`), so
it decodes nothing and stores nothing and what is timed is the project's ingest code and the
weaviate-client under it: building protobuf objects, cutting batches, sending them. Objects look
like `resources/weaviate/objects.py` builds them: 384-dimension float32 vectors, a chunk's text of
about 1,200 characters and the usual properties. Every configuration runs in the same invocation,
so ratios compare like with like; with `--processes N` each configuration also runs in N
processes at once, each with its own client and its own shard key.

    python benchmarks/ingest_throughput.py --objects 20000 --processes 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import subprocess
import sys
import time
import uuid

import numpy as np
import weaviate

from resources.weaviate.ingest import IngestObject, IngestPolicy, IngestReport, write_objects

CONFIGS = {
    "baseline (200 objects, 2 in flight)": IngestPolicy(),
    "1000 objects, 2 in flight": IngestPolicy(max_objects=1000),
    "1000 objects, 4 in flight": IngestPolicy(max_objects=1000, concurrent_requests=4),
    "2000 objects, 4 in flight": IngestPolicy(max_objects=2000, concurrent_requests=4),
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
        write_objects(client.collections.get("Bench"), report, objects, CONFIGS[config])
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
    args = parser.parse_args()
    http_port, grpc_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "sandbox",
            "--discard",
            "--port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        time.sleep(1.0)
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


if __name__ == "__main__":
    main()
