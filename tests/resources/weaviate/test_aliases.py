"""Collection aliases (Weaviate 1.32+) on the real server, through the unmodified client.

An alias is what lets a re-index build a new collection beside the live one and switch readers
over in one step, so readers must follow it at once and it must outlive a server restart.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable, Iterator

import pytest
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateInsertManyAllFailedError
from weaviate.util import generate_uuid5

from resources.weaviate.server import LocalServer
from tests.conftest import WeaviateTarget, connect


@pytest.fixture
def client(weaviate_target: WeaviateTarget) -> Iterator[weaviate.WeaviateClient]:
    with connect(weaviate_target) as c:
        yield c


@pytest.fixture
def names(client: weaviate.WeaviateClient) -> Iterator[tuple[str, str, str]]:
    """An alias name and two collection names, all removed afterwards."""
    tag = uuid_lib.uuid4().hex[:10]
    alias, blue, green = f"Alias_{tag}", f"Blue_{tag}", f"Green_{tag}"
    yield alias, blue, green
    client.alias.delete(alias_name=alias)
    for name in (blue, green):
        client.collections.delete(name)


def make(client: weaviate.WeaviateClient, name: str, docs: list[str]) -> None:
    collection = client.collections.create(
        name,
        properties=[
            Property(name="doc_id", data_type=DataType.TEXT, tokenization=Tokenization.FIELD)
        ],
        vector_config=Configure.Vectors.self_provided(),
    )
    result = collection.data.insert_many(
        [
            DataObject({"doc_id": doc}, uuid=generate_uuid5(doc), vector=[1.0, float(i), 0.0])
            for i, doc in enumerate(docs)
        ]
    )
    assert result.errors == {}


def doc_ids(client: weaviate.WeaviateClient, name: str) -> set[str]:
    objects = client.collections.get(name).query.fetch_objects(limit=100).objects
    return {str(o.properties["doc_id"]) for o in objects}


def test_create_get_list_update_delete(
    client: weaviate.WeaviateClient, names: tuple[str, str, str]
) -> None:
    alias, blue, green = names
    make(client, blue, ["b1"])
    make(client, green, ["g1"])

    client.alias.create(alias_name=alias, target_collection=blue)
    got = client.alias.get(alias_name=alias)
    assert got is not None and (got.alias, got.collection) == (alias, blue)
    assert client.alias.list_all()[alias].collection == blue
    assert alias in client.alias.list_all(collection=blue)
    assert alias not in client.alias.list_all(collection=green)

    assert client.alias.update(alias_name=alias, new_target_collection=green) is True
    assert client.alias.get(alias_name=alias).collection == green

    assert client.alias.delete(alias_name=alias) is True
    assert client.alias.get(alias_name=alias) is None
    assert client.alias.exists(alias_name=alias) is False
    assert client.alias.delete(alias_name=alias) is False  # 404: nothing to delete
    assert client.collections.exists(green), "deleting an alias keeps its collection"


def test_reads_and_writes_through_an_alias_reach_its_collection(
    client: weaviate.WeaviateClient, names: tuple[str, str, str]
) -> None:
    alias, blue, _ = names
    make(client, blue, ["b1", "b2", "b3"])
    client.alias.create(alias_name=alias, target_collection=blue)
    via_alias = client.collections.get(alias)

    assert client.collections.exists(alias)
    assert {p.name for p in via_alias.config.get().properties} >= {"doc_id"}
    assert via_alias.aggregate.over_all(total_count=True).total_count == 3
    assert via_alias.data.exists(generate_uuid5("b1"))  # REST object route

    inserted = via_alias.data.insert_many(
        [DataObject({"doc_id": "b4"}, uuid=generate_uuid5("b4"), vector=[0.0, 1.0, 0.0])]
    )  # gRPC BatchObjects
    assert inserted.errors == {}
    deleted = via_alias.data.delete_many(Filter.by_property("doc_id").equal("b1"))  # BatchDelete
    assert deleted.successful == 1
    nearest = via_alias.query.near_vector([0.0, 1.0, 0.0], limit=1).objects  # gRPC Search
    assert nearest[0].properties["doc_id"] == "b4"

    assert doc_ids(client, blue) == {"b2", "b3", "b4"}


def test_switching_an_alias_moves_readers_at_once(
    client: weaviate.WeaviateClient, names: tuple[str, str, str]
) -> None:
    alias, blue, green = names
    make(client, blue, ["old"])
    make(client, green, ["new-1", "new-2"])
    client.alias.create(alias_name=alias, target_collection=blue)
    assert doc_ids(client, alias) == {"old"}

    client.alias.update(alias_name=alias, new_target_collection=green)

    assert doc_ids(client, alias) == {"new-1", "new-2"}
    assert doc_ids(client, blue) == {"old"}, "the previous collection is left as it was"


def test_aliases_that_cannot_exist_are_refused(
    client: weaviate.WeaviateClient, names: tuple[str, str, str]
) -> None:
    alias, blue, green = names
    make(client, blue, ["b1"])

    def refusal(create: Callable[[], object], status: int = 422) -> str:
        with pytest.raises(UnexpectedStatusCodeError) as err:
            create()
        assert err.value.status_code == status
        return err.value.message

    no_target = refusal(lambda: client.alias.create(alias_name=alias, target_collection=green))
    assert f'validation: target class "{green}" does not exist' in no_target
    # Weaviate 1.39 answers this refusal with 500 (1.37: 422); the message is the same.
    named_like_a_collection = refusal(
        lambda: client.alias.create(alias_name=blue, target_collection=blue), status=500
    )
    assert f"create alias: class {blue} already exists" in named_like_a_collection
    client.alias.create(alias_name=alias, target_collection=blue)
    twice = refusal(lambda: client.alias.create(alias_name=alias, target_collection=blue))
    assert f"create alias: {alias}, alias already exists" in twice
    to_nothing = refusal(lambda: client.alias.update(alias_name=alias, new_target_collection=green))
    assert f'validation: target class "{green}" does not exist' in to_nothing
    assert client.alias.get(alias_name=alias).collection == blue
    assert client.alias.update(alias_name=f"{alias}x", new_target_collection=blue) is False


def test_an_alias_is_not_a_collection(
    client: weaviate.WeaviateClient, names: tuple[str, str, str]
) -> None:
    """Collections are dropped by their own name; dropping one leaves its aliases dangling,
    which is why a re-index keeps the previous collection until the alias has moved."""
    alias, blue, _ = names
    make(client, blue, ["b1"])
    client.alias.create(alias_name=alias, target_collection=blue)

    client.collections.delete(alias)  # answered 200, and nothing is dropped
    assert client.collections.exists(blue)
    assert client.alias.get(alias_name=alias).collection == blue
    with pytest.raises(UnexpectedStatusCodeError) as err:
        client.collections.create(alias, vector_config=Configure.Vectors.self_provided())
    assert f"alias name {alias} already exists" in err.value.message

    client.collections.delete(blue)
    assert client.alias.get(alias_name=alias).collection == blue
    assert client.collections.exists(alias) is False
    with pytest.raises(weaviate.exceptions.WeaviateQueryError) as read:
        client.collections.get(alias).query.fetch_objects()
    assert f"could not find class {blue} in schema" in str(read.value)
    with pytest.raises(WeaviateInsertManyAllFailedError) as write:  # no auto-schema either
        client.collections.get(alias).data.insert_many([DataObject({"doc_id": "x"})])
    assert f'alias "{alias}" points to collection "{blue}" which does not exist' in str(write.value)
    assert blue not in client.collections.list_all(simple=True)


def test_aliases_survive_a_restart(start_server: Callable[..., LocalServer]) -> None:
    server = start_server()
    with connect(server) as c:
        make(c, "Blue", ["b1"])
        make(c, "Green", ["g1"])
        c.alias.create(alias_name="Index", target_collection="Blue")
        c.alias.create(alias_name="Switched", target_collection="Blue")
        c.alias.update(alias_name="Switched", new_target_collection="Green")
    assert server.stop() is True
    assert server.start() is True
    with connect(server) as c:
        assert {a.alias: a.collection for a in c.alias.list_all().values()} == {
            "Index": "Blue",
            "Switched": "Green",
        }
        assert doc_ids(c, "Index") == {"b1"}
        assert doc_ids(c, "Switched") == {"g1"}
