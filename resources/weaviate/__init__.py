"""Weaviate: connection modes, the collection schema, batched ingest and the sandbox server."""

from resources.weaviate.resource import WeaviateResource

__all__ = ["WeaviateResource"]
