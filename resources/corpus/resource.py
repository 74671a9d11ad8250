"""`CorpusResource`: where the corpus is, how it is cut into shards, where stage files go."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources import settings
from resources.corpus.chunking import ChunkingConfig
from resources.corpus.ids import owners
from resources.corpus.loading import ShardContents, load_shard
from resources.corpus.manifest import shard_spec
from resources.corpus.reader import ShardSpec
from resources.shard_files import ShardFiles
from resources.weaviate.schema import property_name


class CorpusResource(ConfigurableResource):
    corpus_path: str = Field(
        default_factory=settings.corpus_path,
        description="folder or file of JSONL/Parquet; a local path or URL (default: CORPUS_PATH, "
        "else corpus in the data folder)",
    )
    shard_size: int = settings.shard_size.field("documents per shard (partition)")
    data_dir: str = settings.data_dir.field("stage files, manifest and quarantine")
    chunk_overlap: int = Field(default=32, description="tokens shared by neighbouring chunks")
    max_document_chars: int = Field(
        default=2_000_000, description="longer documents are quarantined, not indexed"
    )
    strict: bool = Field(
        default=False, description="fail a shard on its first bad record instead of quarantining"
    )

    def files(self, key: str) -> ShardFiles:
        """The shard's stage files in the live pipeline's data folder."""
        return ShardFiles(Path(self.data_dir), key)

    @property
    def reports_dir(self) -> Path:
        return Path(self.data_dir) / "reports"

    def shard(self, key: str) -> ShardSpec:
        return shard_spec(self.data_dir, key)

    def load(self, key: str) -> ShardContents:
        """The shard's documents and rejects, ids checked against the whole corpus, metadata
        keys against the Weaviate properties they become."""
        return load_shard(
            self.shard(key),
            strict=self.strict,
            max_chars=self.max_document_chars,
            id_owners=lambda ids: owners(self.data_dir, ids),
            property_name=property_name,
        )

    def chunking(self, max_tokens: int) -> ChunkingConfig:
        return ChunkingConfig(max_tokens=max_tokens, overlap=self.chunk_overlap)
