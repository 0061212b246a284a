"""``gold.ade_signals``: small counts hidden with complements, ratios from hidden counts not shown,
and the asset reading real Delta OMOP tables written through ``lakehouse.delta``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table
from lakehouse.omop.signals import CITY, signals
from pipelines.defs.signals import SOURCES, gold_ade_signals
from pipelines.transform.signals import TABLE, ade_signals, first_days, prespecified, publish
from tests.lakehouse.omop.signal_frames import EVENT, SETTINGS, Omop, conforming
from tests.pipelines.conftest import Lake

# Persons with the drug first and with the event first, per district.
SEQUENCES = {"24010": (30, 12), "24020": (4, 12), "24030": (20, 15)}


def _city() -> Omop:
    omop = Omop()
    for district, (drug_first, event_first) in SEQUENCES.items():
        for i in range(drug_first):
            pid = omop.person(district)
            omop.drug(pid, 200 + 3 * i)
            omop.event(pid, 230 + 3 * i)
        for i in range(event_first):
            pid = omop.person(district)
            omop.event(pid, 200 + 3 * i)
            omop.drug(pid, 230 + 3 * i)
    return omop


def _scope(frame: pl.DataFrame, scope: str) -> dict:
    return frame.filter((pl.col("scope") == scope) & (pl.col("event") == EVENT)).row(0, named=True)


def test_small_counts_and_their_ratios_are_hidden_with_a_complement() -> None:
    published = publish(signals(*_city().frames(), SETTINGS), SETTINGS)
    small = _scope(published, "24020")  # 4 drug-first persons: hidden
    assert small["drug_first"] is None
    assert small["adjusted_sr"] is None and small["sr_low"] is None and small["signal"] is None
    assert small["crude_sr"] is None and small["suppressed"] is True
    # Its complement: the next smallest district count of the line (the city shows 54).
    complement = _scope(published, "24030")
    assert complement["drug_first"] is None and complement["adjusted_sr"] is None
    shown = _scope(published, "24010")
    assert shown["drug_first"] == 30 and shown["adjusted_sr"] is not None
    city = _scope(published, CITY)
    assert city["drug_first"] == 54 and city["event_first"] == 39
    assert city["adjusted_sr"] is not None and city["suppressed"] is False
    # No shown count of the published table is between 1 and 10.
    counts = ["drug_persons", "event_persons", "drug_first", "event_first"]
    for column in counts:
        assert published.filter(pl.col(column).is_between(1, 10)).height == 0
    # Unsuppressed, the 4 was there.
    assert _scope(signals(*_city().frames(), SETTINGS), "24020")["drug_first"] == 4


def test_the_prespecified_pairs_are_the_planted_ones() -> None:
    """The reference pairs name the generator's planted effect and its null pair (the pipeline
    never reads the ground truth; the two lists must agree)."""
    from synth.adverse import effects

    planted = {
        (e.drug, e.kcd[:3] + "." + e.kcd[3:] if len(e.kcd) > 3 else e.kcd) for e in effects()
    }
    assert planted == set(prespecified())


@pytest.mark.integration
def test_the_asset_publishes_from_the_omop_tables(tmp_path: Path) -> None:
    drugs, conditions, person, location = _city().frames()
    written = {
        "omop.drug_exposure": drugs,
        "omop.condition_occurrence": conditions,
        "omop.person": person,
        "omop.location": location.with_columns(pl.col("location_id").cast(pl.Int64)),
    }
    lakehouse = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    lakehouse.sources.mkdir(parents=True)
    with lakehouse.active():
        for name, frame in written.items():
            delta.replace(
                name,
                conforming(name, frame),
                "person_id IS NOT NULL"
                if "person_id" in frame.columns
                else "location_id IS NOT NULL",
            )
    # With the table's catalogue checks (codes, patterns, keys), in its step as in the build.
    result = lakehouse.materialise([gold_ade_signals])
    assert result.success
    checked = result.get_asset_check_evaluations()
    assert checked and all(c.passed for c in checked)
    with lakehouse.active():
        published = lake.frame(TABLE)
    assert published.columns == [c.name for c in table(TABLE).columns]
    assert table(TABLE).conform(published).height == published.height
    # The asset reads only the columns the method needs.
    assert set(SOURCES) == set(written)
    city = _scope(published, CITY)
    assert (city["drug_first"], city["event_first"]) == (54, 39)
    assert _scope(published, "24020")["drug_first"] is None


def test_first_days_give_the_signals_of_every_record() -> None:
    """The asset reads the record tables as each person's first day of each code: later and
    repeated records, and records without a code, change no signal."""
    omop = _city()
    for pid in range(1, 40, 3):
        omop.drug(pid, 400)
        omop.event(pid, 401)
        omop.drug(pid, 200 + pid)
    omop.drugs.append((2, None, omop.drugs[0][2]))  # type: ignore[arg-type]  # no code
    drugs, conditions, person, location = omop.frames()
    tables = {"omop.drug_exposure": drugs, "omop.condition_occurrence": conditions}
    firsts = [first_days(frame.lazy(), SOURCES[name]).collect() for name, frame in tables.items()]
    assert firsts[0].height < drugs.height and firsts[1].height < conditions.height
    whole = ade_signals(drugs, conditions, person, location).sort("scope", "drug", "event")
    first = ade_signals(firsts[0], firsts[1], person, location).sort("scope", "drug", "event")
    assert whole.height > 0 and whole.equals(first)
