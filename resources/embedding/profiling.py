"""Profiling token budgets on this device and model: the sweep, the recommendation, the report.

The sweep runs the engine's GPU stage (pre-tokenized chunks, as the pipeline feeds it) over a
realistic mix of lengths: the sample corpus's heavy-tailed documents cut by the project's own
chunker. Each token budget, and each fixed batch size for comparison, gets its own engine, a
warm-up and one measured pass. The recommendation is the fastest budget whose peak memory
stays under the target fraction without out-of-memory recoveries; it is stored as the learned
budget, so the next run starts there.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from resources.embedding.engine import EmbeddingEngine, EngineConfig
from resources.files import write_text_atomic

DEFAULT_BUDGETS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ProfileRow:
    kind: str  # "budget" (padded tokens per batch) or "batch size" (texts per batch)
    value: int
    texts: int
    tokens: int
    seconds: float
    tokens_per_second: float
    peak_memory_bytes: int
    padding_fraction: float
    batches: int
    ooms_recovered: int


@dataclass(frozen=True)
class Profile:
    device: str
    dtype: str
    model: str
    memory_bytes: int
    target_memory_fraction: float
    rows: list[ProfileRow]
    recommended_budget: int | None


def profile_token_ids(docs: int, max_tokens: int, model: str, seed: int = 0) -> list[list[int]]:
    """Chunks of sample documents as the pipeline embeds them (token ids with special tokens).

    Imported here so that the sweep itself runs where only torch and the engine are installed
    (a bare GPU machine fed with token ids made elsewhere).
    """
    from resources.corpus.chunking import Chunker
    from resources.corpus.records import Document
    from resources.corpus.sample import SampleSpec, iter_documents
    from resources.tokenizer.model_source import load_tokenizer

    chunker = Chunker(load_tokenizer(model))
    spec = SampleSpec(docs=docs, seed=seed, max_tokens=max_tokens)
    documents = (Document(d["id"], d["text"]) for d in iter_documents(spec))
    return [chunk.token_ids for chunk in chunker.chunk(documents)]


def _device_memory(engine: EmbeddingEngine) -> int:
    if engine.device.type == "cuda":
        return torch.cuda.get_device_properties(engine.device).total_memory
    return 0


def _measure(config: EngineConfig, token_ids: Sequence[Sequence[int]], kind: str, value: int):
    engine = EmbeddingEngine(config)
    engine.embed_token_ids(token_ids[: max(64, len(token_ids) // 20)])  # warm-up
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(engine.device)
    started = time.perf_counter()
    stats = engine.embed_token_ids(token_ids).stats
    seconds = time.perf_counter() - started
    row = ProfileRow(
        kind, value, stats.texts, stats.tokens, round(seconds, 4),
        round(stats.tokens / seconds, 1), stats.peak_device_memory_bytes,
        round(stats.padding_fraction, 4), stats.batches, stats.ooms_recovered,
    )  # fmt: skip
    return engine, row


def recommend(rows: Sequence[ProfileRow], memory_limit_bytes: int) -> int | None:
    """The fastest budget that needed no OOM recovery and stayed under the memory limit."""
    fitting = [
        r for r in rows
        if r.kind == "budget" and r.ooms_recovered == 0
        and (memory_limit_bytes == 0 or r.peak_memory_bytes <= memory_limit_bytes)
    ]  # fmt: skip
    return max(fitting, key=lambda r: r.tokens_per_second).value if fitting else None


def run_profile(
    token_ids: Sequence[Sequence[int]],
    base: EngineConfig,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    save: bool = True,
) -> Profile:
    rows: list[ProfileRow] = []
    engine = None
    for budget in budgets:
        config = EngineConfig(**{**asdict(base), "token_budget": budget, "batch_size": None})
        engine, row = _measure(config, token_ids, "budget", budget)
        rows.append(row)
    for size in batch_sizes:
        config = EngineConfig(**{**asdict(base), "token_budget": None, "batch_size": size})
        engine, row = _measure(config, token_ids, "batch size", size)
        rows.append(row)
    if engine is None:
        raise ValueError("nothing to profile: give at least one budget or batch size")
    memory = _device_memory(engine)
    best = recommend(rows, int(memory * base.target_memory_fraction))
    if save and best is not None:
        engine.learned.save(engine.budget_key(), best, source="profile")
    return Profile(
        device=str(engine.device), dtype=str(engine.dtype).replace("torch.", ""),
        model=base.model, memory_bytes=memory,
        target_memory_fraction=base.target_memory_fraction, rows=rows, recommended_budget=best,
    )  # fmt: skip


def _figure_png(profile: Profile) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = [r for r in profile.rows if r.kind == "budget"]
    sizes = [r for r in profile.rows if r.kind == "batch size"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, field, label in (
        (axes[0], "tokens_per_second", "tokens/s"),
        (axes[1], "peak_memory_bytes", "peak GPU memory (bytes)"),
        (axes[2], "padding_fraction", "padding fraction"),
    ):
        ax.plot([r.value for r in budgets], [getattr(r, field) for r in budgets], "o-",
                label="token budget (padded tokens per batch)")  # fmt: skip
        if sizes:
            top = ax.twiny()
            top.plot([r.value for r in sizes], [getattr(r, field) for r in sizes], "s--",
                     color="tab:orange", label="fixed batch size (texts)")  # fmt: skip
            top.set_xscale("log", base=2)
            top.set_xlabel("fixed batch size (texts per batch)", color="tab:orange")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("token budget (padded tokens per batch)")
        ax.set_ylabel(label)
        if profile.recommended_budget and field == "tokens_per_second":
            ax.axvline(profile.recommended_budget, color="tab:green", linestyle=":",
                       label="recommended")  # fmt: skip
        if field == "peak_memory_bytes" and profile.memory_bytes:
            limit = profile.memory_bytes * profile.target_memory_fraction
            ax.axhline(limit, color="tab:red", linestyle=":", label="memory target")
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(profile: Profile, path: str | Path) -> Path:
    """A single self-contained HTML file: the plots inline, the table, the recommendation."""
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.kind, r.value, r.texts, r.tokens, r.seconds, f"{r.tokens_per_second:,.0f}",
            f"{r.peak_memory_bytes / 2**20:,.0f}", f"{r.padding_fraction:.1%}", r.batches,
            r.ooms_recovered,
        )) + "</tr>"
        for r in profile.rows
    )  # fmt: skip
    fastest = max(profile.rows, key=lambda r: r.tokens_per_second)
    if profile.recommended_budget is None:
        verdict = "No budget ran without out-of-memory recoveries under the memory target."
    else:
        verdict = (
            f"Recommended token budget: <b>{profile.recommended_budget:,}</b> padded tokens per "
            f"batch (stored as the learned budget for this model, device and dtype)."
        )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Embedding profile</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>Embedding profile</h1>
<p>Model {html.escape(profile.model)} on {html.escape(profile.device)} ({profile.dtype}),
device memory {profile.memory_bytes / 2**30:.1f} GiB, memory target
{profile.target_memory_fraction:.0%}.</p>
<p id="recommendation">{verdict} Fastest setting measured: {fastest.kind} {fastest.value:,}
at {fastest.tokens_per_second:,.0f} tokens/s.</p>
<img id="plots" alt="throughput, peak memory and padding against the setting"
src="data:image/png;base64,{_figure_png(profile)}">
<table><tr><th>setting</th><th>value</th><th>texts</th><th>tokens</th><th>seconds</th>
<th>tokens/s</th><th>peak MiB</th><th>padding</th><th>batches</th><th>OOMs</th></tr>
{rows}</table></body></html>
"""
    write_text_atomic(path, body)
    return Path(path)
