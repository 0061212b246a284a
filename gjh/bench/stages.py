"""The stages of ``gjh bench`` and their floors, each run as its own process and measured from
outside (``measure.run_measured``: wall time and the process tree's peak memory). Each script
prints one JSON line last: ``seconds`` (its own clock around the work, imports and start-up
excluded, the same on both sides of a ratio) and ``items`` (rows or files it processed).

Scripts put their imports under the main guard: spawned worker processes re-import a script's
top level."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gjh.bench.measure import run_measured
from gjh.bench.report import Floor, Measured

WORKERS = 2
# Scoring's target holds in 3 runs of 3 (issue 23): the stage and its floor, three rounds.
ROUNDS = 3
# Dagster's console logger at WARNING: the runs' debug events are not the benchmark's output.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Quiet Dagster runs, in process, with a throwaway instance: what the stage costs, not the UI.
# Put before BRONZE and SILVER (``str.format`` templates; this one is not).
_MATERIALIZE = """
def materialize(assets, period):
    import dagster as dg
    from pipelines.defs.resources import Lakehouse
    result = dg.materialize(
        assets, partition_key=period, resources={"lakehouse": Lakehouse()},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    assert result.success
    return sum(
        int(e.step_materialization_data.materialization.metadata["dagster/row_count"].value)
        for e in result.get_asset_materialization_events()
        if "dagster/row_count" in e.step_materialization_data.materialization.metadata
    )
"""
# The registers (citizens, institutions) that the silver and imaging tables' foreign-key checks
# read, written before the stages whose assets evaluate those checks in their own steps (not
# timed; the lakehouse is the environment's).
REGISTRY = """
if __name__ == "__main__":
    import dagster as dg
    from pipelines.defs import registry
    from pipelines.defs.resources import Lakehouse
    result = dg.materialize(
        [registry.bronze_registry, registry.silver_registry],
        resources={"lakehouse": Lakehouse()}, instance=dg.DagsterInstance.ephemeral(),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    assert result.success
"""
BRONZE = """
if __name__ == "__main__":
    import json, time
    from pipelines.defs import claims
    began, rows = time.perf_counter(), 0
    for period in {periods!r}:
        rows += materialize([claims.bronze_claims, claims.bronze_pharmacy], period)
    print(json.dumps({{"seconds": time.perf_counter() - began, "items": rows}}))
"""
SILVER = """
if __name__ == "__main__":
    import json, time
    from pipelines.defs import claims
    began, rows = time.perf_counter(), 0
    for period in {periods!r}:
        rows += materialize([claims.silver_claims], period)
    print(json.dumps({{"seconds": time.perf_counter() - began, "items": rows}}))
"""
BARE_BRONZE = """
if __name__ == "__main__":
    import json
    from pathlib import Path
    from gjh.bench.floors import bare_bronze
    seconds, rows = bare_bronze(Path({sources!r}), {periods!r}, Path({out!r}))
    print(json.dumps({{"seconds": seconds, "items": rows}}))
"""
BARE_SILVER = """
if __name__ == "__main__":
    import json
    from pathlib import Path
    from gjh.bench.floors import bare_silver
    from lakehouse import delta, read
    from pipelines.defs import claims
    bronze = [delta.uri(n) for s in claims.SOURCES.values() for n in s.values()]
    silver = {{name: read.frame(name) for name in claims.SILVER}}
    seconds = bare_silver(bronze, silver, Path({out!r}))
    print(json.dumps({{"seconds": seconds, "items": sum(f.height for f in silver.values())}}))
"""
# The pipeline's header indexing stage, ``Readers.read_all`` with ``task`` in worker processes
# (their start-up included): listing the drop, hashing, the header parse, the checks, the
# values, pseudonymisation, the results back in file order.
HEADER_INDEXING = """
if __name__ == "__main__":
    import json, time
    from datetime import UTC, datetime
    from pathlib import Path
    from pipelines.ingest import dicom
    began = time.perf_counter()
    with dicom.Readers({workers}) as readers:
        files = dicom.landed(Path({sources!r}), 0, datetime.now(UTC))
        results = list(readers.read_all(files, dicom.{task}))
    seconds = time.perf_counter() - began
    print(json.dumps({{"files": len(results), "seconds": seconds, "items": len(results),
        "indexed": sum(r.row is not None for r in results)}}))
"""
# The floor of header indexing with both cores used: the bare loop as one process per core,
# each over its share of the files, all at once.
BARE_HEADERS = """
if __name__ == "__main__":
    import json, subprocess, sys, time
    from gjh.bench.floors import BARE_DCMREAD
    lists = {lists!r}
    began = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", BARE_DCMREAD, f]) for f in lists]
    assert all(p.wait() == 0 for p in procs)
    print(json.dumps({{"seconds": time.perf_counter() - began, "items": {files}}}))
"""
# The pipeline's scoring, ``ai_findings`` in two workers (decode, prepare, infer; finding rows,
# heatmaps and SRs into the object store; the Delta writes), by its own clock
# (``scoring_seconds``: from before the workers start to after the last Delta commit). Run from
# a file: spawned workers re-import the main module.
SCORING = """
if __name__ == "__main__":
    import json
    import dagster as dg
    from pipelines.defs.scoring import ai_findings
    from pipelines.defs.resources import Lakehouse, Scoring
    result = dg.materialize([ai_findings], resources={{
        "lakehouse": Lakehouse(lakehouse_uri={lake!r}, sources_dir={sources!r}),
        "scoring": Scoring(workers={workers}),
    }}, instance=dg.DagsterInstance.ephemeral(), run_config={quiet!r})
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    seconds = metadata["scoring_seconds"].value
    from lakehouse import read
    studies = read.frame("ai.findings").height
    print(json.dumps({{"scoring_seconds": seconds, "seconds": seconds, "items": studies}}))
"""
# Before each scoring round: the findings of the round before, and their objects, removed.
UNSCORE = "from gjh.bench.scoring_floor import unscore; unscore()"
# Indexing and routing the city's uploads into the scoring lake, before scoring (not timed).
ROUTED = """
if __name__ == "__main__":
    import dagster as dg
    from pipelines.defs.imaging import imaging_index, imaging_routing
    from pipelines.defs.resources import Imaging, Lakehouse
    dg.materialize([imaging_index, imaging_routing], resources={{
        "lakehouse": Lakehouse(lakehouse_uri={lake!r}, sources_dir={sources!r}),
        "imaging": Imaging(quiet_period_s=0, settle_s=0, workers={workers}),
    }}, instance=dg.DagsterInstance.ephemeral(), run_config={quiet!r})
"""
BARE_SCORING = """
if __name__ == "__main__":
    import json
    from gjh.bench.scoring_floor import bare_scoring, routed_jobs
    studies, seconds = bare_scoring(routed_jobs())
    print(json.dumps({"seconds": seconds, "items": studies}))
"""


@dataclass(frozen=True)
class Context:
    """Where one size's run lives: the city's drop folder, the lakehouse, the keys."""

    sources: Path
    work: Path
    env: Mapping[str, str]


def _run(
    cmd: list[str], env: Mapping[str, str], phase: Callable[[str], str | None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a stage's process; (its last JSON line, the outside measurement, with each phase's
    peak when ``phase`` names the phase a printed line starts)."""
    measured = run_measured(cmd, phase=phase, env=dict(env))
    return json.loads(measured["stdout"].strip().splitlines()[-1]), measured


def _script(
    script: str, env: Mapping[str, str], phase: Callable[[str], str | None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    return _run([sys.executable, "-c", script], env, phase)


def _script_file(script: Path, env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _run([sys.executable, str(script)], env)


def _measured(
    stage: str,
    script: str,
    env: Mapping[str, str],
    unit: str = "rows",
    phase: Callable[[str], str | None] | None = None,
) -> Measured:
    """The stage's row from its script's last JSON line and the outside measurement; with
    ``phase``, each phase's own peak in the detail (``phase_peak_mib``)."""
    out, outside = _script(script, env, phase)
    peaks = {name: round(mib, 1) for name, mib in outside["phase_peak_mib"].items()}
    detail = {k: v for k, v in out.items() if k not in {"seconds", "items", "p95_ms"}}
    return Measured(
        stage=stage,
        seconds=out["seconds"],
        wall_seconds=outside["seconds"],
        items=int(out["items"]),
        unit=unit,
        peak_rss_mib=outside["peak_rss_mib"],
        p95_ms=out.get("p95_ms"),
        detail=detail | ({"phase_peak_mib": peaks} if peaks else {}),
    )


def _floor(name: str, script: str, env: Mapping[str, str]) -> tuple[Floor, int]:
    """The floor and how many items it processed (the stage's should match)."""
    out, outside = _script(script, env)
    return Floor(name, out["seconds"], outside["peak_rss_mib"]), int(out["items"])


def _with(row: Measured, floor: Floor, items: int) -> Measured:
    """The stage's row with its floor, and the floor's item count kept in its detail."""
    detail = row.detail | {"floor_items": items}
    return Measured(**{**row.__dict__, "floor": floor, "detail": detail})


def claims(ctx: Context, periods: list[str]) -> list[Measured]:
    """Claims bronze and silver of every delivered month, each against its floor."""
    bare = ctx.work / "bare"
    bronze_floor = _floor(
        "read_csv + write_delta",
        BARE_BRONZE.format(sources=str(ctx.sources), periods=periods, out=str(bare / "bronze")),
        ctx.env,
    )
    subprocess.run(
        [sys.executable, "-c", REGISTRY], env=dict(ctx.env), check=True, capture_output=True
    )
    bronze = _measured("claims bronze", _MATERIALIZE + BRONZE.format(periods=periods), ctx.env)
    silver = _measured("claims silver", _MATERIALIZE + SILVER.format(periods=periods), ctx.env)
    silver_floor = _floor(
        "read_delta + write_delta", BARE_SILVER.format(out=str(bare / "silver")), ctx.env
    )
    return [_with(bronze, *bronze_floor), _with(silver, *silver_floor)]


def headers(ctx: Context) -> Measured:
    """DICOM header indexing of the city's uploads against the bare loop on both cores."""
    files = sorted(str(p) for p in (ctx.sources / "imaging").rglob("*") if p.is_file())
    lists = []
    for i in range(WORKERS):
        listing = ctx.work / f"headers-{i}.txt"
        listing.write_text("\n".join(files[i::WORKERS]), encoding="utf-8")
        lists.append(str(listing))
    floor = _floor(
        "dcmread(stop_before_pixels=True), 2 processes",
        BARE_HEADERS.format(lists=lists, files=len(files)),
        ctx.env,
    )
    script = HEADER_INDEXING.format(sources=str(ctx.sources), workers=WORKERS, task="read")
    return _with(_measured("DICOM header indexing", script, ctx.env, "files"), *floor)


def scoring(ctx: Context, rounds: int = ROUNDS) -> Measured:
    """AI scoring of the city's routed studies against the bare read, prepare and infer loop,
    ``rounds`` times (the floor, then the stage, each round; ``ai.findings`` and its objects
    removed before a round, so that every round scores every study into free names). Issue 23
    asks for the target in every round: the row is the round with the lowest ratio, and every
    round is in its detail."""
    lake = ctx.work / "scoring"
    env = dict(ctx.env) | {"LAKEHOUSE_URI": str(lake)}
    args = {"lake": str(lake), "sources": str(ctx.sources), "workers": WORKERS, "quiet": QUIET}
    for setup in (REGISTRY, ROUTED.format(**args)):
        subprocess.run([sys.executable, "-c", setup], env=env, check=True, capture_output=True)
    script = ctx.work / "score.py"
    script.write_text(SCORING.format(**args), encoding="utf-8")
    measured: list[Measured] = []
    each: list[dict[str, float]] = []
    for _ in range(rounds):
        subprocess.run([sys.executable, "-c", UNSCORE], env=env, check=True, capture_output=True)
        floor, items = _floor("pixel read + preprocess + session.run", BARE_SCORING, env)
        out, outside = _script_file(script, env)
        row = Measured(
            stage="AI scoring",
            seconds=out["seconds"],
            wall_seconds=outside["seconds"],
            items=int(out["items"]),
            unit="studies",
            peak_rss_mib=outside["peak_rss_mib"],
        )
        measured.append(_with(row, floor, items))
        each.append(
            {
                "seconds": row.seconds,
                "floor_seconds": floor.seconds,
                "ratio": floor.seconds / row.seconds,
            }
        )
    worst = min(range(rounds), key=lambda i: each[i]["ratio"])
    row = measured[worst]
    return Measured(**{**row.__dict__, "detail": row.detail | {"rounds": each}})


def build_stages(stdout: str) -> tuple[dict[str, float], int]:
    """Each stage's seconds and the rows written in all, from what ``gjh build`` printed:
    "[i/n] <stage> ...: k tables ..." then "      done in S s: R rows written"."""
    stages: dict[str, float] = {}
    rows = 0
    for head, done in itertools.pairwise(stdout.splitlines()):
        if head.startswith("[") and "done in" in done:
            name = head.split("]", 1)[1].split(":", 1)[0].strip()
            stages[name] = float(done.split("done in")[1].split()[0])
            rows += int(done.split(":", 1)[1].split()[0].replace(",", ""))
    return stages, rows


def build_phase(line: str) -> str | None:
    """The build stage a line of ``gjh build`` starts ("[i/n] <stage> ...: ..."), if it does."""
    if not line.startswith("["):
        return None
    return line.split("]", 1)[1].split(":", 1)[0].strip() or None


def build(ctx: Context) -> Measured:
    """``gjh build`` of the city into its own lakehouse and Dagster instance, as ``make demo``
    runs it: every stage, scoring and the gold and OMOP tables included."""
    env = dict(ctx.env) | {
        "LAKEHOUSE_URI": str(ctx.work / "built"),
        "DAGSTER_HOME": str(ctx.work / "dagster"),
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "gjh.cli", "build", "--sources", str(ctx.sources)]
    outside = run_measured(cmd, phase=build_phase, env=env)
    stages, rows = build_stages(outside["stdout"])
    peaks = {name: round(mib, 1) for name, mib in outside["phase_peak_mib"].items()}
    return Measured(
        stage="whole build",
        seconds=outside["seconds"],
        wall_seconds=outside["seconds"],
        items=rows,
        unit="rows",
        peak_rss_mib=outside["peak_rss_mib"],
        detail={"stage_seconds": stages, "stage_peak_mib": peaks},
    )


def stage_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment stage processes run in: this one's, with the repository importable."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
