"""The insight rules as data: ``lakehouse/reference/insights/*.toml``, read once.

Each file cites its sources in its header and per entry; this module only gives them types, so a
rule's numbers are changed in the file, with its citation, never in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")
ROOT: Final = Path(__file__).resolve().parents[1] / "reference" / "insights"


def _load(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / f"{name}.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DrugClass:
    """An efficacy class: ingredients whose ATC code starts with one of ``atc``."""

    id: str
    name_ko: str
    name_en: str
    atc: tuple[str, ...]
    source_ko: str
    source_en: str


@dataclass(frozen=True)
class Combination:
    """Two ingredients not to be taken together (``a`` and ``b``: main-ingredient codes)."""

    id: str
    a: str
    b: str
    severity: str
    source_ko: str
    source_en: str
    url: str


@dataclass(frozen=True)
class Dur:
    """The DUR-style rules (``dur.toml``)."""

    lookback_days: int
    ingredient_digits: int
    same_ingredient_source_ko: str
    same_ingredient_source_en: str
    classes: tuple[DrugClass, ...]
    combinations: tuple[Combination, ...]


@dataclass(frozen=True)
class Condition:
    """A chronic condition to follow up (``follow_up.toml``)."""

    id: str
    name_ko: str
    name_en: str
    kcd: tuple[str, ...]
    atc: tuple[str, ...]
    gap_days: int
    source_ko: str
    source_en: str
    url: str


@dataclass(frozen=True)
class Programme:
    """A national screening programme (``screening.toml``); ``max_age`` 0 means no upper age,
    ``sex`` empty means both."""

    id: str
    name_ko: str
    name_en: str
    sex: str
    min_age: int
    max_age: int
    interval_months: int
    risk: str
    source_ko: str
    source_en: str
    url: str
    risk_kcd: tuple[str, ...] = ()


def _typed(cls: type[T], entry: dict[str, Any]) -> T:
    """A rule file's entry as its dataclass: lists become tuples, absent fields their default."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # T is a dataclass
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k in names}
    return cls(**values)


@cache
def dur() -> Dur:
    """The DUR-style rules."""
    doc = _load("dur")
    return Dur(
        lookback_days=int(doc["lookback_days"]),
        ingredient_digits=int(doc["ingredient_digits"]),
        same_ingredient_source_ko=doc["same_ingredient_source_ko"],
        same_ingredient_source_en=doc["same_ingredient_source_en"],
        classes=tuple(_typed(DrugClass, c) for c in doc["class"]),
        combinations=tuple(_typed(Combination, c) for c in doc["combination"]),
    )


@cache
def weekly() -> frozenset[str]:
    """Main-ingredient codes whose claimed "days" are weekly doses (``medicines.toml``)."""
    return frozenset(_load("medicines")["weekly"])


@cache
def conditions() -> tuple[Condition, ...]:
    """The chronic conditions to follow up."""
    return tuple(_typed(Condition, c) for c in _load("follow_up")["condition"])


@cache
def programmes() -> tuple[Programme, ...]:
    """The national screening programmes."""
    return tuple(_typed(Programme, p) for p in _load("screening")["programme"])
