"""A mixed corpus generated the same way every time: short texts plus long documents cut to the
model window, about 100 tokens per text on average, for embedding benchmarks.

Words are whole entries of the model's WordPiece vocabulary, so each word is exactly one token
and a long document can be cut into windows of an exact token count without tokenizing it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _vocabulary(model_dir: Path) -> np.ndarray:
    words = [
        line.strip()
        for line in (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
        if line.strip().isalpha() and line.strip().isascii() and len(line.strip()) >= 2
    ]
    return np.array(words + [".", ","], dtype=object)


def mixed_corpus(
    model_dir: str | Path,
    count: int,
    seed: int = 0,
    window_tokens: int = 254,
    long_fraction: float = 0.3,
) -> list[str]:
    """`count` texts in a fixed shuffled order, so any prefix has the same mix as the whole.

    About `long_fraction` of the texts are windows of `window_tokens` tokens (the model window
    less [CLS] and [SEP]) cut from documents of 300 to 3,000 tokens, the rest short texts of 4 to
    60 tokens. Word frequencies follow Zipf's law, like real text.
    """
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(Path(model_dir))
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    lengths: list[int] = []
    longs = 0
    while len(lengths) < count:
        if longs < long_fraction * count:
            doc = int(rng.integers(300, 3001))
            full, rest = divmod(doc, window_tokens)
            pieces = [window_tokens] * full + ([rest] if rest else [])
            lengths.extend(pieces)
            longs += len(pieces)
        else:
            lengths.append(int(rng.integers(4, 61)))
    lengths_arr = np.array(lengths[:count])
    rng.shuffle(lengths_arr)
    stream = rng.choice(len(vocab), size=int(lengths_arr.sum()), p=weights)
    words = vocab[stream]
    # One join for the whole corpus, then slices: joining per text is far slower.
    text = " ".join(words.tolist())
    word_ends = np.cumsum([len(w) + 1 for w in words.tolist()])
    ends = np.cumsum(lengths_arr)
    starts = ends - lengths_arr
    char_start = np.concatenate([[0], word_ends])[starts]
    char_end = word_ends[ends - 1] - 1
    return [text[a:b] for a, b in zip(char_start.tolist(), char_end.tolist(), strict=True)]
