"""Ingest throughput against a real Weaviate: the project's `write_objects` beside the ways
weaviate-client 4.23 offers to write the same objects.

Why: `write_objects` builds its gRPC requests by hand instead of using the client's batchers,
on the strength of measurements against the project's own fake server, which stored nothing and
indexed nothing. Against a real server the client's per-object cost may vanish behind the
server's own work (object store, inverted index, HNSW), and the client's newer server-side
batching (one gRPC stream, batch sizes set by the server's back-pressure) may beat both. So the
hand-built path has to earn its keep against the real thing, in one invocation so that ratios
compare like with like on the same machine and load.

Why two times per method: the write's objects/s is what an ingest step waits for (the call
returns, every object is acknowledged, none failed, and Weaviate's count is exact), but with
`ASYNC_INDEXING=true` the server acknowledges objects before their vectors are in the HNSW
index, so a fast write can hide a long queue; the second time runs until the vector index
queue is drained and a near-vector search finds known objects, which is when the data is of use.
Each server setting gets a server of its own, and each method a fresh collection created as the
pipeline creates it (declared properties, metadata properties added up front), so no method pays
for another's data and auto-schema never runs. A shard's ingest is one call, so each method
also writes 10 objects in a call of their own: what a call costs whatever its size.

`--rounds N` repeats every method N times per server in rotated orders and reports medians: on a
machine shared with other work (or with a 2-core server beside its client) single runs vary a lot;
`write_objects_again`, last, shows how far the server drifted over the invocation.

    python benchmarks/ingest_throughput.py --objects 20000 [--rounds 3]
        [--methods write_objects,stream,...] [--async-indexing both|on|off]
        [--weaviate-url http://host:8080 --grpc-port 50051]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import weaviate
from weaviate.classes.data import DataObject
from weaviate.collections import Collection

from resources.weaviate.connection import ConnectionSettings, Target, resolve
from resources.weaviate.ingest import (
    IngestObject,
    IngestPolicy,
    IngestReport,
    server_message_limit,
    write_objects,
)
from resources.weaviate.schema import VECTOR_NAME, ensure_collection, ensure_metadata_properties
from resources.weaviate.server import LocalServer

ROOT = Path(__file__).resolve().parent.parent
DIMENSIONS = 384
TEXT_CHARS = 1200
METADATA = {"title": "The old bridge", "topic": "history", "year": 1950}
PROBES = 5  # known objects a near-vector search must find before the data counts as searchable
POLL_SECONDS = 0.1
SMALL_CALL = 10  # objects in the call that shows a method's fixed cost per call

# A writer sends every object and returns the messages of those that failed.
Writer = Callable[[weaviate.WeaviateClient, Collection, list[IngestObject]], list[str]]


def project_path(policy: IngestPolicy) -> Writer:
    """As `ingest_shard` calls it: the policy fitted to the server's gRPC message limit."""

    def write(client: weaviate.WeaviateClient, collection: Collection, objects: list) -> list:
        report = IngestReport(shard="bench")
        write_objects(collection, report, objects, policy.fitted_to(server_message_limit(client)))
        return [f.message for f in report.failed]

    return write


def client_batcher(mode: str, **settings: int) -> Writer:
    """One of `collection.batch`'s context managers, objects added one by one as its docs show;
    vectors go in as the numpy rows they are (the client converts them)."""

    def write(client: weaviate.WeaviateClient, collection: Collection, objects: list) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # `experimental`
            manager = getattr(collection.batch, mode)(**settings)
        with manager as batch:
            for obj in objects:
                batch.add_object(properties=obj.properties, uuid=obj.uuid,
                                 vector={VECTOR_NAME: obj.vector})  # fmt: skip
        return [f.message for f in collection.batch.failed_objects]

    return write


def _data_object(obj: IngestObject) -> DataObject:
    return DataObject(properties=obj.properties, uuid=obj.uuid, vector={VECTOR_NAME: obj.vector})


