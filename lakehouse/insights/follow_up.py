"""Follow-up gaps: a chronic condition on record with no care for it for a while
(``follow_up.toml``).

A condition is on record when a claim statement carries one of its KCD codes. Its care is the
latest of those diagnoses and of the prescriptions or dispensings of a drug for it (WHO ATC
prefixes). When that latest care lies more than ``gap_days`` before the day the records run to,
the insight names the last diagnosis and the last such medicine, and suggests asking the clinic
about a check-up: the citizen may well be cared for somewhere the records do not reach.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from lakehouse.insights import rules
from lakehouse.insights.insight import Insight, event_record
from lakehouse.reference import codes

MEDICINES = ("prescription", "dispensing")


def _starts(column: pl.Expr, prefixes: tuple[str, ...]) -> pl.Expr:
    return pl.any_horizontal([column.str.starts_with(p) for p in prefixes])


def _latest(rows: pl.DataFrame) -> dict[str, Any] | None:
    if rows.is_empty():
        return None
    return rows.sort("event_date", "source_ref", descending=True).row(0, named=True)


def gaps(events: pl.DataFrame, as_of: date) -> list[Insight]:
    """The conditions on record whose latest care is more than their gap before ``as_of``.

    Args:
        events: One citizen's events (as ``gold.citizen_timeline`` has them): ``kind``
            (diagnosis, prescription, dispensing; others are ignored), ``code`` (KCD with the
            dot, or the main-ingredient code), ``event_date``, ``institution`` and
            ``source_ref``.
        as_of: The day the records run to.
    """
    drugs = codes("drugs")
    atc = dict(zip(drugs["gnl_nm_cd"].to_list(), drugs["atc"].to_list(), strict=True))
    seen = events.filter(pl.col("event_date") <= as_of)
    diagnoses = seen.filter(pl.col("kind") == "diagnosis")
    medicines = seen.filter(pl.col("kind").is_in(MEDICINES)).with_columns(
        atc=pl.col("code").replace_strict(atc, default="")
    )
    found: list[Insight] = []
    for condition in rules.conditions():
        last_dx = _latest(diagnoses.filter(_starts(pl.col("code"), condition.kcd)))
        if last_dx is None:
            continue
        last_rx = _latest(medicines.filter(_starts(pl.col("atc"), condition.atc)))
        last = max(last_dx["event_date"], last_rx["event_date"] if last_rx else date.min)
        if (as_of - last).days <= condition.gap_days:
            continue
        records = [event_record(last_dx)] + ([event_record(last_rx)] if last_rx else [])
        found.append(
            Insight(
                rule="follow_up",
                topic=condition.id,
                advice="ask_doctor",
                records=tuple(sorted(records, key=lambda r: (r.day, r.source_ref))),
                start=last,
                end=as_of,
                source_ko=condition.source_ko,
                source_en=condition.source_en,
                url=condition.url,
            )
        )
    return found
