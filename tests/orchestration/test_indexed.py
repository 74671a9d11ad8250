"""What the instance says each shard is indexed at, read from its newest materializations."""

from dagster import AssetMaterialization, DagsterInstance

from orchestration.indexed import indexed_hashes


def _read(instance: DagsterInstance, key: str, content_hash: str) -> None:
    event = AssetMaterialization(
        "corpus_shard", partition=key, metadata={"source_content_hash": content_hash}
    )
    instance.report_runless_asset_event(event)


def _indexed(instance: DagsterInstance, key: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization("weaviate_index", partition=key))


def test_the_newest_read_counts_and_only_once_weaviate_followed_it():
    instance = DagsterInstance.ephemeral()
    for version in ("v1", "v2", "v3"):  # indexed three times over
        _read(instance, "a", version)
        _indexed(instance, "a")
    _read(instance, "b", "v1")
    _indexed(instance, "b")
    _read(instance, "b", "v2")  # read again, then the run failed before Weaviate
    _read(instance, "c", "v1")  # never reached Weaviate

    hashes = indexed_hashes(instance, {"a": "v3", "b": "v2", "c": "v1", "d": "v1"})

    assert hashes == {"a": "v3", "b": "", "c": "", "d": ""}
