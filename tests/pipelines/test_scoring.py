"""AI scoring on the small city's real uploads: real Dagster runs, the shipped ONNX models, the
encrypted object store, DICOM SRs read back with pydicom and highdicom."""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import multiprocessing
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pydicom
import pytest

from gjh.bench.scoring_floor import routed_jobs
from lakehouse import dicom_store, sr
from lakehouse.pool import RemoteError
from models.runtime.registry import active, registry
from pipelines.defs.imaging import imaging_index, imaging_routing
from pipelines.defs.resources import Imaging, Scoring
from pipelines.defs.scoring import ai_findings
from pipelines.score import scoring
from tests.conftest import City
from tests.lakehouse.test_pool import loaded
from tests.pipelines.conftest import Lake
from tests.pipelines.ecg import stored_ecg_job

pytestmark = pytest.mark.integration
FINDINGS = "ai.findings"


def run(lake: Lake, assets: list[dg.AssetsDefinition], **env: str) -> dg.ExecuteInProcessResult:
    resources = lake.resources | {
        "imaging": Imaging(quiet_period_s=0, settle_s=0, workers=2),
        "scoring": Scoring(batch=32, workers=2),
    }
    with lake.active(), pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        registry_cache_clear()
        try:
            return dg.materialize(
                assets, resources=resources, instance=dg.DagsterInstance.ephemeral()
            )
        finally:
            registry_cache_clear()


def registry_cache_clear() -> None:
    from models.runtime import registry as model_registry

    model_registry._registry.cache_clear()


