"""How long the synthetic city takes, and in how much memory, against bare Polars writing the
same claims rows in the same run. Only `make bench` runs these."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from gjh.bench.measure import run_measured
from tests.benchmarks.conftest import record

# Full-city runs take far longer than the suite's per-test timeout.
pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(3 * 3600)]

CITIES = {
    "demo": 5_000,  # `make demo`; target: well under a minute
    "full": 1_430_000,  # all of Gwangju; target: bounded memory (streamed to disk)
}


def _bare_polars_write(out: Path, scratch: Path) -> tuple[float, int]:
    """Write every claims and pharmacy row again with plain `polars.write_csv`, timing the writes
    only: the floor for producing the same bytes with the same library."""
    seconds, rows = 0.0, 0
    for manifest in sorted(out.glob("*/*/delivery.json")):
        if manifest.parts[-3] not in ("claims", "pharmacy"):
            continue
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        for entry in doc["files"]:
            try:
                text = (manifest.parent / entry["name"]).read_bytes().decode(entry["encoding"])
            except UnicodeDecodeError:  # the injected wrongly declared file: skip it
                continue
            frame = pl.read_csv(text.encode(), infer_schema=False, truncate_ragged_lines=True)
            began = time.perf_counter()
            frame.write_csv(scratch / entry["name"])
            seconds += time.perf_counter() - began
            rows += frame.height
    return seconds, rows


@pytest.mark.parametrize("city", list(CITIES))
def test_synth_city(city: str, tmp_path: Path) -> None:
    out = tmp_path / "sources"
    citizens = CITIES[city]
    cmd = [
        sys.executable, "-m", "gjh.cli", "synth", "--citizens", str(citizens),
        "--start", "2025-01-01", "--days", "365", "--seed", "20250101",
        "--out", str(out), "--inject-faults", "--workers", "2",
    ]  # fmt: skip
    measured = run_measured(cmd)
    manifest = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))
    scratch = tmp_path / "bare"
    scratch.mkdir()
    bare_seconds, rows = _bare_polars_write(out, scratch)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    # The command prints "stages: population 0.3s, registries 0.1s, claims 3.4s, ...".
    stages_line = next(x for x in measured["stdout"].splitlines() if "stages:" in x)
    stages = {
        name: float(secs.rstrip("s"))
        for name, secs in (part.split() for part in stages_line.split(":", 1)[1].split(","))
    }
    result = {
        "citizens": citizens,
        "days": 365,
        "seconds": round(measured["seconds"], 1),
        "peak_rss_mib_all_processes": round(measured["peak_rss_mib"]),
        "output_gib": round(size / 2**30, 2),
        "files": manifest["files"],
        "claims_and_pharmacy_rows": rows,
        "stage_seconds": stages,
        "bare_polars_write_csv_seconds": round(bare_seconds, 1),
        # Claims stage (simulate visits, build tables, encode, write) against writing its rows.
        "claims_stage_vs_bare_write": round(stages["claims"] / max(bare_seconds, 1e-9), 1),
        "imaging_studies": manifest["counts"]["imaging"]["studies"],
    }
    record(f"synth_{city}", result)
    shutil.rmtree(out)
    assert rows > 0
