"""A synthetic corpus that looks like the real one where it matters to the pipeline.

Lengths follow a heavy-tailed (log-normal) distribution between 100 and 50,000 tokens, so the
chunker, the length-sorted batcher and the shard sizes see the same skew as a real corpus. Every
word below is a single token of the all-MiniLM-L6-v2 (BERT uncased) vocabulary, and so are "," and
".", which makes a document's token count exact without running the tokenizer: generating the
1.25M-document reference corpus stays cheap. Each document has its own random stream seeded by
(seed, index), so any shard can be regenerated alone and the output never depends on file layout.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MIN_TOKENS = 100
MAX_TOKENS = 50_000

_DET = "the a this that every each some one another no any our their its".split()
_ADJ = (
    "small large old new quiet bright dark cold warm early late simple strong weak long short high "
    "low green red blue white black open free full rare common ancient modern local public "
    "private central northern southern careful clever gentle heavy light rapid slow steady strange "
    "familiar distant hidden silent busy empty rich poor young wild calm"
).split()
_NOUN = (
    "river city garden engine market village mountain teacher student doctor farmer writer painter "
    "scientist machine system network bridge harbor forest island library museum school window "
    "letter signal pattern method theory story record report summer winter morning evening journey "
    "journal road field valley castle tower station train ship planet star ocean desert storm "
    "cloud fire stone metal paper water light sound voice language history question answer problem "
    "solution company family council court army church kingdom empire nation region province "
    "county committee team player game music song film book article"
).split()
_VERB = (
    "built found opened carried followed changed crossed studied described painted measured "
    "reached watched visited joined explained produced reduced improved supported created "
    "discovered protected recorded collected covered entered served replaced ordered "
    "allowed designed trained tested moved held kept left lost met saw took gave made told"
).split()
_PREP = (
    "near across under over beside behind beyond through along around inside outside within "
    "without toward against among between during after before"
).split()
_ADV = "quickly slowly quietly finally soon often rarely always never again later carefully".split()
_CONJ = "and but while because although since".split()
TOPICS = ("history", "science", "travel", "music", "language", "law", "nature", "industry")


@dataclass(frozen=True)
class SampleSpec:
    """How the synthetic corpus is drawn; the defaults give a median near 600 tokens."""

    docs: int
    seed: int = 0
    median_tokens: float = 600.0
    sigma: float = 1.2
    min_tokens: int = MIN_TOKENS
    max_tokens: int = MAX_TOKENS
    docs_per_file: int = 10_000


def _length(rng: random.Random, spec: SampleSpec) -> int:
    # Redraw outside the bounds instead of clipping, so no spike of documents sits on a bound.
    while True:
        n = round(rng.lognormvariate(math.log(spec.median_tokens), spec.sigma))
        if spec.min_tokens <= n <= spec.max_tokens:
            return n


def _noun_phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(_DET)]
    if rng.random() < 0.6:
        words.append(rng.choice(_ADJ))
    words.append(rng.choice(_NOUN))
    return words


def _sentence(rng: random.Random) -> list[str]:
    words = _noun_phrase(rng)
    if rng.random() < 0.2:
        words.append(rng.choice(_ADV))
    words += [rng.choice(_VERB), *_noun_phrase(rng)]
    if rng.random() < 0.5:
        words += [rng.choice(_PREP), *_noun_phrase(rng)]
    if rng.random() < 0.3:
        words += [",", rng.choice(_CONJ), *_noun_phrase(rng), rng.choice(_VERB), *_noun_phrase(rng)]
    words.append(".")
    return words


def _render(tokens: list[str]) -> str:
    """Join word tokens into prose: capitalised sentences, paragraphs every few sentences."""
    out: list[str] = []
    start_of_sentence = True
    sentences = 0
    for token in tokens:
        if token in {",", "."}:
            out.append(token)
            if token == ",":
                out.append(" ")
            else:
                sentences += 1
                start_of_sentence = True
                out.append("\n\n" if sentences % 6 == 0 else " ")
            continue
        out.append(token.capitalize() if start_of_sentence else token)
        out.append(" ")
        start_of_sentence = False
    text = "".join(out).replace(" ,", ",").replace(" .", ".")
    return text.strip()


def make_document(index: int, spec: SampleSpec) -> dict:
    """Document `index` of the corpus described by `spec`: same inputs, same document."""
    rng = random.Random(spec.seed * 1_000_003 + index)
    n_tokens = _length(rng, spec)
    tokens: list[str] = []
    while len(tokens) < n_tokens:
        tokens += _sentence(rng)
    tokens = tokens[: n_tokens - 1] + ["."]
    title_words = [rng.choice(_ADJ), rng.choice(_NOUN)]
    return {
        "id": f"doc-{index:07d}",
        "text": _render(tokens),
        "title": f"The {title_words[0]} {title_words[1]}",
        "topic": rng.choice(TOPICS),
        "year": rng.randint(1900, 2024),
        "tokens": n_tokens,
    }


def iter_documents(spec: SampleSpec) -> Iterator[dict]:
    for index in range(spec.docs):
        yield make_document(index, spec)


# The project's chunker: all-MiniLM-L6-v2's 256-token window less [CLS] and [SEP], 32 shared.
CHUNK_WIDTH = 254
CHUNK_OVERLAP = 32


def chunk_count(n_tokens: int, width: int = CHUNK_WIDTH, overlap: int = CHUNK_OVERLAP) -> int:
    """Chunks `chunking.windows()` cuts from a sample document of `n_tokens` tokens.

    Every token of a sample document is a whole word, so no window edge moves back to a word
    start: windows start every `width - overlap` tokens and the last one reaches the end. That
    makes the count a closed form of the token count, with no tokenizer run.
    """
    if n_tokens <= width:
        return 1
    return 1 + math.ceil((n_tokens - width) / (width - overlap))


def embedded_tokens(n_tokens: int) -> int:
    """Tokens the encoder sees for a sample document: its own, the overlaps counted again, and
    [CLS] and [SEP] for every chunk."""
    chunks = chunk_count(n_tokens)
    return n_tokens + (chunks - 1) * CHUNK_OVERLAP + 2 * chunks


def corpus_totals(spec: SampleSpec) -> dict[str, int]:
    """Documents, tokens, chunks and embedded tokens of the corpus `spec` describes, exactly and
    without writing it: a document's length is the first draw of its own random stream."""
    totals = {"documents": spec.docs, "tokens": 0, "chunks": 0, "embedded_tokens": 0}
    for index in range(spec.docs):
        n_tokens = _length(random.Random(spec.seed * 1_000_003 + index), spec)
        totals["tokens"] += n_tokens
        totals["chunks"] += chunk_count(n_tokens)
        totals["embedded_tokens"] += embedded_tokens(n_tokens)
    return totals


