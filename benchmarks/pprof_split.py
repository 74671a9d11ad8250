"""Where a Weaviate node's CPU time goes, from Go CPU profiles (benchmarks/node_variants.py
--profile), as one table: each sample's stack goes to the first part of the server below that
any of its frames belongs to.

    python benchmarks/pprof_split.py before.writes.pprof lean-rq.drain.pprof ...

`go tool pprof -top` answers by function; what a setting can move is a part of the server (the
HNSW graph, the text's inverted index, the object store), whose time is spread over hundreds of
functions and the allocations and garbage collection they cause. The order of PARTS matters: a
stack that writes an object's inverted index runs inside the object's write, and counts for the
inverted index. Garbage collection in the background cannot be traced to what allocated; it is a
part of its own.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.weaviate.server import binary_path  # noqa: E402

# (part, pattern of a frame that belongs to it), first match wins.
PARTS: tuple[tuple[str, str], ...] = (
    ("garbage collection (background)", r"^runtime\.gcBgMarkWorker"),
    ("indexing queue (enqueue to disk)", r"VectorIndexQueue\)\.Insert|DiskQueue\)\.Push"),
    ("vector index (HNSW/flat/HFresh insert)",
     r"/vector/(hnsw|flat|hfresh|cache|compressionhelpers)|queue\.\(\*Scheduler\)"),
    ("reads (counts, stale check, filters)", r"docid\.|\(\*Searcher\)|[Aa]ggregat|objectScanner"),
    ("LSM compaction", r"lsmkv\..*[Cc]ompact"),
    ("LSM flush (memtable to segment)", r"lsmkv\..*[Ff]lush"),
    ("inverted index (analysis)", r"inverted\.\(\*Analyzer\)|AnalyzeObject"),
    ("inverted index (buckets)", r"updateInvertedIndex|addToProperty|extendInvertedIndices"),
    ("object store (objects bucket)", r"putObjectLSM|objectsBatcher|storobj\."),
    ("gRPC and decoding", r"grpc|protobuf|/proto"),
)  # fmt: skip
OTHER = "other (runtime, network, raft)"
_COMPILED = [(part, re.compile(pattern)) for part, pattern in PARTS]


def stacks(binary: Path, profile: Path) -> tuple[float, list[tuple[float, list[str]]]]:
    """The profile's wall seconds and each sampled stack (seconds, frames from leaf to root)."""
    text = subprocess.run(
        ["go", "tool", "pprof", "-traces", str(binary), str(profile)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    duration = float(re.search(r"Duration: ([\d.]+)s", text).group(1))
    found = []
    for block in text.split("-----------+-------------------------------------------------------"):
        lines = [line for line in block.splitlines() if line.strip()]
        head = re.match(r"\s*([\d.]+)(ms|s|us)\s+(.*)", lines[0]) if lines else None
        if head is None:
            continue
        value, unit, leaf = head.groups()
        seconds = float(value) * {"s": 1, "ms": 1e-3, "us": 1e-6}[unit]
        found.append((seconds, [leaf.strip(), *(line.strip() for line in lines[1:])]))
    return duration, found


def part_of(frames: list[str]) -> str:
    for part, pattern in _COMPILED:
        if any(pattern.search(frame) for frame in frames):
            return part
    return OTHER


def split(binary: Path, profile: Path) -> tuple[float, Counter[str]]:
    """Cores busy on average over the profile, and each part's share of the CPU time."""
    duration, found = stacks(binary, profile)
    seconds: Counter[str] = Counter()
    for value, frames in found:
        seconds[part_of(frames)] += value
    total = sum(seconds.values())
    return total / duration, Counter({part: s / total for part, s in seconds.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--binary", type=Path, default=None, help="default: the pinned server")
    args = parser.parse_args()
    binary = args.binary or binary_path()
    columns = {p.name.removesuffix(".pprof"): split(binary, p) for p in args.profiles}
    print("| part | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for part in [name for name, _ in PARTS] + [OTHER]:
        cells = [f"{shares[part]:.0%}" for _, shares in columns.values()]
        print(f"| {part} | " + " | ".join(cells) + " |")
    print("| cores busy | " + " | ".join(f"{cores:.1f}" for cores, _ in columns.values()) + " |")


if __name__ == "__main__":
    main()
