"""A Weaviate-protocol server for tests and offline runs.

It speaks Weaviate's REST API and the `weaviate.v1` gRPC service, so the real weaviate-client
runs against it unmodified; storage is in memory with an optional append-only log on disk.
"""

from resources.weaviate.sandbox.server import SandboxServer, serve_forever

__all__ = ["SandboxServer", "serve_forever"]
