"""Weaviate: connection modes, the collection schema, batched ingest and the managed local server."""

from resources.weaviate.resource import WeaviateResource

__all__ = ["WeaviateResource"]
