"""The bad-input catalogue: each kind of broken record is quarantined with its location and
reason (or fails the shard in strict mode), and nothing disappears without a record of it."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from assets.corpus import corpus_shard
from assets.partitions import shard_partitions
from orchestration.jobs import register_shards
from resources.corpus.resource import CorpusResource

GOOD = json.dumps({"id": "good-1", "text": "A valid document about rivers."})


def _run(tmp_path, files: dict[str, bytes], strict=False, shard_size=100, instance=None):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in files.items():
        (corpus / name).write_bytes(data)
    resource = CorpusResource(corpus_path=str(corpus), shard_size=shard_size,
                              data_dir=str(tmp_path / "data"), strict=strict,
                              max_document_chars=1_000_000)  # fmt: skip
    instance = instance or DagsterInstance.ephemeral()
    registered = register_shards.execute_in_process(
        instance=instance, resources={"corpus": resource}, raise_on_error=False
    )
    keys = instance.get_dynamic_partitions(shard_partitions.name)
    results = {
        key: materialize([corpus_shard], partition_key=key, instance=instance,
                         resources={"corpus": resource}, raise_on_error=False)
        for key in keys
    }  # fmt: skip
    return resource, registered, results


def _messages(instance, result) -> list[str]:
    """What the run logged through `context.log`."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)
            if entry.dagster_event is None]  # fmt: skip


def _quarantine(resource, key):
    path = resource.files(key).quarantine
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _only_reject(tmp_path, line: bytes):
    resource, _, results = _run(tmp_path, {"a.jsonl": GOOD.encode() + b"\n" + line + b"\n"})
    [result] = results.values()
    assert result.success
    metadata = result.asset_materializations_for_node("corpus_shard")[0].metadata
    assert (metadata["documents"].value, metadata["rejected"].value) == (1, 1)
    [reject] = _quarantine(resource, "a-s00000")
    assert reject["location"] == "a.jsonl:line 2"
    return reject["reason"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"id": "x", "text": "unterminated', "malformed JSON"),
        (b'{"text": "no id here"}', "field 'id' is missing"),
        (b'{"id": "", "text": "empty id"}', "field 'id' is empty"),
        (b'{"id": "e", "text": ""}', "field 'text' is empty (document 'e')"),
        (b'{"id": "w", "text": " \\t\\n "}', "field 'text' is empty (document 'w')"),
        (b'{"id": 42, "text": "numeric id"}', "field 'id' is a int, not a string"),
        (b'{"id": "t", "text": ["a", "list"]}', "field 'text' is a list, not a string"),
        (b'{"id": "m", "text": "x", "meta": {"a": 1}}', "metadata field 'meta' is a dict"),
        (b'{"id": "u", "text": "caf\xe9"}', "invalid UTF-8"),
        (b'["an", "array"]', "record is a list, not an object"),
    ],
)
def test_a_bad_record_is_quarantined_with_its_line(tmp_path, line, reason):
    assert reason in _only_reject(tmp_path, line)


def test_a_duplicate_id_in_the_same_shard_names_the_first_occurrence(tmp_path):
    reason = _only_reject(tmp_path, json.dumps({"id": "good-1", "text": "again"}).encode())
    assert reason == "duplicate id 'good-1' (first at a.jsonl:line 1)"


def test_a_duplicate_id_across_shards_is_refused_whatever_runs_first(tmp_path):
    later = json.dumps({"id": "good-1", "text": "the same id in another file"})
    resource, _, results = _run(tmp_path, {"a.jsonl": (GOOD + "\n").encode(),
                                           "b.jsonl": (later + "\n").encode()})  # fmt: skip
    assert all(r.success for r in results.values())
    assert _quarantine(resource, "a-s00000") == []
    [reject] = _quarantine(resource, "b-s00000")
    assert reject["location"] == "b.jsonl:line 1"
    assert reject["reason"] == "duplicate id 'good-1' (first at a.jsonl:line 1, in shard a-s00000)"


def test_a_ten_megabyte_document_is_refused_with_its_size(tmp_path):
    huge = json.dumps({"id": "huge", "text": "word " * 2_000_000}).encode()
    reason = _only_reject(tmp_path, huge)
    assert "has 10,000,000 characters, over the limit of 1,000,000" in reason
    assert "document 'huge'" in reason


