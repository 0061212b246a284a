"""The imaging deliveries on disk: valid DICOM per IOD, truth, hold-backs, faults, determinism."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from highdicom._standard_utils import (
    check_required_attributes,
    get_iod_module_map,
    get_module_attribute_map,
    get_sop_class_iod_map,
)
from pydicom.dataset import Dataset

from synth.faults import CORRUPT_DICOM, NOT_DICOM, TRUNCATED_DICOM, FaultLog
from synth.imaging.assemble import Plan, delivery_plan
from synth.imaging.dicom_common import person_name
from synth.imaging.dicom_ecg import ECG_12LEAD
from synth.imaging.dicom_images import (
    CR,
    CT,
    DX_PRESENTATION,
    ES,
    IO_PRESENTATION,
    MG_PRESENTATION,
    MG_PROCESSING,
    MR,
    OP_8BIT,
)
from synth.imaging.exams import QA_EXAM, exams
from synth.imaging.orders import ImagingOrder
from synth.imaging.sites import LAYOUTS, site
from synth.imaging.writer import GROUND_TRUTH, ImagingSummary, write_imaging

SEED = 20240601
INSTITUTIONS = [
    ("36100011", "빛고을내과의원"),
    ("36100028", "광주튼튼정형외과의원"),
    ("36100035", "서구보건소"),
    ("36100042", "첨단연세치과의원"),
    ("36100059", "무등산안과의원"),
    ("36100066", "상무중앙영상의학과의원"),
    ("36100073", "광산구보건소"),
    ("36100080", "풍암우리병원"),
    ("36100100", "수완열린가정의학과의원"),
]
NAMES = ["김민준", "이서연", "남궁민수", "박지훈", "최수아", "정예준", "황보하늘", "윤지민"]


def _order(n: int, code: str, abnormal: bool, accession: str | None = None) -> ImagingOrder:
    """A plausible order: an eligible patient with a well-formed RRN at one of the clinics."""
    row = exams()[code]
    sex = row.sex or ("F" if n % 2 else "M")
    age = min(max(row.age_min, 5) + (n * 7) % 50, row.age_max)
    studied = datetime(2024, 6, 3) + timedelta(days=n % 20, hours=9 + n % 8, minutes=(7 * n) % 60)
    born = date(studied.year - age - 1, 1 + n % 12, 1 + n % 27)
    digit = (1 if sex == "M" else 2) + (2 if born.year >= 2000 else 0)
    code_, name = INSTITUTIONS[n % len(INSTITUTIONS)]
    return ImagingOrder(
        accession=accession or f"A{n:07d}",
        exam=code,
        patient_id=f"{born:%y%m%d}-{digit}{(n * 7919) % 1_000_000:06d}",
        patient_name=NAMES[n % len(NAMES)],
        sex=sex,
        birth_date=born,
        institution_code=code_,
        institution_name=name,
        study_datetime=studied,
        abnormal=abnormal and row.service is not None,
        visit_key=f"S{n:09d}",
    )


def _find(n: int, code: str, wanted: Callable[[Plan], bool]) -> ImagingOrder:
    """An order of ``code`` whose accession draws the wanted delivery variant."""
    for k in count():
        order = _order(n, code, True, accession=f"V{n:03d}{k:05d}")
        if wanted(delivery_plan(order, SEED)):
            return order
    raise AssertionError("unreachable")


def make_orders() -> list[ImagingOrder]:
    """One order per exam (abnormal where a service reads it, plus a normal chest), CR studies
    at every clinic, and studies drawn to carry each hold-back and delivery variant."""
    orders = [_order(n, code, True) for n, code in enumerate(exams(), start=1)]
    orders.append(_order(40, "CXR_PA", False))
    orders += [_order(50 + k, "CXR_AP", k % 2 == 0) for k in range(len(INSTITUTIONS))]
    orders.append(_find(60, "CXR_PA", lambda p: p.burned_in))
    orders.append(_find(61, "MAMMO_SCREEN", lambda p: p.for_processing))
    orders.append(_find(62, "FUNDUS", lambda p: p.split))
    orders.append(_find(63, "BRAIN_CT", lambda p: p.rle))
    return orders


@dataclass(frozen=True)
class City:
    out: Path
    orders: list[ImagingOrder]
    faults: FaultLog
    summary: ImagingSummary
    truth: list[dict[str, Any]]


def _write(out: Path, workers: int) -> City:
    orders = make_orders()
    log = FaultLog(enabled=True)
    summary = write_imaging(orders, out, SEED, log, workers=workers)
    lines = (out / GROUND_TRUTH).read_text(encoding="utf-8").splitlines()
    return City(out, orders, log, summary, [json.loads(line) for line in lines])


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return _write(tmp_path_factory.mktemp("imaging") / "out", workers=1)


def _load(path: Path) -> Dataset:
    """Read a file completely, as the pipeline will: header, then pixels or waveform."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        if "WaveformSequence" in ds:
            ds.waveform_array(0)
        else:
            _ = ds.pixel_array
    return ds


