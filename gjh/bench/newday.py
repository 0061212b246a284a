"""One new day after a built period: its deliveries held back from the city, then delivered and
run the way production runs them, timed by ``gjh bench`` against the whole build.

In ``gjh bench`` the whole build runs on the city less its last day (``hold_back``: a hard-linked
copy of the cached city, so the cache is never changed), then the day is delivered and timed
(``stage``) against that whole build: issue 23's target is at most 5% of its time.

A day's deliveries are the daily exports whose manifest names that day (the centre's devices,
the citizen app's event log) and the DICOM studies uploaded that day. Production runs them
unattended: the drop-folder sensor launches one run per family and day
(``pipelines.defs.sensors.run_requests``), the imaging sensor one imaging pass, and the nightly
schedules the gold and OMOP jobs, which recompute only what the day's deliveries changed (the
citizens and days they touch: ``pipelines/defs/since.py``). ``run_day`` runs exactly those jobs,
in that order, in process; the incremental-day test
(``tests/pipelines/test_incremental_day.py``) and the bench stage both use it, so what is timed
is what is tested.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Final

import dagster as dg

from gjh.bench import stages
from gjh.bench.report import Floor, Measured

MANIFEST: Final = "delivery.json"
QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The nightly jobs after the day's ingestion runs (their schedules: gold at 02:00, OMOP after).
NIGHTLY: Final = ("gold_job", "omop_job")
# The line the day's script prints as each run starts: each run's own peak memory is measured.
RUN_STARTS: Final = "run starts: "


def last_day(sources: Path) -> date:
    """The last day any daily delivery of the city covers."""
    days = [
        date.fromisoformat(period)
        for manifest in sources.glob(f"*/*/*/{MANIFEST}")
        if len(period := str(json.loads(manifest.read_text(encoding="utf-8")).get("period"))) == 10
    ]
    if not days:
        raise ValueError(f"{sources} holds no daily deliveries")
    return max(days)


def day_deliveries(sources: Path, day: date) -> list[Path]:
    """The folders (relative to ``sources``) that one day delivers: every delivery whose
    manifest's period is that day, and every DICOM study folder uploaded that day
    (``imaging/<clinic>/<YYYYMMDD>_...``)."""
    found = [
        manifest.parent.relative_to(sources)
        for pattern in (f"*/*/{MANIFEST}", f"*/*/*/{MANIFEST}")
        for manifest in sources.glob(pattern)
        if json.loads(manifest.read_text(encoding="utf-8")).get("period") == day.isoformat()
    ]
    found += [p.relative_to(sources) for p in sources.glob(f"imaging/*/{day:%Y%m%d}_*")]
    return sorted(found)


def move(folders: list[Path], source: Path, target: Path) -> None:
    """Move ``folders`` (relative paths) from under ``source`` to the same place under
    ``target``: holding a day back, or delivering it."""
    for rel in folders:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source / rel, target / rel)


@dataclass
class DayRun:
    """What running one day did: each job's run, in order, the seconds each took, and the
    seconds of each of their steps (``job/step``, from the runs' own step statistics: where a
    day's time goes, without a profiler)."""

    jobs: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)


def run_day(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sources: Path,
    starting: Callable[[str], object] = lambda name: None,
) -> DayRun:
    """Run what production launches for the deliveries under ``sources`` that the ingestion
    ledger lacks: the drop-folder sensor's runs (one per family and partition), an imaging pass,
    then the nightly gold and OMOP jobs. ``starting`` is told each run's name as it starts.

    Raises:
        RuntimeError: a run failed (its id names it in ``instance``).
    """
    import time

    from pipelines.defs import sensors

    available = {job.name for job in sensors.jobs(_groups(defs))}
    requests, _ = sensors.run_requests(sources, sensors.ingested(), available)
    done = DayRun()
    plan = [(r.job_name or "", r.partition_key) for r in requests]
    plan += [("imaging_job", None), *((job, None) for job in NIGHTLY)]
    for job, partition in plan:
        name = f"{job}:{partition}" if partition else job
        starting(name)
        began = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            run_config=QUIET, instance=instance, partition_key=partition, raise_on_error=False
        )
        if not result.success:
            raise RuntimeError(f"{job} {partition or ''} failed (run {result.run_id})")
        done.jobs.append(name)
        done.seconds[name] = time.perf_counter() - began
        for step in instance.get_run_step_stats(result.run_id):
            if step.start_time is not None and step.end_time is not None:
                done.steps[f"{name}/{step.step_key}"] = step.end_time - step.start_time
    return done


