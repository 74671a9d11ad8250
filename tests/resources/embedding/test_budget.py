import pytest

from resources.embedding.budget import BudgetController

GIB = 1 << 30


def controller(**kwargs) -> BudgetController:
    settings = {"initial": 10_000, "min_budget": 1_000, "max_budget": 100_000}
    return BudgetController(**(settings | kwargs))


def test_grows_by_half_while_projected_peak_stays_under_target():
    c = controller()
    # 1 GiB of weights, 1 GiB of activations for 10,000 tokens, 10 GiB device: 1.5x fits.
    assert c.on_success(10_000, 2 * GIB, GIB, 10 * GIB) == 15_000
    assert c.on_success(15_000, int(2.5 * GIB), GIB, 10 * GIB) == 22_500


def test_does_not_grow_when_the_larger_budget_would_pass_the_target():
    c = controller()
    # 8 GiB peak of 10: 1.5x the activations would reach 11.5 GiB, over 85%.
    assert c.on_success(10_000, 8 * GIB, GIB, 10 * GIB) == 10_000
    assert c.best_safe == 10_000


def test_shrinks_to_the_target_when_a_batch_peaks_above_it():
    c = controller()
    budget = c.on_success(10_000, 10 * GIB, GIB, 10 * GIB)
    assert budget == int((8.5 * GIB - GIB) / (9 * GIB / 10_000))
    assert c.best_safe is None


def test_small_tail_batches_say_nothing_about_the_budget():
    c = controller()
    assert c.on_success(1_000, 2 * GIB, GIB, 10 * GIB) == 10_000


def test_halves_on_oom_and_never_returns_to_the_failing_size():
    c = controller(initial=40_000)
    assert c.on_oom(40_000) == 20_000
    assert c.on_success(20_000, 2 * GIB, GIB, 100 * GIB) == 30_000
    assert c.on_success(30_000, 2 * GIB, GIB, 100 * GIB) == 39_999
    assert c.ooms == 1


def test_stays_within_bounds():
    c = controller(initial=1_500)
    assert c.on_oom(1_500) == 1_000
    assert c.on_oom(1_000) == 1_000
    c = controller(initial=90_000)
    assert c.on_success(90_000, 2 * GIB, GIB, 100 * GIB) == 100_000
    assert controller(initial=10**9).current == 100_000


def test_a_fixed_budget_never_grows_but_still_halves_on_oom():
    c = controller(adaptive=False)
    assert c.on_success(10_000, 2 * GIB, GIB, 100 * GIB) == 10_000
    assert c.on_oom(10_000) == 5_000


def test_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        BudgetController(initial=10, min_budget=100, max_budget=10)