def test_an_empty_file_and_a_truncated_parquet_file_are_reported_and_skipped(tmp_path):
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([{"id": f"p{i}", "text": "t"} for i in range(50)]), buffer)
    data = buffer.getvalue().to_pybytes()
    resource, registered, results = _run(
        tmp_path,
        {
            "a.jsonl": (GOOD + "\n").encode(),
            "empty.jsonl": b"",
            "cut.parquet": data[: len(data) // 2],
        },
    )
    assert registered.success and list(results) == ["a-s00000"]
    problems = [
        json.loads(line)
        for line in (tmp_path / "data" / "manifest" / "problems.jsonl").read_text().splitlines()
    ]
    assert [(p["location"], p["reason"].split(":")[0]) for p in problems] == [
        ("cut.parquet", "file skipped"),
        ("empty.jsonl", "file has no records"),
    ]


def test_strict_mode_fails_the_shard_naming_file_and_line(tmp_path):
    files = {"a.jsonl": (GOOD + "\n{broken\n").encode()}
    _, _, results = _run(tmp_path, files, strict=True)
    [result] = results.values()
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("shard a-s00000 (strict mode): a.jsonl:line 2: malformed JSON")
    # Deterministic bad input is not retried by the step's retry policy.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_strict_mode_fails_the_registration_on_an_empty_file(tmp_path):
    files = {"a.jsonl": (GOOD + "\n").encode(), "empty.jsonl": b""}
    _, registered, results = _run(tmp_path, files, strict=True)
    assert not registered.success and results == {}
    [failure] = [e for e in registered.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert message == "strict mode: empty.jsonl: file has no records"


def test_strict_alone_in_run_config_keeps_the_corpus_settings_from_the_environment(
    tmp_path, monkeypatch
):
    """As the launchpad sends it: `resources: {corpus: {config: {strict: true}}}`."""
    from orchestration.definitions import build_definitions

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_bytes((GOOD + "\n{broken\n").encode())
    monkeypatch.setenv("CORPUS_PATH", str(corpus))
    monkeypatch.setenv("SHARD_SIZE", "7")
    monkeypatch.setenv("INDEXER_DATA_DIR", str(tmp_path / "data"))
    defs = build_definitions()
    instance = DagsterInstance.ephemeral()
    strict = {"resources": {"corpus": {"config": {"strict": True}}}}
    registered = defs.resolve_job_def("register_shards").execute_in_process(
        instance=instance, run_config=strict
    )
    assert registered.output_for_node("register_corpus_shards") == ["a-s00000"]
    assert (tmp_path / "data" / "manifest").is_dir()
    shard = defs.resolve_job_def("index_shards").execute_in_process(
        instance=instance, run_config=strict, partition_key="a-s00000", raise_on_error=False
    )
    [failure] = [e for e in shard.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("shard a-s00000 (strict mode): a.jsonl:line 2: malformed JSON")


def test_a_partition_whose_input_is_gone_fails_once_saying_what_to_run(tmp_path):
    resource, _, _ = _run(tmp_path, {"a.jsonl": (GOOD + "\n").encode()})
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(shard_partitions.name, ["gone-s00000"])
    result = materialize([corpus_shard], partition_key="gone-s00000", instance=instance,
                         resources={"corpus": resource}, raise_on_error=False)  # fmt: skip
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("shard 'gone-s00000' is not in the manifest ")
    assert "its input is gone" in message and "remove_shards" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_malformed_json_names_the_column_once(tmp_path):
    reason = _only_reject(tmp_path, b'{"id": "x", "text": "unterminated')
    assert reason == "malformed JSON: Unterminated string starting at column 21"


@pytest.mark.parametrize(
    ("fields", "first", "second", "prop"),
    [
        ({"my-key": 1, "my_key": 2}, "my-key", "my_key", "my_key"),
        ({"Title": "a", "title": "b"}, "Title", "title", "title"),
        ({"Id": "a", "meta_id": "b"}, "Id", "meta_id", "meta_id"),
    ],
)
def test_two_metadata_keys_of_one_property_quarantine_the_record(
    tmp_path, fields, first, second, prop
):
    record = json.dumps({"id": "c", "text": "clash", **fields}).encode()
    assert _only_reject(tmp_path, record) == (
        f"metadata fields {first!r} and {second!r} would both be Weaviate property {prop!r}, "
        "one value overwriting the other (document 'c')"
    )


def test_strict_mode_fails_on_two_keys_of_one_property_naming_both(tmp_path):
    record = json.dumps({"id": "c", "text": "clash", "my-key": 1, "my_key": 2})
    _, _, results = _run(tmp_path, {"a.jsonl": f"{GOOD}\n{record}\n".encode()}, strict=True)
    [result] = results.values()
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data.description == (
        "shard a-s00000 (strict mode): a.jsonl:line 2: metadata fields 'my-key' and 'my_key' "
        "would both be Weaviate property 'my_key', one value overwriting the other "
        "(document 'c')"
    )


def test_each_renamed_metadata_key_is_reported_once_per_shard(tmp_path):
    records = [
        {"id": f"r{i}", "text": "renamed keys", "_id": f"x{i}", "vector": "v", "year": 1999}
        for i in range(3)
    ]
    body = "".join(json.dumps(record) + "\n" for record in records).encode()
    instance = DagsterInstance.ephemeral()
    _, _, results = _run(tmp_path, {"a.jsonl": body}, instance=instance)
    [result] = results.values()
    metadata = result.asset_materializations_for_node("corpus_shard")[0].metadata
    assert metadata["documents"].value == 3 and metadata["rejected"].value == 0
    assert metadata["renamed_metadata_keys"].value == {"_id": "meta__id", "vector": "meta_vector"}
    logged = [m for m in _messages(instance, result) if "Weaviate properties" in m]
    assert logged == [
        "shard a-s00000: metadata keys stored as Weaviate properties of another name: "
        "'_id' as 'meta__id', 'vector' as 'meta_vector'"
    ]


def test_a_compressed_file_is_reported_and_skipped(tmp_path):
    whole = gzip.compress((GOOD.replace("good-1", "gz-1") + "\n").encode())
    instance = DagsterInstance.ephemeral()
    _, registered, results = _run(
        tmp_path,
        {"a.jsonl": (GOOD + "\n").encode(), "cut.jsonl.gz": whole[: len(whole) // 2]},
        instance=instance,
    )
    assert registered.success and list(results) == ["a-s00000"]
    problems = (tmp_path / "data" / "manifest" / "problems.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in problems] == [
        {
            "location": "cut.jsonl.gz",
            "reason": "file skipped: compressed files are not read (a shard is read by seeking "
            "to it); store it uncompressed as .jsonl or .parquet",
            "raw": "",
        }
    ]
    reason = json.loads(problems[0])["reason"]
    assert f"cut.jsonl.gz: {reason}" in _messages(instance, registered)
