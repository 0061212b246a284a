"""The imaging pipeline on real DICOM files: the synthetic city's uploads and pydicom's own corpus.

Every run is a real Dagster materialisation into a temporary lakehouse; the originals go through
the real (encrypted) object store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pydicom
import pydicom.data
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID

from lakehouse import dicom_store
from lakehouse.reference import code_set, codes
from pipelines.build import build
from pipelines.defs.imaging import imaging_drop, imaging_index, imaging_routing
from pipelines.defs.research import research_copy_job
from pipelines.defs.resources import Imaging, Lakehouse
from pipelines.ingest import dicom, part10
from tests.conftest import City
from tests.pipelines.conftest import RRN, Lake, assert_no_identifiers

pytestmark = pytest.mark.integration
ASSETS = (imaging_index, imaging_routing)
TABLES = (
    "silver.imaging_instances",
    "silver.imaging_series",
    "silver.imaging_studies",
    "silver.imaging_routing",
)
REASONS = {
    part10.NOT_DICOM,
    part10.MISSING_FILE_META,
    part10.CORRUPT_DICOM,
    dicom.TRUNCATED_DICOM,
    dicom.MALFORMED_HEADER,
    dicom.MEDIA_DIRECTORY,
    dicom.MISSING_UID,
    dicom.INVALID_UID,
    dicom.UNSUPPORTED_TRANSFER_SYNTAX,
    dicom.CONFLICTING_PATIENT_ID,
    dicom.DUPLICATE_INSTANCE,
}


def run(lake: Lake, quiet_s: int = 300, settle_s: float = 10.0) -> dg.ExecuteInProcessResult:
    """One pass of the imaging job with the given quiet period."""
    resources = lake.resources | {
        "imaging": Imaging(quiet_period_s=quiet_s, settle_s=settle_s, workers=2)
    }
    with lake.active():
        return dg.materialize(
            list(ASSETS), resources=resources, instance=dg.DagsterInstance.ephemeral()
        )


def same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def files_under(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in (root / "imaging").rglob("*") if p.is_file()
    )


def assert_store_holds_the_index(lake: Lake) -> None:
    """The object store holds exactly the indexed originals, each with its recorded bytes."""
    instances = lake.frame("silver.imaging_instances")
    stored = {
        p.relative_to(lake.root).as_posix()
        for p in (lake.root / "objects").rglob("*")
        if p.is_file()
    }
    assert stored == set(instances["file_uri"].to_list())
    with lake.active():
        for key, sha in instances.select("file_uri", "sha256").iter_rows():
            assert hashlib.sha256(dicom_store.get(key)).hexdigest() == sha, key


def ledger(lake: Lake) -> pl.DataFrame:
    return lake.frame("bronze.deliveries", pl.col("source") == "imaging")


def quarantine(lake: Lake) -> pl.DataFrame:
    return lake.frame("quarantine.records", pl.col("source") == "imaging")


@pytest.fixture(scope="module")
def city_lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city's uploads (faults injected), indexed and routed."""
    sources = tmp_path_factory.mktemp("imaging_city") / "sources"
    shutil.copytree(small_city.out / "imaging", sources / "imaging", copy_function=shutil.copy2)
    lake = Lake(sources.parent / "lakehouse", sources)
    run(lake)
    return lake