def insert_many(size: int) -> Writer:
    """`collection.data.insert_many`, one call per `size` objects, one after another."""

    def write(client: weaviate.WeaviateClient, collection: Collection, objects: list) -> list:
        failed: list[str] = []
        for start in range(0, len(objects), size):
            result = collection.data.insert_many(
                [_data_object(obj) for obj in objects[start : start + size]]
            )
            failed += [error.message for error in result.errors.values()]
        return failed

    return write


def ingest(client: weaviate.WeaviateClient, collection: Collection, objects: list) -> list:
    """`collection.data.ingest`: server-side batching behind a plain call."""
    result = collection.data.ingest(_data_object(obj) for obj in objects)
    return [error.message for error in result.errors.values()]


@dataclass(frozen=True)
class Method:
    label: str
    write: Writer
    default: bool = True


METHODS: dict[str, Method] = {
    "write_objects": Method(
        "project `write_objects`: hand-built BatchObjects, 200/request, 2 in flight",
        project_path(IngestPolicy()),
    ),
    # The project's path once more after all the others: how far the server (or the machine's
    # load) drifted during the invocation; its ratio is to the first run.
    "write_objects_again": Method(
        "project `write_objects` again, last (drift check)", project_path(IngestPolicy())
    ),
    "fixed_size_200x2": Method(
        "`batch.fixed_size(200, concurrent_requests=2)`",
        client_batcher("fixed_size", batch_size=200, concurrent_requests=2),
    ),  # fmt: skip
    "fixed_size_1000x4": Method(
        "`batch.fixed_size(1000, concurrent_requests=4)`",
        client_batcher("fixed_size", batch_size=1000, concurrent_requests=4),
    ),  # fmt: skip
    "dynamic": Method("`batch.dynamic()`", client_batcher("dynamic")),
    "insert_many_200": Method("`data.insert_many`, 200 per call, sequential", insert_many(200)),
    "insert_many_1000": Method("`data.insert_many`, 1000 per call, sequential", insert_many(1000)),
    "stream": Method("`batch.stream()` (server-side batching)", client_batcher("stream")),
    "ingest": Method("`data.ingest` (server-side batching)", ingest),
    # `batch.experimental()` is `stream()` under a deprecated name (same code): off by default.
    "experimental": Method(
        "`batch.experimental()` (deprecated alias of `stream`)",
        client_batcher("experimental"),
        default=False,
    ),
}