def _loads(path: Path) -> bool:
    try:
        _load(path)
    except Exception:
        return False
    return True


def _faulted(city: City) -> set[str]:
    return {f.path for f in city.faults.faults}


def _datasets(city: City) -> Iterator[tuple[dict[str, Any], str, Dataset]]:
    """(truth record, file path, dataset) for every intact file."""
    damaged = _faulted(city)
    for record in city.truth:
        for rel in record["files"]:
            if rel not in damaged:
                yield record, rel, _load(city.out / rel)


def test_every_exam_is_written_with_one_truth_line_per_order(city: City) -> None:
    assert set(city.summary.studies_per_exam) == set(exams())
    assert city.summary.studies == len(city.orders) == len(city.truth)
    assert [r["accession"] for r in city.truth] == sorted(o.accession for o in city.orders)
    written = [p for p in (city.out / "imaging").rglob("*") if p.is_file()]
    assert city.summary.files == len(written)
    assert city.summary.bytes == sum(p.stat().st_size for p in written)
    for record in city.truth:
        assert record["files"]
        assert all(f.startswith(f"imaging/{record['institution_code']}/") for f in record["files"])


def test_ground_truth_never_holds_the_rrn_or_name(city: City) -> None:
    text = (city.out / GROUND_TRUTH).read_text(encoding="utf-8")
    for order in city.orders:
        assert order.patient_id not in text
        assert order.patient_id.replace("-", "") not in text
        assert order.patient_name not in text


def test_files_carry_the_order_patient_and_institution(city: City) -> None:
    orders = {o.accession: o for o in city.orders}
    for record, _rel, ds in _datasets(city):
        order = orders[record["accession"]]
        assert ds.AccessionNumber == order.accession
        assert ds.StudyInstanceUID == record["study_uid"]
        assert ds.InstitutionName == order.institution_name
        assert ds.InstitutionCodeSequence[0].CodeValue == order.institution_code
        if order.exam == QA_EXAM:
            assert ds.PatientID == f"QA-{order.institution_code}"
            continue
        assert ds.PatientID == order.patient_id
        assert ds.PatientName == person_name(order.patient_name)
        assert ds.PatientSex == order.sex
        assert ds.PatientBirthDate == order.birth_date.strftime("%Y%m%d")
        assert ds.StudyDate == order.study_datetime.strftime("%Y%m%d")
        assert ds.StudyTime == order.study_datetime.strftime("%H%M%S")
        assert (ds.get("BodyPartExamined", "") == "") == (
            record["body_part_blank"] or order.exam == "ECG_12LEAD"
        )


