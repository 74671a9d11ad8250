import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pyarrow.parquet as pq

from resources.corpus.chunking import ChunkingConfig, chunk_uuid
from resources.corpus.records import Document
from resources.corpus.shard_chunking import ShardChunker
from resources.corpus.tables import write_documents
from resources.shard_files import ShardFiles
from resources.tokenizer.model_source import DEFAULT_MODEL


def test_a_shard_is_cut_into_its_chunks_file_and_empty_documents_are_quarantined(tmp_path):
    long_text = " ".join(f"river{i % 50} flows" for i in range(300))
    write_documents(
        ShardFiles(tmp_path, "s0").documents,
        [
            Document("short", "A short text about rivers.", {"lang": "en"}),
            Document("long", long_text, {}),
            Document("blank", "\u200b\u200b", {}),
        ],
    )
    cut = ShardChunker(str(tmp_path), DEFAULT_MODEL, ChunkingConfig(max_tokens=64, overlap=8))

    metadata = cut("s0")

    table = pq.read_table(ShardFiles(tmp_path, "s0").chunks)
    assert table.column("doc_id").to_pylist().count("short") == 1
    assert table.column("doc_id").to_pylist().count("long") == metadata["chunks"] - 1 > 2
    assert table.column("uuid")[0].as_py() == chunk_uuid("short", 0)
    assert json.loads(table.column("metadata")[0].as_py()) == {"lang": "en"}
    assert metadata["documents"] == 3 and metadata["documents_without_tokens"] == 1
    assert metadata["tokens"] == sum(table.column("token_count").to_pylist())
    assert metadata["max_chunk_tokens"] <= 62
    [reject] = ShardFiles(tmp_path, "s0").chunking_quarantine.read_text().splitlines()
    assert "'blank'" in reject and "no tokens" in reject


def test_the_stage_travels_to_a_worker_process_and_cuts_the_same_chunks(tmp_path):
    write_documents(ShardFiles(tmp_path, "s0").documents, [Document("d", "Some text here.", {})])
    cut = ShardChunker(str(tmp_path), DEFAULT_MODEL, ChunkingConfig())
    here = cut("s0")
    in_this_process = pq.read_table(ShardFiles(tmp_path, "s0").chunks)
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(cut, "s0").result() == here
    assert pq.read_table(ShardFiles(tmp_path, "s0").chunks).equals(in_this_process)


def test_a_chunking_worker_does_not_import_torch_or_dagster():
    code = (
        "import sys, resources.corpus.shard_chunking;"
        "print(sorted({'torch', 'transformers', 'dagster'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
