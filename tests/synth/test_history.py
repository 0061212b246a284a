"""The record-link history extract: linked citizens' claims and pharmacy history back years before
the window, delivered month by month in the monthly layout, with chronic care that runs through
the years."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from synth.calendar import national_holiday
from synth.history import linked
from synth.population import generate_people
from tests.conftest import City

pytestmark = pytest.mark.slow


def _months(first: str, last: str) -> list[str]:
    out, (y, m) = [], (int(first[:4]), int(first[5:]))
    while f"{y}-{m:02d}" <= last:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def test_history_arrives_as_monthly_deliveries_sent_once(history_city: City) -> None:
    for source in ("claims", "pharmacy"):
        history = [
            (folder.name, doc)
            for folder, doc in history_city.deliveries(source)
            if folder.name.startswith("history-")
        ]
        assert [doc["period"] for _, doc in history] == _months("2014-01", "2024-12")
        assert {doc["extract"] for _, doc in history} == {"record-link history"}
        # Sent once, with the window's last monthly extract (February 2025's, on 10 March).
        assert {doc["delivered_at"] for _, doc in history} == {"2025-03-10T09:00:00+09:00"}
        assert {name[len("history-") :] for name, _ in history} == {
            doc["period"].replace("-", "") for _, doc in history
        }


def test_only_linked_citizens_have_a_history(history_city: City) -> None:
    people = generate_people(history_city.cfg)
    t200 = history_city.table("claims", "T200_")
    past = t200.filter(pl.col("_delivery").str.starts_with("history-"))
    assert past.height > 500
    assert set(past["JID"].to_list()) <= set(linked(people, history_city.cfg).to_list())
    # Every statement of the history predates the window; the window's are in monthly folders.
    assert (past["RECU_FR_DD"] < "20250101").all()
    assert (t200.filter(~pl.col("_delivery").str.starts_with("history-"))["RECU_FR_DD"]
            >= "20250101").all()  # fmt: skip
    # Ages on the statements are the ages then, not at the window's start.
    born = people.select(pl.col("rrn").alias("JID"), "birth_date")
    aged = past.join(born, on="JID").with_columns(
        pl.col("RECU_FR_DD").str.to_date("%Y%m%d").alias("day")
    )
    years = (aged["day"] - aged["birth_date"]).dt.total_days() / 365.25
    assert ((aged["PAT_AGE"].cast(pl.Int64) - years.floor()).abs() <= 1).all()


def test_chronic_care_runs_through_the_years(history_city: City) -> None:
    """A repeat prescription of a chronic condition keeps its clinic and ingredient for years:
    someone fills the same ingredient from one institution in at least 8 of the 11 history
    years."""
    t200 = history_city.table("claims", "T200_").unique("SPEC_ID_SNO")
    t530 = history_city.table("claims", "T530_").unique(["SPEC_ID_SNO", "LN_NO"])
    rx = t530.join(t200.select("SPEC_ID_SNO", "JID", "YID", "RECU_FR_DD"), on="SPEC_ID_SNO")
    past = rx.filter(pl.col("RECU_FR_DD") < "20250101")
    runs = past.group_by("JID", "YID", "GNL_NM_CD").agg(
        pl.col("RECU_FR_DD").str.slice(0, 4).n_unique().alias("years")
    )
    assert runs.select(pl.col("years").max()).item() >= 8
    # ... and carries on into the window at the same clinic.
    long = runs.filter(pl.col("years") >= 8)
    now = rx.filter(pl.col("RECU_FR_DD") >= "20250101").select("JID", "YID", "GNL_NM_CD")
    assert long.join(now, on=["JID", "YID", "GNL_NM_CD"], how="semi").height > 0


def test_clinics_close_on_the_holidays_of_past_years(history_city: City) -> None:
    t200 = history_city.table("claims", "T200_")
    outpatient = t200.filter(
        pl.col("_delivery").str.starts_with("history-") & (pl.col("FOM_TP_CD") != "021")
    )
    days = {datetime.strptime(d, "%Y%m%d").date() for d in outpatient["RECU_FR_DD"].to_list()}
    assert len(days) > 300
    assert not [d for d in days if d.weekday() == 6 or national_holiday(d)]
    assert date(2014, 1, 31) not in days  # 설날 2014


def test_the_history_sends_no_imaging_to_the_platform(history_city: City) -> None:
    """The AI platform receives studies from the window only (its enrolment), never from the
    history extract's years."""
    studies = history_city.out / "imaging"
    stamps = {p.name[:8] for p in studies.glob("*/*") if p.is_dir()}  # <ykiho>/<YYYYMMDD>_...
    assert stamps
    assert min(stamps) >= "20250101"


def test_no_history_without_history_from(small_city: City) -> None:
    assert small_city.cfg.history_from is None
    assert not list((small_city.out / "claims").glob("history-*"))
