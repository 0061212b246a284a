"""``gjh bench``: generate (or reuse) a synthetic city of the asked size, run every stage and its
floor as measured processes, and write the report (``latest.json``, a dated copy,
``latest.md``). With several sizes, also the growth figure and table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gjh.bench import growth, newday, orthanc, overhead, queries, report, stages
from gjh.bench.measure import run_measured

CITY = 1_430_000
QUICK = 2_000
# The stages by the name ``--stages`` takes, in the order they run.
STAGES = ("claims", "headers", "intake", "scoring", "build", "newday", "demo", "queries", "crowd")


@dataclass(frozen=True)
class Size:
    """A city to benchmark: its name, citizens and days (from 2025-01-01)."""

    name: str
    citizens: int
    days: int


def size(text: str, days: int | None = None) -> Size:
    """``quick`` (2,000 citizens, 31 days: the whole run in minutes), ``city`` (Gwangju:
    1.43 M citizens, a year) or a number of citizens (a year unless ``days`` says)."""
    if text == "quick":
        return Size("quick", QUICK, days or 31)
    if text == "city":
        return Size("city", CITY, days or 365)
    citizens = int(text.replace("_", ""))
    if citizens < 1:
        raise ValueError("a size needs at least one citizen")
    return Size(f"{citizens}", citizens, days or 365)


def _load() -> float:
    return os.getloadavg()[0]


def _city(size_: Size, cache: Path) -> tuple[Path, report.Measured]:
    """The city's drop folder, generated once per size and seed and reused (its measurement is
    kept beside it, so a reused city reports the time it took when it was made)."""
    home = cache / f"city-{size_.citizens}-{size_.days}"
    sources, kept = home / "sources", home / "synth.json"
    if not kept.is_file():
        shutil.rmtree(home, ignore_errors=True)
        cmd = [
            sys.executable, "-m", "gjh.cli", "synth", "--citizens", str(size_.citizens),
            "--start", "2025-01-01", "--days", str(size_.days), "--seed", "20250101",
            "--out", str(sources), "--workers", str(stages.WORKERS),
        ]  # fmt: skip
        outside = run_measured(cmd, env=stages.stage_env())
        home.mkdir(parents=True, exist_ok=True)
        kept.write_text(
            json.dumps({"seconds": outside["seconds"], "peak_rss_mib": outside["peak_rss_mib"]}),
            encoding="utf-8",
        )
    made = json.loads(kept.read_text(encoding="utf-8"))
    row = report.Measured(
        stage="synth",
        seconds=made["seconds"],
        wall_seconds=made["seconds"],
        items=size_.citizens,
        unit="citizens",
        peak_rss_mib=made["peak_rss_mib"],
    )
    return sources, row


def chosen(only: Sequence[str] | None = None) -> list[str]:
    """The stages to run, in the report's order: all of them, or those ``only`` names (the
    synthetic city is always made or reused). ``newday`` is timed against the whole build, so
    it brings ``build`` with it.

    Raises:
        ValueError: a name that is not a stage.
    """
    if only is None:
        return list(STAGES)
    unknown = sorted(set(only) - set(STAGES))
    if unknown:
        raise ValueError(f"no stage {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    wanted = set(only) | ({"build"} if "newday" in only else set())
    return [key for key in STAGES if key in wanted]


def run(
    size_: Size,
    out: Path,
    cache: Path,
    progress: Callable[[str], None] = print,
    only: Sequence[str] | None = None,
    keep: bool = False,
) -> dict[str, Any]:
    """Benchmark one size (every stage, or those ``only`` names: the full city's year is
    hours, and its whole build is the stage that matters there); write and return its
    report. ``out`` and ``cache`` may be relative (``make bench`` passes the defaults): they
    are resolved here, because the stages run as processes whose environment must name
    absolute places (Dagster refuses a relative ``DAGSTER_HOME``). ``keep`` leaves the run's
    folder (``run-<citizens>-<days>`` in ``cache``: the built lake, its Dagster home, the
    held-back day) for measuring at that size without building it again; the next run of the
    size replaces it."""
    from pipelines.build import delivered_periods

    out, cache = out.resolve(), cache.resolve()

    load_before = _load()
    started = datetime.now(UTC)
    fresh = not (cache / f"city-{size_.citizens}-{size_.days}" / "synth.json").is_file()
    progress(f"synth: {size_.citizens:,} citizens, {size_.days} days ...")
    sources, synth = _city(size_, cache)
    synth.detail["reused_from_cache"] = not fresh
    work = cache / f"run-{size_.citizens}-{size_.days}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = stages.stage_env() | {
        "LAKEHOUSE_URI": str(work / "lakehouse"),
        "GJH_SOURCES": str(sources),
        "GJH_SECRETS_DIR": str(cache / "secrets"),
        "GJH_OUTBOX_DIR": str(work / "outbox"),
        "DAGSTER_HOME": str(work / "dagster"),
    }
    subprocess.run(
        [sys.executable, "-m", "gjh.cli", "keys"], env=env, check=True, capture_output=True
    )
    ctx = stages.Context(sources, work, env)
    held = newday.hold_back(ctx)  # the whole build takes the city less its last day
    months = [p for p in delivered_periods(sources) if len(p) == 7]
    rows = [synth]
    steps: dict[str, tuple[str, Callable[[], list[report.Measured]]]] = {
        "claims": ("claims bronze and silver", lambda: stages.claims(ctx, months)),
        "headers": ("DICOM header indexing", lambda: [stages.headers(ctx)]),
        "intake": ("DICOM intake against Orthanc", lambda: [orthanc.against_orthanc(ctx)]),
        "scoring": ("AI scoring", lambda: [stages.scoring(ctx)]),
        "build": ("whole build", lambda: [stages.build(held.built)]),
        "newday": ("one new day", lambda: [newday.stage(held, rows[-1])]),
        "demo": (overhead.STAGE, lambda: [overhead.demo_build(ctx)]),
        "queries": ("timeline, worklist and KPI queries", lambda: queries.measured_all(ctx)),
        "crowd": ("many people at once", lambda: _crowd(ctx)),
    }

    def written() -> dict[str, Any]:
        machine = {
            "cores": os.cpu_count(),
            "load_before": load_before,
            "load_after": _load(),
            "loaded": max(load_before, _load()) > (os.cpu_count() or 1) * 0.5,
            "started": started.isoformat(timespec="seconds"),
        }
        doc = report.assemble(
            {"name": size_.name, "citizens": size_.citizens, "days": size_.days}, rows, machine
        )
        write(doc, out, started)
        return doc

    # The report is written after every stage: at the city's size a run is hours, and a stage
    # that fails late must not take the figures of the stages before it with it.
    for key in chosen(only):
        name, step = steps[key]
        progress(f"{name} ...")
        rows += step()
        doc = written()
    doc = written()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return doc


def write(doc: dict[str, Any], out: Path, started: datetime) -> None:
    """``latest.json`` and ``latest.md``, and a dated copy of the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    text = report.dumps(doc)
    (out / "latest.json").write_text(text, encoding="utf-8")
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench-{doc['size']['citizens']}-{stamp}.json").write_text(text, encoding="utf-8")
    (out / "latest.md").write_text(report.markdown(doc), encoding="utf-8")


def grow(
    sizes: list[Size],
    out: Path,
    cache: Path,
    docs: Path,
    progress: Callable[[str], None] = print,
    only: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark each size, then draw the growth figure and table into ``docs``."""
    reports = [run(s, out, cache, progress, only) for s in sizes]
    (out / "growth.json").write_text(json.dumps(reports, indent=1) + "\n", encoding="utf-8")
    growth.write_png(reports, docs / "growth.png")
    (docs / "growth.md").write_text(growth.markdown(reports), encoding="utf-8")
    return reports


def _crowd(ctx: stages.Context) -> list[report.Measured]:
    """The crowd stage, imported when it runs: it drives Chromium through Playwright, a
    development dependency, which the other stages (and an installed platform) do without."""
    from gjh.bench import crowd

    return crowd.measured(ctx)
