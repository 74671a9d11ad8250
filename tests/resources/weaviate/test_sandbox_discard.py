"""Discard mode: the sandbox accepts batches unread, so ingest benchmarks measure the client."""

import numpy as np

from resources.weaviate.ingest import IngestObject, IngestPolicy, IngestReport, write_objects
from resources.weaviate.sandbox import SandboxServer
from tests.conftest import WeaviateTarget, connect


def test_discard_mode_accepts_every_object_and_stores_none():
    with SandboxServer(discard_batches=True) as server:
        client = connect(WeaviateTarget("sandbox", "127.0.0.1", server.http_port,
                                        server.grpc_port))  # fmt: skip
        try:
            objects = [
                IngestObject(
                    f"00000000-0000-0000-0000-{i:012d}",
                    {"doc_id": f"d{i}"},
                    np.full(384, i, np.float32),
                )  # fmt: skip
                for i in range(250)
            ]
            report = IngestReport(shard="s")
            write_objects(client.collections.get("Nowhere"), report, objects,
                          IngestPolicy(max_objects=100))  # fmt: skip
            assert report.failed == [] and report.attempted == 250 and report.batches == 3
            assert server.discarded() == 250
            assert not client.collections.exists("Nowhere")
        finally:
            client.close()
