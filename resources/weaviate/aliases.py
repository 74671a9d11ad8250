"""The index's public name is an alias: a re-index fills a new collection beside the live one,
then points the alias at it in one step, so a search sees the old index or the new one, never
a half-built one.
"""

from __future__ import annotations

import weaviate


def alias_target(client: weaviate.WeaviateClient, alias: str) -> str | None:
    """The collection the alias points at, or None where there is no such alias."""
    found = client.alias.get(alias_name=alias)
    return found.collection if found is not None else None


def point_alias(client: weaviate.WeaviateClient, alias: str, collection: str) -> str | None:
    """Point `alias` at `collection`; returns the collection it pointed at before, if any.

    An index built before aliases is a collection named like the alias; Weaviate refuses an
    alias that shares a collection's name, so that collection is dropped first (the one moment
    the name resolves to nothing, instead of to a partial index).
    """
    previous = alias_target(client, alias)
    if previous is not None:
        if not client.alias.update(alias_name=alias, new_target_collection=collection):
            raise RuntimeError(f"alias {alias} vanished while it was being switched")
        return previous
    if client.collections.exists(alias):
        client.collections.delete(alias)
    client.alias.create(alias_name=alias, target_collection=collection)
    return None
