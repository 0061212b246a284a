"""The signal methods on hand-built OMOP frames: sequence ratios known by construction, the trend
adjustment, PRR and ROR worked by hand, incident records after the washout, districts."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from lakehouse.omop.signals import (
    CITY,
    Z95,
    Settings,
    incident,
    null_sequence_ratio,
    prr,
    ror,
    sequence_ratio,
    signals,
)
from tests.lakehouse.omop.signal_frames import DAY0, DRUG, EVENT, OTHER_DRUG, SETTINGS, Omop


def _row(out: pl.DataFrame, scope: str = CITY, drug: str = DRUG, event: str = EVENT) -> dict:
    return out.filter(
        (pl.col("scope") == scope) & (pl.col("drug") == drug) & (pl.col("event") == event)
    ).row(0, named=True)


def _flat_background(omop: Omop, first: int, last: int) -> None:
    """One drug-only and one event-only person a day: flat incidence of both, so that the
    null-effect ratio is 1 up to the sequence persons themselves."""
    for day in range(first, last):
        omop.drug(omop.person(), day)
        omop.event(omop.person(), day)


def test_crude_sequence_ratio_by_construction() -> None:
    omop = Omop()
    for i in range(30):  # drug, then the event 10 days later
        pid = omop.person()
        omop.drug(pid, 200 + 7 * i)
        omop.event(pid, 210 + 7 * i)
    for i in range(10):  # the event, then the drug
        pid = omop.person()
        omop.event(pid, 200 + 21 * i)
        omop.drug(pid, 210 + 21 * i)
    pid = omop.person()  # same day: counted apart, in neither order
    omop.drug(pid, 300)
    omop.event(pid, 300)
    pid = omop.person()  # too far apart for the window
    omop.drug(pid, 150)
    omop.event(pid, 400)
    _flat_background(omop, 150, 450)
    row = _row(signals(*omop.frames(), SETTINGS))
    assert (row["drug_first"], row["event_first"], row["same_day"]) == (30, 10, 1)
    assert row["crude_sr"] == pytest.approx(3.0)
    assert row["null_sr"] == pytest.approx(1.0, abs=0.05)
    assert row["adjusted_sr"] == pytest.approx(3.0 / row["null_sr"])
    se = math.sqrt(1 / 30 + 1 / 10)
    assert row["sr_low"] == pytest.approx(row["adjusted_sr"] * math.exp(-Z95 * se))
    assert row["sr_high"] == pytest.approx(row["adjusted_sr"] * math.exp(Z95 * se))
    assert row["signal"] is (row["sr_low"] > 1)


def test_null_sequence_ratio_of_flat_incidence_is_one() -> None:
    days = np.arange(0, 500, dtype=np.int64)
    assert null_sequence_ratio(days, days, 90) == pytest.approx(1.0)


def test_rising_drug_use_lowers_the_null_ratio_and_raises_the_adjusted_one() -> None:
    """Drug starts crowding toward the end of the data have more events before them than after
    (the data end cuts the after-window): drug-first sequences are rarer by themselves, so the
    null-effect ratio falls below 1 and the adjustment raises the sequence ratio."""
    events = np.arange(0, 730, dtype=np.int64)
    rising = np.repeat(np.arange(0, 730, dtype=np.int64), np.arange(730) // 50 + 1)
    null = null_sequence_ratio(rising, events, 180)
    assert null < 0.9
    crude = 40 / 40
    adjusted = sequence_ratio(40, 40, null)
    assert adjusted.value == pytest.approx(crude / null)
    assert adjusted.value is not None and adjusted.value > crude
    # Falling use the other way round.
    falling = rising.max() - rising
    assert null_sequence_ratio(falling, events, 180) > 1.1


def test_sequence_ratio_without_both_orders_has_no_estimate() -> None:
    assert sequence_ratio(0, 5, 1.0).value is None
    assert sequence_ratio(5, 0, 1.0).low is None


def test_prr_and_ror_by_hand() -> None:
    a, b, c, d = 20, 80, 50, 850
    p = prr(a, b, c, d)
    assert p.value == pytest.approx((20 / 100) / (50 / 900))  # 3.6
    se = math.sqrt(1 / 20 - 1 / 100 + 1 / 50 - 1 / 900)
    assert p.low == pytest.approx(3.6 * math.exp(-1.959964 * se), rel=1e-6)
    assert p.high == pytest.approx(3.6 * math.exp(1.959964 * se), rel=1e-6)
    r = ror(a, b, c, d)
    assert r.value == pytest.approx(20 * 850 / (80 * 50))  # 4.25
    se = math.sqrt(1 / 20 + 1 / 80 + 1 / 50 + 1 / 850)
    assert r.low == pytest.approx(4.25 * math.exp(-1.959964 * se), rel=1e-6)
    assert prr(0, 10, 5, 100).value is None
    assert ror(3, 0, 5, 100).value is None


def test_the_two_by_two_counts_drug_starts() -> None:
    """a: starts of the drug with the event 1..risk_days after; b: without; c, d: the starts
    of every other drug with and without it."""
    omop = Omop()
    for i in range(6):  # the drug, the event 10 days later: a
        pid = omop.person()
        omop.drug(pid, 200 + i)
        omop.event(pid, 210 + i)
    for i in range(4):  # the drug, the event 60 days later (past the risk window): b
        pid = omop.person()
        omop.drug(pid, 200 + i)
        omop.event(pid, 260 + i)
    for i in range(9):  # the drug alone: b
        omop.drug(omop.person(), 200 + i)
    for i in range(3):  # another drug, the event 5 days later: c
        pid = omop.person()
        omop.drug(pid, 200 + i, OTHER_DRUG)
        omop.event(pid, 205 + i)
    for i in range(12):  # another drug alone: d
        omop.drug(omop.person(), 200 + i, OTHER_DRUG)
    row = _row(signals(*omop.frames(), SETTINGS))
    assert (row["a"], row["b"], row["c"], row["d"]) == (6, 13, 3, 12)
    assert row["prr"] == pytest.approx((6 / 19) / (3 / 15))
    assert row["ror"] == pytest.approx(6 * 12 / (13 * 3))


def test_incident_means_first_and_after_the_washout() -> None:
    omop = Omop()
    early = omop.person()
    omop.drug(early, 50)  # within the washout: a continuing user, not a new one
    omop.drug(early, 300)
    late = omop.person()
    omop.drug(late, 300)
    omop.drug(late, 400)  # a refill
    drugs, _ = incident(*omop.frames()[:2], washout_days=100)
    assert drugs.select("person_id", "day").rows() == [(late, DAY0 + timedelta(days=300))]


def test_districts_and_the_city() -> None:
    omop = Omop()
    for district, n in (("24010", 5), ("24050", 7)):
        for i in range(n):
            pid = omop.person(district)
            omop.drug(pid, 200 + i)
            omop.event(pid, 220 + i)
    out = signals(*omop.frames(), SETTINGS)
    assert out["scope"].to_list()[0] == CITY
    assert {s: _row(out, s)["drug_first"] for s in (CITY, "24010", "24050")} == {
        CITY: 12,
        "24010": 5,
        "24050": 7,
    }


def test_screening_threshold_and_prespecified_pairs() -> None:
    omop = Omop()
    for i in range(5):
        pid = omop.person()
        omop.drug(pid, 200 + i)
        omop.event(pid, 230 + i)
    pid = omop.person()
    omop.drug(pid, 200, OTHER_DRUG)
    strict = Settings(washout_days=100, window_days=100, risk_days=30, min_persons=3)
    out = signals(*omop.frames(), strict, prespecified=[(OTHER_DRUG, "M54.5")])
    pairs = set(out.filter(pl.col("scope") == CITY).select("drug", "event").rows())
    assert pairs == {(DRUG, EVENT), (OTHER_DRUG, "M54.5")}
    assert _row(out, CITY, OTHER_DRUG, "M54.5")["prespecified"] is True
    assert _row(out)["prespecified"] is False
