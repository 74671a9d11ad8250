import ast
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from orchestration.cli import main
from resources.corpus import python_help
from resources.corpus.manifest import manifest_path, register_corpus
from resources.weaviate.server import WEAVIATE_VERSION, LocalServer

ROOT = Path(__file__).resolve().parents[2]


def test_sample_corpus_writes_files_and_statistics(tmp_path, capsys):
    assert main(["sample-corpus", "--docs", "25", "--out", str(tmp_path), "--docs-per-file",
                 "10", "--seed", "4"]) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "corpus_stats.json", "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl",
    ]  # fmt: skip
    stats = json.loads((tmp_path / "corpus_stats.json").read_text())
    assert stats["documents"] == 25 and stats["seed"] == 4
    assert "documents=25" in capsys.readouterr().out


def test_demo_indexes_a_corpus_into_a_managed_server_it_starts_and_stops(tmp_path):
    """What `make run` does, on the first help topics: no Weaviate configured, so the demo starts
    the managed server (the real binary, on free ports), indexes, asks its question, finds the
    topic that answers it first, stops the server and says how to search."""
    data = tmp_path / "data"
    server = LocalServer.on_free_ports(data / "weaviate")
    http_port = server.http_port
    env = {
        **os.environ,
        "INDEXER_DATA_DIR": str(data),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "WEAVIATE_MANAGED_PORT": str(http_port),
        "WEAVIATE_MANAGED_GRPC_PORT": str(server.grpc_port),
        "WEAVIATE_MANAGED_CLUSTER_PORT": str(server.cluster_port),
        "HF_HUB_OFFLINE": "1",
    }
    env["SHARD_SIZE"] = "5"
    for unset in ("WEAVIATE_MODE", "WEAVIATE_URL", "WEAVIATE_API_KEY", "WEAVIATE_COLLECTION",
                  "CORPUS_PATH"):  # fmt: skip
        env.pop(unset, None)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "demo", "--docs", "12"], cwd=ROOT,
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        left_running = server.ready()
    finally:
        server.stop()  # only if the demo left it running
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    topics = f"12 help topics of Python {platform.python_version()}"
    assert f"corpus: {topics} in {data / 'corpus'}" in out
    assert "3 shards registered" in out
    assert (
        f"Weaviate: managed Weaviate {WEAVIATE_VERSION} on 127.0.0.1:{http_port} "
        f"(data {data / 'weaviate'}) (auto: no WEAVIATE_URL)"
    ) in out
    # One run of the three shards, then what they wrote; the collection holds it all.
    assert "  python-help-topics-s00000..python-help-topics-s00002: ok  3/3 shards" in out
    summary = out.split("indexed 3/3 shards (")[1].split(")")[0]
    documents, chunks, objects = (int(part.split()[0]) for part in summary.split(", "))
    assert documents == 12 and chunks == objects >= 12
    assert f"collection Chunks: {objects} objects" in out
    # The question has a known answer, and the search puts it first: five hits, nearest first.
    assert f"question: {python_help.QUESTION!r}" in out
    hits = [line.split()[:2] for line in out.split("question: ")[1].splitlines()[1:6]]
    distances = [float(distance) for distance, _ in hits]
    assert len(hits) == 5 and distances == sorted(distances) and distances[-1] < 1
    assert hits[0][1].startswith(f"{python_help.ANSWER}#")
    assert f"top hit: {python_help.ANSWER}, the expected document" in out
    assert (
        f"stopped the Weaviate server this command started; its data stays in {data / 'weaviate'}"
    ) in out
    command = os.path.relpath(Path(sys.executable).parent / "weaviate-indexer", ROOT)
    assert f'to search it: {command} search "{python_help.QUESTION}"' in out
    assert not left_running and server.pid() is None
    assert (data / "weaviate" / "data").is_dir()
    # Runs went to the persistent instance, so the UI shows them afterwards.
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()
    assert any((tmp_path / "dagster").rglob("*.db"))


