"""Checks that need a GPU; CI has none, so they run on a GPU machine and are skipped elsewhere.

EMBEDDING_TEST_MODEL names a local model directory where the packaged model is not installed.
"""

import os
import threading

import numpy as np
import pytest
import torch

from benchmarks.mixed_corpus import mixed_corpus
from resources.embedding.devices import MultiDeviceEngine
from resources.embedding.engine import EmbeddingEngine, EngineConfig
from resources.embedding.learned import LearnedBudgets
from resources.embedding.tokenization import tokenize
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path

MODEL = os.environ.get("EMBEDDING_TEST_MODEL", DEFAULT_MODEL)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPUS = [f"cuda:{index}" for index in range(torch.cuda.device_count())]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """10,000 texts of mixed lengths, short ones and windows cut to the model's 256 tokens."""
    return mixed_corpus(resolve_model_path(MODEL), 10_000, seed=7)


@pytest.fixture(scope="module")
def on_first_gpu(corpus) -> np.ndarray:
    return EmbeddingEngine(EngineConfig(model=MODEL, device="cuda:0")).embed(corpus).vectors


@pytest.fixture(scope="module")
def sentence_transformers_fp32(corpus) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(resolve_model_path(MODEL)), device="cuda:0", model_kwargs={"dtype": torch.float32}
    )
    return model.encode(corpus, batch_size=64, normalize_embeddings=True)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


@pytest.mark.parametrize("device", GPUS)
def test_every_gpu_gives_the_vectors_of_the_first(
    device, corpus, on_first_gpu, sentence_transformers_fp32
):
    # The first GPU stays current in this thread: the engine must not follow it.
    torch.cuda.set_device(0)
    out = EmbeddingEngine(EngineConfig(model=MODEL, device=device)).embed(corpus)
    assert out.stats.device == device
    print(device, "min cosine vs cuda:0", min_cosine(out.vectors, on_first_gpu))
    assert min_cosine(out.vectors, on_first_gpu) >= 0.9999
    assert min_cosine(out.vectors, sentence_transformers_fp32) >= 0.999


def test_engines_on_every_gpu_at_once_from_threads(corpus, on_first_gpu):
    engines = [EmbeddingEngine(EngineConfig(model=MODEL, device=device)) for device in GPUS * 2]
    results: dict[int, np.ndarray] = {}

    def run(index: int) -> None:
        results[index] = engines[index].embed(corpus).vectors

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(len(engines)))
    for vectors in results.values():
        assert min_cosine(vectors, on_first_gpu) >= 0.9999


def test_one_call_over_several_gpus_gives_the_vectors_of_one(corpus, on_first_gpu):
    """Every GPU, or two workers sharing the only one: workers with their own tokenizer
    processes, tokens and vectors through shared memory."""
    devices = GPUS if len(GPUS) > 1 else ["cuda:0", "cuda:0"]
    engine = MultiDeviceEngine(EngineConfig(model=MODEL), devices)
    try:
        engine.warm_up()
        out = engine.embed(corpus)
        from_tokens = engine.embed_tokenized(tokenize(MODEL, engine.max_length, corpus))
    finally:
        engine.close()
    assert out.stats.device == ",".join(devices)
    assert min_cosine(out.vectors, on_first_gpu) >= 0.9999
    assert min_cosine(from_tokens.vectors, on_first_gpu) >= 0.9999


def test_steps_lease_gpus_of_their_own(tmp_path, monkeypatch):
    from resources.embedding import EmbeddingResource, lease

    monkeypatch.setenv("EMBEDDING_LEASE_DIR", str(tmp_path))
    monkeypatch.setattr(lease, "POLL_SECONDS", 0.05)
    said: list[str] = []
    resource = EmbeddingResource(model=MODEL)
    got: list[str] = []

    def later_step() -> None:
        with resource.leased("run b", said.append) as leased:
            got.append(leased.gpus[0].uuid)

    with resource.leased("run a", said.append) as first:
        assert len(first.gpus) == 1 and first.metadata()["gpus"].startswith("GPU-")
        assert first.engine.embed(["a text"]).stats.device == first.gpus[0].device
        step = threading.Thread(target=later_step)
        step.start()
        step.join(timeout=5)
        if len(GPUS) == 1:
            assert step.is_alive() and not got  # the only GPU is held: the step waits
            assert any("held: cuda:0 by run a" in line for line in said)
        else:
            assert got and got[0] != first.gpus[0].uuid
    step.join(timeout=60)
    assert len(got) == 1


def test_the_machine_counts_every_gpu_for_its_runs():
    from resources.capacity import Machine, concurrent_runs

    machine = Machine.this()
    assert machine.gpus == len(GPUS) >= 1
    assert concurrent_runs(machine) >= machine.gpus  # a backfill uses every GPU


