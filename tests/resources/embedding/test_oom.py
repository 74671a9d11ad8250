import pytest
import torch

from resources.embedding.oom import OomAboveTokens, OomFirstCalls, is_oom, run_splitting


def rows_of(start: int, end: int) -> list[int]:
    return list(range(start, end))


def test_splits_in_halves_until_the_pieces_fit_and_keeps_row_order():
    fault = OomAboveTokens(max_padded_tokens=2)
    calls = []

    def forward(start, end):
        fault(end - start, end - start)
        calls.append((start, end))
        return rows_of(start, end)

    outcome = run_splitting(7, forward, fallback=lambda row: [row], on_oom=lambda s, e: None)
    assert [row for piece in outcome.pieces for row in piece] == list(range(7))
    assert calls == [(0, 1), (1, 3), (3, 5), (5, 7)]
    assert outcome.ooms == fault.raised == 3
    assert outcome.fallback_rows == []


def test_a_single_row_that_still_fails_goes_to_the_fallback():
    def forward(start, end):
        if 2 in range(start, end):
            raise torch.OutOfMemoryError("row 2 never fits")
        return rows_of(start, end)

    recoveries = []
    outcome = run_splitting(
        4, forward, fallback=lambda row: [row], on_oom=lambda s, e: recoveries.append((s, e))
    )
    assert [row for piece in outcome.pieces for row in piece] == [0, 1, 2, 3]
    assert outcome.fallback_rows == [2]
    assert recoveries == [(0, 4), (2, 4), (2, 3)]


def test_any_number_of_failures_in_a_row():
    fault = OomFirstCalls(50)

    def forward(start, end):
        fault(end - start, 0)
        return rows_of(start, end)

    outcome = run_splitting(8, forward, fallback=lambda row: [row], on_oom=lambda s, e: None)
    assert [row for piece in outcome.pieces for row in piece] == list(range(8))
    assert sorted(outcome.fallback_rows) == list(range(8))


def test_other_errors_are_not_swallowed():
    def forward(start, end):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_splitting(2, forward, fallback=lambda row: [row], on_oom=lambda s, e: None)


def test_recognizes_library_allocation_failures():
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not is_oom(RuntimeError("expected scalar type Float"))
    assert not is_oom(ValueError("CUBLAS_STATUS_ALLOC_FAILED"))
