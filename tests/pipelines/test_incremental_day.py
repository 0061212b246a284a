"""One new day after a built period touches only that day's partitions and what depends on them.

A small city is generated over N+1 days; the last day's deliveries (the centre's daily exports,
the app's event log, the DICOM studies uploaded that day) are held back while ``gjh build``
builds the first N. Every table's Delta files are snapshot, the day is delivered and run as
production runs it (``gjh.bench.newday.run_day``: the drop-folder sensor's runs, an imaging
pass, the nightly gold and OMOP jobs), and the files are compared:

* a table partitioned by day gains files in the new day's partition only, and loses none;
* a table partitioned by month (the claims) is not touched: claims arrive monthly;
* every other table loses no file (what the day brings is appended or merged into new files),
  except the tables in ``REWRITTEN``, each rewritten whole by design, for the reason given;
* the nightly gold and OMOP jobs recompute only the citizens the day touched (``citizens_
  recomputed``), not the city, and from the day on, not the whole window;
* the incrementally written gold tables and the OMOP CDM hold exactly what a rebuild from scratch
  gives.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from gjh.bench.newday import day_deliveries, last_day, move, run_day
from lakehouse import quality
from lakehouse.catalog import TABLES
from pipelines.build import build
from synth.city import generate
from synth.config import CityConfig
from tests.lakehouse.opened import opened
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Tables a new day may rewrite whole, and why (docs/data-layout.md, "Daily freshness").
REWRITTEN: Final = {
    # The CDM's person-level tables change only for the citizens the day touched (appended when
    # they only gained rows); these two change every day by definition.
    "omop.observation_period": (
        "a resident's observation runs to the sources' last day, which moves every day; one row "
        "per person, as small as the register"
    ),
    "omop.cdm_source": "its one row names the sources' last day and the build's day",
    "gold.omop_dq_results": "the data-quality report of the whole CDM, one run per night",
    "gold.ade_signals": (
        "drug-event signals over the whole CDM's history, recomputed when the drugs, the "
        "conditions, the persons or their places changed (a day of claims)"
    ),
    "gold.citizen_consent": (
        "one row per account holder folded from one version of the events, small, one commit"
    ),
    "gold.programme_uptake_published": (
        "officials' suppressed cells: suppression is decided once across every view, so one day "
        "can change any month's hidden cells"
    ),
    "gold.ai_services_published": "the same, per AI service and month",
}
# Gold tables that a new day changes in place, and exactly to a rebuild's rows: the timeline gains
# files (the day's rows appended to the citizens' buckets), the daily uptake rewrites the day's
# own partition only (its cells existed already: the month's claims reach that day).
INCREMENTAL_GOLD: Final = ("gold.citizen_timeline", "gold.programme_uptake_daily")
# The stored rows a pass of the day's touched citizens may hold (pipelines.transform.gold).
PASS_ROWS: Final = 300


@dataclass(frozen=True)
class Files:
    """One table's Delta state: its version and its files with their partition values."""

    version: int
    files: dict[str, dict[str, str | None]]


def snapshot(root: Path) -> dict[str, Files]:
    """Every Delta table under ``root``, by catalogue name."""
    found = {}
    for log in sorted(root.glob("*/*/_delta_log")):
        name = f"{log.parent.parent.name}.{log.parent.name}"
        dt = DeltaTable(str(log.parent))
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        parts = [c for c in actions.columns if c.startswith("partition.")]
        found[name] = Files(
            dt.version(),
            {row["path"]: {c.split(".", 1)[1]: _text(row[c]) for c in parts}
             for row in actions.iter_rows(named=True)},
        )  # fmt: skip
    return found


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class NewDay:
    lake: Lake
    day: date
    before: dict[str, Files]
    after: dict[str, Files]
    jobs: list[str]
    steps: dict[str, float]  # the day's runs' step durations, as the bench reports them
    instance: dg.DagsterInstance
    citizens: int
    silver_read: set[str]  # the silver data files the day's runs opened


def _defs(lake: Lake) -> dg.Definitions:
    """The project's Definitions with this lake's resources; studies are routed as soon as
    their files settle (the test has no five quiet minutes to wait)."""
    from pipelines import definitions
    from pipelines.defs.resources import Imaging

    return dg.Definitions(
        assets=definitions.ASSETS,
        asset_checks=definitions.defs.asset_checks,
        jobs=definitions.defs.jobs,
        resources=lake.resources | {"imaging": Imaging(quiet_period_s=0, settle_s=0, workers=2)},
    )


