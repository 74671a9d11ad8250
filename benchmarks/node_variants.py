"""Where one Weaviate node's time goes during a bulk load, and which settings move it.

    python benchmarks/node_variants.py --run /tmp/runs/command-162k --out /tmp/node \\
        --variants before,lean,lean-rq --profile before,lean-rq [--shards 160]

The objects are a finished pipeline run's own (`benchmarks/full_run.py --out RUN` leaves them in
RUN/data: each shard's chunk file and vector file, so the text, metadata and vectors a user's
corpus gives); each variant stores them into a fresh server of its own through the index step
itself (`assets.stages.index`: metadata properties, `ingest_shard`'s batches, stale-chunk removal
and count), from `--writers` processes at once as the command's concurrent runs write, and the
clock runs from the first write until every vector has left the server's indexing queue, which
is when a search finds every object ("first write to searchable"). Embedding is not in it: it
is the node's rate, measured apart from the GPU so that each variant costs a minute or two.

Each variant then reports what a user keeps and loses: recall@10 of the vector search against
exact search (200 stored chunks' vectors as queries, exact top 10 by numpy over every vector),
its latency, BM25 (a chunk's rarest words find it in the top 10), filters (a document's chunks
by `doc_id`; chunks containing a word, which falls back to the BM25 index when the text has no
filterable index), the server's peak and final memory and its data on disk. With `--profile`,
Go's CPU profile of the server (`GO_PROFILING_PORT`) is taken for 30 s while the writes run and
for 20 s while the queue drains, to read with `go tool pprof -top <binary> <file>`; the
profiling port answers without credentials, which is why only this benchmark opens it.

`server_cpus` pins the server to the first N cores and the writers to the others (GOMAXPROCS
follows), for the per-core table: what a separate node of N cores would store. `nodes` starts a
local cluster instead, each node pinned to its own slice of the cores, the collection sharded
over them (one copy of each shard), the writers spread over the nodes.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import weaviate  # noqa: E402
from weaviate.classes.config import Configure, Reconfigure  # noqa: E402
from weaviate.classes.query import Filter  # noqa: E402

from assets.stages import index  # noqa: E402
from resources.corpus.tables import read_chunks  # noqa: E402
from resources.processes import resident_bytes  # noqa: E402
from resources.shard_files import ShardFiles  # noqa: E402
from resources.vectors import read_vectors  # noqa: E402
from resources.weaviate.cluster import LocalCluster  # noqa: E402
from resources.weaviate.ingest import IngestPolicy  # noqa: E402
from resources.weaviate.schema import VECTOR_NAME, IndexLayout, ensure_collection  # noqa: E402
from resources.weaviate.searchable import vectors_queued  # noqa: E402
from resources.weaviate.server import LocalServer, free_port_block, install_binary  # noqa: E402

COLLECTION = "Chunks"
QUERIES = 200
KEYWORD_QUERIES = 50
LATENCY_EF = (-1, 256)  # query search widths tried on an HNSW index
# Weaviate's "en" stopwords of four letters or more: a filter on one alone is refused.
STOPWORDS = frozenset({"into", "such", "that", "their", "then", "there", "these", "they", "this",
                       "will", "with"})  # fmt: skip
SAMPLED_SHARDS = 40  # keyword and filter probes come from these, which every variant stores


@dataclass(frozen=True)
class Variant:
    """A collection layout, server settings, writers; `before`: the properties as the project
    declared them before (every property searchable and filterable, as Weaviate's defaults)."""

    layout: IndexLayout = IndexLayout(shards=16)
    before: bool = False
    env: tuple[tuple[str, str], ...] = ()
    writers: int = 4
    requests: int = 2
    server_cpus: int = 0
    nodes: int = 1
    shards: int = 0  # the corpus's first N shards (0: all): a slower node stores fewer
    node_cpus: int = 0  # each node's cores in a cluster (0: the cores less one, shared out)


# Build width 128, as these variants were first measured; the project's default layout since is
# "lean-rq-ef64".
BEFORE = IndexLayout(shards=16, compression="none", text_filterable=True, ef_construction=128)
LEAN = replace(BEFORE, text_filterable=False)
LEAN_RQ = replace(LEAN, compression="rq")
VARIANTS: dict[str, Variant] = {
    "before": Variant(BEFORE, before=True),
    "lean": Variant(LEAN),
    "rq": Variant(replace(BEFORE, compression="rq"), before=True),
    "lean-rq": Variant(LEAN_RQ),
    "lean-rq-m16": Variant(replace(LEAN_RQ, max_connections=16)),
    "lean-rq-ef64": Variant(replace(LEAN_RQ, ef_construction=64)),
    "lean-rq-ef64-8writers": Variant(replace(LEAN_RQ, ef_construction=64), writers=8),
    # Garbage collection took 10 to 16% of the node while writing: half as often, the memory
    # limit (GOMEMLIMIT) still holding the heap.
    "lean-rq-gogc200": Variant(LEAN_RQ, env=(("GOGC", "200"),)),
    "lean-rq-8writers": Variant(LEAN_RQ, writers=8),
    "lean-rq-batch": Variant(
        LEAN_RQ, env=(("ASYNC_INDEXING_BATCH_SIZE", "10000"), ("QUEUE_SCHEDULER_INTERVAL", "200ms"))
    ),
    "lean-rq-sync": Variant(LEAN_RQ, env=(("ASYNC_INDEXING", "false"),)),
    "lean-rq-8shards": Variant(replace(LEAN_RQ, shards=8)),
    "hfresh-rq": Variant(replace(LEAN_RQ, vector_index_type="hfresh")),
    "flat-rq": Variant(replace(LEAN_RQ, vector_index_type="flat")),
    "lean-rq-4cpu": Variant(replace(LEAN_RQ, shards=4), server_cpus=4, writers=2, shards=40),
    "lean-rq-8cpu": Variant(replace(LEAN_RQ, shards=8), server_cpus=8, writers=3, shards=80),
    "lean-rq-3nodes": Variant(replace(LEAN_RQ, shards=15), nodes=3, writers=4),
    # Three nodes of 4 cores beside 4 for the writers: against one node of 4 (lean-rq-4cpu).
    "lean-rq-3x4cpu": Variant(replace(LEAN_RQ, shards=12), nodes=3, writers=4, node_cpus=4),
}


class _Log:
    """What `assets.stages.index` logs, outside Dagster."""

    def info(self, message: str) -> None:
        logging.info(message)

    warning = info


# Writer processes: one client per node, opened once per process.
_clients: dict[int, weaviate.WeaviateClient] = {}
_targets: list[tuple[int, int, str]] = []


def _writer_start(targets: list[tuple[int, int, str]], cpus: list[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    _targets.extend(targets)


def _client(node: int) -> weaviate.WeaviateClient:
    if node not in _clients:
        http, grpc, key = _targets[node]
        _clients[node] = weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=http, http_secure=False, grpc_host="127.0.0.1",
            grpc_port=grpc, grpc_secure=False, auth_credentials=key,
        )  # fmt: skip
    return _clients[node]


def _warm(node: int) -> int:
    _client(node)
    return os.getpid()


def _write(task: tuple[str, str, int, int]) -> tuple[float, float, int]:
    """One shard as the index step writes it; a failure comes back as text (the client's
    exceptions do not survive pickling, and a pool then waits for ever)."""
    data, key, node, requests = task
    began = time.time()
    try:
        figures = index(_client(node), COLLECTION, ShardFiles(Path(data), key),
                        IngestPolicy(concurrent_requests=requests), "fail", _Log())  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        raise RuntimeError(f"shard {key}: {type(exc).__name__}: {exc}") from None
    return began, time.time(), int(figures["objects_in_weaviate"])


def _rss(pids: list[int]) -> int:
    return sum(resident_bytes(pid) for pid in pids)


@dataclass
class Watch:
    """Samples the server's memory and its indexing queue while a variant runs."""

    pids: list[int]
    client: weaviate.WeaviateClient
    began: float = field(default_factory=time.time)
    peak: int = 0
    queue: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last_queue = 0.0
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _rss(self.pids))
            if time.time() - last_queue >= 5:
                last_queue = time.time()
                try:
                    queued = vectors_queued(self.client, COLLECTION)
                except Exception:  # a busy server answering late: the next sample will do
                    continue
                self.queue.append((round(last_queue - self.began, 1), queued))


def profile(port: int, seconds: int, path: Path, delay: float = 0.0) -> threading.Thread:
    """Go's CPU profile of the server over `seconds`, from `delay` seconds on, in a thread."""

    def take() -> None:
        time.sleep(delay)
        url = f"http://127.0.0.1:{port}/debug/pprof/profile?seconds={seconds}"
        try:
            with urllib.request.urlopen(url, timeout=seconds + 30) as response:
                path.write_bytes(response.read())
        except OSError as exc:
            path.with_suffix(".error").write_text(str(exc))

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread


def create(client: weaviate.WeaviateClient, variant: Variant) -> None:
    """As the index step creates it; `before`: every property with Weaviate's default indexes,
    as the project declared them until the lean layout (the ids searchable too)."""
    if not variant.before:
        ensure_collection(client, COLLECTION, variant.layout)
        return
    layout = variant.layout
    client.collections.create(
        COLLECTION,
        properties=[
            p.model_copy(update={"indexFilterable": None, "indexSearchable": None})
            for p in layout.properties()
        ],
        vector_config=Configure.Vectors.self_provided(
            name=VECTOR_NAME, vector_index_config=layout.vector_index()
        ),
        sharding_config=Configure.sharding(desired_count=layout.shards),
        replication_config=layout.replication(),
    )


@dataclass
class Corpus:
    """The replayed run's shards, their vectors and the probes every variant is asked."""

    data: Path
    keys: list[str]
    sizes: list[int]  # objects per shard
    uuids: list[str]
    vectors: np.ndarray
    keyword_probes: list[tuple[str, str]]  # (query, uuid)
    docs: list[tuple[str, int]]  # (doc_id, chunks)
    words: list[str]
    _exact: dict[int, tuple[np.ndarray, list[set[str]]]] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Path, shards: int) -> Corpus:
        data = run / "data"
        keys = sorted(p.stem for p in (data / "embeddings").glob("*.parquet"))[: shards or None]
        stored = [read_vectors(ShardFiles(data, k).embeddings) for k in keys]
        uuids = [u for f in stored for u in f.uuids]
        vectors = np.concatenate([f.vectors for f in stored]).astype(np.float32)
        texts: list[str] = []
        ids: list[str] = []
        doc_chunks: Counter[str] = Counter()
        # From the first SAMPLED_SHARDS only, which every variant stores.
        for key in keys[:SAMPLED_SHARDS:4]:
            table = read_chunks(ShardFiles(data, key).chunks, columns=["uuid", "doc_id", "text"])
            texts += table.column("text").to_pylist()
            ids += table.column("uuid").to_pylist()
            doc_chunks.update(table.column("doc_id").to_pylist())
        frequency = Counter(w for t in texts for w in set(re.findall(r"[a-z]{4,}", t.lower())))
        rng = np.random.default_rng(1)
        probes = []
        for i in rng.choice(len(texts), size=min(KEYWORD_QUERIES, len(texts)), replace=False):
            words = sorted(set(re.findall(r"[a-z]{4,}", texts[i].lower())), key=frequency.get)
            probes.append((" ".join(words[:10]), ids[i]))
        docs = list(doc_chunks.most_common())[:: max(1, len(doc_chunks) // 20)][:20]
        # Words of every frequency: the text filter's counts are compared across variants.
        ranked = [w for w, _ in frequency.most_common() if w not in STOPWORDS]
        words = [ranked[int(q * (len(ranked) - 1))] for q in (0.0, 0.01, 0.1, 0.5)]
        sizes = [len(f.uuids) for f in stored]
        return cls(data, keys, sizes, uuids, vectors, probes, docs, words)

    def exact(self, shards: int) -> tuple[np.ndarray, list[set[str]]]:
        """Query rows and each query's exact top 10 among the first `shards` shards' objects."""
        count = sum(self.sizes[:shards])
        if count not in self._exact:
            rng = np.random.default_rng(0)
            picks = rng.choice(count, size=min(QUERIES, count), replace=False)
            scores = self.vectors[picks] @ self.vectors[:count].T
            top = np.argpartition(-scores, 10, axis=1)[:, :10]
            self._exact[count] = (picks, [{self.uuids[i] for i in row} for row in top])
        return self._exact[count]


def _timed(question: Callable[[object], object], probes: list) -> tuple[list, dict[str, float]]:
    """Each probe's answer, asked one after another, and the answers' latency."""
    answers, seconds = [], []
    for probe in probes:
        began = time.perf_counter()
        answers.append(question(probe))
        seconds.append(time.perf_counter() - began)
    latency = {
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 2),
        "p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 2),
    }
    return answers, latency


def ask(client: weaviate.WeaviateClient, corpus: Corpus, variant: Variant) -> dict:
    """What a user keeps: vector search (recall, latency), BM25, filters."""
    chunks = client.collections.get(COLLECTION)

    def nearest(row: int) -> set[str]:
        found = chunks.query.near_vector(corpus.vectors[row].tolist(), limit=10).objects
        return {str(o.uuid) for o in found}

    def keywords(probe: tuple[str, str]) -> bool:
        return probe[1] in {str(o.uuid) for o in chunks.query.bm25(probe[0], limit=10).objects}

    def count(where: Filter) -> int:
        return int(chunks.aggregate.over_all(filters=where, total_count=True).total_count or 0)

    answers: dict = {}
    picks, exact = corpus.exact(variant.shards or len(corpus.keys))
    widths = LATENCY_EF if variant.layout.vector_index_type == "hnsw" else (None,)
    for ef in widths:
        if ef is not None:
            width = Reconfigure.VectorIndex.hnsw(ef=ef)
            update = Reconfigure.Vectors.update(name=VECTOR_NAME, vector_index_config=width)
            chunks.config.update(vector_config=update)
        found, latency = _timed(nearest, list(picks))
        hits = sum(len(f & e) for f, e in zip(found, exact, strict=True))
        name = "vector" if ef is None else f"vector_ef_{ef}"
        answers[name] = {"recall_at_10": round(hits / (10 * len(found)), 4), **latency}
    found, latency = _timed(keywords, corpus.keyword_probes)
    answers["bm25"] = {"found_in_top_10": sum(found) / len(found), **latency}
    by_doc = [Filter.by_property("doc_id").equal(doc) for doc, _ in corpus.docs]
    counts, latency = _timed(count, by_doc)
    exact_counts = sum(c == n for c, (_, n) in zip(counts, corpus.docs, strict=True))
    answers["doc_id_filter"] = {"exact_counts": exact_counts, "of": len(counts), **latency}
    by_word = [Filter.by_property("text").contains_any([word]) for word in corpus.words]
    counts, latency = _timed(count, by_word)
    answers["text_filter"] = {"counts": dict(zip(corpus.words, counts, strict=True)), **latency}
    return answers


def _disk_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 else 0


def _cpu_slices(variant: Variant) -> tuple[list[list[int]], list[int] | None]:
    """Cores of each node and of the writers (None: anywhere)."""
    cpus = sorted(os.sched_getaffinity(0))
    if variant.nodes > 1:
        per = variant.node_cpus or (len(cpus) - 1) // variant.nodes
        if per == 0 or per * variant.nodes >= len(cpus):  # too few to split: the nodes share all
            return [cpus] * variant.nodes, None
        nodes = [cpus[k * per : (k + 1) * per] for k in range(variant.nodes)]
        return nodes, cpus[variant.nodes * per :]
    if variant.server_cpus:
        return [cpus[: variant.server_cpus]], cpus[variant.server_cpus :] or None
    return [cpus], None


def run_variant(name: str, variant: Variant, corpus: Corpus, out: Path, profiled: bool) -> dict:
    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    slices, writer_cpus = _cpu_slices(variant)
    env = (("ASYNC_INDEXING", "true"), ("GOMAXPROCS", str(len(slices[0]))), *variant.env)
    profiling = free_port_block(1)
    if profiled:
        # Weaviate 1.39 binds the port unless GO_PROFILING_DISABLE, and answers 404 there
        # unless DEBUG_ENDPOINTS_ENABLED.
        env += (("GO_PROFILING_DISABLE", "false"), ("GO_PROFILING_PORT", str(profiling)),
                ("DEBUG_ENDPOINTS_ENABLED", "true"))  # fmt: skip
    if variant.nodes > 1:
        cluster = LocalCluster.on_free_ports(root, variant.nodes, extra_env=env)
        nodes = list(cluster.nodes)
    else:
        cluster, nodes = None, [LocalServer.on_free_ports(root, extra_env=env)]
    binary = install_binary()
    mine = os.sched_getaffinity(0)
    try:
        for node, cpus in zip(nodes, slices, strict=True):
            os.sched_setaffinity(0, cpus)  # the server's shell inherits it, Go reads it
            node.launch(binary)
        os.sched_setaffinity(0, mine)
        if cluster:
            cluster.wait_healthy()
        else:
            nodes[0].wait_ready()
        return _measure(name, variant, corpus, root, nodes, writer_cpus, profiled, profiling)
    finally:
        os.sched_setaffinity(0, mine)
        for node in nodes:
            node.stop()


def _measure(name, variant, corpus, root, nodes, writer_cpus, profiled, profiling) -> dict:
    targets = [(n.http_port, n.grpc_port, n.api_key) for n in nodes]
    pids = [n.pid() for n in nodes]
    client = _client_to(nodes[0])
    with client:
        create(client, variant)
        context = multiprocessing.get_context("spawn")
        with context.Pool(variant.writers, _writer_start, (targets, writer_cpus)) as pool:
            pool.map(_warm, [k % len(nodes) for k in range(variant.writers * 4)])
            keys = corpus.keys[: variant.shards or None]
            tasks = [(str(corpus.data), key, k % len(nodes), variant.requests)
                     for k, key in enumerate(keys)]  # fmt: skip
            with Watch(pids, client) as watch:
                began = time.time()
                pending = pool.map_async(_write, tasks, chunksize=1)
                if profiled:
                    profile(profiling, 30, root.parent / f"{name}.writes.pprof", delay=10)
                written = pending.get()
                writes_done = time.time()
                drain = None
                if profiled and vectors_queued(client, COLLECTION):
                    drain = profile(profiling, 20, root.parent / f"{name}.drain.pprof")
                while vectors_queued(client, COLLECTION):
                    time.sleep(0.2)
                searchable = time.time()
        if drain is not None:
            drain.join()
        first = min(w[0] for w in written)
        objects = sum(w[2] for w in written)
        count = client.collections.get(COLLECTION).aggregate.over_all(total_count=True).total_count
        answers = ask(client, corpus, variant)
        final_rss = _rss(pids)
    seconds = searchable - first
    return {
        "variant": name,
        "layout": {k: v for k, v in vars(variant.layout).items()},
        "before_properties": variant.before,
        "env": dict(variant.env),
        "writers": variant.writers,
        "requests_per_writer": variant.requests,
        "server_cpus": [len(s) for s in _cpu_slices(variant)[0]],
        "nodes": variant.nodes,
        "objects": objects,
        "count_in_weaviate": count,
        "writes_seconds": round(writes_done - first, 1),
        "first_write_to_searchable_seconds": round(seconds, 1),
        "objects_per_second_to_searchable": round(objects / seconds, 1),
        "objects_per_second_written": round(objects / (writes_done - first), 1),
        "clock_started_after_submit_seconds": round(first - began, 2),
        "queue_samples": watch.queue,
        "server_peak_rss_bytes": watch.peak,
        "server_final_rss_bytes": final_rss,
        "disk_bytes": _disk_bytes(root),
        "queries": answers,
    }


def _client_to(node: LocalServer) -> weaviate.WeaviateClient:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=node.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=node.grpc_port, grpc_secure=False,
        auth_credentials=node.api_key,
        additional_config=weaviate.classes.init.AdditionalConfig(
            timeout=weaviate.classes.init.Timeout(init=30, query=120, insert=120)),
    )  # fmt: skip


def summary(result: dict) -> str:
    queries = result["queries"]
    vector = queries.get("vector_ef_-1") or queries["vector"]
    return (
        f"{result['variant']}: {result['objects']:,} objects, "
        f"{result['objects_per_second_to_searchable']:,.0f} obj/s to searchable "
        f"({result['objects_per_second_written']:,.0f} written), recall@10 "
        f"{vector['recall_at_10']}, bm25 {queries['bm25']['found_in_top_10']}, server peak "
        f"{result['server_peak_rss_bytes'] / 2**30:.1f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a full_run.py --out folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="before,lean-rq", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--profile", default="", help="variants whose server is profiled")
    parser.add_argument("--shards", type=int, default=0, help="the run's first N shards (0: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}: use {', '.join(VARIANTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    corpus = Corpus.of(args.run.resolve(), args.shards)
    print(f"{len(corpus.uuids):,} objects in {len(corpus.keys)} shards, probes ready in "
          f"{time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
    for name in names:
        result = run_variant(name, VARIANTS[name], corpus, args.out.resolve(),
                             name in args.profile.split(","))  # fmt: skip
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        shutil.rmtree(args.out / name, ignore_errors=True)
        print(summary(result), flush=True)


if __name__ == "__main__":
    main()
