"""Errors the sandbox raises internally; the protocol layers map them to statuses.

Keeping them protocol-neutral lets the store and filter code stay free of gRPC and HTTP, and
lets the REST and gRPC front ends report the same condition with their own status codes.
"""

from __future__ import annotations


class SandboxError(Exception):
    """A request the server understood but must refuse (HTTP 422 / gRPC INVALID_ARGUMENT)."""


class NotFound(SandboxError):
    """The named collection or object does not exist (HTTP 404 / gRPC NOT_FOUND)."""


class AlreadyExists(SandboxError):
    """Creating something that already exists; Weaviate answers 422 for classes and objects."""


class Unsupported(SandboxError):
    """A valid Weaviate feature the sandbox does not implement (HTTP 501 / gRPC UNIMPLEMENTED).

    Answering this instead of a partial result is what keeps the sandbox a trustworthy double:
    a test that needs the feature fails loudly rather than passing on wrong data.
    """

    def __init__(self, feature: str) -> None:
        super().__init__(f"the Weaviate sandbox does not implement {feature}")
