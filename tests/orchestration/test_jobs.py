"""The register_shards job reads only changed files, unless told to read everything."""

from pathlib import Path

from dagster import DagsterInstance

from assets.partitions import shard_partitions
from orchestration.jobs import register_shards
from tests.orchestration.conftest import write_docs


def _register(instance, corpus, rescan: bool = False) -> dict:
    """One run of the job (with the op's default config unless `rescan`); its output metadata."""
    config = {"ops": {"register_corpus_shards": {"config": {"rescan": True}}}} if rescan else None
    result = register_shards.execute_in_process(
        instance=instance, resources={"corpus": corpus}, run_config=config
    )
    [output] = [event for event in result.all_node_events if event.is_successful_output]
    return {key: value.value for key, value in output.step_output_data.metadata.items()}


def test_registration_reads_changed_files_only_unless_rescan(corpus):
    instance = DagsterInstance.ephemeral()
    first = _register(instance, corpus)
    assert (first["files"], first["files_read"], first["shards"], first["new_shards"]) == (
        2,
        2,
        3,
        3,
    )

    write_docs(Path(corpus.corpus_path) / "b.jsonl", ["b1", "b2", "b3"])
    second = _register(instance, corpus)
    assert (second["files_read"], second["shards"], second["new_shards"]) == (1, 4, 1)

    assert _register(instance, corpus)["files_read"] == 0
    assert _register(instance, corpus, rescan=True)["files_read"] == 2
    assert len(instance.get_dynamic_partitions(shard_partitions.name)) == 4


def test_a_missing_corpus_path_fails_registration_with_the_fix(tmp_path):
    from resources.corpus.resource import CorpusResource

    missing = tmp_path / "nowhere"
    corpus = CorpusResource(corpus_path=str(missing), data_dir=str(tmp_path / "data"))
    result = register_shards.execute_in_process(
        instance=DagsterInstance.ephemeral(), resources={"corpus": corpus}, raise_on_error=False
    )
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data.description == (
        f"corpus path {str(missing)!r} does not exist: set CORPUS_PATH (or the corpus resource's "
        "corpus_path) to the folder of your JSONL or Parquet files"
    )
