"""The collection's index layout, as the real server stores it."""

import uuid

import pytest

from resources.weaviate import WeaviateResource
from resources.weaviate.schema import VECTOR_NAME, IndexLayout, ensure_collection
from tests.conftest import connect


def test_a_new_collection_takes_the_configured_hnsw_compression_and_shards(weaviate_server):
    name = f"Layout_{uuid.uuid4().hex[:6]}"
    layout = WeaviateResource(
        hnsw_ef_construction=64, hnsw_max_connections=16, compression="rq", shards=2
    ).layout()
    with connect(weaviate_server) as client:
        ensure_collection(client, name, layout)
        try:
            config = client.collections.get(name).config.get()
            index = config.vector_config[VECTOR_NAME].vector_index_config
            assert (index.ef_construction, index.max_connections) == (64, 16)
            assert type(index.quantizer).__name__ == "_RQConfig"
            assert config.sharding_config.desired_count == 2
        finally:
            client.collections.delete(name)


def test_an_unknown_compression_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="compression 'zip': use one of"):
        IndexLayout(compression="zip")