def long_rows(count: int, length: int, seed: int = 0) -> list[list[int]]:
    """Pre-tokenized rows of exactly `length` tokens: [CLS] random word pieces [SEP]."""
    rng = np.random.default_rng(seed)
    body = rng.integers(1000, 30000, size=(count, length - 2))
    return [[101, *row.tolist(), 102] for row in body]


def test_bf16_matches_sentence_transformers_fp32(texts):
    from sentence_transformers import SentenceTransformer

    model = str(resolve_model_path(MODEL))
    corpus = texts * 50
    reference = SentenceTransformer(model, device="cuda", model_kwargs={"dtype": torch.float32})
    expected = reference.encode(corpus, batch_size=32, normalize_embeddings=True)
    engine = EmbeddingEngine(EngineConfig(model=MODEL, device="cuda", dtype="bfloat16"))
    out = engine.embed(corpus)
    assert out.stats.dtype == "bfloat16"
    assert (out.vectors * expected).sum(axis=1).min() >= 0.999


def test_packed_batches_agree_with_padded_ones(texts):
    corpus = texts * 50
    padded = EmbeddingEngine(EngineConfig(model=MODEL, device="cuda", packed=False)).embed(corpus)
    packed = EmbeddingEngine(EngineConfig(model=MODEL, device="cuda")).embed(corpus)
    assert packed.stats.packed and not padded.stats.packed
    assert packed.stats.padded_tokens == packed.stats.tokens
    assert (packed.vectors * padded.vectors).sum(axis=1).min() >= 0.9999


def test_real_oom_under_a_memory_cap_loses_nothing(tmp_path):
    """512-token rows, a budget far too large and a 2 GiB cap: it must finish, and agree."""
    rows = long_rows(3000, 512)
    reference = EmbeddingEngine(
        EngineConfig(
            model=MODEL, device="cuda", max_length=512, token_budget=16384, data_dir=str(tmp_path)
        )
    ).embed_token_ids(rows)
    assert reference.stats.ooms_recovered == 0
    torch.cuda.empty_cache()
    total = torch.cuda.mem_get_info()[1]
    torch.cuda.set_per_process_memory_fraction(2 * 2**30 / total)
    try:
        # A fixed budget far beyond what 2 GiB holds: it may only halve on out-of-memory.
        engine = EmbeddingEngine(
            EngineConfig(
                model=MODEL,
                device="cuda",
                max_length=512,
                token_budget=4 * 2**20,
                min_budget=512,
                data_dir=str(tmp_path),
            )
        )
        out = engine.embed_token_ids(rows)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    stats = out.stats
    print("capped run:", stats.as_metadata())
    assert stats.ooms_recovered > 0
    assert stats.texts == len(rows)
    assert np.isfinite(out.vectors).all()
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-3)
    cosine = (out.vectors * reference.vectors).sum(axis=1)
    print(
        "agreement with the uncapped run: min cosine",
        cosine.min(),
        "max abs diff",
        np.abs(out.vectors - reference.vectors).max(),
        "identical rows",
        int((out.vectors == reference.vectors).all(axis=1).sum()),
    )
    assert cosine.min() >= 0.9999
    assert stats.peak_device_memory_bytes <= 2 * 2**30


def test_probe_finds_a_budget_and_the_next_engine_starts_there(tmp_path):
    config = EngineConfig(model=MODEL, device="cuda", data_dir=str(tmp_path), max_budget=1 << 20)
    result = EmbeddingEngine(config).probe()
    print("probe trials:", [(t.budget, t.ok, t.peak_bytes) for t in result.trials])
    assert result.budget is not None
    assert 1 <= len(result.trials) <= 5
    assert len(list((tmp_path / "budgets").glob("*.json"))) == 1
    next_run = EmbeddingEngine(config).embed_token_ids(long_rows(10, 256))
    assert next_run.stats.budgets[0] == result.budget


def test_adaptive_budget_grows_and_is_remembered(tmp_path):
    config = EngineConfig(
        model=MODEL, device="cuda", data_dir=str(tmp_path), min_budget=512, max_budget=65536
    )
    engine = EmbeddingEngine(config)
    LearnedBudgets(tmp_path / "budgets").save(engine.budget_key(), 1024, source="probe")
    out = engine.embed_token_ids(long_rows(4000, 128))
    print("adaptive run:", out.stats.as_metadata())
    assert out.stats.budgets[0] == 1024
    assert out.stats.final_budget > 1024
    assert 0.0 <= out.stats.device_idle_seconds < out.stats.wall_seconds
    learned = engine.learned.load(engine.budget_key())
    assert learned is not None and learned.source == "adaptive"
