"""A synthetic corpus that looks like the real one where it matters to the pipeline.

Lengths follow a heavy-tailed (log-normal) distribution between 100 and 50,000 tokens, so the
chunker, the length-sorted batcher and the shard sizes see the same skew as a real corpus. Every
word below is a single token of the all-MiniLM-L6-v2 (BERT uncased) vocabulary, and so are "," and
".", which makes a document's token count exact without running the tokenizer: generating the
1.25M-document reference corpus stays cheap. Each document has its own random stream seeded by
(seed, index), so any shard can be regenerated alone and the output never depends on file layout.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator
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


def _percentile(sorted_values: list[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def write_sample_corpus(out_dir: str | Path, spec: SampleSpec) -> dict:
    """Write JSONL files of `spec.docs_per_file` documents each plus `corpus_stats.json`.

    Returns the statistics. Memory stays flat: documents are written as they are drawn and only
    their lengths are kept for the percentiles.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths: list[int] = []
    documents = iter_documents(spec)
    for file_index in range(math.ceil(spec.docs / spec.docs_per_file)):
        with open(out / f"part-{file_index:05d}.jsonl", "w") as handle:
            for doc in itertools.islice(documents, spec.docs_per_file):
                handle.write(json.dumps(doc) + "\n")
                lengths.append(doc["tokens"])
    lengths.sort()
    stats = {
        "documents": len(lengths),
        "tokens": sum(lengths),
        "seed": spec.seed,
        "min_tokens": lengths[0] if lengths else 0,
        "p50_tokens": _percentile(lengths, 0.5) if lengths else 0,
        "p90_tokens": _percentile(lengths, 0.9) if lengths else 0,
        "p99_tokens": _percentile(lengths, 0.99) if lengths else 0,
        "max_tokens": lengths[-1] if lengths else 0,
    }
    (out / "corpus_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
