"""``gjh build``: materialise every pipeline without the UI, with the Definitions the UI uses.

A build is a few runs of the same asset job, in dependency order:

1. the unpartitioned sources (registries, centre members): each run reads every delivery;
2. the monthly extracts (claims, pharmacy) over the months delivered, as one range run;
3. the daily exports (centre devices, app events) over the days delivered, as one range run;
4. gold, from everything above;
5. the OMOP CDM tables, from silver, imaging and the AI findings (after gold, as at night),
   with what is made from them: their data-quality report and the drug event signals.

Range runs use the assets' single-run backfill policy, so a year of daily partitions is one pass
rather than 365 runs. A range run still records one materialisation per partition (the UI's
partition status, the sensors and the data-health page read them), but its bookkeeping is kept to
that (``RANGE_EVENTS``): each asset's planned materialisation is one event naming the range, and
each asset's materialisations of the range are stored as one batch (one transaction on the embedded
SQLite instance, ``pipelines.event_log``), as are the run's planned check evaluations. Each table's
checks run in the step of the asset that writes it (``pipelines.defs.checks``), so a stage has one
step per asset definition. The runs are recorded in the Dagster instance when ``DAGSTER_HOME`` is
set (``gjh build`` sets it), so the UI shows their materialisations and checks afterwards."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import dagster as dg

from lakehouse import config

MANIFEST: Final = "delivery.json"
MONTH: Final = re.compile(r"^\d{4}-\d{2}$")
DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Dagster's own step logs are for the UI; the build prints one line per stage.
QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
KOREA: Final = ZoneInfo("Asia/Seoul")  # the times the build shows an operator
# Dagster's settings for a range run's events, read when events are recorded: one planned event
# per asset naming the partition range (not one per partition: a failed range run then marks no
# partition failed, the run itself fails and the build stops), and one asset's materialisations
# of a range handed to the storage as one batch.
RANGE_EVENTS: Final = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    "DAGSTER_EVENT_BATCH_SIZE": "10000",
}


class BuildError(RuntimeError):
    """A stage failed; the message names the failed steps and where to read why."""


@dataclass(frozen=True)
class Stage:
    """One run of the build: the assets it materialises and the partitions it covers."""

    name: str
    keys: tuple[dg.AssetKey, ...]
    partitions: tuple[str, str] | None = None

    def tags(self) -> dict[str, str]:
        if self.partitions is None:
            return {}
        return {
            "dagster/asset_partition_range_start": self.partitions[0],
            "dagster/asset_partition_range_end": self.partitions[1],
        }


@dataclass
class StageResult:
    stage: Stage
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    checks_failed: list[str] = field(default_factory=list)


def delivered_periods(sources: Path) -> list[str]:
    """Every period any source declared in a delivery manifest (two or three folders deep)."""
    found: set[str] = set()
    for pattern in (f"*/*/{MANIFEST}", f"*/*/*/{MANIFEST}"):
        for manifest in sources.glob(pattern):
            period = json.loads(manifest.read_text(encoding="utf-8")).get("period")
            if isinstance(period, str):
                found.add(period)
    return sorted(found)


def _range(
    periods: list[str], pattern: re.Pattern[str], part: dg.PartitionsDefinition
) -> tuple[str, str] | None:
    """The first and last delivered period of one grain, checked against the partitions."""
    mine = [p for p in periods if pattern.match(p)]
    if not mine:
        return None
    known = set(part.get_partition_keys())
    outside = [p for p in (mine[0], mine[-1]) if p not in known]
    if outside:
        raise BuildError(
            f"deliveries for {', '.join(outside)} fall outside the pipeline partitions "
            f"({part.get_first_partition_key()} to {part.get_last_partition_key()})"
        )
    return mine[0], mine[-1]


def _from_omop(graph: Any, key: dg.AssetKey) -> bool:
    """A table made from the OMOP tables (their quality report, the drug event signals): it
    runs in the OMOP stage, after them."""
    return any(p.path[0] == "omop" for p in graph.get(key).parent_keys)


# The build's stages by what their assets are, in the order they run.
GRAINS: Final = ("plain", "month", "day", "gold", "omop")


def grain(graph: Any, key: dg.AssetKey) -> str:
    """Which of the ``GRAINS`` an asset is built in."""
    from pipelines.defs.partitions import DAYS, MONTHS

    part = graph.get(key).partitions_def
    if key.path[0] == "omop" or _from_omop(graph, key):
        return "omop"
    if key.path[0] == "gold":
        return "gold"
    if part is None:
        return "plain"
    if part == MONTHS:
        return "month"
    if part == DAYS:
        return "day"
    raise BuildError(f"{key.to_user_string()} has partitions the build does not know")


def plan(defs: dg.Definitions, sources: Path) -> list[Stage]:
    """The stages that build everything ``sources`` holds, in dependency order."""
    from pipelines.defs.partitions import DAYS, MONTHS

    graph = defs.resolve_asset_graph()
    by_grain: dict[str, list[dg.AssetKey]] = {g: [] for g in GRAINS}
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        by_grain[grain(graph, key)].append(key)
    periods = delivered_periods(sources)
    stages = [Stage("sources delivered whole", tuple(by_grain["plain"]))]
    months = _range(periods, MONTH, MONTHS)
    if months and by_grain["month"]:
        stages.append(Stage("monthly extracts", tuple(by_grain["month"]), months))
    days = _range(periods, DAY, DAYS)
    if days and by_grain["day"]:
        stages.append(Stage("daily exports", tuple(by_grain["day"]), days))
    stages.append(Stage("gold", tuple(by_grain["gold"])))
    stages.append(Stage("omop", tuple(by_grain["omop"])))
    return [s for s in stages if s.keys]


def _row_counts(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    rows: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        value: Any = mat.metadata.get("dagster/row_count")
        if value is not None:
            rows[mat.asset_key.to_user_string()] = int(value.value)
    return rows


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    failed = []
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
            failed.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return failed


def _waiting(result: dg.ExecuteInProcessResult) -> str | None:
    """The DICOM studies the run's routing left waiting for their quiet period, and from when
    they will be routed (Korea's time), in words; None when none wait."""
    from pipelines.defs.imaging import QUIET_PERIOD, ROUTABLE_BY, ROUTABLE_FROM, WAITING

    for event in result.get_asset_materialization_events():
        metadata = event.step_materialization_data.materialization.metadata
        count: Any = metadata.get(WAITING)
        if count is None or not count.value:
            continue
        first, last = (
            datetime.fromtimestamp(metadata[k].value, KOREA)  # type: ignore[arg-type]
            for k in (ROUTABLE_FROM, ROUTABLE_BY)
        )
        studies = "1 DICOM study waits" if count.value == 1 else f"{count.value} DICOM studies wait"
        until = f" (the last from {last:%Y-%m-%d %H:%M:%S})" if last != first else ""
        return (
            f"      {studies} for {metadata[QUIET_PERIOD].value} s without new files before "
            f"routing: routed from {first:%Y-%m-%d %H:%M:%S} Korea time{until} by the next "
            "gjh build, or by the imaging sensor while gjh serve runs"
        )
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs of earlier builds on this host whose process died (killed, machine
    restarted) and give back the concurrency-pool slots they held; otherwise the next build
    would wait forever for the "lakehouse" pool. Returns the recovered run ids."""
    recovered = []
    in_progress = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        tags={"gjh/build-host": socket.gethostname()},
    )
    for run in instance.get_runs(filters=in_progress):
        pid = int(run.tags.get("gjh/build-pid", "0"))
        if pid and (pid == os.getpid() or _alive(pid)):
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(run, "its gjh build process is gone (killed or crashed)")
        recovered.append(run.run_id)
    return recovered


def range_events() -> AbstractContextManager[None]:
    """``RANGE_EVENTS`` set for the duration, then the environment as it was."""
    return config.environment(**RANGE_EVENTS)


def run_stage(
    defs: dg.Definitions, stage: Stage, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """One stage as one run of the Definitions' asset job (checks of the selected assets
    included), recorded in ``instance``."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        run_config=QUIET,
        instance=instance,
        asset_selection=list(stage.keys),
        tags=stage.tags()
        | {"gjh/build-host": socket.gethostname(), "gjh/build-pid": str(os.getpid())},
        raise_on_error=False,
    )


