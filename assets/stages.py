"""A shard's four stages: load, chunk, embed, index, each from its files to the next ones.

Each stage takes the shard's files (`ShardFiles`: the live pipeline's under the data folder, or
a re-index's own) and returns the metadata its materialization records; a failure is a Dagster
`Failure` that says whether a retry can help. The assets run these over a run's shards, and the
re-index job runs the same functions into a collection of its own, so both quarantine, record
and refuse exactly alike.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from dagster import DagsterLogManager, Failure, MetadataValue
from weaviate import WeaviateClient

from assets import shards
from resources.corpus.loading import BadRecordError, write_quarantine
from resources.corpus.manifest import UnknownShardError
from resources.corpus.resource import CorpusResource
from resources.corpus.shard_chunking import ShardChunker
from resources.corpus.tables import chunks_content_hash, read_chunks, token_arrays, write_documents
from resources.embedding import EmbeddingResource
from resources.embedding.engine import Progress
from resources.embedding.resource import Engine
from resources.embedding.tokenization import Tokenized
from resources.files import count_lines, write_lines, write_text_atomic
from resources.shard_files import ShardFiles
from resources.vectors import current_header, read_vectors, write_vectors
from resources.weaviate.calls import ClusterDown
from resources.weaviate.connection import WeaviateConnectionError
from resources.weaviate.ingest import (
    IngestError,
    IngestPolicy,
    consistent,
    ingest_shard,
    shard_is_current,
)
from resources.weaviate.objects import (
    OBJECT_COLUMNS,
    build_objects,
    metadata_samples,
    objects_version,
)
from resources.weaviate.schema import ensure_metadata_properties

Metadata = dict[str, object]
VectorWriter = Callable[..., None]  # write_vectors' signature, or a deferred call of it
REJECTS = ("fail", "quarantine")


def load(corpus: CorpusResource, files: ShardFiles, log: DagsterLogManager) -> Metadata:
    """The shard's valid documents; refused records are kept with their file, line and reason."""
    try:
        spec = corpus.shard(files.key)
    except UnknownShardError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    try:
        contents = corpus.load(files.key)
    except BadRecordError as exc:
        raise Failure(f"shard {files.key} (strict mode): {exc}", allow_retries=False) from None
    write_quarantine(files.quarantine, contents.rejects)
    for reject in contents.rejects[:5]:
        log.warning(f"rejected {reject.location}: {reject.reason}")
    metadata: Metadata = {
        "documents": write_documents(files.documents, contents.documents),
        "rejected": len(contents.rejects),
        "source": MetadataValue.path(spec.source),
        "source_content_hash": spec.content_hash,
    }
    if contents.rejects:
        metadata["quarantine"] = MetadataValue.path(str(files.quarantine))
    if contents.renamed:
        renamed = ", ".join(f"{key!r} as {name!r}" for key, name in contents.renamed.items())
        log.warning(
            f"shard {files.key}: metadata keys stored as Weaviate properties of another name: "
            f"{renamed}"
        )
        metadata["renamed_metadata_keys"] = MetadataValue.json(contents.renamed)
    return metadata


def chunker(corpus: CorpusResource, embedder: EmbeddingResource, root: Path) -> ShardChunker:
    """The chunk stage for shards under `root`: a picklable callable of the shard's key, so a
    run's shards can be cut in worker processes."""
    return ShardChunker(str(root), embedder.model, corpus.chunking(embedder.max_length))


def embed(
    engine: Callable[[], Engine],
    files: ShardFiles,
    model: dict,
    say: Callable[[str], None],
    write: VectorWriter = write_vectors,
    reuse_from: Sequence[Path] = (),
) -> Metadata:
    """Unit vectors in chunk order. A vector file for these chunks and this model, the shard's
    own or one in `reuse_from`, is reused: no GPU work, and the numbers of the run that
    computed it are reported again (marked `reused_checkpoint`). `engine()` is called only when
    there is something to embed; while it embeds, `say` is told its progress (see
    `embedding_progress`)."""
    table = read_chunks(files.chunks, columns=["uuid", "token_ids"])
    ids, lengths = token_arrays(table)
    content_hash = chunks_content_hash(table, (ids, lengths))
    for path in (files.embeddings, *reuse_from):
        header = current_header(path, content_hash, model)
        if header is not None:
            if path != files.embeddings:
                files.embeddings.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, files.embeddings)
            computed = header.get("stats", {})
            return {**computed, "chunks": table.num_rows, "reused_checkpoint": True}
    progress = embedding_progress(files.key, table.num_rows, int(lengths.sum()), say)
    result = engine().embed_tokenized(Tokenized(ids, lengths), progress=progress)
    metadata: Metadata = {"model": model["name"], **result.stats.as_metadata()}
    uuids = table.column("uuid").to_pylist()
    write(files.embeddings, uuids, result.vectors, content_hash, model, metadata)
    return {**metadata, "chunks": table.num_rows, "reused_checkpoint": False}