def test_every_file_has_its_iods_mandatory_attributes(city: City) -> None:
    iods, modules, attributes = (
        get_sop_class_iod_map(),
        get_iod_module_map(),
        get_module_attribute_map(),
    )
    seen = set()
    for record, rel, ds in _datasets(city):
        seen.add(ds.SOPClassUID)
        for module in modules[iods[ds.SOPClassUID]]:
            if module["usage"] != "M":
                continue
            check_required_attributes(ds, module["key"])
            for attribute in attributes[module["key"]]:
                if attribute["type"] == "1" and not attribute["path"]:
                    keyword = attribute["keyword"]
                    assert keyword in ds and not ds[keyword].is_empty, (
                        record["exam"],
                        rel,
                        keyword,
                    )
    assert seen == {
        CR,
        DX_PRESENTATION,
        MG_PRESENTATION,
        MG_PROCESSING,
        IO_PRESENTATION,
        CT,
        MR,
        ECG_12LEAD,
        OP_8BIT,
        ES,
    }  # the panoramic (PX) uses the DX SOP class


def test_files_are_byte_for_byte_what_pydicom_writes(city: City) -> None:
    for _record, rel, ds in _datasets(city):
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        assert buffer.getvalue() == (city.out / rel).read_bytes(), rel


def test_locations_point_at_real_instances_inside_their_pixels(city: City) -> None:
    instances = {ds.SOPInstanceUID: ds for _record, _rel, ds in _datasets(city)}
    located = 0
    for record in city.truth:
        assert bool(record["locations"]) == (record["abnormal"] and record["service"] != "ecg")
        for loc in record["locations"]:
            ds = instances.get(loc["sop_instance_uid"])
            if ds is None:  # the file was damaged on purpose
                continue
            assert ds.SeriesInstanceUID == loc["series_uid"]
            x0, y0, x1, y1 = loc["box"]
            assert 0 <= x0 < x1 <= ds.Columns and 0 <= y0 < y1 <= ds.Rows
            located += 1
    assert located > 10


def test_regression_values_and_ecg_segments(city: City) -> None:
    for record in city.truth:
        if record["service"] in ("bone_age", "leg_length"):
            assert isinstance(record["value"], float)
        else:
            assert record["value"] is None
        if record["service"] == "ecg":
            assert record["ecg_segments"] and record["finding_code"]
        else:
            assert record["ecg_segments"] is None


def test_some_cr_arrives_monochrome1_with_an_inverse_lut(city: City) -> None:
    photometric = set()
    for _record, _rel, ds in _datasets(city):
        if ds.SOPClassUID == CR:
            photometric.add(ds.PhotometricInterpretation)
            assert ds.PresentationLUTShape == (
                "INVERSE" if ds.PhotometricInterpretation == "MONOCHROME1" else "IDENTITY"
            )
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}


def test_routes_and_hold_backs(city: City) -> None:
    by_accession = {r["accession"]: r for r in city.truth}
    datasets = {ds.SOPInstanceUID: ds for _r, _p, ds in _datasets(city)}
    for order in city.orders:
        record = by_accession[order.accession]
        row = exams()[order.exam]
        plan = delivery_plan(order, SEED)
        if order.exam == QA_EXAM:
            expected = "qa_phantom"
        elif plan.burned_in:
            expected = "burned_in_annotation"
        else:
            expected = row.service or "no_service"
        assert record["expected_route"] == expected
    burned = [r for r in city.truth if r["expected_route"] == "burned_in_annotation"]
    assert burned
    for record in burned:
        for rel in record["files"]:
            if rel in _faulted(city):
                continue
            ds = _load(city.out / rel)
            assert ds.BurnedInAnnotation == "YES"
            corner = ds.pixel_array[4:11, 4:60]
            text_value = 0 if ds.PhotometricInterpretation == "MONOCHROME1" else 4095
            assert (corner == text_value).sum() > 30  # the stamped characters
    raw = [r for r in city.truth if r["held_back"]]
    assert raw and all(r["expected_route"] == "mammography" for r in raw)
    for record in raw:
        for held in record["held_back"]:
            assert held["reason"] == "for_processing"
            raw_ds = datasets.get(held["sop_instance_uid"])
            if raw_ds is not None:
                assert raw_ds.SOPClassUID == MG_PROCESSING
                assert raw_ds.PresentationIntentType == "FOR PROCESSING"


