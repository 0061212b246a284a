"""The insight rules as data: ``lakehouse/reference/insights/*.toml``, read once.

Each file cites its sources in its header and per entry; this module only gives them types, so a
rule's numbers are changed in the file, with its citation, never in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

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
    source: str


@dataclass(frozen=True)
class Combination:
    """Two ingredients not to be taken together (``a`` and ``b``: main-ingredient codes)."""

    id: str
    a: str
    b: str
    severity: str
    source: str
    url: str


@dataclass(frozen=True)
class Dur:
    """The DUR-style rules (``dur.toml``)."""

    lookback_days: int
    ingredient_digits: int
    same_ingredient_source: str
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
    source: str
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
    risk_kcd: tuple[str, ...]
    source: str
    url: str


@cache
def dur() -> Dur:
    """The DUR-style rules."""
    doc = _load("dur")
    return Dur(
        lookback_days=int(doc["lookback_days"]),
        ingredient_digits=int(doc["ingredient_digits"]),
        same_ingredient_source=doc["same_ingredient_source"],
        classes=tuple(
            DrugClass(c["id"], c["name_ko"], c["name_en"], tuple(c["atc"]), c["source"])
            for c in doc["class"]
        ),
        combinations=tuple(
            Combination(c["id"], c["a"], c["b"], c["severity"], c["source"], c["url"])
            for c in doc["combination"]
        ),
    )


@cache
def weekly() -> frozenset[str]:
    """Main-ingredient codes whose claimed "days" are weekly doses (``medicines.toml``)."""
    return frozenset(_load("medicines")["weekly"])


@cache
def conditions() -> tuple[Condition, ...]:
    """The chronic conditions to follow up."""
    return tuple(
        Condition(
            c["id"],
            c["name_ko"],
            c["name_en"],
            tuple(c["kcd"]),
            tuple(c["atc"]),
            int(c["gap_days"]),
            c["source"],
            c["url"],
        )
        for c in _load("follow_up")["condition"]
    )


@cache
def programmes() -> tuple[Programme, ...]:
    """The national screening programmes."""
    return tuple(
        Programme(
            p["id"],
            p["name_ko"],
            p["name_en"],
            p["sex"],
            int(p["min_age"]),
            int(p["max_age"]),
            int(p["interval_months"]),
            p["risk"],
            tuple(p.get("risk_kcd", ())),
            p["source"],
            p["url"],
        )
        for p in _load("screening")["programme"]
    )