def embedding_progress(key: str, chunks: int, tokens: int, say: Callable[[str], None]) -> Progress:
    """Says every `PROGRESS_INTERVAL_SECONDS` how far the shard's embedding is: chunks and
    tokens embedded, the rate and the time left. A step's progress is otherwise counted in
    shards, and on a CPU one shard of a million tokens embeds for ten minutes and more."""
    started = last = time.monotonic()

    def report(embedded_chunks: int, embedded_tokens: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < shards.PROGRESS_INTERVAL_SECONDS:
            return
        last = now
        rate = embedded_tokens / (now - started) if now > started else 0.0
        eta = (tokens - embedded_tokens) / rate if rate > 0 else 0.0
        say(
            f"shard {key}: {embedded_chunks:,}/{chunks:,} chunks, {embedded_tokens:,}/"
            f"{tokens:,} tokens embedded, {rate:,.0f} tokens/s, ETA {eta:.0f}s"
        )

    return report


@contextmanager
def connected(
    open_client: Callable[[], AbstractContextManager[WeaviateClient]],
) -> Iterator[WeaviateClient]:
    """A client from `open_client`; an unreachable server fails the step with one sentence that
    names the fix (a retry may find it back), the client's own words in the trace below.

    A cluster that has lost its quorum, found on opening the client or by any call made with
    it, fails the step at once and for good: its description's first line names the nodes that
    are gone and what to do (`ClusterDown`). Dagster's retries would hold every run for minutes
    (15, 45 and 105 s) with nothing changed, since only restarting nodes brings the quorum back,
    while the calls' own retries already ride out anything shorter (an election, a restart).
    """
    try:
        with ExitStack() as stack:
            try:
                client = stack.enter_context(open_client())
            except WeaviateConnectionError as exc:
                raise Failure(str(exc).split("\n")[0], allow_retries=True) from exc
            yield client
    except ClusterDown as exc:
        raise Failure(str(exc), allow_retries=False) from exc


def index(
    client: WeaviateClient,
    collection: str,
    files: ShardFiles,
    policy: IngestPolicy,
    rejects: str,
    log: DagsterLogManager,
) -> Metadata:
    """The shard's chunks in `collection`, exactly once, stale chunks removed; with `rejects`
    "quarantine", objects Weaviate refuses go to the shard's rejects file instead of failing it."""
    if rejects not in REJECTS:
        raise Failure(
            f'weaviate.rejects must be "fail" or "quarantine", not {rejects!r}', allow_retries=False
        )
    key = files.key
    table = read_chunks(files.chunks, columns=list(OBJECT_COLUMNS))
    stored = read_vectors(files.embeddings)
    if stored.uuids != table.column("uuid").to_pylist():
        raise Failure(
            f"shard {key}: the vector file does not match the current chunks; "
            f"materialize `embeddings` for this partition again",
            allow_retries=False,
        )
    version = objects_version(table, stored.content_hash, stored.model)
    expected = table.num_rows - count_lines(files.weaviate_rejects)
    calls = policy.calls(client)
    chunks = consistent(client.collections.get(collection), policy.consistency)
    if calls(lambda: shard_is_current(chunks, key, version, expected), f"counting {key}'s objects"):
        log.info(f"shard {key}: {collection} already holds this version; nothing written")
        return {**_ingested(files, collection, version, expected), "reused_checkpoint": True}
    types = ensure_metadata_properties(client, collection, metadata_samples(table), calls)
    objects = build_objects(table, stored.vectors, key, version, types)
    try:
        report = ingest_shard(
            client, collection, key, version, objects, expected=table.num_rows, policy=policy,
            allow_rejects=rejects == "quarantine",
        )  # fmt: skip
    except IngestError as exc:
        raise Failure(
            str(exc),
            allow_retries=exc.report.transient_only,
            metadata={"objects": exc.report.attempted, "failed_objects": len(exc.report.failed)},
        ) from None
    write_lines(files.weaviate_rejects, [f.as_json() for f in report.failed])
    figures: Metadata = {
        "objects": report.attempted,
        "failed_objects": len(report.failed),
        "stale_deleted": report.stale_deleted,
        "objects_in_weaviate": report.count_in_weaviate or 0,
        "ingest_batches": report.batches,
        "ingest_retries": report.retries,
        "ingest_seconds": round(report.seconds, 3),
        "ingest_objects_per_second": round(report.objects_per_second, 1),
    }
    body = {"collection": collection, "version": version, "figures": figures}
    write_text_atomic(files.ingest_report, json.dumps(body) + "\n")
    metadata: Metadata = {**figures, "reused_checkpoint": False}
    if report.failed:
        metadata["rejects_file"] = MetadataValue.path(str(files.weaviate_rejects))
    return metadata


def _ingested(files: ShardFiles, collection: str, version: str, objects: int) -> Metadata:
    """The figures of the ingest that wrote the shard's `objects` current objects into
    `collection`, from its report; without one (written before reports were kept, or by another
    data folder), the objects alone."""
    try:
        report = json.loads(files.ingest_report.read_text())
    except FileNotFoundError:
        report = {}
    if report.get("collection") == collection and report.get("version") == version:
        return report["figures"]
    return {"objects": objects, "objects_in_weaviate": objects}
