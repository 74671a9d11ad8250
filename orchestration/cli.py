"""`weaviate-indexer`: what is not orchestration. Indexing itself runs through Dagster."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from orchestration.demo import run_demo


def _sample_corpus(args: argparse.Namespace) -> int:
    from resources.corpus.sample import SampleSpec, write_sample_corpus

    spec = SampleSpec(
        docs=args.docs,
        seed=args.seed,
        median_tokens=args.median_tokens,
        max_tokens=args.max_tokens,
        docs_per_file=args.docs_per_file,
    )
    stats = write_sample_corpus(args.out, spec, workers=args.workers)
    print(" ".join(f"{k}={v}" for k, v in stats.items()))
    return 0


def _weaviate(args: argparse.Namespace) -> int:
    """The managed local server, for `make ui` and anything else that wants it running."""
    from resources.weaviate.server import install_binary

    if args.action == "install":
        print(f"Weaviate server binary: {install_binary()}")
        return 0
    from resources.weaviate import WeaviateResource

    server = WeaviateResource().settings().managed_server()
    if args.action == "start":
        started = server.start()
        print(f"{'started' if started else 'already running'}: {server.describe()}")
        print(f"log: {server.log_file}")
        print(server.api_key_origin())
    elif args.action == "stop":
        stopped = server.stop()
        print(f"{'stopped' if stopped else 'not running'}: {server.describe()}")
    else:
        print(server.status())
        print(server.api_key_origin())
    return 0


def _cluster(args: argparse.Namespace) -> int:
    """A local cluster of real nodes, to try replication and node loss on one machine."""
    from resources import settings
    from resources.weaviate.cluster import LocalCluster

    root = Path(settings.data_dir()) / "weaviate-cluster"
    api_key = settings.weaviate_api_key()
    cluster = LocalCluster.at(root, args.nodes, args.first_port, api_key=api_key)
    first = cluster.nodes[0]
    if args.action == "start":
        started = cluster.start()
        print(f"{cluster.describe()}: {len(started)} node(s) started, all healthy")
        print("to index into it, replicated on every node:")
        variables = [f"{k}={v}" for k, v in cluster.environment().items()]
        if not api_key:  # the generated key, read from its file: the key itself is not printed
            variables.append(f'WEAVIATE_API_KEY="$(cat {shlex.quote(str(first.api_key_file))})"')
        print("  " + " ".join(variables))
    elif args.action == "stop":
        print(f"stopped: {', '.join(cluster.stop()) or 'none was running'}")
    else:
        print(cluster.status())
        print(first.api_key_origin())
    return 0


def _instance(args: argparse.Namespace) -> int:
    from orchestration.instance import GPU_POOL, gpu_pool_slots, prepare_instance

    home = prepare_instance(replace_settings=args.replace_settings)
    print(f"DAGSTER_HOME={home}: {GPU_POOL} pool has {gpu_pool_slots()} slot(s)")
    return 0


def _index(args: argparse.Namespace) -> int:
    from orchestration.corpus_switch import refuse_another_corpus
    from orchestration.headless import describe, index_corpus
    from resources import settings

    if args.corpus:
        os.environ["CORPUS_PATH"] = str(Path(args.corpus).resolve())
    refuse_another_corpus(settings.data_dir(), settings.corpus_path(), args.remove_missing)
    summary = index_corpus(every=args.all, remove_missing=args.remove_missing)
    print(describe(summary))
    if summary.stopped_by:
        return 128 + summary.stopped_by  # 130 for Ctrl-C, 143 for SIGTERM
    return 0 if summary.ok else 1


def _search(args: argparse.Namespace) -> int:
    from orchestration.resources import build_resources
    from resources.weaviate.search import nearest_chunks

    resources = build_resources()
    weaviate, embedder = resources["weaviate"], resources["embedder"]
    vector = embedder.embed([args.text]).vectors[0]
    with weaviate.client() as client:
        hits = nearest_chunks(client, args.collection or weaviate.collection, vector, k=args.k)
    for hit in hits:
        print(f"{hit.distance:.4f}  {hit.doc_id}#{hit.chunk_index}  {hit.text[:100]!r}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from resources.embedding import EmbeddingResource
    from resources.embedding.profiling import profile_token_ids, run_profile, write_report

    embedder = EmbeddingResource()
    base = embedder.engine_config()
    if args.device:
        base = replace(base, device=args.device)
    token_ids = profile_token_ids(args.docs, args.max_document_tokens, base.model)
    profile = run_profile(token_ids, base, args.budgets, args.batch_sizes)
    report = write_report(profile, args.out)
    for row in profile.rows:
        peak = row.peak_memory_bytes / 2**20
        print(
            f"{row.kind:>10} {row.value:>8}: {row.tokens_per_second:>12,.0f} tokens/s, "
            f"peak {peak:,.0f} MiB, padding {row.padding_fraction:.1%}"
        )
    print(f"recommended token budget: {profile.recommended_budget}; report: {report}")
    return 0


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _demo(args: argparse.Namespace) -> int:
    return run_demo(args.docs, args.query)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weaviate-indexer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-corpus", help="write a synthetic corpus of JSONL files")
    p.add_argument("--docs", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--median-tokens", type=float, default=600.0)
    p.add_argument("--max-tokens", type=int, default=50_000)
    p.add_argument("--docs-per-file", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes writing files; the output is the same for any")  # fmt: skip
    p.set_defaults(func=_sample_corpus)

    p = sub.add_parser("weaviate", help="the managed local Weaviate server")
    p.add_argument("action", choices=["install", "start", "stop", "status"],
                   help="install: build (or download) the pinned server binary once")  # fmt: skip
    p.set_defaults(func=_weaviate)

    p = sub.add_parser("weaviate-cluster", help="a local Weaviate cluster of N nodes")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--first-port", type=int, default=18100,
                   help="node k's ports start at first-port + 10*(k-1)")  # fmt: skip
    p.set_defaults(func=_cluster)

    p = sub.add_parser("instance", help="prepare DAGSTER_HOME: settings, one GPU-pool slot per GPU")
    p.add_argument("--replace-settings", action="store_true",
                   help="copy the project's dagster.yaml over the one there")  # fmt: skip
    p.set_defaults(func=_instance)

    p = sub.add_parser("index", help="index the corpus without the UI: register its shards, "
                       "then run those not indexed at their current content")  # fmt: skip
    p.add_argument("--corpus", default=None, help="the corpus folder (default: CORPUS_PATH)")
    p.add_argument("--all", action="store_true", help="run every shard, indexed or not")
    p.add_argument("--remove-missing", action="store_true",
                   help="delete the objects and partitions of shards with no input")  # fmt: skip
    p.set_defaults(func=_index)

    p = sub.add_parser("search", help="nearest chunks to a text")
    p.add_argument("text")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--collection", default=None)
    p.set_defaults(func=_search)

    p = sub.add_parser("profile", help="sweep token budgets on this device; HTML report")
    p.add_argument("--docs", type=int, default=400)
    p.add_argument("--max-document-tokens", type=int, default=8000)
    p.add_argument("--budgets", type=_int_list, default=[2048, 4096, 8192, 16384, 32768, 65536,
                                                          131072])  # fmt: skip
    p.add_argument("--batch-sizes", type=_int_list, default=[16, 32, 64, 128, 256])
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="embedding-profile.html")
    p.set_defaults(func=_profile)

    p = sub.add_parser("demo", help="index the corpus (Python's help topics where there is none) "
                       "end to end and ask it a question")  # fmt: skip
    p.add_argument("--docs", type=int, default=None,
                   help="help topics of the demo corpus (default: all)")  # fmt: skip
    p.add_argument("--query", default=None)
    p.set_defaults(func=_demo)
    return parser


def _project_errors() -> tuple[type[Exception], ...]:
    """The errors whose message says what went wrong and what to do: the project's own, and
    Dagster's `Failure`, which carries the message of a job's op (a corpus path that does not
    exist, a strict registration). Imported once a command has failed, so a command that needs
    neither Dagster nor the Weaviate client does not load them."""
    from dagster import Failure

    from orchestration.corpus_switch import OtherCorpusError
    from resources.corpus.loading import BadRecordError
    from resources.corpus.manifest import CorpusFileError, UnknownShardError
    from resources.weaviate.calls import ClusterDown
    from resources.weaviate.connection import WeaviateConnectionError
    from resources.weaviate.ingest import IngestError
    from resources.weaviate.server import ServerError

    return (BadRecordError, CorpusFileError, UnknownShardError, WeaviateConnectionError,
            IngestError, ServerError, OtherCorpusError, ClusterDown, Failure)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _project_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)  # says what to do: no trace
        return 1


if __name__ == "__main__":
    sys.exit(main())