@pytest.fixture(scope="module")
def new_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NewDay]:
    home = tmp_path_factory.mktemp("newday")
    cfg = CityConfig(citizens=300, start=date(2025, 3, 1), days=20, seed=3, workers=1)
    generate(cfg, home / "sources")
    # Every day's deliveries, kept for a build of all of them (hard links: no space).
    shutil.copytree(home / "sources", home / "sources-all", copy_function=os.link)
    day = last_day(home / "sources")
    assert day == cfg.start + timedelta(days=cfg.days - 1)
    held = day_deliveries(home / "sources", day)
    move(held, home / "sources", home / "held")
    eve = day_deliveries(home / "sources", day - timedelta(days=1))
    move(eve, home / "sources", home / "eve")
    lake = Lake(home / "lakehouse", home / "sources")
    defs = _defs(lake)
    instance = dg.DagsterInstance.ephemeral()
    with lake.active():
        build(lake.sources, instance, progress=lambda _: None, defs=defs)
        # The night before, then the weekly upkeep: it compacts the files that night appended
        # (the timeline's buckets among them). The night after must still recompute only
        # what its day touched: the upkeep's rewrites change no row.
        move(eve, home / "eve", home / "sources")
        run_day(defs, instance, lake.sources)
        upkeep = defs.resolve_job_def("upkeep_job").execute_in_process(instance=instance)
        assert upkeep.success
        timeline = DeltaTable(str(lake.root / "gold" / "citizen_timeline")).history(3)
        assert "OPTIMIZE" in {c["operation"] for c in timeline}, "the upkeep compacted nothing"
        before = snapshot(lake.root)
        move(held, home / "held", home / "sources")
        # The day's touched citizens in passes of a few hundred stored rows, as a city's
        # thousands of members go in passes of a million: the passes together must write what
        # one pass writes (the night before ran in one).
        with opened(lake.root / "silver") as seen, pytest.MonkeyPatch.context() as patch:
            patch.setattr("pipelines.transform.gold.TOUCHED_PASS_ROWS", PASS_ROWS)
            ran = run_day(defs, instance, lake.sources)
        after = snapshot(lake.root)
    yield NewDay(lake, day, before, after, ran.jobs, ran.steps, instance, cfg.citizens, seen.data())


def _changes(new_day: NewDay, name: str) -> tuple[set[str], set[str]]:
    """(files added, files removed) of one table by the new day."""
    old = new_day.before.get(name, Files(-1, {})).files.keys()
    new = new_day.after[name].files.keys()
    return set(new) - set(old), set(old) - set(new)


def test_the_day_ran_as_production_runs_it(new_day: NewDay) -> None:
    day = new_day.day.isoformat()
    assert f"centre_job:{day}" in new_day.jobs
    assert f"programme_job:{day}" in new_day.jobs
    assert new_day.jobs[-3:] == ["imaging_job", "gold_job", "omop_job"]
    # Nothing monthly or whole-source ran: the day delivered none of it.
    assert not [j for j in new_day.jobs if j.startswith(("claims_job", "registry_job"))]
    # Every run's steps are timed (the bench's report of where the day's time goes).
    assert {s.split("/")[0] for s in new_day.steps} == set(new_day.jobs)
    assert new_day.steps["gold_job/gold__citizen_timeline"] > 0


def test_daily_tables_change_only_the_new_days_partition(new_day: NewDay) -> None:
    grew = []
    for table in (t for t in TABLES.values() if t.grain == "day"):
        added, removed = _changes(new_day, table.name)
        assert not removed, f"{table.name}: files removed: {sorted(removed)[:3]}"
        (column,) = table.partition_by
        touched = {new_day.after[table.name].files[f][column] for f in added}
        assert touched <= {new_day.day.isoformat()}, f"{table.name}: {touched}"
        grew += [table.name] if added else []
    # A device nobody used that day exports a header only; the app and the centre did work.
    assert {"bronze.app_events", "silver.programme_events", "silver.centre_measurements"} <= set(
        grew
    )


