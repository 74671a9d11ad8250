import os

import numpy as np
import pytest
from transformers import AutoTokenizer

from resources.embedding.tokenization import (
    Tokenized,
    TokenizerPool,
    from_token_ids,
    spare_cpu_set,
    tokenize,
    window_sizes,
)
from resources.tokenizer.model_source import DEFAULT_MODEL, resolve_model_path

TEXTS = ["Hello, world!", "", "word " * 400, "Ünïcödé and emoji 🙂 survive tokenization"]


def rows(tokenized: Tokenized) -> list[list[int]]:
    return [
        tokenized.ids[o : o + n].tolist()
        for o, n in zip(tokenized.offsets, tokenized.lengths, strict=True)
    ]


def test_matches_the_transformers_tokenizer_with_truncation():
    reference = AutoTokenizer.from_pretrained(str(resolve_model_path()))
    expected = reference(TEXTS, truncation=True, max_length=32)["input_ids"]
    assert rows(tokenize(DEFAULT_MODEL, 32, TEXTS)) == expected


def test_pre_tokenized_rows_are_taken_as_they_are():
    ids = [[101, 7592, 102], [101, 102], np.array([101, 2088, 2003, 102])]
    tokenized = from_token_ids(ids, max_length=8)
    assert rows(tokenized) == [[101, 7592, 102], [101, 102], [101, 2088, 2003, 102]]


def test_pre_tokenized_rows_longer_than_the_window_are_refused():
    with pytest.raises(ValueError, match=r"token_ids\[1\] has 9 tokens"):
        from_token_ids([[101, 102], list(range(9))], max_length=8)
    with pytest.raises(ValueError, match="empty"):
        from_token_ids([[101, 102], []], max_length=8)


def test_windows_double_up_to_the_largest_and_shrink_towards_the_end():
    assert list(window_sizes(100, first=10, largest=40)) == [
        (0, 10), (10, 30), (30, 65), (65, 83), (83, 93), (93, 100)
    ]  # fmt: skip
    sizes = [end - start for start, end in window_sizes(200_000, first=4096, largest=65536)]
    assert sizes[:5] == [4096, 8192, 16384, 32768, 65536]
    assert sum(sizes) == 200_000 and max(sizes) == 65536 and sizes[-1] <= 4096
    assert list(window_sizes(0, first=10, largest=40)) == []


def test_worker_processes_give_the_same_ids_on_the_cpus_they_are_given():
    cpu = min(os.sched_getaffinity(0))
    pool = TokenizerPool(DEFAULT_MODEL, 64, workers=1, cpus=[cpu])
    try:
        from_worker = pool.submit(TEXTS).result(timeout=120)
        worker_cpus = pool._executor.submit(os.sched_getaffinity, 0).result(timeout=60)
    finally:
        pool.close()
    assert rows(from_worker) == rows(tokenize(DEFAULT_MODEL, 64, TEXTS))
    assert worker_cpus == {cpu}


def test_one_cpu_is_left_to_the_launching_thread_where_there_are_four_or_more(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3, 0, 2, 1})
    assert spare_cpu_set() == [1, 2, 3]
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert spare_cpu_set() is None
