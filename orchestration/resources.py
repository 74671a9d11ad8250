"""The project's resources.

Each resource takes its settings from its fields' defaults, which read the environment
(`resources/settings.py`): a run config that sets one field in the launchpad keeps the others,
and the definitions and the commands get the same values. This module imports no assets, so
commands that only need a resource start fast.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from resources.corpus.resource import CorpusResource
from resources.embedding import EmbeddingResource
from resources.weaviate import WeaviateResource


def build_resources() -> dict[str, ConfigurableResource]:
    """The corpus, the embedder and Weaviate as the environment configures them: every field
    holds its value, for Dagster and for the commands alike."""
    return {
        "corpus": CorpusResource(),
        "embedder": EmbeddingResource(),
        "weaviate": WeaviateResource(),
    }