def _console_script(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`weaviate-indexer ...` as installed, in a scratch data folder and Dagster instance."""
    script = Path(sys.executable).parent / "weaviate-indexer"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([str(script), *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_search_against_an_unreachable_weaviate_ends_with_its_message_not_a_trace(tmp_path):
    done = _console_script("search", "rivers", WEAVIATE_URL="http://127.0.0.1:9",
                           WEAVIATE_GRPC_PORT="10", INDEXER_DATA_DIR=str(tmp_path))  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    first, *rest = done.stderr.splitlines()
    assert first == (
        "error: cannot reach Weaviate (custom at 127.0.0.1:9 (auto: WEAVIATE_URL is set)): start "
        "it, or point WEAVIATE_URL (and WEAVIATE_GRPC_PORT) at one that runs; unset WEAVIATE_URL "
        "to use the managed server."
    )
    assert rest[0].startswith("The client said: ") and "Traceback" not in done.stderr


def test_index_of_a_corpus_that_is_not_there_ends_with_the_jobs_message(tmp_path):
    missing = tmp_path / "no-corpus"
    done = _console_script("index", "--corpus", str(missing), INDEXER_DATA_DIR=str(tmp_path),
                           DAGSTER_HOME=str(tmp_path / "dagster"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"error: corpus path {str(missing)!r} does not exist: set CORPUS_PATH (or the corpus "
        "resource's corpus_path) to the folder of your JSONL or Parquet files"
    )
    # Neither Python's trace nor the one Dagster's console logger prints for a failed step.
    assert "Traceback (most recent call last)" not in done.stderr
    assert "Stack Trace" not in done.stderr and 'File "' not in done.stderr


def test_every_error_the_project_defines_ends_a_command_with_its_message():
    """An error class added anywhere in the project is one the command line knows."""
    from orchestration.cli import _project_errors

    def is_error(base: ast.expr) -> bool:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        return name.endswith(("Error", "Exception"))

    defined = set()
    for layer in ("resources", "assets", "orchestration"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef) and any(map(is_error, node.bases)):
                    defined.add(getattr(importlib.import_module(module), node.name))
    errors = {kind for kind in defined if issubclass(kind, Exception)}  # not control flow
    assert len(errors) >= 6
    assert {error for error in errors if not issubclass(error, _project_errors())} == set()


def test_index_of_another_corpus_than_the_one_indexed_is_refused_before_it_registers(tmp_path):
    data, first, other = tmp_path / "data", tmp_path / "first", tmp_path / "other"
    for corpus in (first, other):
        corpus.mkdir()
        (corpus / "part.jsonl").write_text('{"id": "a", "text": "some text"}\n')
    register_corpus(str(first), 1000, data)  # what an earlier `make run` leaves
    manifest = manifest_path(data).read_text()
    done = _console_script("index", "--corpus", str(other), INDEXER_DATA_DIR=str(data),
                           DAGSTER_HOME=str(tmp_path / "dagster"))  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: {other} is not the corpus indexed here (1 shards of ")
    assert f"`weaviate-indexer index --corpus {other} --remove-missing`" in done.stderr
    assert manifest_path(data).read_text() == manifest  # nothing registered


def test_weaviate_start_and_status_say_where_the_key_is_kept_never_the_key(
    tmp_path, monkeypatch, capsys
):
    data = tmp_path / "data"
    server = LocalServer.on_free_ports(data / "weaviate")
    for name, value in (("INDEXER_DATA_DIR", str(data)),
                        ("WEAVIATE_MANAGED_PORT", str(server.http_port)),
                        ("WEAVIATE_MANAGED_GRPC_PORT", str(server.grpc_port)),
                        ("WEAVIATE_MANAGED_CLUSTER_PORT", str(server.cluster_port))):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEAVIATE_API_KEY", raising=False)
    kept = f"API key: generated, kept in {data / 'weaviate' / 'api-key'}"
    try:
        assert main(["weaviate", "start"]) == 0
        assert main(["weaviate", "status"]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert out.splitlines()[2] == kept and out.splitlines()[4] == kept
    assert server.api_key not in out

    monkeypatch.setenv("WEAVIATE_API_KEY", "user-set-key-2718")
    assert main(["weaviate", "status"]) == 0
    assert capsys.readouterr().out == (
        f"stopped: {server.describe()}\nAPI key: the configured one (WEAVIATE_API_KEY)\n"
    )
