"""Real-world reference data the lakehouse conforms to: code lists and Gwangju's boundaries."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

ROOT = Path(__file__).parent


@cache
def codes(name: str) -> pl.DataFrame:
    """One code list, ``lakehouse/reference/codes/<name>.csv``, as text (codes keep their
    leading zeros)."""
    return pl.read_csv(ROOT / "codes" / f"{name}.csv", comment_prefix="#", infer_schema=False)


@cache
def code_set(name: str) -> frozenset[str]:
    """The codes of one list (its first column)."""
    frame = codes(name)
    return frozenset(frame[frame.columns[0]].to_list())


def kcd_with_dot(code: str) -> str:
    """KCD as claims carry it (``E119``) to its conventional form (``E11.9``)."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"
