"""When an index answers searches: every object stored is also in its vector index.

With asynchronous indexing (the managed server's default for a bulk load) a write returns once
the object is stored, and the server adds vectors to the HNSW graph from a queue: a search
finds an object only once its vector left that queue. A bulk load is done when the queue of
every shard, on every node, is empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import weaviate

from resources.weaviate.aliases import alias_target

POLL_SECONDS = 0.5


def vectors_queued(client: weaviate.WeaviateClient, collection: str) -> int:
    """Vectors stored but not yet searchable, over every shard of `collection` (an alias is
    followed); a shard still building its index counts one at least."""
    name = alias_target(client, collection) or collection
    queued = 0
    for node in client.cluster.nodes(name, output="verbose"):
        for shard in node.shards or []:
            ready = shard.vector_indexing_status == "READY"
            queued += max(shard.vector_queue_length, 0 if ready else 1)
    return queued


def wait_until_searchable(
    client: weaviate.WeaviateClient, collection: str, stopped: Callable[[], bool] = lambda: False
) -> bool:
    """Waits until no vector of `collection` is queued; False if `stopped` came first."""
    while vectors_queued(client, collection):
        if stopped():
            return False
        time.sleep(POLL_SECONDS)
    return True