def make_objects(n: int) -> list[IngestObject]:
    """Unit float32 vectors and ~1,200 characters of varied text from a fixed vocabulary, so
    the inverted index sees realistic posting lists rather than one repeated chunk."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, DIMENSIONS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, rng.integers(2, 11))) for _ in range(5000)]
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)  # Zipf-like, as words in prose
    weights /= weights.sum()
    objects = []
    for i in range(n):
        words = rng.choice(vocabulary, 260, p=weights)
        text = " ".join(words)[:TEXT_CHARS]
        properties = {
            "doc_id": f"doc-{i // 5:07d}",
            "chunk_index": i % 5,
            "text": text,
            "token_count": 254,
            "shard": "bench",
            "shard_version": "v1",
            **METADATA,
        }
        objects.append(IngestObject(str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{i}")),
                                    properties, vectors[i]))  # fmt: skip
    return objects


@dataclass
class Result:
    setting: str
    method: str
    objects: int
    write_seconds: float | None = None
    client_cpu_seconds: float | None = None
    small_call_seconds: float | None = None
    searchable_seconds: float | None = None
    queue_after_write: int | None = None
    found_at_write_end: bool | None = None
    failed: int = 0
    count: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def start_server(root: Path, async_indexing: bool) -> LocalServer:
    env = (("ASYNC_INDEXING", str(async_indexing).lower()),)
    server = LocalServer.on_free_ports(root, extra_env=env)
    started = time.perf_counter()
    server.start(progress=lambda line: print(line, file=sys.stderr))
    print(f"started {server.describe()} with ASYNC_INDEXING={async_indexing} in "
          f"{time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
    return server


def custom_target(url: str, grpc_port: int, api_key: str | None = None) -> Target:
    """The server as the pipeline reaches one at WEAVIATE_URL (its timeouts and auth)."""
    return resolve(ConnectionSettings(mode="custom", url=url, grpc_port=grpc_port, api_key=api_key))


def create_collection(client: weaviate.WeaviateClient, name: str) -> Collection:
    if client.collections.exists(name):
        client.collections.delete(name)
    ensure_collection(client, name)
    ensure_metadata_properties(client, name, [METADATA])
    return client.collections.get(name)


def vector_queue(client: weaviate.WeaviateClient, collection: Collection) -> tuple[int, bool]:
    """Vectors waiting for the index, as the nodes API and the shards API each report them, and
    whether every shard is READY (a shard reports INDEXING while its queue drains)."""
    nodes = client.cluster.nodes(collection=collection.name, output="verbose")
    by_nodes = sum(shard.vector_queue_length for node in nodes for shard in node.shards or [])
    shards = collection.config.get_shards()
    by_shards = sum(shard.vector_queue_size for shard in shards)
    return max(by_nodes, by_shards), all(shard.status == "READY" for shard in shards)


def probes_found(collection: Collection, probes: list[IngestObject]) -> bool:
    for probe in probes:
        result = collection.query.near_vector(
            near_vector=probe.vector.tolist(), target_vector=VECTOR_NAME, limit=1
        )
        if not result.objects or str(result.objects[0].uuid) != probe.uuid:
            return False
    return True


def count(collection: Collection) -> int:
    return int(collection.aggregate.over_all(total_count=True).total_count or 0)


def measure(
    target: Target,
    setting: str,
    key: str,
    objects: list[IngestObject],
    index_timeout: float,
) -> Result:
    """One method into a fresh collection: write, verify, wait until searchable, drop it."""
    result = Result(setting, key, len(objects))
    name = f"Bench_{key}"
    picks = np.random.default_rng(1).integers(0, len(objects), PROBES - 2)
    probes = [objects[0], objects[-1], *(objects[i] for i in picks)]
    with target.connect() as client:
        collection = create_collection(client, name)
        try:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                failures = METHODS[key].write(client, collection, objects)
            except Exception as exc:
                result.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                traceback.print_exc(file=sys.stderr)
                return result
            returned = time.perf_counter()
            result.client_cpu_seconds = time.process_time() - cpu
            result.failed = len(failures)
            if failures:
                result.notes.append(f"first failure: {failures[0][:200]}")
            result.count = count(collection)
            write_end = returned
            if result.count != len(objects) - result.failed:
                # Acknowledged is not yet stored: wait (bounded) for the count to catch up.
                result.notes.append(f"count {result.count} when the write returned")
                deadline = time.perf_counter() + 60
                while result.count < len(objects) - result.failed:
                    if time.perf_counter() > deadline:
                        break
                    time.sleep(POLL_SECONDS)
                    result.count = count(collection)
                write_end = time.perf_counter()
                result.notes.append(f"count {result.count} after {write_end - returned:.1f}s")
            result.write_seconds = write_end - started
            if result.failed or result.count != len(objects):
                result.notes.append("not waited for searchable: objects are missing")
                return result
            queue, ready = vector_queue(client, collection)
            result.queue_after_write = queue
            result.found_at_write_end = probes_found(collection, probes)
            deadline = time.perf_counter() + index_timeout
            found = result.found_at_write_end and queue == 0 and ready
            while not found:
                if time.perf_counter() > deadline:
                    result.notes.append(f"not searchable after {index_timeout:.0f}s "
                                        f"(queue {queue}, shards ready: {ready})")  # fmt: skip
                    break
                time.sleep(POLL_SECONDS)
                queue, ready = vector_queue(client, collection)
                found = queue == 0 and ready and probes_found(collection, probes)
            if found:
                result.searchable_seconds = time.perf_counter() - started
        finally:
            client.collections.delete(name)
        result.small_call_seconds = small_call(client, key, objects[:SMALL_CALL])
    return result


def small_call(client: weaviate.WeaviateClient, key: str, objects: list) -> float | None:
    """A call's fixed cost, which a shard's ingest pays once whatever its size."""
    name = f"Bench_{key}_small"
    collection = create_collection(client, name)
    try:
        started = time.perf_counter()
        METHODS[key].write(client, collection, objects)
        return time.perf_counter() - started
    except Exception as exc:
        print(f"  {key}: the {len(objects)}-object call failed: {exc}", file=sys.stderr)
        return None
    finally:
        client.collections.delete(name)


def warm_up(target: Target, objects: list[IngestObject]) -> None:
    """A first write into a new server pays for its first segments and memtables; no method
    should carry that."""
    with target.connect() as client:
        collection = create_collection(client, "Bench_warmup")
        report = IngestReport(shard="warmup")
        write_objects(collection, report, objects, IngestPolicy())
        client.collections.delete("Bench_warmup")


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain").strip() else "")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {model}; load average {load}"


def _rate(n: int, seconds: float | None) -> float | None:
    return n / seconds if seconds else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


@dataclass
class Row:
    """A method's rounds in one server setting, summarised by their medians."""

    setting: str
    method: str
    rounds: list[Result]

    @property
    def objects(self) -> int:
        return self.rounds[0].objects

    def median(self, name: str) -> float | None:
        return _median([getattr(r, name) for r in self.rounds if not r.error])

    def rate(self, name: str) -> float | None:
        seconds = self.median(name)
        return self.objects / seconds if seconds else None

    def cells(self, base: Row | None) -> list[str]:
        write, searchable = self.rate("write_seconds"), self.rate("searchable_seconds")
        write_x = searchable_x = None
        if base is not None:
            base_write, base_searchable = (
                base.rate("write_seconds"),
                base.rate("searchable_seconds"),
            )
            write_x = write / base_write if write and base_write else None
            searchable_x = searchable / base_searchable if searchable and base_searchable else None
        found = [r.found_at_write_end for r in self.rounds if r.found_at_write_end is not None]
        notes = [f"ERROR {r.error}" for r in self.rounds if r.error]
        notes += list(dict.fromkeys(note for r in self.rounds for note in r.notes))
        rates = [r.objects / r.write_seconds for r in self.rounds if r.write_seconds]
        if len(rates) > 1:
            notes.append(f"write objects/s of the rounds {min(rates):,.0f}-{max(rates):,.0f}")
        counts = sorted({r.count for r in self.rounds if r.count is not None})
        return [
            self.setting, METHODS[self.method].label, f"{self.objects:,}",
            _fmt(self.median("write_seconds"), ".2f"), _fmt(write, ",.0f"), _fmt(write_x, ".2f"),
            _fmt(self.median("client_cpu_seconds"), ".2f"),
            _fmt(self.median("queue_after_write"), ",.0f"),
            "-" if not found else "yes" if all(found) else "no" if not any(found)
            else f"{sum(found)} of {len(found)}",
            _fmt(self.median("searchable_seconds"), ".2f"), _fmt(searchable, ",.0f"),
            _fmt(searchable_x, ".2f"), _fmt(self.median("small_call_seconds"), ".2f"),
            f"{sum(r.failed for r in self.rounds):,}",
            "/".join(f"{c:,}" for c in counts) or "-", "; ".join(notes),
        ]  # fmt: skip


