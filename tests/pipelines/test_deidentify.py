"""Research copies de-identified per DICOM PS3.15 Annex E (Basic Application Confidentiality).

Real files from pydicom's bundled corpus (CT, MR, ECG waveform, RT plan, JPEG 2000, RLE) and a
small study built here that carries what a Korean clinic's header would: a resident registration
number as Patient ID, a Korean name in UTF-8, birth date, address, institution, physicians, free
text, dates, a private tag, and references between its instances. The expectations for each
attribute come from the library's own copy of Table E.1-1, not from a list made here.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import secrets
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import pytest
from dicomanonymizer import simpledicomanonymizer
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from lakehouse import dicom_store
from pipelines.research_copy import (
    BURNED_IN,
    DUPLICATE,
    FAILED,
    MANIFEST,
    research_copy,
)
from pipelines.transform.deidentify import (
    EDITION,
    BurnedInAnnotationError,
    deidentify,
    new_uid,
    research_pseudonym,
)

CORPUS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "waveform_ecg.dcm",
    "rtplan.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
)
SALT = bytes(range(32))
OTHER_SALT = bytes(range(32, 64))

RRN = "800101-1234567"
NAME = "홍^길동"
BIRTH = "19800101"
ADDRESS = "광주광역시 동구 제봉로 42"
INSTITUTION = "광주시민의원"
REFERRING = "김^민수"
PERFORMING = "이^서연"
STUDY_UID = "1.2.410.200099.7.20250314.1"
SERIES_UID = "1.2.410.200099.7.20250314.1.1"
BURNED_SERIES_UID = "1.2.410.200099.7.20250314.1.2"
FRAME_UID = "1.2.410.200099.7.20250314.1.9"
SOP_UIDS = ("1.2.410.200099.7.20250314.1.1.1", "1.2.410.200099.7.20250314.1.1.2")
BURNED_SOP_UID = "1.2.410.200099.7.20250314.1.2.1"
MPPS_UID = "1.2.410.200099.7.20250314.1.77"
CITIZEN_KEY = "ck_3f9a1c0d77e24b51"
SECRETS = (
    RRN.encode(),
    RRN.replace("-", "").encode(),
    NAME.encode("utf-8"),
    "홍길동".encode(),
    BIRTH.encode(),
    ADDRESS.encode("utf-8"),
    INSTITUTION.encode("utf-8"),
    REFERRING.encode("utf-8"),
    PERFORMING.encode("utf-8"),
)

CATEGORIES = (
    "X_TAGS",
    "Z_TAGS",
    "D_TAGS",
    "U_TAGS",
    "Z_D_TAGS",
    "X_Z_TAGS",
    "X_D_TAGS",
    "X_Z_D_TAGS",
    "X_Z_U_STAR_TAGS",
)
# What the library (and so the copy) writes for an emptied date, time or number.
BLANKS = {"", "0", "00010101", "000000.00", "00010101010101.000000+0000", "None", "b''"}


def _category(tag: pydicom.tag.BaseTag) -> str | None:
    for name in CATEGORIES:
        for entry in getattr(table, name):
            if len(entry) == 2 and (entry[0], entry[1]) == (tag.group, tag.element):
                return name
            if (
                len(entry) == 4
                and tag.group & entry[2] == entry[0] & entry[2]
                and tag.element & entry[3] == entry[1] & entry[3]
            ):
                return name
    return None


U_TAGS = {pydicom.tag.Tag(g, e) for g, e in table.U_TAGS}


def _pixels(rows: int = 16, cols: int = 16, seed: int = 0) -> bytes:
    # Values below 4096 in 16 bits: the bytes never spell the ASCII digits searched for below.
    return (np.arange(rows * cols, dtype="<u2").reshape(rows, cols) * 7 + seed).tobytes()


def _korean(sop_uid: str, series_uid: str, burned_in: str, reference: str | None) -> bytes:
    """A CT instance of the clinic's study, as a Korean modality would write it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.410.200099.1")
    meta.SourceApplicationEntityTitle = "GJCLINIC01"
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20250314"
    ds.SeriesDate = "20250314"
    ds.AcquisitionDate = "20250314"
    ds.ContentDate = "20250314"
    ds.StudyTime = "093015"
    ds.AccessionNumber = "A20250314001"
    ds.Modality = "CT"
    ds.Manufacturer = "GJ Medical"
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = "광주광역시 남구 백서로 160"
    ds.ReferringPhysicianName = REFERRING
    ds.StationName = "CT-01"
    ds.StudyDescription = f"흉부 CT 홍길동 {RRN}"
    ds.SeriesDescription = "홍길동 조영 후"
    ds.PerformingPhysicianName = PERFORMING
    ds.OperatorsName = "박^기사"
    ds.PatientName = NAME
    ds.PatientID = RRN
    ds.PatientBirthDate = BIRTH
    ds.PatientSex = "M"
    ds.PatientAddress = ADDRESS
    ds.OtherPatientIDs = RRN.replace("-", "")
    ds.PatientTelephoneNumbers = "010-1234-5678"
    ds.AdditionalPatientHistory = "홍길동 님, 2024년 폐렴 병력"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "S001"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = FRAME_UID
    ds.ImageComments = f"{NAME} {BIRTH} 판독 요망"
    if reference is not None:
        for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
            item = pydicom.Dataset()
            item.ReferencedSOPClassUID = CTImageStorage
            item.ReferencedSOPInstanceUID = reference
            setattr(ds, keyword, Sequence([item]))
        step = pydicom.Dataset()
        step.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"  # Modality Performed Procedure Step
        step.ReferencedSOPInstanceUID = MPPS_UID
        ds.ReferencedPerformedProcedureStepSequence = Sequence([step])
    block = ds.private_block(0x0011, "GJ CLINIC PACS", create=True)
    block.add_new(0x01, "LO", RRN)
    block.add_new(0x02, "LO", "홍길동")
    ds.BurnedInAnnotation = burned_in
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = _pixels(seed=len(sop_uid))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _korean_study() -> list[bytes]:
    """Two instances (the second references the first) and one with burned-in annotation."""
    return [
        _korean(SOP_UIDS[0], SERIES_UID, "NO", None),
        _korean(SOP_UIDS[1], SERIES_UID, "NO", SOP_UIDS[0]),
        _korean(BURNED_SOP_UID, BURNED_SERIES_UID, "YES", None),
    ]


