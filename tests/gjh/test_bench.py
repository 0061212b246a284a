"""``gjh bench``: the report's assembly, ratios and targets, its JSON and Markdown, the growth
figure and table from given numbers, the size names; and one end-to-end run at a tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gjh.bench import growth, report
from gjh.bench.measure import run_measured
from gjh.bench.newday import RUN_STARTS, run_phase
from gjh.bench.report import Floor, Measured
from gjh.bench.run import CITY, STAGES, chosen, size
from gjh.bench.stages import build_phase, build_stages

MACHINE = {"cores": 2, "load_before": 3.2, "load_after": 4.1, "loaded": True, "started": "x"}
SIZE = {"name": "quick", "citizens": 2000, "days": 31}


def _row(stage: str, seconds: float, floor_s: float | None = None, **kw: Any) -> Measured:
    floor = None if floor_s is None else Floor("bare", floor_s, 100.0)
    return Measured(stage, seconds, seconds + 1, 1000, "rows", 200.0, floor, **kw)


def test_time_ratio_is_stage_over_floor_and_judged_against_at_most() -> None:
    assert report.ratio(_row("claims bronze", 3.0, 2.0)) == pytest.approx(1.5)
    assert report.met(_row("claims bronze", 3.0, 2.0)) is True
    assert report.met(_row("claims silver", 3.1, 2.0)) is False


def test_throughput_ratio_is_stage_rate_over_floor_rate_judged_against_at_least() -> None:
    # The same files: 10 s against a floor of 9 s is 0.9 of the floor's files per second.
    assert report.ratio(_row("DICOM header indexing", 10.0, 9.0)) == pytest.approx(0.9)
    assert report.met(_row("DICOM header indexing", 10.0, 9.0)) is True
    assert report.met(_row("DICOM header indexing", 10.0, 8.0)) is False
    assert report.met(_row("AI scoring", 10.0, 8.0)) is True


def test_latency_memory_and_untargeted_stages() -> None:
    assert report.met(_row("timeline query", 1.0, 5.0, p95_ms=99.0)) is True
    assert report.met(_row("timeline query", 1.0, 5.0, p95_ms=100.0)) is False
    assert report.met(_row("timeline query", 1.0, 5.0)) is None  # nothing to judge by
    big = Measured("whole build", 9.0, 9.0, 1, "rows", 8 * 1024 + 1)
    assert report.met(big) is False
    assert report.met(_row("whole build", 9.0)) is True
    assert report.met(_row("synth", 9.0)) is None
    assert report.ratio(_row("claims bronze", 3.0)) is None  # no floor measured
    assert report.met(_row("claims bronze", 3.0)) is None


def _report() -> dict[str, Any]:
    rows = [
        _row("synth", 8.0),
        _row("claims bronze", 4.0, 2.0),
        _row("DICOM header indexing", 10.0, 9.5),
        _row("timeline query", 0.5, 2.0, p95_ms=12.5),
    ]
    return report.assemble(SIZE, rows, MACHINE)


def test_many_people_judged_against_one_alone_and_failed_by_any_error() -> None:
    name = report.CROWD_STAGES[0]
    assert report.met(_row(name, 3.9, 2.0)) is True  # p95 3.9 s against 2.0 s alone
    assert report.met(_row(name, 4.1, 2.0)) is False
    assert report.met(_row(name, 1.0, 2.0, detail={"errors": ["citizen at 30 s"]})) is False


def test_json_schema_holds_every_field_and_round_trips() -> None:
    doc = json.loads(report.dumps(_report()))
    assert doc["schema"] == report.SCHEMA
    assert doc["size"] == SIZE and doc["machine"] == MACHINE
    assert "VmRSS" in doc["memory"]
    keys = {
        "stage", "seconds", "wall_seconds", "items", "unit", "peak_rss_mib", "floor", "p95_ms",
        "detail", "per_second", "ratio", "target", "met",
    }  # fmt: skip
    assert all(set(row) == keys for row in doc["stages"])
    bronze = doc["stages"][1]
    assert bronze["per_second"] == 250.0
    assert bronze["ratio"] == 2.0 and bronze["met"] is False
    assert bronze["target"] == {"kind": "time_ratio_max", "value": 1.5}
    assert bronze["floor"] == {"name": "bare", "seconds": 2.0, "peak_rss_mib": 100.0}
    assert doc["stages"][0]["target"] is None and doc["stages"][0]["met"] is None


def test_markdown_table_has_a_line_per_stage_with_its_verdict_and_the_load() -> None:
    text = report.markdown(_report())
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 2 + 4  # the header, its rule and one line per stage
    assert "**loaded machine**" in text
    bronze = next(line for line in lines if line.startswith("| claims bronze"))
    assert "| 2.00 |" in bronze and "time ≤ 1.5× floor" in bronze and "**not met**" in bronze
    headers = next(line for line in lines if line.startswith("| DICOM"))
    assert "throughput ≥ 0.9× floor" in headers and "| met |" in headers
    assert "p95 12.5 ms" in next(line for line in lines if line.startswith("| timeline"))
    assert "| synth | 8.00 |" in text


def _sized(citizens: int, scale: float) -> dict[str, Any]:
    rows = [_row("synth", 2.0 * scale), _row("claims bronze", 5.0 * scale, 2.0 * scale)]
    return report.assemble({**SIZE, "citizens": citizens}, rows, MACHINE)


def test_growth_series_table_and_figure_from_given_numbers(tmp_path: Path) -> None:
    reports = [_sized(5000, 2.5), _sized(2000, 1.0)]  # any order in, ascending out
    found = growth.series(reports)
    assert found["synth"] == [(2000, 2.0, 200.0), (5000, 5.0, 200.0)]
    table = growth.markdown(reports)
    assert table.splitlines()[0] == "| stage | 2,000 citizens | 5,000 citizens |"
    assert "| claims bronze | 5.0 s, 200 MiB | 12.5 s, 200 MiB |" in table
    fig = growth.figure(reports)
    assert len(fig.data) == 4  # two stages, time and memory panels
    assert list(fig.data[0].x) == [2000, 5000] and list(fig.data[0].y) == [2.0, 5.0]
    assert fig.layout.xaxis.type == "log"
    # A stage keeps its colour across the two panels and has a marker of its own.
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert fig.data[0].marker.symbol != fig.data[2].marker.symbol
    # The legend in rows below the panels: beside them, fifteen stages ran past the foot.
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    png = growth.write_png(reports, tmp_path / "growth.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1100, growth.HEIGHT)


def test_sizes_by_name_or_number() -> None:
    assert size("quick").citizens == 2000 and size("quick").days == 31
    assert size("city").citizens == CITY == 1_430_000 and size("city").days == 365
    assert size("50000").citizens == 50_000 and size("50000", 31).days == 31
    with pytest.raises(ValueError):
        size("0")


def test_stages_chosen_by_name_in_the_run_order() -> None:
    assert chosen() == list(STAGES)
    assert chosen(["crowd", "claims"]) == ["claims", "crowd"]
    assert chosen(["newday"]) == ["build", "newday"]  # a day is timed against the build
    with pytest.raises(ValueError, match="no stage bogus"):
        chosen(["build", "bogus"])


def test_gjh_bench_refuses_an_unknown_stage_before_any_work(tmp_path: Path) -> None:
    from gjh.cli import main

    assert main(["bench", "--stages", "build,bogus", "--cache", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()


def test_each_phase_of_a_run_has_its_own_peak() -> None:
    """Which stage of a long build held the memory: a phase that holds 300 MiB peaks there,
    the phase after it, which freed them, does not."""
    script = (
        "import time\n"
        "print('[1/2] holds: 1 table ...', flush=True)\n"
        "block = bytearray(300 * 2**20)\n"
        "time.sleep(1.0)\n"
        "del block\n"
        "print('      done in 1.0 s: 1 rows written', flush=True)\n"
        "print('[2/2] frees: 1 table ...', flush=True)\n"
        "time.sleep(1.0)\n"
    )
    done = run_measured([sys.executable, "-c", script], phase=build_phase)
    peaks = done["phase_peak_mib"]
    assert set(peaks) == {"holds", "frees"}
    assert peaks["holds"] >= 300 > peaks["frees"] + 200
    assert done["peak_rss_mib"] == pytest.approx(peaks["holds"])
    assert "done in 1.0 s" in done["stdout"]
    assert build_phase("      done in 1.0 s: 1 rows written") is None


def test_each_run_of_a_new_day_has_its_own_peak() -> None:
    """Which of a day's runs held its memory: the day's script names each run as it starts
    (``RUN_STARTS``), and the run that holds 300 MiB peaks there, not the one after it."""
    script = (
        "import time\n"
        f"print({RUN_STARTS!r} + 'gold_job', flush=True)\n"
        "block = bytearray(300 * 2**20)\n"
        "time.sleep(1.0)\n"
        "del block\n"
        "print('a line of the run', flush=True)\n"
        f"print({RUN_STARTS!r} + 'omop_job', flush=True)\n"
        "time.sleep(1.0)\n"
    )
    peaks = run_measured([sys.executable, "-c", script], phase=run_phase)["phase_peak_mib"]
    assert set(peaks) == {"gold_job", "omop_job"}
    assert peaks["gold_job"] >= 300 > peaks["omop_job"] + 200
    assert run_phase("centre_job:2025-12-31 failed") is None


def test_build_stages_parsed_from_gjh_build_output() -> None:
    out = (
        "gjh build: a -> b\n[1/2] sources delivered whole: 34 tables ...\n"
        "      done in 36.5 s: 9,194 rows written\n[2/2] gold: 5 tables ...\n"
        "      done in 12.3 s: 49,495 rows written, 1 checks failed\ngjh build: done in 50 s\n"
    )
    assert build_stages(out) == ({"sources delivered whole": 36.5, "gold": 12.3}, 58_689)


# A whole benchmark run (five minutes on a loaded machine): `make bench` runs it with the others.
@pytest.mark.benchmark
@pytest.mark.integration
@pytest.mark.timeout(900)
def test_gjh_bench_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    """Every stage runs at a tiny city and reports positive time and memory; the report and
    cache folders are given relative to the working directory, as ``make bench`` gives them."""
    out = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "gjh.cli", "bench", "--size", "300", "--days", "10",
        "--out", "results", "--cache", "cache",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE", "GJH_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    stages = {row["stage"]: row for row in doc["stages"]}
    assert set(stages) == {
        "synth", "claims bronze", "claims silver", "DICOM header indexing", "DICOM intake",
        "AI scoring", "whole build", "one new day", "make demo's build", "timeline query",
        "worklist query", "KPI query", *report.CROWD_STAGES,
    }  # fmt: skip
    for row in stages.values():
        assert row["seconds"] > 0 and row["peak_rss_mib"] > 0, row
        assert row["items"] > 0, row
    floored = ("claims bronze", "claims silver", "DICOM header indexing", "AI scoring")
    for name in (
        *floored,
        "DICOM intake",
        "timeline query",
        "worklist query",
        "KPI query",
        "one new day",
        "make demo's build",
        *report.CROWD_STAGES,
    ):
        assert stages[name]["floor"]["seconds"] > 0 and stages[name]["ratio"] > 0
    for name in floored:  # the floor did the same work
        assert stages[name]["items"] == stages[name]["detail"]["floor_items"], name
    built = stages["whole build"]["detail"]  # each build stage's time and its own peak
    assert set(built["stage_peak_mib"]) == set(built["stage_seconds"]) and built["stage_seconds"]
    day = stages["one new day"]["detail"]  # each of the day's runs: its time and its own peak
    assert set(day["phase_peak_mib"]) == set(day["job_seconds"]) and day["job_seconds"]
    rounds = stages["AI scoring"]["detail"]["rounds"]  # scoring: 3 runs of 3, each reported
    assert len(rounds) == 3 and all(r["ratio"] > 0 for r in rounds)
    assert stages["AI scoring"]["ratio"] == pytest.approx(min(r["ratio"] for r in rounds), 1e-3)
    assert (out / "latest.md").read_text(encoding="utf-8") in done.stdout
    assert len(list(out.glob("bench-300-*.json"))) == 1


def test_a_stage_that_fails_late_leaves_the_report_of_those_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the city's size a run is hours: the report is written after every stage, so a late
    failure keeps what was measured before it (the stages themselves stand in here; the city
    and its held-back day are real)."""
    from gjh.bench import run, stages

    def claims(ctx: stages.Context, periods: list[str]) -> list[Measured]:
        return [_row("claims bronze", 2.0, 1.0)]

    def headers(ctx: stages.Context) -> Measured:
        raise RuntimeError("the disk filled")

    monkeypatch.setattr(stages, "claims", claims)
    monkeypatch.setattr(stages, "headers", headers)
    out = tmp_path / "results"
    with pytest.raises(RuntimeError, match="the disk filled"):
        run.run(
            size("300", 3), out, tmp_path / "cache", progress=lambda _: None,
            only=["claims", "headers"],
        )  # fmt: skip
    kept = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert [row["stage"] for row in kept["stages"]] == ["synth", "claims bronze"]
    assert "claims bronze" in (out / "latest.md").read_text(encoding="utf-8")


def test_gjh_bench_keep_leaves_the_run_folder_for_later_measurement(tmp_path: Path) -> None:
    """``--keep`` leaves the run's folder (the held-back day is in it), so a city built once
    can be measured again; without it the folder is deleted."""
    from gjh.cli import main

    cache = tmp_path / "cache"
    common = ["bench", "--size", "300", "--days", "3", "--stages", "claims", "--cache", str(cache)]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert not (cache / "run-300-3").exists()
    assert main([*common, "--out", str(tmp_path / "b"), "--keep"]) == 0
    kept = cache / "run-300-3"
    assert (kept / "held").is_dir() and any((kept / "sources-held-back").iterdir())
