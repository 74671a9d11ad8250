"""Comparable atoms of property values, shared by filter evaluation and the equality index.

Text becomes its tokens under the property's tokenization (Weaviate's inverted index works
on tokens, not on whole values); other types become one parsed value per array element.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any

from resources.weaviate.sandbox.errors import SandboxError, Unsupported
from resources.weaviate.sandbox.schema import parse_date

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str, tokenization: str) -> list[str]:
    if tokenization == "word":
        return [t.lower() for t in _WORD.findall(text)]
    if tokenization == "lowercase":
        return text.lower().split()
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "field":
        stripped = text.strip()
        return [stripped] if stripped else []
    raise Unsupported(f"filtering on text with {tokenization!r} tokenization")


def timestamp_ms(value: Any) -> int:
    if isinstance(value, str):
        return int(value) if value.isdigit() else int(parse_date(value).timestamp() * 1000)
    if isinstance(value, bool):
        raise SandboxError("a timestamp filter needs a date or milliseconds")
    return int(value)


def normalizer(dtype: str, prop: dict[str, Any] | None) -> Callable[[Any], list[Any]]:
    """Turns a stored value or a filter operand into comparable atoms (a list)."""
    base = dtype.removesuffix("[]")
    if base == "text":
        tokenization = prop["tokenization"] if prop else "word"

        def text_atoms(value: Any) -> list[Any]:
            out: list[str] = []
            for v in value if isinstance(value, list) else [value]:
                if not isinstance(v, str):
                    raise SandboxError(f"text filter needs a text value, got {v!r}")
                out.extend(tokenize(v, tokenization))
            return out

        return text_atoms

    def convert(v: Any) -> Any:
        if base in ("int", "number"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise SandboxError(f"{base} filter needs a number, got {v!r}")
            return v
        if base == "boolean":
            if not isinstance(v, bool):
                raise SandboxError(f"boolean filter needs a boolean, got {v!r}")
            return v
        if base == "date":
            return v if isinstance(v, dt.datetime) else parse_date(str(v))
        if base == "uuid":
            return str(uuid_lib.UUID(str(v)))
        if base == "timestamp":
            return timestamp_ms(v)
        raise Unsupported(f"filters on {dtype} properties")

    def atoms(value: Any) -> list[Any]:
        try:
            return [convert(v) for v in (value if isinstance(value, list) else [value])]
        except ValueError as exc:
            raise SandboxError(f"invalid {base} filter value {value!r}: {exc}") from exc

    return atoms
