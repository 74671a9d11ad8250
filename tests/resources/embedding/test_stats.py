from resources.embedding.stats import EmbeddingStats


def test_metadata_is_flat_and_numeric_where_possible():
    stats = EmbeddingStats(
        device="cuda:0",
        dtype="bfloat16",
        texts=4,
        tokens=300,
        padded_tokens=400,
        batches=3,
        budgets=[1000, 500, 750],
        final_budget=750,
        ooms_recovered=2,
        cpu_fallback_indices=[3],
        wall_seconds=0.5,
    )
    meta = stats.as_metadata()
    assert {k: meta[k] for k in ("budget_min", "budget_median", "budget_max", "budget_final")} == {
        "budget_min": 500,
        "budget_median": 750,
        "budget_max": 1000,
        "budget_final": 750,
    }
    assert meta["cpu_fallbacks"] == 1
    assert meta["padding_fraction"] == 0.25
    assert meta["tokens_per_second"] == 600.0
    assert meta["texts_per_second"] == 8.0
    assert all(isinstance(v, int | float | str) for v in meta.values())
    assert {
        "texts",
        "tokens",
        "padded_tokens",
        "batches",
        "ooms_recovered",
        "peak_device_memory_bytes",
        "tokenize_seconds",
        "device_seconds",
        "device_idle_seconds",
        "device",
        "dtype",
    } <= meta.keys()


def test_an_empty_call_has_sane_numbers():
    meta = EmbeddingStats(device="cpu", dtype="float32").as_metadata()
    assert meta["tokens_per_second"] == 0.0
    assert meta["budget_final"] == 0