def table(results: list[Result]) -> str:
    rounds = max(Counter((r.setting, r.method) for r in results).values())
    median = " (median of rounds)" if rounds > 1 else ""
    lines = [
        f"| server | method | objects | write s{median} | write objects/s | x project | client "
        "CPU s | queue at write end | found at write end | searchable s | searchable objects/s "
        f"| x project | s for {SMALL_CALL} objects | failed | count | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows: dict[tuple[str, str], Row] = {}
    for r in results:
        rows.setdefault((r.setting, r.method), Row(r.setting, r.method, [])).rounds.append(r)
    for (setting, _), row in rows.items():
        base = rows.get((setting, "write_objects"))
        lines.append("| " + " | ".join(row.cells(base)) + " |")
    return "\n".join(lines)


def _order(methods: list[str], rounds: int) -> list[str]:
    """Every round rotated by one, so no method always follows the same one; the drift check
    stays last."""
    again = [m for m in methods if m == "write_objects_again"]
    others = [m for m in methods if m != "write_objects_again"]
    order: list[str] = []
    for r in range(rounds):
        shift = r % len(others) if others else 0
        order += others[shift:] + others[:shift]
    return order + again


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument(
        "--methods", default=",".join(k for k, m in METHODS.items() if m.default),
        help=f"comma-separated, run in this order, of: {', '.join(METHODS)} (default: all but "
        "`experimental`, `write_objects_again` last)",
    )  # fmt: skip
    parser.add_argument("--async-indexing", choices=["on", "off", "both"], default="both")
    parser.add_argument(
        "--weaviate-url", default=None,
        help="a running Weaviate instead of servers started here (its own ASYNC_INDEXING "
        "setting applies; --async-indexing is ignored)",
    )  # fmt: skip
    parser.add_argument("--grpc-port", type=int, default=50051, help="with --weaviate-url")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="run every method this many times per server, each round in a rotated order; the "
        "table shows medians",
    )  # fmt: skip
    parser.add_argument("--index-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")

    print(f"commit {commit()}; machine: {machine()}")
    print(f"weaviate-client {weaviate.__version__}; {args.objects:,} objects of {DIMENSIONS} "
          f"float32 dimensions and {TEXT_CHARS:,} characters of text each", flush=True)  # fmt: skip
    objects = make_objects(args.objects)
    warm = objects[: min(1000, len(objects))]
    results: list[Result] = []
    if args.weaviate_url:
        parsed = urlparse(args.weaviate_url)
        target = custom_target(args.weaviate_url, args.grpc_port,
                               os.environ.get("WEAVIATE_API_KEY") or None)  # fmt: skip
        settings: list[tuple[str, bool | None]] = [(f"{parsed.hostname}:{parsed.port}", None)]
    else:
        target = None
        settings = [(f"ASYNC_INDEXING={s}", s == "on")
                    for s in (["off", "on"] if args.async_indexing == "both"
                              else [args.async_indexing])]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as scratch:
        for setting, async_indexing in settings:
            server = None
            if async_indexing is not None:
                server = start_server(Path(scratch) / setting.replace("=", "-"), async_indexing)
                target = custom_target(
                    f"http://127.0.0.1:{server.http_port}", server.grpc_port, server.api_key
                )
            assert target is not None
            try:
                with target.connect() as client:
                    print(f"{setting}: Weaviate {client.get_meta()['version']}", flush=True)
                warm_up(target, warm)
                for key in _order(methods, args.rounds):
                    result = measure(target, setting, key, objects, args.index_timeout)
                    results.append(result)
                    error = f", ERROR {result.error}" if result.error else ""
                    print(f"  {key}: write {_fmt(result.write_seconds, '.2f')}s, searchable "
                          f"{_fmt(result.searchable_seconds, '.2f')}s, failed {result.failed}, "
                          f"count {result.count}{error}; {threading.active_count()} threads "
                          "in this process", file=sys.stderr, flush=True)  # fmt: skip
            finally:
                if server is not None:
                    server.stop()
    print()
    print(table(results))
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
