from resources.embedding.probe import Trial, search_budget


def fits_up_to(limit: int):
    def trial(budget: int) -> Trial:
        return Trial(budget=budget, ok=budget <= limit)

    return trial


def tried(result) -> list[tuple[int, bool]]:
    return [(t.budget, t.ok) for t in result.trials]


def test_estimate_too_small_grows_by_half_up_to_the_maximum():
    result = search_budget(fits_up_to(10**6), estimate=19, min_budget=1, max_budget=64)
    assert tried(result) == [(19, True), (28, True), (42, True), (63, True), (64, True)]
    assert result.budget == 64


def test_estimate_too_large_halves_then_bisects():
    result = search_budget(fits_up_to(16), estimate=19, min_budget=1, max_budget=64)
    assert tried(result) == [(19, False), (9, True), (14, True), (16, True), (17, False)]
    assert result.budget == 16


def test_estimate_about_right_bisects_after_the_first_failure():
    result = search_budget(fits_up_to(25), estimate=19, min_budget=1, max_budget=64)
    assert tried(result)[:3] == [(19, True), (28, False), (23, True)]
    assert result.budget == 25
    assert len(result.trials) == 5


def test_never_more_than_five_trials():
    result = search_budget(fits_up_to(1), estimate=10**6, min_budget=1, max_budget=10**7)
    assert len(result.trials) == 5


def test_stops_once_the_bracket_is_within_five_percent():
    result = search_budget(fits_up_to(30_000), estimate=20_000, min_budget=1, max_budget=10**6)
    assert tried(result) == [
        (20_000, True),
        (30_000, True),
        (45_000, False),
        (37_500, False),
        (33_750, False),
    ]
    assert result.budget == 30_000


def test_nothing_fits():
    result = search_budget(fits_up_to(0), estimate=100, min_budget=50, max_budget=1_000)
    assert tried(result) == [(100, False), (50, False)]
    assert result.budget is None
