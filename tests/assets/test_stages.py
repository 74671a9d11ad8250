"""The stages' own failures: what a user reads in the UI when a step fails."""

import pytest
from dagster import Failure

from assets import stages
from resources.weaviate import WeaviateResource


def test_an_unreachable_weaviate_fails_with_one_sentence_that_names_the_fix():
    dead = WeaviateResource(mode="custom", url="http://127.0.0.1:9", grpc_port=10,
                            collection="Unreachable")  # fmt: skip
    with pytest.raises(Failure) as caught, stages.connected(dead.client):
        pass
    assert caught.value.description == (
        "cannot reach Weaviate (custom at 127.0.0.1:9): start it, or point WEAVIATE_URL (and "
        "WEAVIATE_GRPC_PORT) at one that runs; unset WEAVIATE_URL to use the managed server."
    )
    assert caught.value.allow_retries  # the server may be back for the step's next attempt
    assert str(caught.value.__cause__).split("\n")[1].startswith("The client said: ")


def test_an_unknown_rejects_setting_is_refused_before_anything_is_read(tmp_path):
    from resources.shard_files import ShardFiles

    with pytest.raises(Failure, match='weaviate.rejects must be "fail" or "quarantine", not'):
        stages.index(None, "C", ShardFiles(tmp_path, "s"), None, "ignore", None)
