"""The programme's registries: residents, institutions and the AI-platform enrolment rounds.

* ``registry/citizens/<YYYYMMDD>/``: the resident register extract on the window's first day
  (CP949, as the public-sector system exports it), then ``registry/citizens/<YYYYMM>/`` with the
  month's changes: births, deaths, people moving in and moving out.
* ``registry/institutions/<YYYYMMDD>/``: the institutions snapshot (HIRA's open-data fields).
* ``registry/ai_platform/round<k>/``: each enrolment round's selected institutions.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from synth import reference as ref
from synth.config import KST, CityConfig
from synth.delivery import Delivery
from synth.institutions import Enrolment

RESIDENT_COLUMNS: Final = [
    "RRN", "NAME", "SEX_CD", "BIRTH_DT", "SGG_CD", "EMD_CD", "ADDR",
]  # fmt: skip
CHANGE_COLUMNS: Final = ["EVENT_CD", "EVENT_DT", *RESIDENT_COLUMNS]
INSTITUTION_COLUMNS: Final = [
    "YKIHO", "YADM_NM", "CL_CD", "CL_CD_NM", "SGGU_CD", "EMDONG_CD", "ADDR", "DGSBJT_CDS",
    "ESTB_DD",
]  # fmt: skip
ENROLMENT_COLUMNS: Final = [
    "YKIHO", "YADM_NM", "ROUND", "APPLIED_DT", "SELECTED_DT", "SERVICES", "STATUS",
]  # fmt: skip
REGISTER_ENCODING: Final = "cp949"


def _at(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=KST)


def _resident_fields(people: pl.DataFrame) -> list[pl.Expr]:
    return [
        pl.col("rrn").alias("RRN"),
        pl.col("name").alias("NAME"),
        pl.when(pl.col("sex") == "M").then(pl.lit("1")).otherwise(pl.lit("2")).alias("SEX_CD"),
        pl.col("birth_date").dt.strftime("%Y%m%d").alias("BIRTH_DT"),
        pl.col("district_code").alias("SGG_CD"),
        pl.col("dong_code").alias("EMD_CD"),
        pl.col("address").alias("ADDR"),
    ]


def write_citizens(people: pl.DataFrame, cfg: CityConfig, out: Path) -> dict[str, int]:
    """The register on the first day, then one change file per month."""
    day = cfg.start.strftime("%Y%m%d")
    baseline = people.filter(pl.col("arrival") == "baseline").select(_resident_fields(people))
    period = cfg.start.isoformat()
    with Delivery(
        out, "registry/citizens", day, _at(cfg.start), REGISTER_ENCODING, period=period
    ) as d:
        d.csv(f"residents_{day}.csv", RESIDENT_COLUMNS).write_frame(baseline)

    start = pl.lit(cfg.start)
    arrivals = people.filter(pl.col("arrival") != "baseline").select(
        pl.col("arrival").str.to_uppercase().alias("EVENT_CD"),
        pl.col("present_from").alias("date"),
        *_resident_fields(people),
    )
    departures = people.filter(pl.col("departure").is_not_null()).select(
        pl.col("departure").str.to_uppercase().alias("EVENT_CD"),
        # A death is registered on its day; a move out on the day the person left.
        pl.when(pl.col("departure") == "death")
        .then(pl.col("present_to") - pl.duration(days=1))
        .otherwise(pl.col("present_to"))
        .alias("date"),
        *_resident_fields(people),
    )
    changes = (
        pl.concat([arrivals, departures])
        .filter(pl.col("date") >= start)
        .with_columns(
            pl.col("date").dt.strftime("%Y%m%d").alias("EVENT_DT"),
            pl.col("date").dt.strftime("%Y%m").alias("_month"),
        )
        .sort("date", "EVENT_CD", "RRN")
    )
    counts = {"residents": baseline.height, "changes": 0}
    for y, m in cfg.months():
        month = f"{y}{m:02d}"
        part = changes.filter(pl.col("_month") == month).select(CHANGE_COLUMNS)
        nxt = date(y + (m == 12), m % 12 + 1, 5)  # the month's changes arrive on the 5th
        with Delivery(
            out, "registry/citizens", month, _at(nxt), REGISTER_ENCODING, period=f"{y}-{m:02d}"
        ) as d:
            d.csv(f"resident_changes_{month}.csv", CHANGE_COLUMNS).write_frame(part)
        counts["changes"] += part.height
    return counts


def write_institutions(
    institutions: pl.DataFrame, enrolments: list[Enrolment], cfg: CityConfig, out: Path
) -> dict[str, int]:
    """The institutions snapshot and one delivery per enrolment round."""
    classes = dict(ref.codes("institution_classes").select("cl_cd", "name_ko").iter_rows())
    day = cfg.start.strftime("%Y%m%d")
    frame = institutions.select(
        pl.col("ykiho").alias("YKIHO"),
        pl.col("name").alias("YADM_NM"),
        pl.col("cl_cd").alias("CL_CD"),
        pl.col("cl_cd").replace_strict(classes).alias("CL_CD_NM"),
        pl.col("district_code").alias("SGGU_CD"),
        pl.col("dong_code").alias("EMDONG_CD"),
        pl.col("address").alias("ADDR"),
        pl.col("departments").alias("DGSBJT_CDS"),
        pl.col("opened").dt.strftime("%Y%m%d").alias("ESTB_DD"),
    )
    with Delivery(
        out, "registry/institutions", day, _at(cfg.start), "utf-8", period=cfg.start.isoformat()
    ) as d:
        d.csv(f"institutions_{day}.csv", INSTITUTION_COLUMNS).write_frame(frame)

    names = dict(institutions.select("ykiho", "name").iter_rows())
    for number in sorted({e.round for e in enrolments}):
        rows = [e for e in enrolments if e.round == number]
        part = pl.DataFrame(
            {
                "YKIHO": [e.ykiho for e in rows],
                "YADM_NM": [names[e.ykiho] for e in rows],
                "ROUND": [str(e.round) for e in rows],
                "APPLIED_DT": [e.applied.strftime("%Y%m%d") for e in rows],
                "SELECTED_DT": [e.selected.strftime("%Y%m%d") for e in rows],
                "SERVICES": ["|".join(e.services) for e in rows],
                "STATUS": ["선정"] * len(rows),
            }
        )
        selected = rows[0].selected
        with Delivery(
            out,
            "registry/ai_platform",
            f"round{number}",
            _at(selected + timedelta(days=1), 10),
            period=selected.isoformat(),
        ) as d:
            d.csv(f"enrolment_round{number}.csv", ENROLMENT_COLUMNS).write_frame(part)
    return {"institutions": institutions.height, "enrolled": len(enrolments)}