def _corpus(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert isinstance(path, str), f"{name} is not in pydicom's bundled test files"
    return path


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _leaves(element: pydicom.DataElement) -> list[str]:
    """An element's values as text, items of sequences included."""
    if element.VR == "SQ":
        return [leaf for item in element.value for inner in item for leaf in _leaves(inner)]
    value = element.value
    values = list(value) if isinstance(value, list | pydicom.multival.MultiValue) else [value]
    return [str(v) for v in values]


def _blank(element: pydicom.DataElement) -> bool:
    return all(leaf in BLANKS for leaf in _leaves(element))


def _replaced(original: pydicom.DataElement, new: pydicom.DataElement) -> bool:
    """No value the original had (dummy-like ones aside) is left in the new element."""
    before = {leaf for leaf in _leaves(original) if leaf not in BLANKS}
    return not before & set(_leaves(new))


def _original_uids(ds: pydicom.Dataset) -> set[str]:
    """The instance UIDs the profile replaces (U), at any depth, and the file meta's."""
    uids = {str(ds.file_meta.MediaStorageSOPInstanceUID)}
    for element in ds.iterall():
        if element.tag in U_TAGS and element.value:
            values = element.value if element.VM > 1 else [element.value]
            uids.update(str(v) for v in values)
    return uids


def _check_profile(original: pydicom.Dataset, copy_: pydicom.Dataset, pseudonym: str) -> set[str]:
    """Every attribute of ``original`` that Table E.1-1 names got its action in ``copy_``;
    returns the table categories that were met."""
    met = set()
    for element in original:
        tag = element.tag
        if tag.is_private:
            assert tag not in copy_, f"private {tag} kept"
            continue
        category = _category(tag)
        if category is None:
            continue
        met.add(category)
        where = f"{element.keyword or tag} ({category})"
        if element.keyword in ("PatientName", "PatientID"):
            assert str(copy_[tag].value) == pseudonym, where
            continue
        present = tag in copy_
        if category == "X_TAGS":
            assert not present, f"{where} not removed"
        elif category == "Z_TAGS":
            assert present and _blank(copy_[tag]), f"{where} not emptied"
        elif category == "D_TAGS":
            assert present and _replaced(element, copy_[tag]), f"{where} not replaced"
        elif category == "U_TAGS":
            assert present, f"{where} removed"
            assert str(copy_[tag].value) != str(element.value), f"{where} kept its UID"
            assert all(leaf.startswith("2.25.") for leaf in _leaves(copy_[tag])), where
        elif category == "X_Z_TAGS":
            assert not present or _blank(copy_[tag]), f"{where} kept"
        elif category in ("Z_D_TAGS", "X_D_TAGS", "X_Z_D_TAGS"):
            assert not present or _blank(copy_[tag]) or _replaced(element, copy_[tag]), (
                f"{where} kept"
            )
        elif category == "X_Z_U_STAR_TAGS" and present:
            before = [str(e.value) for i in element.value for e in i if e.tag in U_TAGS]
            after = [str(e.value) for i in copy_[tag].value for e in i if e.tag in U_TAGS]
            assert len(after) == len(before) and not set(before) & set(after), where
    return met


def _check_deidentified(copy_: pydicom.Dataset) -> None:
    assert copy_.PatientIdentityRemoved == "YES"
    codes = [
        (c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning)
        for c in copy_.DeidentificationMethodCodeSequence
    ]
    assert ("113100", "DCM", "Basic Application Confidentiality Profile") in codes
    assert copy_.DeidentificationMethod
    assert copy_.file_meta.MediaStorageSOPInstanceUID == copy_.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in copy_.file_meta
    assert not [e for e in copy_.iterall() if e.tag.is_private]


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "lake"
    monkeypatch.setenv("LAKEHOUSE_URI", str(root))
    return root


def _store(data: bytes, citizen_key: str | None, burned_in: bool | None) -> dict:
    ds = _read(data)
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    key = dicom_store.object_key(study, series, sop)
    dicom_store.put(key, data)
    return {
        "study_instance_uid": study,
        "series_instance_uid": series,
        "sop_instance_uid": sop,
        "file_uri": key,
        "citizen_key": citizen_key,
        "burned_in_annotation": burned_in,
    }


def _corpus_bytes() -> dict[str, bytes]:
    return {name: Path(_corpus(name)).read_bytes() for name in CORPUS}


def _request(lake: Path) -> tuple[pl.DataFrame, list[bytes]]:
    """Every corpus file and the Korean study in the object store, and the rows requesting them
    (the burned-in instance flagged in its header only), plus a missing object, an object that
    is not DICOM, and one instance requested twice."""
    originals = [*_corpus_bytes().values(), *_korean_study()]
    keys = [None, None, "ck_ecg", None, None, None, CITIZEN_KEY, CITIZEN_KEY, CITIZEN_KEY]
    burned: list[bool | None] = [None, False, None, None, False, None, False, False, None]
    rows = [_store(d, k, b) for d, k, b in zip(originals, keys, burned, strict=True)]
    missing_sop = "1.2.410.200099.7.99.1"
    rows.append(
        {
            "study_instance_uid": STUDY_UID,
            "series_instance_uid": SERIES_UID,
            "sop_instance_uid": missing_sop,
            "file_uri": dicom_store.object_key(STUDY_UID, SERIES_UID, missing_sop),
            "citizen_key": CITIZEN_KEY,
            "burned_in_annotation": False,
        }
    )
    garbage_sop = "1.2.410.200099.7.99.2"
    garbage_key = dicom_store.object_key(STUDY_UID, SERIES_UID, garbage_sop)
    dicom_store.put(garbage_key, f"{RRN} {NAME} not a DICOM file".encode())
    rows.append({**rows[-1], "sop_instance_uid": garbage_sop, "file_uri": garbage_key})
    rows.append(rows[6])  # the first Korean instance again
    frame = pl.DataFrame(
        rows,
        schema={
            "study_instance_uid": pl.String,
            "series_instance_uid": pl.String,
            "sop_instance_uid": pl.String,
            "file_uri": pl.String,
            "citizen_key": pl.String,
            "burned_in_annotation": pl.Boolean,
        },
    )
    return frame, originals


def test_research_pseudonym_is_keyed_hmac() -> None:
    expected = "R" + hmac.new(SALT, CITIZEN_KEY.encode(), hashlib.sha256).hexdigest()[:16]
    assert research_pseudonym(SALT, CITIZEN_KEY) == expected
    assert len(expected) == 17
    assert research_pseudonym(OTHER_SALT, CITIZEN_KEY) != expected
    with pytest.raises(ValueError, match="salt"):
        research_pseudonym(b"short", CITIZEN_KEY)


def test_new_uids_are_uuid_derived_and_keyed() -> None:
    uid = new_uid(SALT, STUDY_UID)
    assert uid == new_uid(SALT, STUDY_UID)
    assert uid != new_uid(OTHER_SALT, STUDY_UID)
    assert uid != new_uid(SALT, SERIES_UID)
    assert uid.startswith("2.25.")
    assert int(uid.removeprefix("2.25.")) < 2**128
    assert dicom_store.is_uid(uid)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_follows_the_basic_profile(name: str) -> None:
    original = pydicom.dcmread(_corpus(name))
    before = copy.deepcopy(original)
    out = deidentify(original, SALT, "R0123456789abcdef")
    assert original == before, "the input was changed"
    assert original.file_meta == before.file_meta

    met = _check_profile(original, out, "R0123456789abcdef")
    assert {"Z_TAGS", "U_TAGS"} <= met
    _check_deidentified(out)
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.SOPInstanceUID == new_uid(SALT, original.SOPInstanceUID)
    assert out.StudyInstanceUID == new_uid(SALT, original.StudyInstanceUID)
    if "PixelData" in original:
        assert out.PixelData == original.PixelData

    buffer = io.BytesIO()
    out.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    for uid in _original_uids(original):
        assert uid.encode() not in data, f"original UID {uid} in the copy"
    assert str(original.PatientName).encode() not in data
    assert simpledicomanonymizer.dictionary == {}, "the library's global UID map was used"


def test_rtplan_references_inside_sequences_are_rewritten() -> None:
    original = pydicom.dcmread(_corpus("rtplan.dcm"))
    out = deidentify(original, SALT, "R0")
    old = original.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    new = out.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    assert new == new_uid(SALT, old)
    assert out.ReferencedStructureSetSequence[0].ReferencedSOPClassUID == (
        original.ReferencedStructureSetSequence[0].ReferencedSOPClassUID
    )


def test_korean_instance_follows_the_basic_profile() -> None:
    original = _read(_korean_study()[1])
    pseudonym = research_pseudonym(SALT, CITIZEN_KEY)
    out = deidentify(original, SALT, pseudonym)
    met = _check_profile(original, out, pseudonym)
    assert {"X_TAGS", "Z_TAGS", "U_TAGS", "Z_D_TAGS", "X_Z_D_TAGS", "X_Z_U_STAR_TAGS"} <= met
    _check_deidentified(out)

    # Spot checks, independent of the table.
    assert out.PatientName == pseudonym
    assert out.PatientID == pseudonym
    assert out.PatientBirthDate in ("", "00010101")
    assert "PatientAddress" not in out
    assert "OtherPatientIDs" not in out
    assert "StudyDescription" not in out
    assert "ImageComments" not in out
    assert str(out.get("InstitutionName", "")) in ("", "ANONYMIZED")
    assert str(out.ReferringPhysicianName) == ""
    assert out.StudyInstanceUID == new_uid(SALT, STUDY_UID)
    assert out.FrameOfReferenceUID == new_uid(SALT, FRAME_UID)
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_uid(SALT, SOP_UIDS[0])
    assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == new_uid(SALT, SOP_UIDS[0])
    # A sequence the table replaces with dummies (X/Z/D): its UID mapped once, like any other.
    step = out.ReferencedPerformedProcedureStepSequence[0]
    assert step.ReferencedSOPInstanceUID == new_uid(SALT, MPPS_UID)
    assert out.SpecificCharacterSet == "ISO_IR 192"
    assert out.BurnedInAnnotation == "NO"
    assert out.PixelData == original.PixelData


def test_burned_in_instance_is_refused() -> None:
    with pytest.raises(BurnedInAnnotationError):
        deidentify(_read(_korean_study()[2]), SALT, "R0")


def test_research_copy(lake: Path, tmp_path: Path) -> None:
    instances, originals = _request(lake)
    result = research_copy(instances, "REQ-2025-0042", SALT, tmp_path / "copy")

    assert result.written == 8
    reasons = {e.position: e.reason for e in result.excluded}
    assert reasons == {8: BURNED_IN, 9: FAILED, 10: FAILED, 11: DUPLICATE}
    burned = next(e for e in result.excluded if e.reason == BURNED_IN)
    assert burned.sop_instance_uid == new_uid(SALT, BURNED_SOP_UID)
    for failed in (e for e in result.excluded if e.reason == FAILED):
        assert failed.error
        assert "1.2.410" not in failed.error
        assert RRN not in failed.error
    assert "ObjectStoreError" in str(result.excluded[1].error)
    assert "InvalidDicomError" in str(result.excluded[2].error)

    files = sorted((tmp_path / "copy").rglob("*.dcm"))
    assert len(files) == 8
    copies = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, files)}
    by_new_sop = {new_uid(SALT, _read(d).SOPInstanceUID): _read(d) for d in originals}

    # Nothing identifying anywhere in the files' bytes.
    all_uids = set().union(*(_original_uids(_read(d)) for d in originals))
    for path in files:
        data = path.read_bytes()
        for secret in (*SECRETS, CITIZEN_KEY.encode()):
            assert secret not in data, f"{secret!r} in {path.name}"
        for uid in all_uids:
            assert uid.encode() not in data, f"original UID {uid} in {path.name}"

    # Every copy: de-identified, pixels bit-identical, path from its new UIDs.
    for path in files:
        out = pydicom.dcmread(path)
        original = by_new_sop[str(out.SOPInstanceUID)]
        _check_deidentified(out)
        assert path.relative_to(tmp_path / "copy").parts == (
            out.StudyInstanceUID,
            out.SeriesInstanceUID,
            f"{out.SOPInstanceUID}.dcm",
        )
        assert out.get("PixelData") == original.get("PixelData")
        if original.get("PatientID") == RRN:
            assert out.PatientID == research_pseudonym(SALT, CITIZEN_KEY)
    ct = copies[new_uid(SALT, pydicom.dcmread(_corpus("CT_small.dcm")).SOPInstanceUID)]
    np.testing.assert_array_equal(ct.pixel_array, _read(originals[0]).pixel_array)
    mr = copies[new_uid(SALT, _read(originals[1]).SOPInstanceUID)]
    assert mr.PatientID == research_pseudonym(SALT, "4MR1")  # no citizen key: the original ID

    # The Korean study stays one study, its references pointing at each other's new UIDs.
    first, second = copies[new_uid(SALT, SOP_UIDS[0])], copies[new_uid(SALT, SOP_UIDS[1])]
    assert first.StudyInstanceUID == second.StudyInstanceUID == new_uid(SALT, STUDY_UID)
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert second.SourceImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    np.testing.assert_array_equal(first.pixel_array, _read(originals[6]).pixel_array)

    # The manifest: de-identified too, and complete.
    text = (tmp_path / "copy" / MANIFEST).read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert manifest["request_id"] == "REQ-2025-0042"
    assert manifest["standard_edition"] == EDITION
    assert manifest["library"] == {"name": "dicom-anonymizer", "version": "2.1.0"}
    assert manifest["profile"]["code_value"] == "113100"
    assert manifest["written"] == 8
    assert {i["sop_instance_uid"] for i in manifest["instances"]} == set(copies)
    assert [(e["position"], e["reason"]) for e in manifest["excluded"]] == sorted(reasons.items())
    for forbidden in (*all_uids, CITIZEN_KEY, "ck_ecg", RRN, RRN.replace("-", ""), "홍길동"):
        assert forbidden not in text, f"{forbidden} in the manifest"
    assert "objects/dicom" not in text
    assert simpledicomanonymizer.dictionary == {}