def test_every_upload_is_indexed_or_quarantined_with_its_reason(
    small_city: City, city_lake: Lake
) -> None:
    files = files_under(city_lake.sources)
    book = ledger(city_lake)
    assert sorted(book["file"].to_list()) == files
    instances = city_lake.frame("silver.imaging_instances")
    held = quarantine(city_lake)
    # Files in = instances indexed + files quarantined, per drop.
    for drop, rows in book.group_by("delivery_id"):
        indexed = instances.filter(pl.col("drop_id") == drop[0]).height
        quarantined = held.filter(pl.col("delivery_id") == drop[0]).height
        assert rows.height == indexed + quarantined
    assert book["rows_accepted"].sum() == instances.height
    # Each injected fault is quarantined with its own reason, and nothing else is.
    faults = small_city.faults["faults"]
    injected = {f["path"]: f["kind"] for f in faults if f["source"] == "imaging"}
    assert injected, "the small city injects imaging faults"
    found = dict(zip(held["file"].to_list(), held["reason"].to_list(), strict=True))
    assert found == injected
    # Files are read from every layout the clinics use.
    layouts = {"study_uid": 0, "flat": 0, "dicomdir": 0, "series_dirs": 0}
    for path in instances["source_file"].to_list():
        parent, name = path.split("/")[-2:]
        if "/DICOM/PA000000/" in path:
            layouts["dicomdir"] += 1
        elif name.startswith("IM"):
            layouts["flat"] += 1
        elif re.match(r"^[A-Z]+_[0-9]{3}$", parent):
            layouts["series_dirs"] += 1
        else:
            layouts["study_uid"] += 1
    assert all(layouts.values()), layouts


