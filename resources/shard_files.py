"""Where one shard's stage files live: the one place that names them.

The live pipeline keeps them under the data folder; a re-index keeps its own under
`reindex/<collection>/` in it. Every stage, the chunking workers and the count check find a
shard's files through this object, so a stage's file name is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShardFiles:
    root: Path
    key: str

    def _file(self, stage: str, suffix: str = ".parquet") -> Path:
        return Path(self.root) / stage / f"{self.key}{suffix}"

    @property
    def documents(self) -> Path:
        """The shard's valid documents (stage 1)."""
        return self._file("shards")

    @property
    def quarantine(self) -> Path:
        """Records refused while loading, with file, line or row, and reason."""
        return self._file("quarantine", ".jsonl")

    @property
    def chunks(self) -> Path:
        """Token windows with their ids (stage 2)."""
        return self._file("chunks")

    @property
    def chunking_quarantine(self) -> Path:
        """Documents that have no token for the model."""
        return self._file("quarantine", ".chunking.jsonl")

    @property
    def embeddings(self) -> Path:
        """Vectors in chunk order, stamped with the chunks' hash and the model (stage 3)."""
        return self._file("embeddings")

    @property
    def ingest_report(self) -> Path:
        """What the ingest that wrote the shard's current objects did (stage 4), so a run that
        finds them current reports those figures again instead of zeros."""
        return self._file("index", ".json")

    @property
    def weaviate_rejects(self) -> Path:
        """Objects Weaviate refused, with `weaviate.rejects: quarantine` (stage 4)."""
        return self._file("quarantine", ".weaviate.jsonl")
