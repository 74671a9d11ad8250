import json

from resources.embedding.learned import BudgetKey, LearnedBudgets

KEY = BudgetKey(
    model="all-MiniLM-L6-v2@53aa5117", gpu="NVIDIA H100 80GB HBM3", dtype="bfloat16", max_length=256
)


def test_saved_budget_is_read_back_for_the_same_key(tmp_path):
    store = LearnedBudgets(tmp_path / "budgets")
    assert store.load(KEY) is None
    store.save(KEY, 98_304, source="probe")
    learned = LearnedBudgets(tmp_path / "budgets").load(KEY)
    assert learned is not None
    assert (learned.token_budget, learned.source) == (98_304, "probe")


def test_each_key_has_its_own_file_and_no_temporary_files_remain(tmp_path):
    store = LearnedBudgets(tmp_path)
    other = BudgetKey(KEY.model, KEY.gpu, "float16", 512)
    store.save(KEY, 1_000, source="probe")
    store.save(other, 2_000, source="adaptive")
    store.save(KEY, 1_500, source="adaptive")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([KEY.filename(), other.filename()])
    assert store.load(KEY).token_budget == 1_500
    assert store.load(other).token_budget == 2_000


def test_a_file_for_another_key_or_a_damaged_file_is_ignored(tmp_path):
    store = LearnedBudgets(tmp_path)
    store.save(KEY, 1_000, source="probe")
    data = json.loads(store.path(KEY).read_text())
    data["key"]["gpu"] = "another GPU"
    store.path(KEY).write_text(json.dumps(data))
    assert store.load(KEY) is None
    store.path(KEY).write_text("{not json")
    assert store.load(KEY) is None
