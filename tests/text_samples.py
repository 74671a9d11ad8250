"""Texts that exercise tokenizer edge cases, shared by the tokenizer and chunker tests."""

import random
import string

from resources.embedding.model_source import DEFAULT_MODEL, load_tokenizer


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