def _write_file(job: tuple[Path, int, SampleSpec]) -> tuple[int, int, Counter[int]]:
    """Write one JSONL file under a temporary name, then rename it: a killed run leaves no
    half file. Returns (documents, chunks, length histogram) so that nothing but counts goes
    back to the parent."""
    out, file_index, spec = job
    first = file_index * spec.docs_per_file
    last = min(spec.docs, first + spec.docs_per_file)
    lengths: Counter[int] = Counter()
    chunks = 0
    final = out / f"part-{file_index:05d}.jsonl"
    partial = final.with_name(final.name + ".partial")
    with open(partial, "w") as handle:
        for index in range(first, last):
            doc = make_document(index, spec)
            handle.write(json.dumps(doc) + "\n")
            lengths[doc["tokens"]] += 1
            chunks += chunk_count(doc["tokens"])
    os.replace(partial, final)
    return last - first, chunks, lengths


def _percentiles(histogram: Counter[int], quantiles: dict[str, float]) -> dict[str, int]:
    """Exact percentiles (the value at sorted index int(q * n)) from a length histogram, whose
    size is bounded by the length range, not by the corpus."""
    n = sum(histogram.values())
    targets = {name: min(n - 1, int(q * n)) for name, q in quantiles.items()}
    result: dict[str, int] = {}
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        for name, target in targets.items():
            if name not in result and target < seen:
                result[name] = value
    return result


_QUANTILES = {"p10_tokens": 0.1, "p25_tokens": 0.25, "p50_tokens": 0.5, "p75_tokens": 0.75,
              "p90_tokens": 0.9, "p99_tokens": 0.99, "p999_tokens": 0.999}  # fmt: skip


def write_sample_corpus(out_dir: str | Path, spec: SampleSpec, workers: int = 1) -> dict:
    """Write JSONL files of `spec.docs_per_file` documents each plus `corpus_stats.json`.

    Returns the statistics. Each file depends only on its own document indices, so `workers`
    processes write whole files in parallel and the bytes are the same for any worker count.
    Memory stays flat: a worker holds one document at a time and returns only a histogram of
    lengths, from which the percentiles are exact.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, i, spec) for i in range(math.ceil(spec.docs / spec.docs_per_file))]
    histogram: Counter[int] = Counter()
    documents = chunks = 0
    if workers > 1 and len(jobs) > 1:
        # Workers end by being told, not killed: a `multiprocessing.Pool` leaving its `with`
        # terminates them, and a worker killed while it holds the pool's queue lock hung the
        # parent's join for ten minutes once, in the test suite on a busy machine.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=spawn) as pool:
            results = list(pool.map(_write_file, jobs))
    else:
        results = [_write_file(job) for job in jobs]
    for count, file_chunks, lengths in results:
        documents += count
        chunks += file_chunks
        histogram.update(lengths)
    tokens = sum(value * count for value, count in histogram.items())
    stats = {
        "documents": documents,
        "tokens": tokens,
        "chunks": chunks,
        "chunk_width": CHUNK_WIDTH,
        "chunk_overlap": CHUNK_OVERLAP,
        "seed": spec.seed,
        "files": len(jobs),
        "mean_tokens": round(tokens / documents, 1) if documents else 0,
        "min_tokens": min(histogram) if histogram else 0,
        **(_percentiles(histogram, _QUANTILES) if histogram else dict.fromkeys(_QUANTILES, 0)),
        "max_tokens": max(histogram) if histogram else 0,
    }
    (out / "corpus_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
