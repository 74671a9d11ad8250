"""Weaviate: connection modes, the managed local server, the schema and batched ingest."""

from resources.weaviate.resource import WeaviateResource

__all__ = ["WeaviateResource"]