def evolve() -> dict[str, list[str]]:
    """Bring every existing table up to the catalogue before anything runs, so the apps read a
    column the code now declares from a lakehouse built by an older version."""
    from lakehouse import delta
    from lakehouse.catalog import TABLES

    added = {name: delta.evolve(table) for name, table in TABLES.items()}
    return {name: columns for name, columns in added.items() if columns}


def build(
    sources: Path,
    instance: dg.DagsterInstance,
    progress: Callable[[str], None] = print,
    defs: dg.Definitions | None = None,
) -> list[StageResult]:
    """Materialise everything ``sources`` holds; report each stage through ``progress``.

    Raises:
        BuildError: a stage failed (the message says which steps; the run's logs say why).
    """
    # The assets read the drop folder from the environment (through the lakehouse resource).
    os.environ["GJH_SOURCES"] = str(sources.resolve())
    if defs is None:
        from pipelines.definitions import defs as loaded

        defs = loaded
    results = []
    for name, added in evolve().items():
        progress(f"{name}: added column(s) {', '.join(added)} that the catalogue has gained")
    for run_id in recover(instance):
        progress(f"recovered run {run_id} of a build that died")
    stages = plan(defs, sources)
    for i, stage in enumerate(stages, start=1):
        window = f" {stage.partitions[0]}..{stage.partitions[1]}" if stage.partitions else ""
        progress(f"[{i}/{len(stages)}] {stage.name}{window}: {len(stage.keys)} tables ...")
        began = time.perf_counter()
        with range_events():
            result = run_stage(defs, stage, instance)
        elapsed = time.perf_counter() - began
        if not result.success:
            failed = [
                e.step_key or "?" for e in result.all_events if e.event_type_value == "STEP_FAILURE"
            ]
            errors = [
                e.event_specific_data.error.message.strip()  # type: ignore[union-attr]
                for e in result.all_events
                if e.event_type_value == "STEP_FAILURE" and e.event_specific_data is not None
            ]
            raise BuildError(
                f"stage '{stage.name}' failed in {', '.join(failed) or 'the run'} "
                f"(run {result.run_id}): {' | '.join(errors)[:2000]}"
            )
        done = StageResult(stage, elapsed, _row_counts(result), _failed_checks(result))
        results.append(done)
        total = sum(done.rows.values())
        checks = f", {len(done.checks_failed)} checks failed" if done.checks_failed else ""
        progress(f"      done in {elapsed:.1f} s: {total:,} rows written{checks}")
        waiting = _waiting(result)
        if waiting:
            progress(waiting)
    return results
