"""Medicines across clinics, in the style of Korea's DUR checks (``dur.toml``).

Three rules over one citizen's medication periods (``medicines.periods``), each looking at two
periods that overlap by at least one day (a period ending the day before another starts does not
overlap it), where the overlap reaches the last ``lookback_days`` before the day the records run
to:

* ``same_ingredient`` (동일성분 중복): one ingredient (in any strength or form) from two
  different prescribing institutions. The same clinic's refill before the last supply ran out is
  not a cross-clinic duplicate and is not reported;
* ``same_class`` (효능군 중복): two different ingredients of one efficacy class, from any
  prescribers;
* ``combination`` (병용금기): a pair of ingredients the cited labels say not to combine.

Each pair of ingredients (and prescribers, for the first rule) gives one insight, naming its
latest overlapping pair of records: the dispensing or prescription on each side, and the
prescription a dispensing filled. The advice is always to ask the pharmacist.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from lakehouse.insights import rules
from lakehouse.insights.insight import Insight, Record, Rule
from lakehouse.reference import codes


def _atc() -> dict[str, str]:
    drugs = codes("drugs")
    return dict(zip(drugs["gnl_nm_cd"].to_list(), drugs["atc"].to_list(), strict=True))


def _class_of(atc: pl.Expr) -> pl.Expr:
    """The efficacy class id of an ATC code (null when none of the classes has it)."""
    found: pl.Expr = pl.lit(None, pl.Utf8)
    for c in reversed(rules.dur().classes):
        hit = pl.any_horizontal([atc.str.starts_with(prefix) for prefix in c.atc])
        found = pl.when(hit).then(pl.lit(c.id)).otherwise(found)
    return found


def _pairs(periods: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Every unordered pair of periods overlapping by a day or more, with the overlap
    (``from``, ``to``) reaching the lookback window; each side's columns, the second suffixed
    ``_b``, plus the ingredient (``ing``) and efficacy class (``class``) of each."""
    dur = rules.dur()
    since = as_of - timedelta(days=dur.lookback_days)
    recent = periods.filter((pl.col("until") >= since) & (pl.col("start") <= as_of)).with_columns(
        ing=pl.col("ingredient_code").str.slice(0, dur.ingredient_digits),
        **{"class": _class_of(pl.col("ingredient_code").replace_strict(_atc(), default=""))},
    )
    return (
        recent.join(recent, how="cross", suffix="_b")
        .filter(pl.col("source_ref") < pl.col("source_ref_b"))
        .with_columns(
            pl.max_horizontal("start", "start_b").alias("from"),
            pl.min_horizontal("until", "until_b").alias("to"),
        )
        .filter(
            (pl.col("from") <= pl.col("to")) & (pl.col("to") >= since) & (pl.col("from") <= as_of)
        )
    )


def _records(row: dict[str, Any], suffix: str) -> list[Record]:
    """One side of a pair: its dispensing or prescription, and the prescription a dispensing
    filled."""
    s = suffix
    found = [
        Record(
            kind=row[f"source{s}"],
            source_ref=row[f"source_ref{s}"],
            day=row[f"start{s}"],
            institution=row[f"pharmacy{s}"] or row[f"prescriber{s}"],
            code=row[f"ingredient_code{s}"],
            until=row[f"until{s}"],
            prescriber=row[f"prescriber{s}"] if row[f"source{s}"] == "dispensing" else None,
        )
    ]
    if row[f"prescription_ref{s}"] is not None:
        found.append(
            Record(
                kind="prescription",
                source_ref=row[f"prescription_ref{s}"],
                day=row[f"issued_on{s}"],
                institution=row[f"prescriber{s}"],
                code=row[f"ingredient_code{s}"],
            )
        )
    return found


def _latest(pairs: pl.DataFrame, key: list[str]) -> list[dict[str, Any]]:
    """The latest overlapping pair per key, as rows, in a stable order."""
    return (
        pairs.sort("to", "from", "source_ref", "source_ref_b", descending=True)
        .unique(subset=key, keep="first")
        .sort(key)
        .to_dicts()
    )


def _insight(
    rule: Rule,
    topic: str,
    row: dict[str, Any],
    source: tuple[str, str],
    url: str = "",
    severity: str = "",
) -> Insight:
    records = sorted(_records(row, "") + _records(row, "_b"), key=lambda r: (r.day, r.source_ref))
    return Insight(
        rule=rule,
        topic=topic,
        advice="ask_pharmacist",
        records=tuple(records),
        start=row["from"],
        end=row["to"],
        source_ko=source[0],
        source_en=source[1],
        url=url,
        severity=severity,
    )


def same_ingredient(periods: pl.DataFrame, as_of: date) -> list[Insight]:
    """One ingredient from two prescribing institutions, overlapping (동일성분 중복)."""
    pairs = _pairs(periods, as_of).filter(
        (pl.col("ing") == pl.col("ing_b")) & (pl.col("prescriber") != pl.col("prescriber_b"))
    )
    pairs = pairs.with_columns(
        low=pl.min_horizontal("prescriber", "prescriber_b"),
        high=pl.max_horizontal("prescriber", "prescriber_b"),
    )
    dur = rules.dur()
    source = (dur.same_ingredient_source_ko, dur.same_ingredient_source_en)
    return [
        _insight("same_ingredient", row["ingredient_code"], row, source)
        for row in _latest(pairs, ["ing", "low", "high"])
    ]


def same_class(periods: pl.DataFrame, as_of: date) -> list[Insight]:
    """Two ingredients of one efficacy class, overlapping (효능군 중복)."""
    pairs = _pairs(periods, as_of).filter(
        pl.col("class").is_not_null()
        & (pl.col("class") == pl.col("class_b"))
        & (pl.col("ing") != pl.col("ing_b"))
    )
    pairs = pairs.with_columns(
        low=pl.min_horizontal("ing", "ing_b"), high=pl.max_horizontal("ing", "ing_b")
    )
    sources = {c.id: (c.source_ko, c.source_en) for c in rules.dur().classes}
    return [
        _insight("same_class", row["class"], row, sources[row["class"]])
        for row in _latest(pairs, ["class", "low", "high"])
    ]


def combinations(periods: pl.DataFrame, as_of: date) -> list[Insight]:
    """A cited pair of ingredients not to combine, overlapping (병용금기)."""
    dur = rules.dur()
    pairs = _pairs(periods, as_of)
    found: list[Insight] = []
    for combo in dur.combinations:
        a, b = (code[: dur.ingredient_digits] for code in (combo.a, combo.b))
        hit = pairs.filter(
            ((pl.col("ing") == a) & (pl.col("ing_b") == b))
            | ((pl.col("ing") == b) & (pl.col("ing_b") == a))
        )
        found += [
            _insight(
                "combination",
                combo.id,
                row,
                (combo.source_ko, combo.source_en),
                combo.url,
                combo.severity,
            )
            for row in _latest(hit.with_columns(combo=pl.lit(combo.id)), ["combo"])
        ]
    return found


def checks(periods: pl.DataFrame, as_of: date) -> list[Insight]:
    """Every DUR-style insight: combinations first, then duplicates of one ingredient, then of
    one class."""
    return (
        combinations(periods, as_of) + same_ingredient(periods, as_of) + same_class(periods, as_of)
    )
