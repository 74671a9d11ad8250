import numpy as np
import pytest

dg = pytest.importorskip("dagster")

from resources.embedding import EmbeddingResource  # noqa: E402
from resources.embedding import resource as resource_module  # noqa: E402
from resources.embedding.model import weights_sha256  # noqa: E402
from resources.embedding.resource import engine_for  # noqa: E402


def test_defaults_come_from_the_packaged_model():
    resource = EmbeddingResource(device="cpu")
    assert resource.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert resource.max_length == 256
    assert resource.target_memory_fraction == 0.85


def test_embeds_in_input_order_with_statistics(texts):
    out = EmbeddingResource(device="cpu").embed(texts)
    assert out.vectors.shape == (len(texts), 384)
    assert out.vectors.dtype == np.float32
    meta = out.stats.as_metadata()
    assert meta["texts"] == len(texts)
    assert meta["device"] == "cpu"
    assert meta["dtype"] == "float32"


def test_model_identity_names_the_weights_without_loading_the_model():
    identity = EmbeddingResource(device="cpu", token_budget=1234).model_identity()
    assert identity.keys() == {"name", "sha256", "dtype", "max_length", "dim"}
    assert len(identity["sha256"]) == 64
    assert (identity["dtype"], identity["max_length"], identity["dim"]) == ("float32", 256, 384)
    config = EmbeddingResource(device="cpu", token_budget=1234).engine_config()
    assert config not in resource_module._ENGINES  # nothing was loaded to know it
    engine = engine_for(config)
    assert engine.model_identity() == identity
    assert weights_sha256(engine.model.path) == identity["sha256"]


def test_on_the_cpu_a_step_leases_no_gpu_and_records_none():
    with EmbeddingResource(device="cpu").leased("run x", log=print) as leased:
        assert leased.gpus == () and leased.metadata() == {}
        assert leased.engine.embed(["one text"]).vectors.shape == (1, 384)


def test_resources_with_the_same_settings_share_one_engine():
    first = EmbeddingResource(device="cpu", token_budget=4096)
    second = EmbeddingResource(device="cpu", token_budget=4096)
    assert engine_for(first.engine_config()) is engine_for(second.engine_config())
    assert engine_for(first.engine_config()) is not engine_for(
        EmbeddingResource(device="cpu").engine_config()
    )


def test_an_asset_records_the_statistics_as_metadata(texts):
    @dg.asset
    def vectors(context: dg.AssetExecutionContext, embedding: EmbeddingResource) -> None:
        out = embedding.embed(texts)
        context.add_output_metadata(out.stats.as_metadata())

    result = dg.materialize(
        [vectors], resources={"embedding": EmbeddingResource(device="cpu", max_length=64)}
    )
    assert result.success
    metadata = result.asset_materializations_for_node("vectors")[0].metadata
    assert metadata["texts"].value == len(texts)
    assert metadata["padded_tokens"].value <= 64 * len(texts)


def test_the_resource_exposes_every_engine_setting_with_the_engines_default():
    from dataclasses import fields, replace

    from resources import settings
    from resources.embedding.engine import EngineConfig

    assert {field.name for field in fields(EngineConfig)} <= set(EmbeddingResource.model_fields)
    config = EmbeddingResource(device="cpu", token_budget=4096).engine_config()
    # The engine's data_dir None stands for the data folder, which the resource names.
    expected = replace(EngineConfig(), device="cpu", token_budget=4096, max_length=256,
                       data_dir=settings.data_dir())  # fmt: skip
    assert config == expected
