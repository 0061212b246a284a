"""``gjh intake``: a DICOM drop taken in by one run in one process (issue 23), on the small city's
real uploads (faults included) into temporary lakehouses.

The intake must write the very imaging tables the ``imaging_index`` asset writes, evaluate every
data-quality check of those tables with the same outcomes as the asset's own run, and record
the run, its materialisations and every check's result in the Dagster instance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse import dicom_store
from pipelines.defs.imaging import INSTANCES, SERIES, STUDIES, imaging_index, write
from pipelines.ingest import dicom, part10
from pipelines.ingest import imaging as pass_
from pipelines.intake import intake
from tests.conftest import KEYS, City
from tests.pipelines.conftest import Lake
from tests.pipelines.test_imaging import assert_store_holds_the_index, ledger, quarantine

pytestmark = pytest.mark.integration
TABLES = (INSTANCES, SERIES, STUDIES)
# What differs between two passes over the same files: the pass's own id and clock.
PASS_COLUMNS = ("drop_id", "indexed_at")


def _tables(lake: Lake) -> dict[str, pl.DataFrame]:
    frames = {}
    for name, frame in lake.snapshot(TABLES).items():
        kept = frame.drop([c for c in PASS_COLUMNS if c in frame.columns])
        frames[name] = kept.sort(pl.all())
    return frames


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    found = {}
    for event in result.all_events:
        data = event.event_specific_data
        if isinstance(data, dg.AssetCheckEvaluation):
            found[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
    return found


@pytest.mark.slow
def test_intake_writes_the_asset_s_tables_and_records_every_check(
    small_city: City, tmp_path: Path
) -> None:
    # Before: the asset with its tables' checks (what `dagster asset materialize` runs, here
    # in process).
    before = Lake(tmp_path / "before" / "lakehouse", small_city.out)
    old = before.materialise([imaging_index], raise_on_error=False)
    expected_checks = _evaluations(old)
    assert expected_checks, "the imaging tables have catalogue checks"

    after = Lake(tmp_path / "after" / "lakehouse", small_city.out)
    instance = dg.DagsterInstance.ephemeral()
    with after.active():
        done = intake(small_city.out, instance, settle_s=0, workers=2)

    assert done.success == old.success
    expected = _tables(before)
    found = _tables(after)
    assert found.keys() == expected.keys()
    for name, frame in expected.items():
        assert frame.height > 0, name
        assert_frame_equal(found[name], frame)
    assert done.checks == expected_checks
    assert done.counts["instances"] == after.frame(INSTANCES).height
    assert done.counts["files"] == done.counts["instances"] + done.counts["quarantined"]
    # Recorded: the run under the intake job, each table's materialisation, each check's result.
    run = instance.get_run_by_id(done.run_id)
    assert run is not None and run.job_name == "imaging_intake"
    for table in TABLES:
        event = instance.get_latest_materialization_event(dg.AssetKey(table.split(".")))
        assert event is not None and event.run_id == done.run_id
    keys = list(imaging_index.check_keys)
    assert len(keys) == len(expected_checks)
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert set(records) == set(keys)
    for key, record in records.items():
        assert record.run_id == done.run_id
        assert record.event is not None
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        assert isinstance(evaluation, dg.AssetCheckEvaluation)
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        assert evaluation.passed == expected_checks[name]


def test_the_imaging_jobs_run_every_step_in_one_process() -> None:
    """No process per step: the definitions load once per run, not once per step."""
    from pipelines.definitions import defs

    for name in ("imaging_job", "imaging_intake"):
        job = defs.resolve_job_def(name)
        assert job.executor_def is dg.in_process_executor, name
    intake_job = defs.resolve_job_def("imaging_intake")
    selected = {k.to_user_string() for k in intake_job.asset_layer.selected_asset_keys}
    assert selected == {t.replace(".", "/") for t in TABLES}
    # The asset evaluates the checks of its tables in its own step: one step in all.
    assert set(intake_job.graph.node_dict) == {"imaging_index"}
    graph = intake_job.asset_layer.asset_graph
    assert {".".join(k.asset_key.path) for k in graph.asset_check_keys} == set(TABLES)


@pytest.mark.slow
def test_gjh_intake_takes_a_drop_from_the_command_line(small_city: City, tmp_path: Path) -> None:
    env = (
        os.environ
        | KEYS
        | {
            "LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "GJH_SECRETS_DIR": str(tmp_path / "secrets"),
        }
    )
    cmd = [sys.executable, "-m", "gjh.cli", "intake", str(small_city.out), "--settle", "0"]
    first = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["success"] is True
    assert summary["instances"] > 0
    assert summary["files"] == summary["instances"] + summary["quarantined"]
    assert summary["checks"] > 0
    # The same drop again: every file is in the ledger, nothing is read twice.
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "0 files = 0 instances indexed" in again.stdout
    assert f"{summary['checks']} checks" in again.stdout
    # Both runs are in the Dagster instance the UI reads.
    runs = subprocess.run(
        [sys.executable, "-c", "import dagster as dg; i = dg.DagsterInstance.get(); "
         "print(len(i.get_runs(filters=dg.RunsFilter(job_name='imaging_intake', "
         "statuses=[dg.DagsterRunStatus.SUCCESS]))))"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert runs.stdout.strip() == "2"


def test_the_header_workers_and_gjh_intake_start_without_the_heavy_libraries() -> None:
    """What a header worker imports as it starts (``pipelines.ingest.dicom``) holds no Polars,
    DuckDB or delta-rs, and ``gjh intake`` imports Dagster only once its workers have started:
    each would add its seconds before the first file is read (issue 23)."""
    heavy = {"polars", "duckdb", "deltalake", "pyarrow", "dagster"}
    code = (
        "import sys, pipelines.ingest.dicom, pipelines.intake; "
        f"print(sorted({heavy!r} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _valid(files: list[Path], root: Path) -> list[Path]:
    """Files that index as instances, each with a SOP Instance UID no other file has."""
    results = [dicom.read((str(f), f.relative_to(root).as_posix())) for f in files]
    uids = [r.row["sop_instance_uid"] if r.row else None for r in results]
    return [f for f, uid in zip(files, uids, strict=True) if uid and uids.count(uid) == 1]


@pytest.mark.slow
def test_a_read_ahead_stands_in_for_the_reads_and_the_pass_still_decides(
    small_city: City, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files read ahead are not read again; a file that arrived, changed or went away after the
    read-ahead listed the folder is taken as the pass finds it, every file is accounted for and
    the store holds exactly the indexed originals."""
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    shutil.copytree(
        small_city.out / "imaging", lake.sources / "imaging", copy_function=shutil.copy2
    )
    files = sorted(p for p in (lake.sources / "imaging").rglob("*") if p.is_file())
    late, garbled, gone = _valid(files, lake.sources)[:3]
    held = tmp_path / "late.dcm"
    shutil.move(late, held)
    read_now: list[str] = []

    def read_and_store(job: dicom.Job) -> dicom.FileResult:
        read_now.append(job[1])
        return dicom.read_and_store(job)

    monkeypatch.setattr(pass_, "read_and_store", read_and_store)
    with lake.active():
        with pass_.ReadAhead(lake.sources, dicom.Readers(2).__enter__(), 0) as ahead:
            assert ahead._thread is not None
            ahead._thread.join()  # everything listed has been read and stored
            shutil.move(held, late)  # arrived after the listing
            garbled.write_bytes(b"not a DICOM file any more")
            gone.unlink()
            drop = pass_.ingest(lake.sources, workers=2, settle_s=0)
        write(drop)

    rel = {f: f.relative_to(lake.sources).as_posix() for f in (late, garbled, gone)}
    assert sorted(read_now) == sorted([rel[late], rel[garbled]])
    listed = sorted(p.relative_to(lake.sources).as_posix() for p in files if p != gone)
    accounted = ledger(lake)
    assert sorted(accounted["file"].to_list()) == listed
    assert rel[late] in set(lake.frame(INSTANCES)["source_file"].to_list())
    rejected = quarantine(lake).filter(pl.col("file") == rel[garbled])
    assert rejected["reason"].to_list() == [part10.NOT_DICOM]
    assert_store_holds_the_index(lake)  # the objects stored for garbled and gone are deleted


@pytest.mark.slow
def test_without_the_object_key_the_intake_is_a_failed_run_that_says_why(
    small_city: City, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is read ahead without the key: the run itself fails on it, recorded as a run,
    and nothing is stored."""
    lake = Lake(tmp_path / "lakehouse", small_city.out)
    monkeypatch.delenv("GJH_OBJECT_KEY")
    dicom_store.reset_key_cache()
    try:
        with lake.active():  # its secrets folder holds no key file
            done = intake(small_city.out, dg.DagsterInstance.ephemeral(), settle_s=0, workers=2)
    finally:
        dicom_store.reset_key_cache()
    assert not done.success
    assert any("no object-store key" in error for error in done.errors), done.errors
    assert not (lake.root / "objects").exists()
