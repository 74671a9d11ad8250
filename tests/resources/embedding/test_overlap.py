import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from resources.embedding.overlap import Collector, built_ahead


def test_built_ahead_keeps_order_and_builds_the_next_item_while_the_caller_works():
    taken: list[int] = []
    built_on: dict[int, str] = {}

    def items():
        for i in range(5):
            taken.append(i)
            yield i

    def build(i: int) -> int:
        built_on[i] = threading.current_thread().name
        return i * 10

    with ThreadPoolExecutor(1, thread_name_prefix="builder") as executor:
        seen = []
        for item, built in built_ahead(items(), build, executor):
            # While the caller holds item i, item i + 1 has already been taken.
            assert taken[-1] == min(item + 1, 4)
            seen.append((item, built))
    assert seen == [(i, i * 10) for i in range(5)]
    assert all(name.startswith("builder") for name in built_on.values())


def test_built_ahead_without_an_executor_builds_inline_and_lazily():
    taken: list[int] = []

    def items():
        for i in range(3):
            taken.append(i)
            yield i

    for item, built in built_ahead(items(), lambda i: -i, None):
        assert taken[-1] == item and built == -item


def test_built_ahead_raises_what_the_build_raised():
    def build(i: int) -> int:
        if i == 2:
            raise ValueError("row 2 is bad")
        return i

    with ThreadPoolExecutor(1) as executor, pytest.raises(ValueError, match="row 2 is bad"):
        list(built_ahead(iter(range(4)), build, executor))


@pytest.mark.parametrize("threaded", [True, False])
def test_the_collector_puts_every_batch_at_its_input_rows(threaded):
    vectors = np.full((6, 2), np.nan, dtype=np.float32)
    with Collector(vectors, depth=2, threaded=threaded) as collector:
        pieces = [torch.tensor([[5.0, 5.0]]), torch.tensor([[1.0, 1.0]])]
        collector.put(None, pieces, np.array([5, 1]))
        collector.put(None, [torch.tensor([[0.0, 0.0], [3.0, 3.0]])], np.array([0, 3]))
        collector.put(None, [torch.tensor([[2.0, 2.0], [4.0, 4.0]])], np.array([2, 4]))
    assert vectors.tolist() == [[float(i), float(i)] for i in range(6)]


def test_a_failed_copy_is_raised_to_the_launching_thread():
    vectors = np.zeros((2, 2), dtype=np.float32)
    wrong_width = [torch.zeros((1, 3))]
    collector = Collector(vectors, depth=1, threaded=True)
    with pytest.raises(RuntimeError, match="copying vectors back") as raised, collector:
        collector.put(None, wrong_width, np.array([0]))
        # Later batches neither block nor hide the first failure.
        for _ in range(3):
            with contextlib.suppress(RuntimeError):
                collector.put(None, [torch.ones((1, 2))], np.array([1]))
    assert isinstance(raised.value.__cause__, ValueError)


def test_an_error_of_the_launching_thread_is_not_replaced_by_the_collectors():
    vectors = np.zeros((1, 2), dtype=np.float32)
    with pytest.raises(KeyError), Collector(vectors, depth=1, threaded=True) as collector:
        collector.put(None, [torch.zeros((1, 3))], np.array([0]))
        raise KeyError("launch failed")