@pytest.fixture(scope="module")
def scored(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city's uploads indexed, routed once complete, and scored."""
    sources = tmp_path_factory.mktemp("scoring_city") / "sources"
    shutil.copytree(small_city.out / "imaging", sources / "imaging", copy_function=shutil.copy2)
    lake = Lake(sources.parent / "lakehouse", sources)
    run(lake, [imaging_index, imaging_routing, ai_findings])
    return lake


def _truth(city: City) -> dict[str, dict]:
    lines = (city.out / "ground_truth" / "imaging_studies.jsonl").read_text().splitlines()
    return {s["study_uid"]: s for s in map(json.loads, lines)}


def test_every_routed_study_gets_one_finding_per_service_version(scored: Lake) -> None:
    routed = scored.frame("silver.imaging_routing", pl.col("outcome") == "routed")
    pairs = set(routed.select("study_instance_uid", "service").unique().iter_rows())
    findings = scored.frame(FINDINGS)
    assert findings.height == len(pairs) > 20
    assert set(findings.select("study_instance_uid", "service").iter_rows()) == pairs
    versions = {s.service: s.version for s in active()}
    for row in findings.iter_rows(named=True):
        assert row["algorithm_version"] == versions[row["service"]]
        assert row["verification"] == "unverified" and row["synthetic_reference"]
        if row["status"] == "failed":
            assert row["reason"] and row["message"] and row["priority"] == 4
            continue
        assert row["sr_uri"] and row["heatmap_uri"] and row["location"]
        assert (row["score"] is not None) != (row["value"] is not None)
    assert (findings["status"] == "scored").sum() > 0.9 * findings.height
    assert {"chest", "ecg", "mammography"} <= set(findings["service"].to_list())


def test_findings_agree_with_the_synthetic_ground_truth(small_city: City, scored: Lake) -> None:
    truth = _truth(small_city)
    findings = scored.frame(FINDINGS, pl.col("score").is_not_null())
    labels = np.array([truth[s]["abnormal"] for s in findings["study_instance_uid"]])
    scores = findings["score"].to_numpy().astype(np.float64)
    assert labels.any() and not labels.all()
    # Pooled over services, positives rank above negatives far more often than chance.
    above = (scores[labels][:, None] > scores[~labels][None, :]).mean()
    assert above > 0.75, above


def test_each_sr_reads_back_with_its_finding(scored: Lake) -> None:
    findings = scored.frame(FINDINGS, pl.col("status") == "scored")
    with scored.active():
        for row in findings.iter_rows(named=True):
            ds = pydicom.dcmread(io.BytesIO(dicom_store.get(row["sr_uri"])))
            assert ds.StudyInstanceUID == row["study_instance_uid"]
            (found,) = sr.read_findings(ds)
            assert found["tracking_uid"] == row["tracking_uid"]
            assert found["sop_instance_uid"] == row["sop_instance_uid"]
            assert found["finding_code"] == row["finding_code"]
            if row["score"] is not None:
                assert found["score"] == pytest.approx(row["score"], abs=1e-6)
            heatmap = np.load(io.BytesIO(dicom_store.get(row["heatmap_uri"])))
            assert heatmap.ndim in (1, 2) and np.isfinite(heatmap).all()


def test_a_rerun_scores_nothing_and_a_new_version_rescores(scored: Lake, tmp_path: Path) -> None:
    before = scored.snapshot([FINDINGS])
    run(scored, [ai_findings])
    assert scored.snapshot([FINDINGS])[FINDINGS].equals(before[FINDINGS])
    # A retrained chest model: a new folder version in a copy of the registry.
    models = tmp_path / "models"
    shutil.copytree(registry()["chest"].folder.parent, models)
    text = (models / "registry.toml").read_text(encoding="utf-8")
    entries = tomllib.loads(text)["service"]
    old = next(e for e in entries if e["service"] == "chest")["version"]
    (models / "chest" / f"chest-{old}.onnx").rename(models / "chest" / "chest-1.0.1.onnx")
    text = text.replace(f'version = "{old}"\ndevice_uid', 'version = "1.0.1"\ndevice_uid', 1)
    (models / "registry.toml").write_text(text, encoding="utf-8")
    run(scored, [ai_findings], GJH_MODELS_DIR=str(models))
    after = scored.frame(FINDINGS)
    keys = ["study_instance_uid", "service", "algorithm_version", "finding_code"]
    added = after.join(before[FINDINGS], on=keys, how="anti")
    chest = before[FINDINGS].filter(pl.col("service") == "chest").height
    assert added.height == chest > 0
    assert set(added["service"].to_list()) == {"chest"}
    assert set(added["algorithm_version"].to_list()) == {"1.0.1"}


def test_unreadable_pixels_give_a_failed_row_not_a_crash(scored: Lake) -> None:
    service = registry()["chest"]
    with scored.active():
        instances = scored.frame("silver.imaging_instances")
        studies = scored.frame("silver.imaging_studies")
        routing = scored.frame("silver.imaging_routing", pl.col("service") == "chest")
        # A chest radiograph stored uncompressed, so that cutting its pixel data short is what
        # makes it unreadable (a compressed one could fail in its codec instead).
        for row in instances.join(
            routing.select("study_instance_uid", "series_instance_uid"),
            on=["study_instance_uid", "series_instance_uid"],
        ).iter_rows(named=True):
            original = dicom_store.get(row["file_uri"])
            ds = pydicom.dcmread(io.BytesIO(original))
            if not ds.file_meta.TransferSyntaxUID.is_compressed:
                break
        else:
            raise AssertionError("the small city has no uncompressed chest radiograph")
        study = studies.filter(pl.col("study_instance_uid") == row["study_instance_uid"]).row(
            0, named=True
        )
        ds.PixelData = bytes(ds.PixelData)[:64]  # the pixels cut short
        key = dicom_store.object_key("2.25.1", "2.25.2", "2.25.3")
        buffer = io.BytesIO()
        ds.save_as(buffer)
        dicom_store.put(key, buffer.getvalue(), replace=True)
        good = scoring.Job(study, [row])
        cut = scoring.Job(study, [row | {"file_uri": key}])
        missing = scoring.Job(study, [row | {"file_uri": key.replace("2.25.3", "2.25.4")}])
        with scoring.Scorers() as scorers:
            out = list(scorers.score([(service, [cut, good, missing])], datetime.now(UTC)))
    assert [r["status"] for r in out] == ["failed", "scored", "failed"]
    assert [r["reason"] for r in out] == [scoring.UNREADABLE, None, scoring.MISSING]
    assert "2.25.4" in out[2]["message"] and out[0]["message"]
    assert out[1]["message"] is None and out[1]["sr_uri"]
    for failed in (out[0], out[2]):  # nothing stored, nothing located
        assert failed["sr_uri"] is None and failed["heatmap_uri"] is None
        assert failed["location"] is None and failed["priority"] == 4


def test_the_ecg_from_pydicoms_test_files_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lake"))
    with scoring.Scorers() as scorers:
        work = [(registry()["ecg"], [stored_ecg_job()])]
        (out,) = scorers.score(work, datetime.now(UTC))
    assert out["status"] == "scored", out
    assert 0 <= out["score"] <= 1
    assert json.loads(out["location"])["type"] == "segments"
    report = pydicom.dcmread(io.BytesIO(dicom_store.get(out["sr_uri"])))
    assert len(sr.read_findings(report)) == 1


def test_the_scorers_import_scoring_as_they_start_not_at_their_first_chunk() -> None:
    """So that their imports (onnxruntime, pydicom, highdicom: about a second) overlap the
    caller's reading of what is pending, as ``run_scoring`` intends."""
    with scoring.Scorers(2) as scorers:
        assert list(scorers.pool.map(loaded, [scoring.__name__] * 2)) == [True, True]


def test_two_scorers_are_one_process_and_this_one_and_score_as_one_alone(
    scored: Lake, tmp_path: Path
) -> None:
    """``Scorers(2)`` spawns one process and scores in a thread of this one beside it (which
    has imported everything already); the rows are those one scorer makes alone, this
    process's garbage collector is as it was, and an error in this process's chunk is raised
    here, not from a worker."""
    now = datetime(2026, 12, 7, tzinfo=UTC)

    def by_key(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["study_instance_uid"], r["service"]))

    with scored.active():
        work = routed_jobs()
        with scoring.Scorers(1, threads=1) as one:
            alone = list(one.score(work, now, batch=16))
        with scoring.Scorers(2) as two:
            spawned = [p.name for p in multiprocessing.active_children()]
            beside = list(two.score(work, now, batch=16))
        assert [name for name in spawned if name.startswith("scorer")] == ["scorer-1"]
        assert len(beside) == len(alone) > 20
        assert by_key(beside) == by_key(alone)
        assert gc.get_freeze_count() == 0

        # The first chunk is this process's: its worker is still importing when it is taken.
        broken = dataclasses.replace(work[0][0], folder=tmp_path / "no-such-model", version="9")
        with (
            scoring.Scorers(2) as two,
            pytest.raises(Exception, match="no-such-model") as caught,
        ):
            list(two.score([(broken, work[0][1]), *work[1:]], now, batch=16))
        assert not isinstance(caught.value.__cause__, RemoteError)
        assert gc.get_freeze_count() == 0


def test_a_scorer_writes_reports_without_importing_highdicom(scored: Lake) -> None:
    """The writer's answers about SOP classes are kept (``lakehouse.sr.iods``) and the ``sr``
    package imports a module when its name is first used: highdicom, which only the reader and
    the re-issue need, is not imported by a scorer (a quarter of a second of each start)."""
    now = datetime(2026, 12, 7, tzinfo=UTC)
    with scored.active():
        service, jobs = next((s, j) for s, j in routed_jobs() if len(j) >= 2)
        with scoring.Scorers(2) as scorers:
            (rows,) = scorers.pool.map(scoring.score_chunk, [(service, jobs[:2], now, 1)])
            assert [r["status"] for r in rows] == ["scored", "scored"]
            assert all(dicom_store.exists(r["sr_uri"]) for r in rows)
            modules = ["lakehouse.sr.write", "highdicom"]
            assert list(scorers.pool.map(loaded, modules)) == [True, False]
