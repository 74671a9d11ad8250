import numpy as np

from resources.embedding.planner import length_order, padded_length, plan_batches


def test_every_text_is_planned_exactly_once_longest_first():
    lengths = [5, 120, 7, 7, 256, 30, 1, 64]
    batches = plan_batches(lengths, token_budget=300)
    planned = np.concatenate([b.indices for b in batches])
    assert sorted(planned.tolist()) == list(range(len(lengths)))
    assert planned.tolist() == length_order(lengths).tolist()
    assert [lengths[i] for i in planned] == sorted(lengths, reverse=True)


def test_padded_tokens_stay_within_the_budget():
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 257, size=500)
    for budget in (256, 1000, 4096, 20000):
        for batch in plan_batches(lengths, token_budget=budget):
            assert batch.padded_length == lengths[batch.indices].max()
            assert batch.tokens == lengths[batch.indices].sum() <= batch.padded_tokens <= budget


def test_batches_are_as_full_as_the_budget_allows():
    batches = plan_batches([10] * 100, token_budget=250)
    assert [b.rows for b in batches] == [25, 25, 25, 25]


def test_a_text_longer_than_the_budget_still_gets_its_own_batch():
    batches = plan_batches([512, 3, 3], token_budget=100)
    assert batches[0].indices.tolist() == [0]
    assert batches[0].padded_tokens == 512
    assert batches[1].indices.tolist() == [1, 2]


def test_a_row_that_would_be_mostly_padding_starts_a_new_batch():
    batches = plan_batches([9, 256, 42, 38, 18, 12], token_budget=8192)
    assert [[int(i) for i in b.indices] for b in batches] == [[1], [2, 3], [4, 5, 0]]


def test_fixed_row_count_caps_batches():
    batches = plan_batches([4] * 10, token_budget=10_000, max_rows=3)
    assert [b.rows for b in batches] == [3, 3, 3, 1]


def test_equal_lengths_keep_input_order():
    assert length_order([2, 5, 2, 5]).tolist() == [1, 3, 0, 2]


def test_padding_to_a_multiple_never_passes_the_model_limit():
    assert padded_length(13, 8) == 16
    assert padded_length(250, 8, limit=254) == 254
    assert padded_length(254, 8, limit=254) == 254
    batches = plan_batches([13, 12, 9], token_budget=48, pad_multiple=8)
    assert batches[0].padded_length == 16
    assert [b.rows for b in batches] == [3]