def test_monthly_tables_are_untouched(new_day: NewDay) -> None:
    for table in (t for t in TABLES.values() if t.grain == "month"):
        assert new_day.after[table.name] == new_day.before[table.name], table.name


def test_daily_uptake_changes_only_the_new_days_partition(new_day: NewDay) -> None:
    name = "gold.programme_uptake_daily"
    added, removed = _changes(new_day, name)
    assert added
    days = {new_day.after[name].files[f]["day"] for f in added}
    days |= {new_day.before[name].files[f]["day"] for f in removed}
    assert days == {new_day.day.isoformat()}


def test_no_other_table_loses_a_file(new_day: NewDay) -> None:
    rewritten = []
    for name in sorted(new_day.after):
        if TABLES[name].grain is not None or name == "gold.programme_uptake_daily":
            continue
        _, removed = _changes(new_day, name)
        if name in REWRITTEN:
            rewritten.append(name)
            continue
        assert not removed, f"{name}: {len(removed)} of its files removed by one new day"
    # The exceptions are real: each of them exists and was rewritten by the nightly jobs.
    assert rewritten


def test_incremental_gold_equals_a_rebuild(new_day: NewDay, tmp_path: Path) -> None:
    """The gold tables the new day changed in place hold exactly the rows a rebuild of gold
    from the same silver gives."""
    from pipelines.defs import gold

    copy = Lake(tmp_path / "lakehouse", new_day.lake.sources)
    shutil.copytree(new_day.lake.root, copy.root, copy_function=os.link)
    for name in INCREMENTAL_GOLD:
        shutil.rmtree(copy.root / name.replace(".", "/"))
    copy.materialise([a for a in gold.GOLD_ASSETS if a.key.path[-1] in _shorts()])
    for name in INCREMENTAL_GOLD:
        got, rebuilt = new_day.lake.frame(name), copy.frame(name)
        assert got.height == rebuilt.height > 0, name
        assert got.sort(pl.all()).equals(rebuilt.sort(pl.all())), name
        added, _ = _changes(new_day, name)
        assert added, f"{name}: the new day added nothing"


def _metadata(new_day: NewDay, name: str, entry: str) -> int:
    """A number the last materialisation of a table reported."""
    event = new_day.instance.get_latest_materialization_event(dg.AssetKey(name.split(".")))
    assert event is not None and event.asset_materialization is not None, name
    value = event.asset_materialization.metadata[entry].value
    assert isinstance(value, int)
    return value


def _recomputed(new_day: NewDay, name: str) -> int:
    """How many citizens the last materialisation of a table recomputed (-1: all of them)."""
    return _metadata(new_day, name, "citizens_recomputed")


def test_the_nightly_jobs_recompute_only_the_citizens_the_day_touched(new_day: NewDay) -> None:
    for name in ("gold.citizen_timeline", "omop.measurement", "omop.person"):
        assert 0 < _recomputed(new_day, name) < new_day.citizens / 2, name
        # in passes of a bounded number of rows (``PASS_ROWS`` here): the memory one night holds
        assert _metadata(new_day, name, "passes") > 1, name
    event = new_day.instance.get_latest_materialization_event(
        dg.AssetKey(["gold", "programme_uptake_daily"])
    )
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.metadata["days"].value == 1


def test_a_day_without_claims_reads_none_of_the_years_claims(new_day: NewDay) -> None:
    """The claims arrive monthly: a day's runs keep the touched citizens' stored claims rows in
    the timeline and the CDM instead of reading the claims family's silver tables again (the
    largest of the lake), and open none of their data files."""
    for name in ("gold.citizen_timeline", "omop.visit_occurrence", "omop.measurement"):
        event = new_day.instance.get_latest_materialization_event(dg.AssetKey(name.split(".")))
        assert event is not None and event.asset_materialization is not None, name
        assert event.asset_materialization.metadata["claims_read"].value is False, name
    # Nor do the drug-event signals of the whole history change: their OMOP tables did not.
    assert new_day.after["gold.ade_signals"] == new_day.before["gold.ade_signals"]
    kept = new_day.instance.get_latest_materialization_event(dg.AssetKey(["gold", "ade_signals"]))
    assert kept is not None and kept.asset_materialization is not None
    assert kept.asset_materialization.metadata["recomputed"].value is False
    rows = new_day.lake.frame("gold.ade_signals").height  # a kept table still reports its rows
    assert kept.asset_materialization.metadata["dagster/row_count"].value == rows > 0
    family = ("claims", "claim_lines", "diagnoses", "prescriptions", "dispensings")
    assert not {f for f in new_day.silver_read if f.split("/", 1)[0] in family}
    assert {f for f in new_day.silver_read if f.startswith("centre_measurements/")}