def test_a_split_study_arrives_in_two_uploads(city: City) -> None:
    split = [r for r in city.truth if len(r["uploads"]) == 2]
    assert split
    for record in split:
        first, second = record["uploads"]
        assert Path(second).name > Path(first).name  # sent later
        assert any(f.startswith(first + "/") for f in record["files"])
        assert any(f.startswith(second + "/") for f in record["files"])


def test_rle_and_character_sets_decode(city: City) -> None:
    syntaxes, charsets = set(), set()
    for _record, _rel, ds in _datasets(city):
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        charsets.add(str(ds.SpecificCharacterSet))
    assert {
        pydicom.uid.RLELossless,
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
    } <= syntaxes
    assert "ISO_IR 192" in charsets
    assert any("ISO 2022 IR 149" in c for c in charsets)


def test_layouts_vary_between_clinics(city: City) -> None:
    layouts = {site(SEED, code).layout for code, _name in INSTITUTIONS}
    assert layouts == set(LAYOUTS)
    names = {Path(f).name for r in city.truth for f in r["files"]}
    assert any(n.startswith("IM") and "." not in n for n in names)  # flat and media folders
    assert any(n.endswith(".dcm") for n in names)


def test_recorded_faults_match_the_unreadable_files(city: City) -> None:
    kinds = {f.kind for f in city.faults.faults}
    assert {TRUNCATED_DICOM, CORRUPT_DICOM, NOT_DICOM} <= kinds
    recorded = _faulted(city)
    for fault in city.faults.faults:
        assert fault.source == "imaging"
        assert not _loads(city.out / fault.path), fault
    for path in (city.out / "imaging").rglob("*"):
        if path.is_file() and not _loads(path):
            assert path.relative_to(city.out).as_posix() in recorded


def test_without_faults_every_file_loads(tmp_path: Path) -> None:
    orders = [_order(n, code, True) for n, code in enumerate(("CXR_PA", "ECG_12LEAD", "FUNDUS"))]
    log = FaultLog(enabled=False)
    write_imaging(orders, tmp_path, SEED, log)
    assert not log.faults
    files = [p for p in (tmp_path / "imaging").rglob("*") if p.is_file()]
    assert files and all(_loads(p) for p in files)


def test_duplicate_accessions_are_refused(tmp_path: Path) -> None:
    order = _order(1, "CXR_PA", False)
    with pytest.raises(ValueError, match="duplicate"):
        write_imaging([order, order], tmp_path, SEED, FaultLog(enabled=False))


def test_delivery_variants_come_at_their_rates() -> None:
    plans = [
        (code, delivery_plan(_order(n, code, False, accession=f"P{n:06d}"), SEED))
        for n in range(3000)
        for code in ("CXR_PA", "MAMMO_SCREEN")
    ]
    dx = [p for code, p in plans if code == "CXR_PA"]
    mg = [p for code, p in plans if code == "MAMMO_SCREEN"]
    assert 0.12 < np.mean([p.blank_body_part for _c, p in plans]) < 0.18
    assert 0.01 < np.mean([p.burned_in for p in dx]) < 0.035
    assert not any(p.burned_in for p in mg)
    assert 0.08 < np.mean([p.for_processing for p in mg]) < 0.12
    assert not any(p.for_processing for p in dx)
    assert 0.08 < np.mean([p.split for _c, p in plans]) < 0.12
    assert all(p.split_after(1) is None for _c, p in plans)


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_output_is_identical_for_one_or_two_workers(city: City, tmp_path: Path) -> None:
    other = _write(tmp_path / "out", workers=2)
    assert _tree(other.out) == _tree(city.out)
    assert other.faults.faults == city.faults.faults
    assert other.summary == replace(city.summary, ground_truth=other.summary.ground_truth)
