"""The planted adverse drug effect: in the generated claims, recorded in the ground truth, drawn
from its own stream so the rest of the city stays as it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from synth import adverse
from synth import reference as ref
from synth.care import CareModel
from synth.city import generate
from synth.config import CityConfig
from synth.history import with_history
from synth.institutions import generate_institutions
from synth.morbidity import generate_conditions
from synth.population import generate_people
from synth.rng import stream
from tests.conftest import City

PLANTED, NULL = (
    next(e for e in adverse.effects() if e.role == role) for role in ("planted", "null")
)


def _rate_ratio(city: City, drug: str, kcd: str, window_days: int) -> float:
    """Visits with ``kcd`` as main diagnosis per person-day in the window after each person's
    first prescription of ``drug``, over the same persons' rate before it."""
    statements = (
        city.table("claims", "T200")
        .unique("SPEC_ID_SNO")
        .select("SPEC_ID_SNO", "JID", "MSICK_CD", pl.col("RECU_FR_DD").str.to_date("%Y%m%d"))
        .rename({"RECU_FR_DD": "day"})
    )
    first = (
        city.table("claims", "T530")
        .filter(pl.col("GNL_NM_CD") == drug)
        .join(statements, on="SPEC_ID_SNO")
        .group_by("JID")
        .agg(pl.col("day").min().alias("first"))
    )
    gap = (pl.col("day") - pl.col("first")).dt.total_days()
    visits = statements.filter(pl.col("MSICK_CD") == kcd).join(first, on="JID")
    after = visits.filter((gap > 0) & (gap <= window_days)).height
    before = visits.filter(gap < 0).height
    start, end = pl.lit(city.cfg.start), pl.lit(city.cfg.end)
    window_end = pl.min_horizontal(pl.col("first") + pl.duration(days=window_days), end)
    days_after = first.select((window_end - pl.col("first")).dt.total_days().sum()).item()
    days_before = first.select((pl.col("first") - start).dt.total_days().sum()).item()
    return (after / days_after) / (before / days_before)


@pytest.mark.slow
def test_the_planted_effect_is_in_the_claims_and_the_null_pair_is_not(adverse_city: City) -> None:
    """Amoxicillin-clavulanate's first prescription triples the rate of diarrhoea visits for
    eight weeks (measured 3.16 in this city); low back pain visits keep their rate (1.05)."""
    planted = _rate_ratio(adverse_city, PLANTED.drug, PLANTED.kcd, PLANTED.window_days)
    assert planted == pytest.approx(PLANTED.rate_ratio, rel=0.2)
    null = _rate_ratio(adverse_city, NULL.drug, NULL.kcd, NULL.window_days)
    assert 0.8 < null < 1.25


@pytest.mark.slow
def test_the_ground_truth_records_the_effects(adverse_city: City) -> None:
    truth = pl.read_csv(adverse_city.out / "ground_truth" / adverse.TRUTH_FILE)
    rows = {(r["role"], r["drug"], r["kcd"], r["rate_ratio"]) for r in truth.iter_rows(named=True)}
    assert ("planted", "374601ATB", "A090", 3.0) in rows
    assert ("null", "374601ATB", "M545", 1.0) in rows
    assert "adverse_effects.csv" in (adverse_city.out / "ground_truth" / "README.md").read_text()


def test_planting_only_adds_event_visits_after_first_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    """The care model's own visits are the same with and without the planted effect (its own
    stream, and its visits kept apart for a claims chunk of their own); what it adds are acute
    visits of the event's category and code, each within the window after the person's first
    prescription of the drug."""
    cfg = CityConfig(citizens=2000, start=date(2024, 1, 1), days=365, seed=5)
    people = with_history(generate_people(cfg), cfg)
    conditions = generate_conditions(people, cfg)
    model = CareModel(cfg, generate_institutions(cfg))
    plain, extra = model.visits_and_planted(stream(cfg.seed, "visits", 0), people, conditions)
    monkeypatch.setattr(adverse, "effects", lambda: [NULL])
    unplanted, nothing = model.visits_and_planted(stream(cfg.seed, "visits", 0), people, conditions)
    assert plain.equals(unplanted) and nothing.height == 0
    assert extra.columns == plain.columns and extra.height > 0
    assert set(extra["kcd"]) == {PLANTED.kcd}
    assert set(extra["reason"]) == {PLANTED.category}
    assert set(extra["kind"]) == {"acute"}
    with_drug = ref.param("regimens").filter(pl.col("gnl_nm_cd") == PLANTED.drug)["regimen"]
    first = (
        plain.with_columns(pl.col("regimens").str.split("|").alias("regimen"))
        .explode("regimen")
        .filter(pl.col("regimen").is_in(with_drug.implode()))
        .group_by("pid")
        .agg(pl.col("day").min().alias("first_day"))
    )
    # Episodes start within the window (follow-up visits a few days later; the holiday rule
    # may move a visit to the next open day).
    starts = extra.filter(pl.col("first")).join(first, on="pid", how="left")
    assert starts.height == extra["first"].sum()
    assert starts["first_day"].null_count() == 0
    gap = (starts["day"] - starts["first_day"]).to_list()
    assert min(gap) >= 1 and max(gap) <= PLANTED.window_days + 3


@pytest.mark.slow
def test_the_rest_of_the_city_is_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A city with the planted effect against the same city without it: every file but the
    claims' and the pharmacy's is byte for byte the same (imaging, registries, centre, app
    events, accounts), and every claims or pharmacy file of the city without it is the start of
    the same file with it: the planted visits' claims are appended in a chunk of their own."""
    cfg = CityConfig(citizens=1500, start=date(2024, 1, 1), days=240, seed=13)
    generate(cfg, tmp_path / "with")
    with monkeypatch.context() as patch:
        patch.setattr(adverse, "effects", lambda: [NULL])
        generate(cfg, tmp_path / "without")
    files = sorted(
        p.relative_to(tmp_path / "without")
        for p in (tmp_path / "without").rglob("*")
        if p.is_file()
    )
    appended = 0
    for rel in files:
        before = (tmp_path / "without" / rel).read_bytes()
        after = (tmp_path / "with" / rel).read_bytes()
        if rel.parts[0] in ("claims", "pharmacy") and rel.suffix == ".csv":
            assert after.startswith(before), rel
            appended += len(after) > len(before)
        elif rel.name in ("delivery.json", "MANIFEST.json", "claims_corrections.csv"):
            continue  # the files' rows and checksums; the appended statements' corrections
        else:
            assert after == before, rel
    assert appended > 0
    truth = tmp_path / "with" / "ground_truth" / adverse.TRUTH_FILE
    assert truth.exists()
