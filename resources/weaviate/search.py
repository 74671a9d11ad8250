"""Nearest-chunk search, the check a user runs to see that the index answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import weaviate
from weaviate.classes.query import MetadataQuery

from resources.weaviate.schema import VECTOR_NAME


@dataclass(frozen=True)
class Hit:
    doc_id: str
    chunk_index: int
    distance: float
    text: str


def nearest_chunks(
    client: weaviate.WeaviateClient, collection: str, vector: np.ndarray, k: int = 5
) -> list[Hit]:
    response = client.collections.get(collection).query.near_vector(
        near_vector=[float(x) for x in vector],
        target_vector=VECTOR_NAME,
        limit=k,
        return_metadata=MetadataQuery(distance=True),
        return_properties=["doc_id", "chunk_index", "text"],
    )
    return [
        Hit(
            str(o.properties["doc_id"]),
            int(o.properties["chunk_index"]),
            float(o.metadata.distance if o.metadata.distance is not None else float("nan")),
            str(o.properties["text"]),
        )
        for o in response.objects
    ]