def test_research_copy_is_deterministic_per_salt(lake: Path, tmp_path: Path) -> None:
    instances, _ = _request(lake)
    a = research_copy(instances, "A", SALT, tmp_path / "a")
    b = research_copy(instances, "B", SALT, tmp_path / "b")
    c = research_copy(instances, "C", OTHER_SALT, tmp_path / "c")

    assert a.instances == b.instances
    for written in a.instances:
        assert (tmp_path / "a" / written.path).read_bytes() == (
            tmp_path / "b" / written.path
        ).read_bytes()
    uids_a = {u for w in a.instances for u in (w.study_instance_uid, w.sop_instance_uid)}
    uids_c = {u for w in c.instances for u in (w.study_instance_uid, w.sop_instance_uid)}
    assert len(uids_a) == len(uids_c) and not uids_a & uids_c
    assert {w.patient_id for w in a.instances}.isdisjoint({w.patient_id for w in c.instances})


def test_research_copy_needs_a_new_folder(lake: Path, tmp_path: Path) -> None:
    instances, _ = _request(lake)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        research_copy(instances, "A", SALT, tmp_path / "used")
    with pytest.raises(ValueError, match="columns"):
        research_copy(instances.drop("file_uri"), "A", SALT, tmp_path / "new")


def test_random_salts_give_unrelated_copies() -> None:
    original = _read(_korean_study()[0])
    one = deidentify(original, secrets.token_bytes(32), "R1")
    two = deidentify(original, secrets.token_bytes(32), "R2")
    assert one.StudyInstanceUID != two.StudyInstanceUID
    assert one.PixelData == two.PixelData == original.PixelData


def test_instance_the_library_cannot_process_is_excluded(lake: Path, tmp_path: Path) -> None:
    """An attribute the library has no dummy for (an AT value in a sequence the table replaces)
    fails that instance alone; the rest of the study is exported."""
    good, bad = _korean_study()[:2]
    ds = _read(bad)
    item = pydicom.Dataset()
    item.add_new(0x00720026, "AT", 0x00100010)  # Selector Attribute: Patient's Name
    ds.GraphicAnnotationSequence = Sequence([item])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    rows = [_store(good, CITIZEN_KEY, False), _store(buffer.getvalue(), CITIZEN_KEY, False)]
    result = research_copy(pl.DataFrame(rows), "REQ-AT", SALT, tmp_path / "copy")

    assert result.written == 1
    assert result.instances[0].sop_instance_uid == new_uid(SALT, SOP_UIDS[0])
    [excluded] = result.excluded
    assert (excluded.position, excluded.reason) == (1, FAILED)
    assert excluded.sop_instance_uid == new_uid(SALT, SOP_UIDS[1])
    assert excluded.error is not None and "NotImplementedError" in excluded.error
    assert not list((tmp_path / "copy").rglob(f"{new_uid(SALT, SOP_UIDS[1])}.dcm"))
