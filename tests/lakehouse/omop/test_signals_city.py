"""End to end: a generated city's claims as OMOP frames; the methods find the planted
amoxicillin-clavulanate -> diarrhoea signal and do not flag the planted null pair."""

from __future__ import annotations

import polars as pl
import pytest

from lakehouse.omop.signals import CITY, DEFAULTS, signals
from pipelines.transform.signals import prespecified, publish
from tests.conftest import City
from tests.lakehouse.omop.signal_frames import omop_frames

KNOWN, NEGATIVE = prespecified()


def _pair(frame: pl.DataFrame, pair: tuple[str, str], scope: str = CITY) -> dict:
    drug, event = pair
    return frame.filter(
        (pl.col("scope") == scope) & (pl.col("drug") == drug) & (pl.col("event") == event)
    ).row(0, named=True)


@pytest.mark.slow
def test_the_planted_signal_is_found_and_the_null_pair_is_not(adverse_city: City) -> None:
    rows = signals(*omop_frames(adverse_city), DEFAULTS, prespecified())
    planted = _pair(rows, KNOWN)
    # Measured in this city: adjusted SR 1.68 (1.27-2.21), PRR 2.71 (2.19-3.36).
    assert planted["sr_low"] > 1 and planted["signal"] is True
    assert planted["prr_low"] > 1 and planted["ror_low"] > 1
    null = _pair(rows, NEGATIVE)
    assert null["signal"] is False and null["sr_low"] < 1
    assert null["prr_low"] < 1 < null["prr_high"]
    # The trend adjustment is applied: adjusted = crude / null-effect ratio.
    assert planted["adjusted_sr"] == pytest.approx(planted["crude_sr"] / planted["null_sr"])
    # Published: the city's planted row has no small count and keeps its signal.
    published = publish(rows, DEFAULTS)
    shown = _pair(published, KNOWN)
    assert shown["suppressed"] is False and shown["signal"] is True
    assert _pair(published, NEGATIVE)["signal"] is False
    # Every district has its row; no count of 1-10 is shown anywhere.
    assert set(published["scope"]) == {CITY, "24010", "24020", "24030", "24040", "24050"}
    for column in ("drug_first", "event_first", "exposed_with_event", "drug_persons"):
        assert published.filter(pl.col(column).is_between(1, 10)).height == 0
