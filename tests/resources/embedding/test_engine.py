import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from resources.embedding import engine as engine_module
from resources.embedding.oom import OomAboveTokens, OomFirstCalls
from resources.embedding.tokenization import tokenize
from resources.tokenizer.model_source import resolve_model_path


@pytest.fixture(scope="module")
def baseline(cpu_engine, texts) -> np.ndarray:
    """What the engine must reproduce: the fault-free run with the default budget."""
    return cpu_engine().embed(texts).vectors


def test_matches_sentence_transformers_encode(texts, baseline):
    st = SentenceTransformer(str(resolve_model_path()), device="cpu")
    expected = st.encode(texts, batch_size=32, normalize_embeddings=True)
    assert baseline.shape == (len(texts), 384)
    assert baseline.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(baseline, axis=1), 1.0, atol=1e-5)
    assert (baseline * expected).sum(axis=1).min() > 0.99999


def test_output_follows_input_order_whatever_the_order(cpu_engine, texts, baseline):
    permutation = np.random.default_rng(7).permutation(len(texts))
    shuffled = cpu_engine().embed([texts[i] for i in permutation]).vectors
    np.testing.assert_allclose(shuffled, baseline[permutation], atol=1e-6)


@pytest.mark.parametrize(
    "settings",
    [{"token_budget": 64}, {"token_budget": 1_000_000}, {"batch_size": 1}, {"batch_size": 7}],
)
def test_same_vectors_whatever_the_batching(cpu_engine, texts, baseline, settings):
    out = cpu_engine(**settings).embed(texts)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)


def test_injected_ooms_above_a_size_are_recovered_without_a_change(cpu_engine, texts, baseline):
    fault = OomAboveTokens(max_padded_tokens=300)
    out = cpu_engine(fault_hook=fault).embed(texts)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)
    assert out.stats.ooms_recovered == fault.raised > 0
    # The 256-token texts alone are 256 tokens: they fit, so nothing fell back to the CPU.
    assert out.stats.cpu_fallbacks == 0
    assert out.stats.final_budget < out.stats.budgets[0]


def test_injected_ooms_on_the_first_calls_are_recovered(cpu_engine, texts, baseline):
    fault = OomFirstCalls(5)
    out = cpu_engine(fault_hook=fault).embed(texts)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)
    assert out.stats.ooms_recovered == 5


def test_a_text_that_never_fits_is_embedded_on_the_fallback_and_reported(
    cpu_engine, texts, baseline
):
    long_text = texts.index(max(texts, key=len))
    fault = OomAboveTokens(max_padded_tokens=255)
    out = cpu_engine(fault_hook=fault).embed(texts)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)
    assert long_text in out.stats.cpu_fallback_indices
    assert out.stats.cpu_fallbacks == 2  # the 256-token text appears twice


def test_pre_tokenized_input_gives_the_same_vectors(cpu_engine, texts, baseline):
    engine = cpu_engine()
    tokenized = tokenize(engine.config.model, engine.max_length, texts)
    ids = [
        tokenized.ids[o : o + n].tolist()
        for o, n in zip(tokenized.offsets, tokenized.lengths, strict=True)
    ]
    out = engine.embed_token_ids(ids)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)
    assert out.stats.tokenize_seconds == 0.0


def test_pre_tokenized_rows_past_the_window_are_refused(cpu_engine):
    with pytest.raises(ValueError, match="more than max_length"):
        cpu_engine().embed_token_ids([[101] + [2000] * 300 + [102]])


def test_statistics_describe_the_call(cpu_engine, texts):
    out = cpu_engine(token_budget=512).embed(texts)
    stats = out.stats
    lengths = tokenize(cpu_engine().config.model, 256, texts).lengths
    assert (stats.texts, stats.tokens) == (len(texts), int(lengths.sum()))
    assert stats.tokens <= stats.padded_tokens <= stats.batches * 512 + 256
    assert stats.batches == len(stats.budgets) > 1
    assert stats.device == "cpu" and stats.dtype == "float32"
    assert stats.device_seconds > 0 and stats.wall_seconds >= stats.device_seconds
    assert stats.as_metadata()["budget_final"] == 512


def test_empty_input(cpu_engine):
    out = cpu_engine().embed([])
    assert out.vectors.shape == (0, 384)
    assert out.stats.batches == 0


def test_windows_and_tokenizer_workers_change_nothing(cpu_engine, texts, baseline, monkeypatch):
    monkeypatch.setattr(engine_module, "TOKENIZE_CHUNK", 4)
    monkeypatch.setattr(engine_module, "MIN_TOKENIZE_CHUNK", 2)
    monkeypatch.setattr(engine_module, "FIRST_WINDOW", 5)
    monkeypatch.setattr(engine_module, "LARGEST_WINDOW", 12)
    engine = cpu_engine(tokenizer_workers=1)
    try:
        out = engine.embed(texts)
    finally:
        engine.close()
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-6)
    assert out.stats.tokenize_seconds > 0


def test_shorter_window_truncates_like_the_model_would(cpu_engine, texts):
    engine = cpu_engine(max_length=16)
    assert engine.max_length == 16
    out = engine.embed(texts)
    assert out.stats.padded_tokens <= 16 * len(texts)
    with pytest.raises(ValueError, match="position table"):
        cpu_engine(max_length=10_000)


@pytest.mark.parametrize("fault", [None, OomAboveTokens(max_padded_tokens=300), OomFirstCalls(3)])
def test_packed_batches_give_the_padded_vectors(cpu_engine, texts, baseline, fault):
    """Rows packed end to end (the GPU's default) attend only within themselves."""
    out = cpu_engine(packed=True, token_budget=1024, fault_hook=fault).embed(texts)
    np.testing.assert_allclose(out.vectors, baseline, atol=1e-5)
    assert out.stats.packed
    assert out.stats.padded_tokens == out.stats.tokens
    assert out.stats.ooms_recovered == (fault.raised if fault else 0)


def test_progress_is_told_the_texts_and_tokens_embedded_after_every_batch(cpu_engine, texts):
    engine = cpu_engine(batch_size=3)
    tokenized = tokenize(engine.config.model, engine.max_length, texts)
    told: list[tuple[int, int]] = []

    out = engine.embed_tokenized(tokenized, progress=lambda *done: told.append(done))

    rows = [row for row, _ in told]
    assert len(told) == out.stats.batches > 1
    assert rows == sorted(set(rows)) and told == sorted(told)
    assert told[-1] == (len(texts), int(tokenized.lengths.sum()))
