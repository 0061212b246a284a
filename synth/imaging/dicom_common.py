"""The attributes every imaging object shares: patient, study, series, equipment and SOP common.

Where the institution code goes: ``InstitutionName`` carries the Korean name and
``InstitutionCodeSequence`` (0008,0082) one item with the YKIHO as ``CodeValue`` in the local
coding scheme ``99HIRA``. ``StationName`` names the device room, as modalities set it. The upload
folder (``imaging/<YKIHO>/...``) is the authoritative source; the header is how a file that lost
its folder still names its sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydicom.dataset import Dataset

from synth.imaging.encoder import SharedSequence, dataset
from synth.imaging.exams import QA_EXAM, Exam
from synth.imaging.orders import ImagingOrder
from synth.imaging.sites import Site
from synth.imaging.uids import uid

HIRA_SCHEME = "99HIRA"
# Two-syllable Korean family names; every other name's family name is its first syllable.
DOUBLE_SURNAMES = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절")


@dataclass(frozen=True)
class Anatomy:
    """BodyPartExamined and the SNOMED CT code of the anatomic region, per exam."""

    body_part: str
    code: str
    meaning: str


ANATOMY: dict[str, Anatomy] = {
    "CXR_PA": Anatomy("CHEST", "43799004", "Chest"),
    "CXR_AP": Anatomy("CHEST", "43799004", "Chest"),
    "CXR_LAT": Anatomy("CHEST", "43799004", "Chest"),
    "LSPINE_LAT": Anatomy("LSPINE", "122496007", "Lumbar spine"),
    "LSPINE_AP": Anatomy("LSPINE", "122496007", "Lumbar spine"),
    "KNEE_AP": Anatomy("KNEE", "72696002", "Knee"),
    "DENTAL_PANO": Anatomy("JAW", "661005", "Jaw region"),
    "DENTAL_IO": Anatomy("JAW", "91609006", "Mandible"),
    "LEG_LENGTH": Anatomy("LEG", "61685007", "Lower limb"),
    "HAND_BONEAGE": Anatomy("HAND", "85562004", "Hand"),
    "ECG_12LEAD": Anatomy("", "80891009", "Heart"),
    "BRAIN_MRA": Anatomy("BRAIN", "12738006", "Brain"),
    "BRAIN_DWI": Anatomy("BRAIN", "12738006", "Brain"),
    "BRAIN_CT": Anatomy("HEAD", "69536005", "Head"),
    "FUNDUS": Anatomy("EYE", "81745001", "Eye"),
    "GASTROSCOPY": Anatomy("STOMACH", "69695003", "Stomach"),
    "COLONOSCOPY": Anatomy("COLON", "71854001", "Colon"),
    "MAMMO_SCREEN": Anatomy("BREAST", "76752008", "Breast"),
    "PROSTATE_MR": Anatomy("PROSTATE", "41216001", "Prostate"),
    "QA_PHANTOM": Anatomy("PHANTOM", "", ""),
}


EMPTY_SEQUENCE = SharedSequence()  # the value of every empty sequence attribute


def code_item(value: str, scheme: str, meaning: str, version: str | None = None) -> Dataset:
    """One item of a code sequence (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
    attributes = {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}
    if version is not None:
        attributes["CodingSchemeVersion"] = version
    return dataset(attributes)


@cache
def code_sequence(value: str, scheme: str, meaning: str) -> SharedSequence:
    """A one-item code sequence, built once per process and shared."""
    return SharedSequence([code_item(value, scheme, meaning)])


def person_name(name: str) -> str:
    """A Korean name as a DICOM PN: ``family^given``."""
    cut = 2 if name[:2] in DOUBLE_SURNAMES and len(name) > 2 else 1
    return f"{name[:cut]}^{name[cut:]}" if len(name) > cut else name


def dicom_age(months: int) -> str:
    """PatientAge (AS): months for infants, years otherwise."""
    return f"{months:03d}M" if months < 24 else f"{min(months // 12, 999):03d}Y"


def da(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def tm(moment: datetime) -> str:
    return moment.strftime("%H%M%S")


@dataclass(frozen=True)
class StudyHeader:
    """Patient- and study-level values shared by every object of one study."""

    seed: int
    accession: str
    study_uid: str
    started: datetime
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    age: str
    institution_name: str
    institution_code: str
    charset: tuple[str, ...]
    body_part: str
    study_description: str
    anatomy: Anatomy

    @classmethod
    def of(
        cls, order: ImagingOrder, row: Exam, seed: int, site: Site, blank_body_part: bool
    ) -> StudyHeader:
        qa = order.exam == QA_EXAM
        charset = site.charset
        anatomy = ANATOMY[order.exam]
        return cls(
            seed=seed,
            accession=order.accession,
            study_uid=uid(seed, order.accession, "study"),
            started=order.study_datetime,
            patient_name="QA^PHANTOM" if qa else person_name(order.patient_name),
            patient_id=f"QA-{order.institution_code}" if qa else order.patient_id,
            birth_date="" if qa else order.birth_date.strftime("%Y%m%d"),
            sex="O" if qa else order.sex,
            age="" if qa else dicom_age(order.age_months),
            institution_name=order.institution_name,
            institution_code=order.institution_code,
            charset=charset,
            body_part="" if blank_body_part else anatomy.body_part,
            study_description=row.name_ko if site.korean_descriptions else row.name_en,
            anatomy=anatomy,
        )

    def uid(self, *parts: str | int) -> str:
        return uid(self.seed, self.accession, *parts)


@dataclass(frozen=True)
class SeriesHeader:
    """Series-level values: identity, protocol description, device and timing."""

    number: int
    uid: str
    modality: str
    description: str
    started: datetime
    manufacturer: str
    model: str
    station: str
    frame_of_reference: str


def base(
    study: StudyHeader,
    series: SeriesHeader,
    sop_class: str,
    instance: int,
    sop_uid: str,
    extra_seconds: int = 0,
) -> dict[str, Any]:
    """The patient, study, series, equipment and SOP common attributes, by keyword."""
    content = series.started + timedelta(seconds=extra_seconds)
    return {
        "SpecificCharacterSet": list(study.charset) if len(study.charset) > 1 else study.charset[0],
        "SOPClassUID": sop_class,
        "SOPInstanceUID": sop_uid,
        "StudyDate": da(study.started),
        "SeriesDate": da(series.started),
        "ContentDate": da(content),
        "StudyTime": tm(study.started),
        "SeriesTime": tm(series.started),
        "ContentTime": tm(content),
        "AccessionNumber": study.accession,
        "Modality": series.modality,
        "Manufacturer": series.manufacturer,
        "InstitutionName": study.institution_name,
        "InstitutionCodeSequence": code_sequence(
            study.institution_code, HIRA_SCHEME, study.institution_name
        ),
        "ReferringPhysicianName": "",
        "StationName": series.station,
        "StudyDescription": study.study_description,
        "SeriesDescription": series.description,
        "ManufacturerModelName": series.model,
        "PatientName": study.patient_name,
        "PatientID": study.patient_id,
        "PatientBirthDate": study.birth_date,
        "PatientSex": study.sex,
        "PatientAge": study.age,
        "StudyInstanceUID": study.study_uid,
        "SeriesInstanceUID": series.uid,
        "StudyID": study.accession[-8:],
        "SeriesNumber": series.number,
        "InstanceNumber": instance,
    }
