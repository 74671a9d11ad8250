import itertools
import os

import numpy as np
import pytest

from resources.embedding.devices import (
    MultiDeviceEngine,
    device_list,
    split_by_weight,
    split_cpus,
)
from resources.embedding.engine import TOKENIZE_CHUNK, EmbeddingEngine, EngineConfig
from resources.embedding.stats import EmbeddingStats
from resources.embedding.tokenization import Tokenized, tokenize


def test_rows_are_split_into_contiguous_ranges_of_equal_tokens():
    lengths = np.array([256] * 10 + [8] * 320)  # 2,560 tokens, then 2,560 more in short rows
    assert split_by_weight(lengths, 2) == [(0, 10), (10, 330)]
    lengths = np.random.default_rng(0).integers(1, 257, 1000)
    ranges = split_by_weight(lengths, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    third = lengths.sum() / 3
    assert all(abs(lengths[a:b].sum() - third) <= 256 for a, b in ranges)


def test_a_split_never_makes_empty_ranges():
    assert split_by_weight(np.array([5]), 4) == [(0, 1)]
    assert split_by_weight(np.array([100, 1, 1]), 2) == [(0, 1), (1, 3)]
    assert split_by_weight(np.array([], dtype=np.int64), 2) == []


def test_device_settings_name_their_devices():
    assert device_list("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert device_list("cpu,cpu") == ["cpu", "cpu"]
    assert device_list("cpu") == ["cpu"]
    assert device_list("cuda:1") == ["cuda:1"]
    assert device_list("auto") == ["auto"]  # one device: a step leases one GPU
    assert device_list("all") == ["cpu"]  # every GPU, and this machine has none


def test_each_worker_gets_cpus_of_its_own():
    cpus = sorted(os.sched_getaffinity(0))
    sets = split_cpus(2)
    if len(cpus) < 2:
        assert sets == [None, None]
        return
    assert sorted(itertools.chain.from_iterable(sets)) == cpus
    assert not set(sets[0]) & set(sets[1])
    assert split_cpus(len(cpus) + 1) == [None] * (len(cpus) + 1)


def test_statistics_of_parts_add_up_and_keep_naming_the_callers_texts():
    first = EmbeddingStats("cuda:0", "bfloat16", texts=10, tokens=900, batches=2, budgets=[4, 8])
    second = EmbeddingStats("cuda:1", "bfloat16", texts=5, tokens=800, batches=1, budgets=[8])
    first.final_budget, second.final_budget = 8, 4
    second.cpu_fallback_indices.append(2)
    total = EmbeddingStats.combined([(0, first), (10, second)], wall_seconds=2.0)
    assert (total.texts, total.tokens, total.batches) == (15, 1700, 3)
    assert total.cpu_fallback_indices == [12]
    assert total.final_budget == 4
    assert total.device == "cuda:0,cuda:1"
    assert total.tokens_per_second == 850


@pytest.fixture(scope="module")
def two_workers():
    engine = MultiDeviceEngine(EngineConfig(device="cpu"), ["cpu", "cpu"])
    yield engine
    engine.close()


def test_two_workers_give_every_vector_in_input_order(two_workers, cpu_engine, texts):
    order = np.random.default_rng(3).permutation(len(texts))
    shuffled = [texts[i] for i in order]
    single = cpu_engine().embed(shuffled).vectors
    out = two_workers.embed(shuffled)
    np.testing.assert_allclose(out.vectors, single, atol=1e-5)
    assert out.stats.texts == len(texts)
    assert out.stats.device == "cpu,cpu"

    tokenized = tokenize(two_workers.config.model, two_workers.max_length, shuffled)
    from_ids = two_workers.embed_tokenized(tokenized)
    np.testing.assert_allclose(from_ids.vectors, single, atol=1e-5)
    assert from_ids.stats.tokens == int(tokenized.lengths.sum())


def test_two_workers_tell_progress_once_when_both_are_done(two_workers, texts):
    tokenized = tokenize(two_workers.config.model, two_workers.max_length, texts)
    told: list[tuple[int, int]] = []
    two_workers.embed_tokenized(tokenized, progress=lambda *done: told.append(done))
    assert told == [(len(texts), int(tokenized.lengths.sum()))]


def test_two_workers_take_an_empty_call(two_workers):
    out = two_workers.embed_tokenized(
        Tokenized(ids=np.empty(0, np.int32), lengths=np.empty(0, np.int32))
    )
    assert out.vectors.shape == (0, 384)


def test_a_worker_error_names_its_device(two_workers):
    too_long = Tokenized(ids=np.ones(300, np.int32), lengths=np.array([300], np.int32))
    with pytest.raises(ValueError, match="more than max_length"):
        two_workers.embed_tokenized(too_long)
    with pytest.raises(RuntimeError, match="embedding worker on cuda:7 failed"):
        MultiDeviceEngine(EngineConfig(device="cpu"), ["cpu", "cuda:7"])


def test_closing_survives_a_worker_that_exits_while_being_told_to():
    engine = MultiDeviceEngine(EngineConfig(device="cpu"), ["cpu", "cpu"])
    process, connection = engine._processes[1], engine._connections[1]

    def exits_first(_message):
        process.kill()
        process.join()
        raise BrokenPipeError(32, "Broken pipe")

    connection.send = exits_first
    engine.close()
    assert engine._processes == [] and not process.is_alive()


def test_workers_run_tokenizer_processes_of_their_own():
    """The shape that crashed on a multi-GPU machine: a worker starting its tokenizer pool."""
    many = [f"Short text number {i} about shard {i % 7}." for i in range(2 * TOKENIZE_CHUNK + 300)]
    engine = MultiDeviceEngine(EngineConfig(device="cpu", tokenizer_workers=1), ["cpu", "cpu"])
    try:
        engine.warm_up()  # starts each worker's pool
        out = engine.embed(many)  # each worker's part is past TOKENIZE_CHUNK: its pool tokenizes
    finally:
        engine.close()
    assert out.vectors.shape == (len(many), 384)
    assert out.stats.texts == len(many) and out.stats.tokenize_seconds > 0
    sample = [0, 1, 2047, 2048, 2049, len(many) // 2, len(many) - 1]
    single = EmbeddingEngine(EngineConfig(device="cpu")).embed([many[i] for i in sample])
    np.testing.assert_allclose(out.vectors[sample], single.vectors, atol=1e-5)