def test_the_timelines_checks_count_only_the_rows_the_day_appended(new_day: NewDay) -> None:
    """The day appends to the timeline: its checks add the appended rows' counts to those the
    table kept from the night before (``lakehouse.quality_kept``), across the upkeep's
    compaction in between, instead of counting the whole city's timeline again."""
    keys = [
        dg.AssetCheckKey(dg.AssetKey(["gold", "citizen_timeline"]), c.dagster_name)
        for c in quality.checks("gold.citizen_timeline")
    ]
    records = new_day.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert set(records) == set(keys)
    counted = set()
    for record in records.values():
        assert record.event is not None
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        assert isinstance(evaluation, dg.AssetCheckEvaluation)
        assert evaluation.passed
        counted.add(evaluation.metadata["counted"].value)
    assert len(counted) == 1 and str(counted.pop()).startswith("rows appended since version")


def test_incremental_omop_equals_a_rebuild(new_day: NewDay, tmp_path: Path) -> None:
    """The OMOP CDM brought up to date with the day holds exactly the rows of a CDM rebuilt
    whole from the same silver (the same ids: they are stable hashes of source keys)."""
    from pipelines.defs import omop

    copy = Lake(tmp_path / "lakehouse", new_day.lake.sources)
    shutil.copytree(new_day.lake.root, copy.root, copy_function=os.link)
    shutil.rmtree(copy.root / "omop")
    copy.materialise([omop.omop_tables])
    for name in omop.TABLES:
        got, rebuilt = new_day.lake.frame(name), copy.frame(name)
        assert got.height == rebuilt.height, name
        assert got.sort(pl.all()).equals(rebuilt.sort(pl.all())), name
    assert new_day.lake.frame("omop.measurement").height > 0


# Columns holding when something ran, not what the data say: they differ between two builds.
WALL_CLOCK: Final = {"omop.image_feature": ("alg_datetime",)}


@pytest.fixture(scope="module")
def all_days(new_day: NewDay) -> Lake:
    """The same city built from scratch with every day delivered at once (the same secrets, so
    the same pseudonyms)."""
    home = new_day.lake.root.parent
    lake = Lake(home / "lakehouse-all", home / "sources-all")
    with lake.active():
        build(
            lake.sources, dg.DagsterInstance.ephemeral(), progress=lambda _: None, defs=_defs(lake)
        )
    return lake


def test_a_build_then_a_day_equals_a_build_of_every_day(new_day: NewDay, all_days: Lake) -> None:
    """The gold tables and the OMOP CDM after the build of 19 days and the 20th run as
    production runs it hold exactly the rows of a build of all 20 days (sorted, every column
    but the wall-clock ones)."""
    from pipelines.defs import omop

    for name in (*INCREMENTAL_GOLD, *omop.TABLES):
        drop = WALL_CLOCK.get(name, ())
        got = new_day.lake.frame(name).drop(drop)
        want = all_days.frame(name).drop(drop)
        assert got.height == want.height, name
        assert got.sort(pl.all()).equals(want.sort(pl.all())), name


def _shorts() -> set[str]:
    return {name.split(".", 1)[1] for name in INCREMENTAL_GOLD}


def test_the_bench_holds_the_last_day_back_in_a_copy(new_day: NewDay, tmp_path: Path) -> None:
    """``gjh bench`` builds the cached city less its last day from a hard-linked copy: the cache
    keeps every day, the copy lacks exactly the day's folders, which wait to be delivered."""
    from gjh.bench import newday, stages

    city = new_day.lake.sources
    held = newday.hold_back(stages.Context(city, tmp_path, {}))
    assert held.day == new_day.day
    assert held.folders == day_deliveries(city, new_day.day)
    assert held.folders and all((city / f).is_dir() for f in held.folders)
    assert not any((held.built.sources / f).exists() for f in held.folders)
    assert all((held.held / f).is_dir() for f in held.folders)
    assert last_day(held.built.sources) < new_day.day