def test_routing_matches_the_ground_truth(small_city: City, city_lake: Lake) -> None:
    truth = [
        json.loads(line)
        for line in (small_city.out / "ground_truth" / "imaging_studies.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    routing = city_lake.frame("silver.imaging_routing")
    indexed = set(city_lake.frame("silver.imaging_studies")["study_instance_uid"].to_list())
    damaged = {f["path"] for f in small_city.faults["faults"] if f["source"] == "imaging"}
    checked = 0
    for study in truth:
        if study["study_uid"] not in indexed or set(study["files"]) & damaged:
            continue  # a damaged file can take a study's only series away
        rows = routing.filter(pl.col("study_instance_uid") == study["study_uid"])
        assert rows.height, f"{study['accession']} was not routed"
        routed = set(rows.filter(pl.col("outcome") == "routed")["service"].to_list())
        expected = study["expected_route"]
        if expected in code_set("ai_services"):
            assert routed == {expected}, (study["exam"], rows.to_dicts())
        elif expected == "no_service":
            assert routed == set() and set(rows["reason"].to_list()) == {"no_service"}
        else:
            assert routed == set() and expected in set(rows["reason"].to_list()), rows.to_dicts()
        if study["held_back"]:
            raw = rows.filter(pl.col("reason") == "for_processing")
            assert raw["instances"].sum() == len(study["held_back"])
        checked += 1
    assert checked >= len(truth) - len(damaged)
    blank = [s for s in truth if s["body_part_blank"] and s["expected_route"] != "no_service"]
    assert blank, "some studies come without BodyPartExamined"


def test_originals_are_stored_encrypted_and_unmodified(city_lake: Lake) -> None:
    instances = city_lake.frame("silver.imaging_instances")
    with city_lake.active():
        for row in instances.sample(20, seed=1).iter_rows(named=True):
            original = (city_lake.sources / row["source_file"]).read_bytes()
            assert dicom_store.get(row["file_uri"]) == original
            assert hashlib.sha256(original).hexdigest() == row["sha256"]
            assert row["file_uri"] == (
                f"objects/dicom/{row['study_instance_uid']}/{row['series_instance_uid']}/"
                f"{row['sop_instance_uid']}.dcm"
            )
            at_rest = (city_lake.root / row["file_uri"]).read_bytes()
            patient = pydicom.dcmread(city_lake.sources / row["source_file"]).PatientID
            assert patient.encode() in original and patient.encode() not in at_rest
            mode = (city_lake.root / row["file_uri"]).stat().st_mode
            assert stat.S_IMODE(mode) == 0o444  # written once, read-only
    names = set()
    for rel in instances["source_file"].to_list()[:200]:
        ds = pydicom.dcmread(city_lake.sources / rel, stop_before_pixels=True)
        if str(ds.PatientName) != "QA^PHANTOM":
            names.add(str(ds.PatientName).replace("^", ""))
    assert len(names) > 5
    tables = (*TABLES, "quarantine.records", "bronze.deliveries")
    assert_no_identifiers(city_lake.parquet(tables), names)
    for blob in (city_lake.root / "objects").rglob("*.dcm"):
        assert not RRN.search(blob.read_bytes().decode("latin-1"))


def test_dropping_the_same_files_again_adds_nothing(city_lake: Lake, tmp_path: Path) -> None:
    before = city_lake.snapshot(TABLES)
    files = len(ledger(city_lake))
    run(city_lake)  # nothing new: the ledger knows every file
    assert same(city_lake.snapshot(TABLES), before)
    assert ledger(city_lake).height == files
    # The same study dropped again elsewhere (another folder, another layout).
    one = city_lake.frame("silver.imaging_studies").row(0, named=True)["study_instance_uid"]
    again = city_lake.frame("silver.imaging_instances", pl.col("study_instance_uid") == one)[
        "source_file"
    ].to_list()
    for i, rel in enumerate(again):
        target = city_lake.sources / "imaging" / "resent" / f"copy{i}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(city_lake.sources / rel, target)
    try:
        run(city_lake)
        assert same(city_lake.snapshot(TABLES), before)
        held = quarantine(city_lake).filter(pl.col("file").str.contains("/resent/"))
        assert held["reason"].to_list() == [dicom.DUPLICATE_INSTANCE] * len(again)
        new = ledger(city_lake).filter(pl.col("file").str.contains("/resent/"))
        assert set(new["status"].to_list()) == {"duplicate"}
        assert set(new["duplicate_of"].to_list()) <= set(again)
    finally:
        shutil.rmtree(city_lake.sources / "imaging" / "resent")


def _instance_copy(src: Path, target: Path, when: float, **changes: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(src)
    for keyword, value in changes.items():
        if value == "":
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if changes.get("SOPInstanceUID"):
        ds.file_meta.MediaStorageSOPInstanceUID = UID(changes["SOPInstanceUID"])
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=False)
    os.utime(target, (when, when))
    return ds


def _study_with_series(city: City, exam: str) -> dict:
    """A study of ``exam`` with several files, none of them damaged by an injected fault."""
    damaged = {f["path"] for f in city.faults["faults"]}
    for line in (city.out / "ground_truth" / "imaging_studies.jsonl").read_text().splitlines():
        study = json.loads(line)
        if study["exam"] == exam and len(study["files"]) >= 2 and not damaged & set(study["files"]):
            return study
    raise AssertionError(f"no {exam} study with two files")


def test_a_study_in_parts_is_routed_once_quiet_and_reopened_by_a_late_instance(
    small_city: City, tmp_path: Path
) -> None:
    study = _study_with_series(small_city, "PROSTATE_MR")
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    drop = tmp_path / "sources" / "imaging" / "10000001"
    files = [small_city.out / f for f in study["files"]]
    now = time.time()
    half = len(files) // 2
    (drop / "part1").mkdir(parents=True)
    for i, src in enumerate(files[:half]):
        shutil.copy2(src, drop / "part1" / f"{i}.dcm")
        os.utime(drop / "part1" / f"{i}.dcm", (now - 120, now - 120))
    run(lake, quiet_s=600, settle_s=0)
    assert lake.frame("silver.imaging_studies").height == 1
    assert lake.frame("silver.imaging_routing").height == 0  # still receiving
    (drop / "part2").mkdir(parents=True)
    for i, src in enumerate(files[half:]):
        shutil.copy2(src, drop / "part2" / f"{i}.dcm")
        os.utime(drop / "part2" / f"{i}.dcm", (now - 60, now - 60))
    run(lake, quiet_s=600, settle_s=0)
    studies = lake.frame("silver.imaging_studies")
    assert studies["instance_count"].to_list() == [len(files)]
    assert lake.frame("silver.imaging_routing").height == 0
    run(lake, quiet_s=30, settle_s=0)  # a minute of quiet is enough now
    routing = lake.frame("silver.imaging_routing")
    assert set(routing["service"].to_list()) == {"prostate"}
    assert routing["received_until"].to_list() == [studies["last_received_at"][0]] * len(routing)
    # A late instance reopens the study: its decisions are withdrawn until it is quiet again.
    # Five seconds old when the run starts, whatever the runs before it took on a busy machine.
    late = _instance_copy(
        files[0],
        drop / "part3" / "late.dcm",
        time.time() - 5,
        SOPInstanceUID="1.2.826.0.1.3680043.8.1",
    )
    run(lake, quiet_s=30, settle_s=0)
    assert lake.frame("silver.imaging_routing").height == 0
    run(lake, quiet_s=0, settle_s=0)
    routing = lake.frame("silver.imaging_routing")
    assert routing["instances"].sum() == len(files) + 1
    assert late.SOPInstanceUID in lake.frame("silver.imaging_instances")["sop_instance_uid"]


def test_gjh_build_says_how_many_studies_wait_for_quiet_and_from_when(
    small_city: City, tmp_path: Path
) -> None:
    """Files dropped one and two minutes ago are indexed but not routed (a study is complete
    after 300 s without new files); the build says how many studies wait and when they will be
    routed, in Korea's time, instead of nothing."""
    sources = tmp_path / "sources"
    lake = Lake(tmp_path / "lakehouse", sources)
    now = int(time.time())  # whole seconds: the times shown are to the second
    for age, exam in ((120, "PROSTATE_MR"), (60, "BRAIN_DWI")):
        folder = sources / "imaging" / exam
        folder.mkdir(parents=True)
        for i, src in enumerate(_study_with_series(small_city, exam)["files"]):
            shutil.copy2(small_city.out / src, folder / f"{i}.dcm")
            os.utime(folder / f"{i}.dcm", (now - age, now - age))
    defs = dg.Definitions(
        assets=list(ASSETS), resources=lake.resources | {"imaging": Imaging(workers=2)}
    )
    lines: list[str] = []
    with lake.active():
        build(sources, dg.DagsterInstance.ephemeral(), lines.append, defs)
    assert lake.frame("silver.imaging_studies").height == 2
    assert lake.frame("silver.imaging_routing").is_empty()
    korea = ZoneInfo("Asia/Seoul")
    first = datetime.fromtimestamp(now - 120 + 300, korea).strftime("%Y-%m-%d %H:%M:%S")
    last = datetime.fromtimestamp(now - 60 + 300, korea).strftime("%Y-%m-%d %H:%M:%S")
    said = [line for line in lines if "2 DICOM studies wait" in line]
    assert len(said) == 1, lines
    assert f"routed from {first} Korea time (the last from {last})" in said[0]
    assert "300 s without new files" in said[0]


def test_bad_instances_are_quarantined_with_a_specific_reason(
    small_city: City, tmp_path: Path
) -> None:
    study = _study_with_series(small_city, "BRAIN_DWI")
    src = small_city.out / study["files"][0]
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    drop = tmp_path / "sources" / "imaging" / "10000002"
    when = time.time() - 3600
    drop.mkdir(parents=True)
    shutil.copy2(src, drop / "good.dcm")
    cases = {
        "other_patient.dcm": (
            dicom.CONFLICTING_PATIENT_ID,
            {"PatientID": "900101-2345678", "SOPInstanceUID": "1.2.826.0.1.3680043.8.2"},
        ),
        "no_series.dcm": (
            dicom.MISSING_UID,
            {"SeriesInstanceUID": "", "SOPInstanceUID": "1.2.826.0.1.3680043.8.3"},
        ),
        "path_in_uid.dcm": (dicom.INVALID_UID, {"SOPInstanceUID": "1.2.3/../../etc"}),
    }
    for name, (_, changes) in cases.items():
        _instance_copy(src, drop / name, when, **changes)
    mpeg = pydicom.dcmread(src)
    mpeg.SOPInstanceUID = mpeg.file_meta.MediaStorageSOPInstanceUID = UID("1.2.826.0.1.3680043.8.4")
    mpeg.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2 video
    mpeg.PixelData = encapsulate([mpeg.PixelData])
    mpeg.save_as(drop / "video.dcm", enforce_file_format=False)
    os.utime(drop / "good.dcm", (when - 10, when - 10))
    os.utime(drop / "video.dcm", (when, when))
    run(lake, settle_s=0)
    held = dict(
        zip(
            [f.split("/")[-1] for f in quarantine(lake)["file"].to_list()],
            quarantine(lake)["reason"].to_list(),
            strict=True,
        )
    )
    assert held == {name: reason for name, (reason, _) in cases.items()} | {
        "video.dcm": dicom.UNSUPPORTED_TRANSFER_SYNTAX
    }
    assert_store_holds_the_index(lake)  # the conflicting instance's original is not kept
    studies = lake.frame("silver.imaging_studies")
    assert studies["patient_conflict"].to_list() == [True]
    routing = lake.frame("silver.imaging_routing")
    assert set(routing["reason"].to_list()) == {"patient_conflict"}
    assert quarantine(lake)["payload"].str.contains("900101").sum() == 0


def test_pydicom_corpus_every_file_indexed_or_quarantined_and_the_ecg_routes(
    tmp_path: Path,
) -> None:
    corpus = Path(pydicom.data.__file__).parent
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    drop = lake.sources / "imaging" / "10000003" / "pydicom"
    shutil.copytree(corpus, drop, ignore=shutil.ignore_patterns("__pycache__"))
    past = time.time() - 3600
    for path in drop.rglob("*"):
        os.utime(path, (past, past))
    files = files_under(lake.sources)
    assert len(files) > 150
    run(lake)
    book = ledger(lake)
    assert sorted(book["file"].to_list()) == files
    held = quarantine(lake)
    instances = lake.frame("silver.imaging_instances")
    assert book["rows_accepted"].sum() == instances.height
    assert held.height + instances.height == len(files)
    assert set(held["reason"].to_list()) <= REASONS
    assert (held["message"].str.len_chars() > 10).all()
    reason = dict(
        zip(
            [f.removeprefix("imaging/10000003/pydicom/") for f in held["file"].to_list()],
            held["reason"].to_list(),
            strict=True,
        )
    )
    assert reason["test_files/MR_truncated.dcm"] == dicom.TRUNCATED_DICOM
    assert reason["test_files/rtplan_truncated.dcm"] == dicom.TRUNCATED_DICOM
    assert reason["test_files/dicomdirtests/DICOMDIR"] == dicom.MEDIA_DIRECTORY
    assert reason["test_files/SC_rgb_jpeg_gdcm.dcm"] == dicom.UNSUPPORTED_TRANSFER_SYNTAX
    assert reason["test_files/README.txt"] == part10.NOT_DICOM
    assert reason["test_files/no_meta.dcm"] in (part10.MISSING_FILE_META, part10.CORRUPT_DICOM)
    assert reason["palettes/hotiron.dcm"] == dicom.MISSING_UID
    assert reason["test_files/MR_small_bigendian.dcm"] == dicom.DUPLICATE_INSTANCE
    # Several corpus files share one SOP Instance UID with different bytes, read by two workers
    # at once: whichever stored first, the first in file order is the one kept.
    assert_store_holds_the_index(lake)
    kinds = Counter(instances["modality"].to_list())
    assert {"CT", "MR", "US", "CR", "NM", "SEG", "SR", "RTDOSE", "ECG"} <= set(kinds)
    ecg = instances.filter(pl.col("modality") == "ECG").row(0, named=True)
    assert ecg["sampling_frequency_hz"] and ecg["waveform_channels"] == 12
    routing = lake.frame("silver.imaging_routing")
    ecg_route = routing.filter(pl.col("series_instance_uid") == ecg["series_instance_uid"])
    assert ecg_route.select("outcome", "service").row(0) == ("routed", "ecg")
    # Whatever else routes does so on the modality its service reads (real CT heads, chests).
    services = codes("ai_services")
    reads = dict(zip(services["service"], services["modalities"].str.split("|"), strict=True))
    routed = routing.filter(pl.col("outcome") == "routed").join(
        lake.frame("silver.imaging_series"), on="series_instance_uid"
    )
    for row in routed.iter_rows(named=True):
        assert row["modality"] in reads[row["service"]], row
    assert set(routing["outcome"].to_list()) == {"routed", "held_back", "unrouted"}
    assert routing.filter(pl.col("outcome") != "routed")["reason"].null_count() == 0


def test_each_accepted_transfer_syntax_is_decodable_here() -> None:
    for uid in code_set("transfer_syntaxes"):
        decoder = get_decoder(UID(uid))
        assert decoder.is_available, f"{uid} is accepted but pydicom cannot decode it here"


def sense(resources: Mapping[str, object], cursor: str | None = None) -> dg.SensorResult:
    result = imaging_drop(dg.build_sensor_context(cursor=cursor, resources=resources))
    assert isinstance(result, dg.SensorResult)
    return result


def run_keys(result: dg.SensorResult) -> list[str]:
    return [r.run_key or "" for r in result.run_requests or []]


def test_the_sensor_runs_for_new_files_and_for_newly_complete_studies(
    small_city: City, tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    study = _study_with_series(small_city, "BRAIN_DWI")
    drop = lake.sources / "imaging" / "10000004"
    drop.mkdir(parents=True)
    now = time.time()
    for i, rel in enumerate(study["files"]):
        shutil.copy2(small_city.out / rel, drop / f"{i}.dcm")
        os.utime(drop / f"{i}.dcm", (now - 100, now - 100))
    resources = {
        "lakehouse": Lakehouse(
            lakehouse_uri=str(lake.root), sources_dir=str(lake.sources), secrets_dir=None
        ),
        "imaging": Imaging(quiet_period_s=600, settle_s=0, workers=1),
    }
    with lake.active():
        first = sense(resources)
        assert [k.split(":")[1] for k in run_keys(first)] == ["files"]
        again = sense(resources, first.cursor)
        assert run_keys(again) == []  # nothing new, nothing complete
    run(lake, quiet_s=600, settle_s=0)
    assert lake.frame("silver.imaging_routing").height == 0
    resources["imaging"] = Imaging(quiet_period_s=60, settle_s=0, workers=1)
    with lake.active():
        ready = sense(resources, first.cursor)
    assert [k.split(":")[1] for k in run_keys(ready)] == ["complete"]


def test_a_research_request_writes_a_deidentified_copy(city_lake: Lake) -> None:
    studies = city_lake.frame("silver.imaging_studies").filter(pl.col("citizen_key").is_not_null())
    wanted = studies["study_instance_uid"].head(2).to_list()
    config = {
        "ops": {
            "copy_studies": {
                "config": {
                    "request_id": "irb-2026-017",
                    "study_uids": wanted,
                    "requested_by": "researcher@cnu.ac.kr",
                    "purpose": "IRB 2026-017: chest AI external validation",
                    "approval": "CNUH IRB 2026-017",
                    "approved_by": "irb-office@cnuh.or.kr",
                    "omop_tables": [],  # the DICOM copy alone: this lakehouse has no OMOP tables
                }
            }
        }
    }
    with city_lake.active():
        result = research_copy_job.execute_in_process(
            run_config=config, resources=city_lake.resources
        )
    out = Path(result.output_for_node("copy_studies"))
    assert out == city_lake.root / "research" / "irb-2026-017"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    copies = sorted(out.rglob("*.dcm"))
    originals = city_lake.frame(
        "silver.imaging_instances", pl.col("study_instance_uid").is_in(wanted)
    )
    assert copies and len(copies) + len(manifest["excluded"]) == originals.height
    old_uids = set(originals["sop_instance_uid"].to_list()) | set(wanted)
    patient_ids = {
        pydicom.dcmread(city_lake.sources / rel, stop_before_pixels=True).PatientID
        for rel in originals["source_file"].to_list()
    }
    for path in copies:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.SOPInstanceUID not in old_uids and ds.StudyInstanceUID not in old_uids
        assert ds.PatientID.startswith("R") and ds.PatientID not in patient_ids
        raw = path.read_bytes()
        assert not any(p.encode() in raw for p in patient_ids)
    text = (out / "manifest.json").read_text(encoding="utf-8")
    assert not any(uid in text for uid in old_uids)
    # Every citizen whose data left is in the access log, as the citizen's history shows it.
    logged = city_lake.frame("ops.audit_log", pl.col("action") == "export:research")
    citizens = set(studies.filter(pl.col("study_instance_uid").is_in(wanted))["citizen_key"])
    assert set(logged["subject_key"].to_list()) == citizens
    assert set(logged["purpose"].to_list()) == {"research"}
    assert all("irb-2026-017" in d for d in logged["detail"].to_list())


def test_an_object_left_by_a_losing_copy_is_replaced_by_the_indexed_original(
    small_city: City, tmp_path: Path
) -> None:
    """A key can hold bytes no table refers to: a duplicate that a worker stored first, or a
    pass that stopped after storing. The instance indexed under it gets its own bytes there."""
    study = _study_with_series(small_city, "BRAIN_DWI")
    src = small_city.out / study["files"][0]
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    target = lake.sources / "imaging" / "10000004" / "a.dcm"
    target.parent.mkdir(parents=True)
    shutil.copy2(src, target)
    os.utime(target, (time.time() - 600, time.time() - 600))
    ds = pydicom.dcmread(src)
    ds.PatientName = "OTHER^COPY"
    other = tmp_path / "other.dcm"
    ds.save_as(other, enforce_file_format=False)
    key = dicom_store.object_key(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    with lake.active():
        assert dicom_store.put(key, other.read_bytes())
    run(lake, settle_s=0)
    assert lake.frame("silver.imaging_instances")["file_uri"].to_list() == [key]
    assert_store_holds_the_index(lake)
    with lake.active():
        assert dicom_store.get(key) == target.read_bytes()


def _corpus_and_city(city: City) -> list[tuple[str, bytes]]:
    """pydicom's corpus, city uploads with their injected faults, and headers cut short."""
    corpus = Path(pydicom.data.__file__).parent
    paths = [p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".py"]
    paths += sorted((city.out / "imaging").rglob("*.dcm"))[:300]
    paths += [city.out / f["path"] for f in city.faults["faults"] if f["source"] == "imaging"]
    files = [(str(p), p.read_bytes()) for p in paths if p.is_file()]
    whole = files[-1][1] if files[-1][1][128:132] == b"DICM" else files[0][1]
    cuts = [(f"cut at {n}", whole[:n]) for n in (140, 150, 200, 333, 500, 777, 1000)]
    return files + [(name, data) for name, data in cuts if data[128:132] == b"DICM"]


def test_the_header_parse_reads_what_dcmread_reads(small_city: City) -> None:
    """The indexer parses with pydicom's ``read_dataset`` (skipping ``dcmread``'s wrapping):
    on every Part 10 file of pydicom's corpus and the city it reads the same values, stops at
    the same byte, and fails exactly where ``dcmread`` fails."""
    compared = 0
    for name, data in _corpus_and_city(small_city):
        if data[128:132] != b"DICM":
            continue
        fp = io.BytesIO(data)
        try:
            full = pydicom.dcmread(fp, stop_before_pixels=True)
        except Exception:
            with pytest.raises(Exception):  # noqa: B017 - the same failure, whatever its type
                part10.parse(data)
            continue
        parsed = part10.parse(data)
        implicit, little = full.original_encoding[:2]
        assert parsed.stopped_at == fp.tell(), name
        if len(full) or len(parsed.ds):
            # With no element read (a file cut inside the first one), pydicom's encoding is
            # its guess from the few bytes left, not the file's: only a read element shows it.
            assert (parsed.implicit, parsed.little) == (implicit, little), name
        ours, theirs = dicom.Header(parsed.ds), dicom.Header(full)
        for keyword in dicom.KEYWORDS:
            assert ours.text(keyword) == theirs.text(keyword), (name, keyword)
        transfer = str(full.file_meta.get("TransferSyntaxUID", ""))
        assert part10.meta_uid(parsed.meta, part10.TRANSFER_SYNTAX_TAG) == transfer
        compared += 1
    assert compared > 400  # (pydicom reads even cut headers, so failures are rare)
