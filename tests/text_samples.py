"""Texts that exercise tokenizer edge cases, shared by the tokenizer and chunker tests."""

import random
import string

from resources.tokenizer.model_source import DEFAULT_MODEL, load_tokenizer


def random_ascii_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    vocab = [
        w for w in load_tokenizer(DEFAULT_MODEL).get_vocab() if w.isascii() and w not in specials
    ]
    alphabet = string.printable + "\x00\x01\x0b\x1f\x7f"
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 80)):
            if rng.random() < 0.7:
                word = rng.choice(vocab)
                parts.append(word.upper() if rng.random() < 0.1 else word)
            else:
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        texts.append(rng.choice([" ", "", "\n", "-"]).join(parts))
    return texts


# Non-ASCII words BERT's normalizer changes or splits: accents, German sharp s, Turkish dotted I
# (whose lowercase differs between Python and Rust), CJK, emoji, curly quotes, a dash, a
# no-break space, a combining accent, a zero-width space, full-width letters, a line separator.
FOREIGN_WORDS = ["café", "naïve", "İstanbul", "straße", "东京", "日本語テキスト", "emoji🙂",
                 "“quoted”", "—", "a\u00a0b", "e\u0301", "\u200bzero", "Ａｂｃ", "x\u2028y",
                 "ǅemal", "(Ünïcödé)", "\u0085"]  # fmt: skip


def random_mixed_texts(count: int, seed: int) -> list[str]:
    """ASCII texts as above with non-ASCII words mixed in."""
    rng = random.Random(seed)
    texts = []
    for text in random_ascii_texts(count, seed):
        words = text.split(" ")
        for _ in range(rng.randint(1, 6)):
            words.insert(rng.randint(0, len(words)), rng.choice(FOREIGN_WORDS))
        texts.append(" ".join(words))
    return texts
