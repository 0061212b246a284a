"""Scoring benchmark: the ``ai_findings`` asset against a bare loop doing the same reading,
preprocessing and inference on the same studies, in the same run.

A synthetic city (``GJH_BENCH_CITIZENS``, default 20,000 citizens over a year: about 2,400
studies, enough for the workers' start-up to be a small part of the run) is indexed and
routed; then, on the same routed studies:

* bare: one process; for every routed study and its service, each instance read from the object
  store with pydicom (``dicom_store.dataset``), prepared by ``models.runtime.preprocess`` and the
  study's inputs passed to ``InferenceSession.run`` (onnxruntime's own threads: both cores);
* scoring: ``ai_findings`` materialised in its own process with two workers (decode, prepare,
  infer), plus what the bare loop does not do: the finding rows, heatmaps and DICOM SRs
  encrypted into the object store, and the Delta writes. Its own clock (``scoring_seconds``
  in the materialisation's metadata) starts before the worker processes and ends after the
  last Delta commit: that is the end-to-end scoring measured against the target;
* whole asset: the same run's wall time, Dagster's start-up and the process's imports included,
  reported beside the target.

Target (issue 5): scoring throughput >= 0.8 x the bare loop's, with both cores used, in 3 runs
of 3 (issue 23): the bare loop and the stage run three rounds in turn (``ai.findings`` and the
heatmaps and SRs it points at removed before each, so every round scores every study and stores
under free names, as production does), and each round's figures are reported. Reported
as studies per hour, and per core (throughput divided by the two cores both sides may use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from gjh.bench.measure import run_measured
from gjh.bench.scoring_floor import bare_scoring, routed_jobs, unscore
from gjh.bench.stages import QUIET, SCORING
from lakehouse import read as lake_read
from pipelines.defs import registry
from pipelines.defs.imaging import imaging_index, imaging_routing
from pipelines.defs.resources import Imaging, Lakehouse
from tests.benchmarks.conftest import record
from tests.conftest import KEYS

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
CITIZENS = int(os.environ.get("GJH_BENCH_CITIZENS", "20000"))
WORKERS = 2
ROUNDS = 3
TARGET = 0.8


def test_scoring_against_a_bare_read_preprocess_infer_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = tmp_path / "city"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("gjh")),
            "synth",
            *("--citizens", str(CITIZENS), "--start", "2025-01-01", "--days", "365"),
            *("--seed", "11", "--out", str(city), "--workers", "2"),
        ],
        check=True,
        capture_output=True,
    )
    lake = tmp_path / "lakehouse"
    for name, value in (KEYS | {"LAKEHOUSE_URI": str(lake), "GJH_SOURCES": str(city)}).items():
        monkeypatch.setenv(name, value)
    # The registers first: the imaging tables' foreign-key checks run in the index's step.
    dg.materialize(
        [registry.bronze_registry, registry.silver_registry],
        resources={"lakehouse": Lakehouse(lakehouse_uri=str(lake), sources_dir=str(city))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    dg.materialize(
        [imaging_index, imaging_routing],
        resources={
            "lakehouse": Lakehouse(lakehouse_uri=str(lake), sources_dir=str(city)),
            "imaging": Imaging(quiet_period_s=0, settle_s=0, workers=2),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    jobs = routed_jobs()
    total = sum(len(j) for _, j in jobs)
    assert total > 100

    script = tmp_path / "score.py"  # a file, not -c: spawned workers re-import the main module
    script.write_text(
        SCORING.format(lake=str(lake), sources=str(city), workers=WORKERS, quiet=QUIET)
    )
    rounds = []
    for _ in range(ROUNDS):  # the target holds in 3 runs of 3 (issue 23): each round reported
        unscore()  # the findings and their objects: every round stores under free names
        bare_studies, bare_s = bare_scoring(jobs)
        scored = run_measured([sys.executable, str(script)], env=os.environ | KEYS)
        stage_s = json.loads(scored["stdout"].strip().splitlines()[-1])["scoring_seconds"]
        findings = lake_read.frame("ai.findings")
        assert findings.height == total == bare_studies
        rounds.append(_round(total, bare_s, stage_s, scored))
    cores = os.cpu_count() or 1
    ratios = [r["ratio"] for r in rounds]
    record(
        "scoring",
        {
            "studies": total,
            "instances": sum(len(j.instances) for _, js in jobs for j in js),
            "failed": int((findings["status"] == "failed").sum()),
            "per_service": {s.service: len(j) for s, j in jobs},
            "rounds": rounds,
            "ratios": ratios,
            "target_ratio": TARGET,
            "rounds_met": sum(r >= TARGET for r in ratios),
            "target_met": all(r >= TARGET for r in ratios),
            "cores": cores,
        },
    )


def _round(studies: int, bare_s: float, stage_s: float, scored: dict[str, Any]) -> dict[str, Any]:
    """One round's figures: the bare loop, the stage by its own clock, the whole asset."""
    bare_rate, rate = studies / bare_s, studies / stage_s
    whole = studies / scored["seconds"]
    return {
        "bare_seconds": round(bare_s, 1),
        "bare_studies_per_hour": round(bare_rate * 3600),
        "bare_studies_per_hour_per_core": round(bare_rate * 3600 / WORKERS),
        "scoring_seconds": round(stage_s, 1),
        "scoring_studies_per_hour": round(rate * 3600),
        "scoring_studies_per_hour_per_core": round(rate * 3600 / WORKERS),
        "whole_asset_seconds": round(scored["seconds"], 1),
        "whole_asset_ratio": round(whole / bare_rate, 3),
        "peak_rss_mib_all_processes": round(scored["peak_rss_mib"]),
        "ratio": round(rate / bare_rate, 3),
    }