def _groups(defs: dg.Definitions) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {graph.get(k).group_name for k in graph.materializable_asset_keys}


@dataclass(frozen=True)
class HeldBack:
    """A city's last day held back: ``built`` builds the city without it (its sources a
    hard-linked copy), ``held`` holds the day's folders until ``stage`` delivers them."""

    built: stages.Context
    held: Path
    day: date
    folders: list[Path]


def hold_back(ctx: stages.Context) -> HeldBack:
    """A copy of the city's drop folder without its last day (hard links: instant, no space)."""
    sources = ctx.work / "sources-held-back"
    shutil.copytree(ctx.sources, sources, copy_function=os.link)
    day = last_day(sources)
    folders = day_deliveries(sources, day)
    move(folders, sources, ctx.work / "held")
    built = stages.Context(sources, ctx.work, dict(ctx.env) | {"GJH_SOURCES": str(sources)})
    return HeldBack(built, ctx.work / "held", day, folders)


# The day delivered into the built lake and run as production runs it, in the build's Dagster
# instance; studies are routed as soon as their files settle (no five quiet minutes to wait).
NEW_DAY = """
if __name__ == "__main__":
    import json, time
    from pathlib import Path
    import dagster as dg
    from gjh.bench.newday import RUN_STARTS, move, run_day
    from pipelines import definitions
    from pipelines.defs.resources import Imaging
    defs = dg.Definitions(
        assets=definitions.ASSETS, asset_checks=definitions.defs.asset_checks,
        jobs=definitions.defs.jobs,
        resources=definitions.defs.resources | {{"imaging": Imaging(quiet_period_s=0, settle_s=0)}},
    )
    folders = [Path(f) for f in {folders!r}]
    began = time.perf_counter()
    move(folders, Path({held!r}), Path({sources!r}))
    ran = run_day(defs, dg.DagsterInstance.get(), Path({sources!r}),
        starting=lambda name: print(RUN_STARTS + name, flush=True))
    print(json.dumps({{"seconds": time.perf_counter() - began, "items": len(folders),
        "job_seconds": {{k: round(v, 2) for k, v in ran.seconds.items()}},
        "step_seconds": {{k: round(v, 2) for k, v in ran.steps.items()}}}}))
"""


def run_phase(line: str) -> str | None:
    """The run of the day a line of its script starts (``RUN_STARTS`` and its name), if any."""
    if not line.startswith(RUN_STARTS):
        return None
    return line.removeprefix(RUN_STARTS).strip() or None


def stage(held: HeldBack, whole_build: Measured) -> Measured:
    """Deliver the held-back day into the whole build's lake and time its runs, against the
    whole build (the floor of issue 23's table for this stage), with each run's own peak
    (``detail.phase_peak_mib``: which of the day's runs holds its memory)."""
    env = dict(held.built.env) | {
        "LAKEHOUSE_URI": str(held.built.work / "built"),
        "DAGSTER_HOME": str(held.built.work / "dagster"),
    }
    script = NEW_DAY.format(
        folders=[str(f) for f in held.folders],
        held=str(held.held),
        sources=str(held.built.sources),
    )
    row = stages._measured("one new day", script, env, unit="folders", phase=run_phase)
    floor = Floor("the whole build", whole_build.seconds, whole_build.peak_rss_mib)
    return replace(row, floor=floor, detail=row.detail | {"day": held.day.isoformat()})
