"""Routing indexed DICOM series to the AI services, with the packaged rule file.

Every exam the synthetic city sends is built by hand here, as its devices write it (BodyPartExamined
present or blank, Korean or English study descriptions), and must land exactly where the exam
catalogue says; then the hold-backs, the real-world corpus, the rule file's validation, and an
operator's edit that changes routing without a code change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse.catalog import table as catalog_table
from lakehouse.reference import code_set
from pipelines.transform.routing import (
    DEFAULT_RULES,
    RULES_ENV,
    RoutingRulesError,
    Rules,
    load_rules,
    route,
)

DECIDED = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
RECEIVED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "study_instance_uid": pl.String(),
    "series_instance_uid": pl.String(),
    "modality": pl.String(),
    "sop_class_uid": pl.String(),
    "series_number": pl.Int64(),
    "series_description": pl.String(),
    "body_part": pl.String(),
    "view_position": pl.String(),
    "laterality": pl.String(),
    "image_type": pl.String(),
    "presentation_intent": pl.String(),
    "burned_in_annotation": pl.Boolean(),
    "pixel_spacing_mm": pl.Float64(),
    "sampling_frequency_hz": pl.Float64(),
    "waveform_channels": pl.Int64(),
    "instances": pl.Int64(),
    "last_received_at": UTC_US,
}
STUDIES_SCHEMA: dict[str, pl.DataType] = {
    "study_instance_uid": pl.String(),
    "study_description": pl.String(),
    "patient_sex": pl.String(),
    "patient_age_months": pl.Int64(),
    "patient_key": pl.String(),
    "patient_conflict": pl.Boolean(),
    "last_received_at": UTC_US,
}
# What the router must return: the catalogue's declaration of silver.imaging_routing.
OUTPUT_SCHEMA = dict(catalog_table("silver.imaging_routing").polars_schema())

# SOP classes as the synthetic devices and pydicom's corpus write them.
CR = "1.2.840.10008.5.1.4.1.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
MG = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
IO = "1.2.840.10008.5.1.4.1.1.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
ECG_12 = "1.2.840.10008.5.1.4.1.1.9.1.1"
ECG_GENERAL = "1.2.840.10008.5.1.4.1.1.9.1.2"
ECG_AMBULATORY = "1.2.840.10008.5.1.4.1.1.9.1.3"
OP = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
ES = "1.2.840.10008.5.1.4.1.1.77.1.1"

_uids = count(1)


def series_row(study: str, **values: Any) -> dict[str, Any]:
    """One series as the indexer writes it; unnamed attributes are blank."""
    row: dict[str, Any] = dict.fromkeys(SERIES_SCHEMA)
    row |= {
        "study_instance_uid": study,
        "series_instance_uid": f"2.25.{next(_uids)}",
        "instances": 1,
        "last_received_at": RECEIVED,
    }
    unknown = set(values) - set(SERIES_SCHEMA)
    assert not unknown, unknown
    return row | values


def study_row(
    study: str,
    description: str | None,
    sex: str | None = "M",
    age_months: int | None = 50 * 12,
    patient_key: str | None = "pk-0001",
    conflict: bool = False,
) -> dict[str, Any]:
    return {
        "study_instance_uid": study,
        "study_description": description,
        "patient_sex": sex,
        "patient_age_months": age_months,
        "patient_key": patient_key,
        "patient_conflict": conflict,
        "last_received_at": RECEIVED + timedelta(minutes=5),
    }


def frames(
    series: list[dict[str, Any]], studies: list[dict[str, Any]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        pl.DataFrame(series, schema=SERIES_SCHEMA, orient="row"),
        pl.DataFrame(studies, schema=STUDIES_SCHEMA, orient="row"),
    )


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(DEFAULT_RULES)


def decide(
    rules: Rules, series: list[dict[str, Any]], studies: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The decisions by series UID, after checking the frame's shape."""
    out = route(*frames(series, studies), rules, DECIDED)
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)
    assert out["series_instance_uid"].to_list() == [s["series_instance_uid"] for s in series]
    return {row["series_instance_uid"]: row for row in out.iter_rows(named=True)}


def outcome(row: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    return row["outcome"], row["service"], row["rule"], row["reason"]


# --- The synthetic city's exams -------------------------------------------------------------------


@dataclass(frozen=True)
class Exam:
    """One exam of synth/params/imaging_exams.csv as its device writes it.

    ``expect`` is (outcome, service, rule, reason) per series, in series order.
    """

    code: str
    name_ko: str
    name_en: str
    body_part: str | None
    series: tuple[dict[str, Any], ...]
    expect: tuple[tuple[str, str | None, str | None, str | None], ...]
    sex: str | None = "M"
    age_years: int | None = 50
    extra: dict[str, Any] = field(default_factory=dict)


def routed(service: str, rule: str, n: int = 1) -> tuple[tuple[str, str, str, None], ...]:
    return (("routed", service, rule, None),) * n


UNROUTED = (("unrouted", None, None, "no_service"),)
DWI_TYPE = "ORIGINAL\\PRIMARY\\DIFFUSION\\TRACEW"
ADC_TYPE = "DERIVED\\PRIMARY\\DIFFUSION\\ADC"
M_ND = "ORIGINAL\\PRIMARY\\M\\ND"

EXAMS = (
    Exam(
        "CXR_PA",
        "흉부 단순촬영(PA)",
        "Chest radiograph PA",
        "CHEST",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "PA",
                "series_description": "CHEST PA",
                "presentation_intent": "FOR PRESENTATION",
                "burned_in_annotation": False,
                "pixel_spacing_mm": 0.14,
            },
        ),
        routed("chest", "chest_frontal"),
    ),
    Exam(
        "CXR_AP",
        "흉부 단순촬영(AP)",
        "Chest radiograph AP",
        "CHEST",
        (
            {
                "modality": "CR",
                "sop_class_uid": CR,
                "view_position": "AP",
                "series_description": "CHEST AP",
                "burned_in_annotation": False,
                "pixel_spacing_mm": 0.14,
            },
        ),
        routed("chest", "chest_frontal"),
    ),
    Exam(
        "CXR_LAT",
        "흉부 측면촬영",
        "Chest radiograph lateral",
        "CHEST",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "LL",
                "series_description": "CHEST LAT",
                "presentation_intent": "FOR PRESENTATION",
            },
        ),
        UNROUTED,
    ),
    Exam(
        "LSPINE_LAT",
        "요추 측면촬영",
        "Lumbar spine lateral",
        "LSPINE",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "LL",
                "series_description": "L-SPINE LAT",
                "presentation_intent": "FOR PRESENTATION",
            },
        ),
        routed("spine_fracture", "lumbar_spine_lateral"),
    ),
    Exam(
        "LSPINE_AP",
        "요추 정면촬영",
        "Lumbar spine AP",
        "LSPINE",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "AP",
                "series_description": "L-SPINE AP",
                "presentation_intent": "FOR PRESENTATION",
            },
        ),
        UNROUTED,
    ),
    Exam(
        "KNEE_AP",
        "슬관절 정면촬영",
        "Knee AP",
        "KNEE",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "AP",
                "series_description": "KNEE AP",
                "presentation_intent": "FOR PRESENTATION",
                "pixel_spacing_mm": 0.15,
            },
        ),
        UNROUTED,
    ),
    Exam(
        "DENTAL_PANO",
        "파노라마 촬영",
        "Dental panoramic",
        "JAW",
        (
            {
                "modality": "PX",
                "sop_class_uid": DX,
                "series_description": "PANORAMA",
                "presentation_intent": "FOR PRESENTATION",
            },
        ),
        routed("dental", "dental"),
    ),
    Exam(
        "DENTAL_IO",
        "치근단 촬영",
        "Intra-oral periapical",
        "JAW",
        (
            {
                "modality": "IO",
                "sop_class_uid": IO,
                "series_description": "PERIAPICAL",
                "presentation_intent": "FOR PRESENTATION",
                "instances": 4,
            },
        ),
        routed("dental", "dental"),
    ),
    Exam(
        "LEG_LENGTH",
        "하지 전장 촬영",
        "Full-length lower limb",
        "LEG",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "AP",
                "laterality": "B",
                "series_description": "LOWER LIMB FULL AP",
                "presentation_intent": "FOR PRESENTATION",
                "pixel_spacing_mm": 0.3,
            },
        ),
        routed("leg_length", "full_length_lower_limb"),
    ),
    Exam(
        "HAND_BONEAGE",
        "골연령 측정 수부촬영",
        "Hand radiograph for bone age",
        "HAND",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "PA",
                "laterality": "L",
                "series_description": "HAND PA (BONE AGE)",
                "presentation_intent": "FOR PRESENTATION",
                "pixel_spacing_mm": 0.1,
            },
        ),
        routed("bone_age", "hand_bone_age"),
        sex="F",
        age_years=9,
    ),
    Exam(
        "ECG_12LEAD",
        "심전도검사(12유도)",
        "12-lead ECG",
        None,  # the cart never writes BodyPartExamined
        (
            {
                "modality": "ECG",
                "sop_class_uid": ECG_12,
                "series_description": "12 Lead ECG",
                "sampling_frequency_hz": 500.0,
                "waveform_channels": 12,
            },
        ),
        routed("ecg", "ecg_12_lead"),
    ),
    Exam(
        "BRAIN_MRA",
        "뇌혈관 자기공명혈관조영",
        "Brain MR angiography (TOF)",
        "BRAIN",
        (
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": M_ND,
                "series_description": "TOF_3D_multi-slab",
                "instances": 40,
            },
        ),
        routed("brain", "brain_mr_angiography"),
    ),
    Exam(
        "BRAIN_DWI",
        "뇌 자기공명영상(확산강조)",
        "Brain MRI (DWI)",
        "BRAIN",
        (
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": DWI_TYPE,
                "series_description": "ep2d_diff_3scan_TRACEW b1000",
                "instances": 20,
            },
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": ADC_TYPE,
                "series_description": "ep2d_diff_3scan_ADC",
                "instances": 20,
            },
        ),
        routed("brain", "brain_mr_diffusion", 2),
    ),
    Exam(
        "BRAIN_CT",
        "뇌 전산화단층촬영",
        "Brain CT",
        "HEAD",
        (
            {
                "modality": "CT",
                "sop_class_uid": CT,
                "image_type": "ORIGINAL\\PRIMARY\\AXIAL",
                "series_description": "Brain 5.0 H30s",
                "instances": 12,
            },
        ),
        routed("brain", "brain_ct"),
    ),
    Exam(
        "PROSTATE_MR",
        "전립선 자기공명영상",
        "Prostate MRI",
        "PROSTATE",
        (
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": M_ND,
                "series_description": "t2_tse_tra",
                "instances": 20,
            },
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": DWI_TYPE,
                "series_description": "ep2d_diff_b50_800_1400_tra_CALC_BVAL b1400",
            },
            {
                "modality": "MR",
                "sop_class_uid": MR,
                "image_type": ADC_TYPE,
                "series_description": "ep2d_diff_b50_800_1400_tra_ADC",
            },
        ),
        routed("prostate", "prostate_mr", 3),
        age_years=66,
    ),
    Exam(
        "FUNDUS",
        "안저촬영",
        "Fundus photography",
        "EYE",
        (
            {
                "modality": "OP",
                "sop_class_uid": OP,
                "laterality": "R",
                "series_description": "Color Fundus OD",
            },
            {
                "modality": "OP",
                "sop_class_uid": OP,
                "laterality": "L",
                "series_description": "Color Fundus OS",
            },
        ),
        routed("fundus", "fundus_colour", 2),
    ),
    Exam(
        "GASTROSCOPY",
        "상부소화관 내시경",
        "Upper GI endoscopy",
        "STOMACH",
        (
            {
                "modality": "ES",
                "sop_class_uid": ES,
                "series_description": "Gastroscopy",
                "instances": 8,
            },
        ),
        routed("gastroscopy", "gastroscopy"),
    ),
    Exam(
        "COLONOSCOPY",
        "대장 내시경",
        "Colonoscopy",
        "COLON",
        (
            {
                "modality": "ES",
                "sop_class_uid": ES,
                "series_description": "Colonoscopy",
                "instances": 8,
            },
        ),
        routed("colonoscopy", "colonoscopy"),
    ),
    Exam(
        "MAMMO_SCREEN",
        "유방촬영(양측)",
        "Screening mammography",
        "BREAST",
        tuple(
            {
                "modality": "MG",
                "sop_class_uid": MG,
                "presentation_intent": "FOR PRESENTATION",
                "view_position": view,
                "laterality": side,
                "series_description": f"{side} {view}",
                "burned_in_annotation": False,
            }
            for side, view in (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))
        ),
        routed("mammography", "mammography_screening", 4),
        sex="F",
        age_years=52,
    ),
    Exam(
        "QA_PHANTOM",
        "정도관리 팬텀",
        "QA phantom",
        "PHANTOM",
        (
            {
                "modality": "DX",
                "sop_class_uid": DX,
                "view_position": "AP",
                "series_description": "QC PHANTOM",
                "presentation_intent": "FOR PRESENTATION",
                "burned_in_annotation": False,
                "pixel_spacing_mm": 0.14,
            },
        ),
        (("held_back", None, "qa_phantom", "qa_phantom"),),
        sex="O",
        age_years=None,
    ),
)
EXAM = {e.code: e for e in EXAMS}


def exam_rows(
    exam: Exam, study: str, *, blank_body_part: bool, korean: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    body_part = None if blank_body_part else exam.body_part
    series = [
        series_row(study, series_number=n, body_part=body_part, **values)
        for n, values in enumerate(exam.series, start=1)
    ]
    age = None if exam.age_years is None else exam.age_years * 12 + 5
    desc = exam.name_ko if korean else exam.name_en
    return series, study_row(study, desc, sex=exam.sex, age_months=age)


@pytest.mark.parametrize("korean", [True, False], ids=["ko", "en"])
@pytest.mark.parametrize("blank_body_part", [False, True], ids=["body_part", "blank"])
@pytest.mark.parametrize("code", [e.code for e in EXAMS])
def test_each_synthetic_exam_routes_as_the_catalogue_says(
    rules: Rules, code: str, blank_body_part: bool, korean: bool
) -> None:
    exam = EXAM[code]
    series, study = exam_rows(exam, f"1.2.3.{code}", blank_body_part=blank_body_part, korean=korean)
    decisions = decide(rules, series, [study])
    got = [outcome(decisions[s["series_instance_uid"]]) for s in series]
    assert got == list(exam.expect)
    for s in series:
        row = decisions[s["series_instance_uid"]]
        assert row["instances"] == s["instances"]
        assert row["received_until"] == study["last_received_at"]
        assert row["decided_at"] == DECIDED
        assert row["rules_version"] == rules.version
        assert row["message"]
        if row["outcome"] == "routed":
            assert row["service"] in row["message"]


def test_one_city_batch_routes_every_study_on_its_own(rules: Rules) -> None:
    """All exams in one frame, in both spellings: no rule reads another study's series, and the
    routed series cover all 12 services."""
    series: list[dict[str, Any]] = []
    studies: list[dict[str, Any]] = []
    expected: dict[str, tuple[str, str | None, str | None, str | None]] = {}
    for i, exam in enumerate(EXAMS * 4):
        rows, study = exam_rows(
            exam, f"1.2.9.{i}", blank_body_part=i % 2 == 0, korean=(i // len(EXAMS)) % 2 == 0
        )
        series += rows
        studies.append(study)
        expected |= {r["series_instance_uid"]: e for r, e in zip(rows, exam.expect, strict=True)}
    decisions = decide(rules, series, studies)
    assert {uid: outcome(row) for uid, row in decisions.items()} == expected
    services = {row["service"] for row in decisions.values() if row["outcome"] == "routed"}
    assert services == code_set("ai_services")
    assert len(services) == 12


def test_every_service_has_a_rule_in_the_packaged_file(rules: Rules) -> None:
    assert {rule.service for rule in rules.services} == code_set("ai_services")
    assert [h.name for h in rules.holds][:1] == ["qa_phantom"]
    assert {h.reason for h in rules.holds} == {
        "qa_phantom",
        "burned_in_annotation",
        "for_processing",
    }


# --- Hold-backs ---------------------------------------------------------------------------------


def test_burned_in_chest_pa_is_held_not_routed(rules: Rules) -> None:
    exam = EXAM["CXR_PA"]
    series, study = exam_rows(exam, "1.2.4.1", blank_body_part=False, korean=True)
    series[0]["burned_in_annotation"] = True
    [row] = decide(rules, series, [study]).values()
    assert outcome(row) == ("held_back", None, "burned_in_annotation", "burned_in_annotation")
    assert "burned-in" in row["message"]


def test_burned_in_annotation_holds_cr_too_but_not_endoscopy(rules: Rules) -> None:
    cr, cr_study = exam_rows(EXAM["CXR_AP"], "1.2.4.2", blank_body_part=True, korean=False)
    es, es_study = exam_rows(EXAM["GASTROSCOPY"], "1.2.4.3", blank_body_part=False, korean=False)
    cr[0]["burned_in_annotation"] = True
    es[0]["burned_in_annotation"] = True  # endoscopy overlays are not a reason to hold
    decisions = decide(rules, cr + es, [cr_study, es_study])
    assert decisions[cr[0]["series_instance_uid"]]["reason"] == "burned_in_annotation"
    assert decisions[es[0]["series_instance_uid"]]["service"] == "gastroscopy"


def test_for_processing_mammograms_are_held_while_presentation_series_route(rules: Rules) -> None:
    exam = EXAM["MAMMO_SCREEN"]
    series, study = exam_rows(exam, "1.2.5.1", blank_body_part=True, korean=True)
    raw = [
        series_row(
            "1.2.5.1",
            modality="MG",
            sop_class_uid=MG_PROCESSING,
            presentation_intent="FOR PROCESSING",
            series_number=101 + i,
            view_position=s["view_position"],
            laterality=s["laterality"],
            series_description=f"{s['series_description']} RAW",
        )
        for i, s in enumerate(series)
    ]
    decisions = decide(rules, series + raw, [study])
    assert [outcome(decisions[s["series_instance_uid"]]) for s in series] == [
        ("routed", "mammography", "mammography_screening", None)
    ] * 4
    assert [outcome(decisions[s["series_instance_uid"]]) for s in raw] == [
        ("held_back", None, "for_processing", "for_processing")
    ] * 4


def test_a_for_processing_sop_class_is_held_even_without_the_intent(rules: Rules) -> None:
    series = [
        series_row(
            "1.2.5.2",
            modality="MG",
            sop_class_uid=MG_PROCESSING,
            view_position="CC",
            laterality="L",
            series_description="L CC RAW",
        ),
        series_row(
            "1.2.5.2",
            modality="DX",
            sop_class_uid=DX_PROCESSING,
            body_part="CHEST",
            view_position="PA",
            series_description="CHEST PA",
        ),
    ]
    decisions = decide(rules, series, [study_row("1.2.5.2", "Screening mammography", sex="F")])
    for s in series:
        assert outcome(decisions[s["series_instance_uid"]]) == (
            "held_back",
            None,
            "for_processing_sop_class",
            "for_processing",
        )


def test_phantom_with_a_patient_body_part_is_held_by_its_description(rules: Rules) -> None:
    series = [
        series_row(
            "1.2.6.1",
            modality="DX",
            body_part="CHEST",
            view_position="PA",
            series_description="QC PHANTOM",
        )
    ]
    [row] = decide(rules, series, [study_row("1.2.6.1", "QA", sex="O", age_months=None)]).values()
    assert outcome(row) == ("held_back", None, "qa_phantom_series", "qa_phantom")


@pytest.mark.parametrize(
    "present",
    [
        ("t2_tse_tra",),
        ("ep2d_diff_b50_800_1400_tra_CALC_BVAL b1400", "ep2d_diff_b50_800_1400_tra_ADC"),
    ],
    ids=["t2_only", "diffusion_only"],
)
def test_prostate_study_missing_a_required_series_is_incomplete(
    rules: Rules, present: tuple[str, ...]
) -> None:
    exam = EXAM["PROSTATE_MR"]
    series, study = exam_rows(exam, "1.2.7.1", blank_body_part=False, korean=True)
    series = [s for s in series if s["series_description"] in present]
    decisions = decide(rules, series, [study])
    assert [outcome(r) for r in decisions.values()] == [
        ("held_back", None, "prostate_mr", "incomplete_protocol")
    ] * len(present)
    lacking = "diffusion" if present[0].startswith("t2") else "T2-weighted"
    assert all(lacking in r["message"] for r in decisions.values())


def test_prostate_requirements_are_met_only_within_one_study(rules: Rules) -> None:
    exam = EXAM["PROSTATE_MR"]
    first, study_a = exam_rows(exam, "1.2.7.2", blank_body_part=False, korean=False)
    second, study_b = exam_rows(exam, "1.2.7.3", blank_body_part=True, korean=False)
    series = first[:1] + second[1:]  # T2 in one study, DWI and ADC in the other
    decisions = decide(rules, series, [study_a, study_b])
    assert {r["reason"] for r in decisions.values()} == {"incomplete_protocol"}
    # ... and once the study's DWI arrives, the same T2 series routes.
    decisions = decide(rules, first[:2], [study_a])
    assert {r["service"] for r in decisions.values()} == {"prostate"}


@pytest.mark.parametrize(
    ("sex", "age_years", "reason"),
    [
        (None, 9, "missing_sex_or_age"),
        ("F", None, "missing_sex_or_age"),
        (None, None, "missing_sex_or_age"),
        ("O", 9, "sex_not_eligible"),
        ("M", 25, "age_out_of_range"),
        ("M", 19, "age_out_of_range"),
        ("M", 18, None),
        ("F", 0, None),
    ],
)
def test_bone_age_needs_sex_and_an_age_of_0_to_18(
    rules: Rules, sex: str | None, age_years: int | None, reason: str | None
) -> None:
    series, _ = exam_rows(EXAM["HAND_BONEAGE"], "1.2.8.1", blank_body_part=False, korean=True)
    months = None if age_years is None else age_years * 12 + 11
    [row] = decide(rules, series, [study_row("1.2.8.1", "골연령", sex, months)]).values()
    if reason is None:
        assert outcome(row) == ("routed", "bone_age", "hand_bone_age", None)
    else:
        assert outcome(row) == ("held_back", None, "hand_bone_age", reason)
        assert "hand_bone_age" in row["message"]
        assert ("sex and age" in row["message"]) == (reason == "missing_sex_or_age")
        assert ("0-18 years" in row["message"]) == (reason == "age_out_of_range")


def test_leg_length_without_pixel_spacing_is_held(rules: Rules) -> None:
    series, study = exam_rows(EXAM["LEG_LENGTH"], "1.2.8.2", blank_body_part=True, korean=True)
    series[0]["pixel_spacing_mm"] = None
    [row] = decide(rules, series, [study]).values()
    assert outcome(row) == (
        "held_back",
        None,
        "full_length_lower_limb",
        "missing_pixel_spacing",
    )
    assert "pixel spacing" in row["message"]


@pytest.mark.parametrize(
    ("hz", "reason"),
    [
        (100.0, "sampling_rate_out_of_range"),
        (2000.0, "sampling_rate_out_of_range"),
        (None, "missing_sampling_rate"),
        (125.0, None),
        (360.0, None),
        (1000.0, None),
    ],
)
def test_ecg_needs_125_to_1000_hz(rules: Rules, hz: float | None, reason: str | None) -> None:
    series, study = exam_rows(EXAM["ECG_12LEAD"], "1.2.8.3", blank_body_part=True, korean=True)
    series[0]["sampling_frequency_hz"] = hz
    [row] = decide(rules, series, [study]).values()
    if reason is None:
        assert outcome(row) == ("routed", "ecg", "ecg_12_lead", None)
    else:
        assert outcome(row) == ("held_back", None, "ecg_12_lead", reason)
    if hz == 100.0:
        assert "125-1000 Hz" in row["message"]
        assert "100" in row["message"]


def test_general_ecg_waveform_routes_too(rules: Rules) -> None:
    series = [
        series_row(
            "1.2.8.4",
            modality="ECG",
            sop_class_uid=ECG_GENERAL,
            sampling_frequency_hz=500.0,
            waveform_channels=12,
        )
    ]
    [row] = decide(rules, series, [study_row("1.2.8.4", None)]).values()
    assert outcome(row) == ("routed", "ecg", "ecg_12_lead", None)


def test_a_two_lead_holter_at_360_hz_routes_to_the_ecg_service(rules: Rules) -> None:
    """Issue 21: Holters and patches send the Ambulatory ECG class, at rates under 200 Hz too."""
    series = [
        series_row(
            "1.2.8.5",
            modality="ECG",
            sop_class_uid=ECG_AMBULATORY,
            sampling_frequency_hz=360.0,
            waveform_channels=2,
        )
    ]
    [row] = decide(rules, series, [study_row("1.2.8.5", None)]).values()
    assert outcome(row) == ("routed", "ecg", "ecg_12_lead", None)


def test_study_without_patient_identity_holds_every_series_first(rules: Rules) -> None:
    chest, study = exam_rows(EXAM["CXR_PA"], "1.2.9.1", blank_body_part=False, korean=True)
    phantom, _ = exam_rows(EXAM["QA_PHANTOM"], "1.2.9.1", blank_body_part=False, korean=True)
    study["patient_key"] = None
    decisions = decide(rules, chest + phantom, [study])
    assert [outcome(r) for r in decisions.values()] == [
        ("held_back", None, "no_patient_id", "no_patient_id")
    ] * 2


def test_patient_conflict_holds_the_study(rules: Rules) -> None:
    series, study = exam_rows(EXAM["BRAIN_DWI"], "1.2.9.2", blank_body_part=True, korean=False)
    study["patient_conflict"] = True
    decisions = decide(rules, series, [study])
    assert [outcome(r) for r in decisions.values()] == [
        ("held_back", None, "patient_conflict", "patient_conflict")
    ] * 2


def test_series_whose_study_is_unknown_is_held_as_without_identity(rules: Rules) -> None:
    series, _ = exam_rows(EXAM["CXR_PA"], "1.2.9.3", blank_body_part=False, korean=True)
    [row] = decide(rules, series, []).values()
    assert outcome(row) == ("held_back", None, "no_patient_id", "no_patient_id")
    assert row["received_until"] == RECEIVED  # the series' own upload time


# --- The real-world corpus (pydicom's test files) -------------------------------------------------

CORPUS: list[tuple[str, dict[str, Any], str | None, str | None]] = [
    # file, series attributes, study description, expected service (None: unrouted)
    (
        "CT_small.dcm",
        {"modality": "CT", "sop_class_uid": CT, "image_type": "ORIGINAL\\PRIMARY\\AXIAL"},
        "e+1",
        None,
    ),
    (
        "693_J2KI.dcm",
        {
            "modality": "CT",
            "sop_class_uid": CT,
            "series_description": "5/5mm Plain",
            "image_type": "DERIVED \\PRIMARY\\AXIAL",
        },
        None,
        None,
    ),
    (
        "MR_small.dcm",
        {"modality": "MR", "sop_class_uid": MR, "image_type": "DERIVED\\SECONDARY\\OTHER"},
        None,
        None,
    ),
    (
        "examples_overlay.dcm",
        {
            "modality": "MR",
            "sop_class_uid": MR,
            "body_part": "ABDOMEN",
            "series_description": "marked lesion<MPR Collection>",
            "image_type": "DERIVED\\SECONDARY\\MPR\\CSA MPR",
        },
        "abdomen^liver",
        None,
    ),
    (
        "examples_palette.dcm",
        {
            "modality": "US",
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.6.1",
            "image_type": "ORIGINAL\\PRIMARY\\OBSTETRICAL",
        },
        None,
        None,
    ),
    (
        "JPEG-lossy.dcm",
        {"modality": "NM", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.7", "body_part": "WHOLE BODY"},
        "Whole Body Bone",
        None,
    ),
    ("SC_rgb.dcm", {"modality": "OT", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"}, None, None),
    (
        "liver_1frame.dcm",
        {
            "modality": "SEG",
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.66.4",
            "series_description": "Liver Segmentation",
        },
        None,
        None,
    ),
    (
        "test-SR.dcm",
        {
            "modality": "SR",
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.88.33",
            "series_description": "Demonstration of SR Features",
        },
        "OFFIS Structured Reporting Test Document",
        None,
    ),
    (
        "rtdose.dcm",
        {"modality": "RTDOSE", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.481.2"},
        None,
        None,
    ),
    (
        "rtplan.dcm",
        {"modality": "RTPLAN", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.481.5"},
        None,
        None,
    ),
    (
        "waveform_ecg.dcm",
        {
            "modality": "ECG",
            "sop_class_uid": ECG_12,
            "sampling_frequency_hz": 1000.0,
            "waveform_channels": 12,
        },
        "ECG",
        "ecg",
    ),
    # A CT of the HEAD is a head CT whatever its series is called: the brain service reads it.
    (
        "J2K_pixelrep_mismatch.dcm",
        {
            "modality": "CT",
            "sop_class_uid": CT,
            "body_part": "HEAD",
            "series_description": "Lv2",
            "image_type": "ORIGINAL\\PRIMARY\\AXIAL\\NORMAL",
        },
        None,
        "brain",
    ),
]


def test_real_world_corpus_is_unrouted_except_its_ecg_and_head_ct(rules: Rules) -> None:
    series, studies, expected = [], [], {}
    for i, (name, values, description, service) in enumerate(CORPUS):
        row = series_row(f"1.2.10.{i}", **values)
        series.append(row)
        studies.append(study_row(f"1.2.10.{i}", description, sex="F", age_months=42 * 12))
        expected[row["series_instance_uid"]] = (name, service)
    decisions = decide(rules, series, studies)
    for uid, (name, service) in expected.items():
        row = decisions[uid]
        if service is None:
            assert outcome(row) == ("unrouted", None, None, "no_service"), name
            assert "no service rule" in row["message"]
        else:
            assert (row["outcome"], row["service"]) == ("routed", service), name


# --- Output shape -------------------------------------------------------------------------------


def test_output_keeps_order_and_converts_decided_at_to_utc(rules: Rules) -> None:
    a, study_a = exam_rows(EXAM["BRAIN_DWI"], "1.2.11.1", blank_body_part=False, korean=True)
    b, study_b = exam_rows(EXAM["KNEE_AP"], "1.2.11.2", blank_body_part=False, korean=True)
    series = [a[1], b[0], a[0]]
    kst = timezone(timedelta(hours=9))
    out = route(*frames(series, [study_b, study_a]), rules, DECIDED.astimezone(kst))
    assert out.columns == list(OUTPUT_SCHEMA)
    assert out["series_instance_uid"].to_list() == [s["series_instance_uid"] for s in series]
    assert out["outcome"].to_list() == ["routed", "unrouted", "routed"]
    assert out["decided_at"].to_list() == [DECIDED] * 3
    assert out["instances"].to_list() == [20, 1, 20]
    with pytest.raises(ValueError, match="timezone"):
        route(*frames(series, [study_a, study_b]), rules, datetime(2025, 3, 2, 8))


def test_empty_input_gives_an_empty_frame_of_the_output_schema(rules: Rules) -> None:
    out = route(*frames([], []), rules, DECIDED)
    assert out.height == 0
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)


def test_routing_100000_series_decides_each_copy_like_its_original(rules: Rules) -> None:
    """City scale in one call (the timing is in the benchmarks): copies of every exam under
    other studies get exactly their original's decision."""
    base: list[dict[str, Any]] = []
    studies: list[dict[str, Any]] = []
    for i, exam in enumerate(EXAMS):
        rows, study = exam_rows(exam, f"s{i}", blank_body_part=i % 2 == 0, korean=i % 3 == 0)
        base += rows
        studies.append(study)
    series, study_frame = frames(base, studies)
    n = 100_000 // series.height + 1
    big_series = pl.concat(
        series.with_columns(pl.col("study_instance_uid") + f".{k}") for k in range(n)
    ).head(100_000)
    big_studies = pl.concat(
        study_frame.with_columns(pl.col("study_instance_uid") + f".{k}") for k in range(n)
    )
    out = route(big_series, big_studies, rules, DECIDED)
    assert out.height == 100_000
    assert out.filter(pl.col("outcome") == "routed")["service"].n_unique() == 12
    decisions = out.group_by("series_instance_uid").agg(
        pl.struct("outcome", "service", "reason").n_unique().alias("kinds")
    )
    assert decisions["kinds"].max() == 1


# --- The rule file ------------------------------------------------------------------------------

PACKAGED = DEFAULT_RULES.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_version_is_the_hash_of_the_file_bytes(tmp_path: Path, rules: Rules) -> None:
    assert rules.version == hashlib.sha256(DEFAULT_RULES.read_bytes()).hexdigest()[:12]
    copy = load_rules(write(tmp_path, PACKAGED + "\n# a comment changes the version\n"))
    assert copy.version != rules.version
    assert len(copy.version) == 12
    assert copy.services == rules.services


def test_environment_variable_points_at_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, PACKAGED + "\n")
    monkeypatch.setenv(RULES_ENV, str(path))
    assert load_rules().source == path
    assert load_rules(DEFAULT_RULES).source == DEFAULT_RULES  # an explicit path wins
    monkeypatch.delenv(RULES_ENV)
    assert load_rules().source == DEFAULT_RULES


CHEST_RULE = """[[service]]
name = "chest_frontal"
service = "chest"
modality = ["CR", "DX"]
body_part = ["CHEST"]
body_part_keywords = ["CHEST", "흉부", "THORAX", "CXR"]
view_position = ["PA", "AP"]
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('view_position = ["PA", "AP"]', 'view_postion = ["PA", "AP"]', 1),
            r"service rule 'chest_frontal': unknown key\(s\) view_postion",
        ),
        (
            lambda t: t.replace('service = "chest"', 'service = "chest_ct"', 1),
            r"service rule 'chest_frontal': unknown service 'chest_ct'",
        ),
        (
            lambda t: t + '\n[[service]]\nname = "nothing"\nservice = "chest"\n',
            r"service rule 'nothing': no criteria",
        ),
        (
            lambda t: (
                t + '\n[[service]]\nname = "chest_frontal"\nservice = "chest"\nmodality = ["DX"]\n'
            ),
            r"rule 'chest_frontal': the name is used twice",
        ),
        (
            lambda t: (
                t + '\n[[hold]]\nname = "dental"\nreason = "x"\nmessage = "m"\nmodality = ["PX"]\n'
            ),
            r"rule 'dental': the name is used twice",
        ),
        (
            lambda t: t.replace('modality = ["CR", "DX"]', 'modality = "DX"', 1),
            r"service rule 'chest_frontal': 'modality' must be a non-empty list of strings",
        ),
        (
            lambda t: t.replace('modality = ["CR", "DX"]', "modality = []", 1),
            r"service rule 'chest_frontal': 'modality' must be a non-empty list",
        ),
        (
            lambda t: t.replace('modality = ["CR", "DX"]', 'modality = ["CR", 7]', 1),
            r"service rule 'chest_frontal': 'modality' must hold non-empty strings",
        ),
        (
            lambda t: t.replace("burned_in_annotation = true", 'burned_in_annotation = "YES"', 1),
            r"hold rule 'burned_in_annotation': 'burned_in_annotation' must be true or false",
        ),
        (
            lambda t: t.replace("age_years = [0, 18]", "age_years = [18]", 1),
            r"service rule 'hand_bone_age': needs.age_years must be \[min, max\]",
        ),
        (
            lambda t: t.replace("age_years = [0, 18]", "age_years = [0.5, 18]", 1),
            r"service rule 'hand_bone_age': needs.age_years must be \[min, max\]",
        ),
        (
            lambda t: t.replace("sampling_hz = [125, 1000]", "sampling_hz = [1000, 125]", 1),
            r"service rule 'ecg_12_lead': needs.sampling_hz must be \[min, max\]",
        ),
        (
            lambda t: t.replace("\npixel_spacing = true", "\npixel_spacing = 1", 1),
            r"service rule 'full_length_lower_limb': needs.pixel_spacing must be true or false",
        ),
        (
            lambda t: t.replace("\npixel_spacing = true", "\npixel_spacing_mm = true", 1),
            r"service rule 'full_length_lower_limb', needs: unknown key\(s\) pixel_spacing_mm",
        ),
        (
            lambda t: t.replace('reason = "qa_phantom"', 'reason = ""', 1),
            r"hold rule 'qa_phantom': 'reason' must be a non-empty string",
        ),
        (
            lambda t: t.replace('message = "quality-control', 'mesage = "quality-control', 1),
            r"hold rule 'qa_phantom': unknown key\(s\) mesage",
        ),
        (
            lambda t: t.replace('name = "a T2-weighted series"\n', "", 1),
            r"service rule 'prostate_mr', requirement #1: 'name' must be a non-empty string",
        ),
        (
            lambda t: t.replace('name = "chest_frontal"', 'name = "Chest Frontal"', 1),
            r"service rule #1: 'name' must be a lower_snake_case string",
        ),
        (
            lambda t: t.replace('name = "dental"', 'name = "no_patient_id"', 1),
            r"rule 'no_patient_id': the name is used is built in",
        ),
        (
            lambda t: t.replace(
                'view_position = ["PA", "AP"]', 'body_part_keywords = ["X"]', 1
            ).replace(
                'body_part = ["CHEST"]\nbody_part_keywords = ["CHEST", "흉부", "THORAX", "CXR"]\n',
                "",
                1,
            ),
            r"service rule 'chest_frontal': 'body_part_keywords' is only used with 'body_part'",
        ),
        (lambda t: t + "\n[settings]\nstrict = true\n", r"the file: unknown key\(s\) settings"),
        (lambda t: t.replace("\n[[hold]]\nname", "\n[hold]\nname", 1), r"not valid UTF-8 TOML"),
        (
            lambda t: t.replace(
                '[[service]]\nname = "mammography_screening"\nservice = "mammography"\n',
                '[[service]]\nname = "mammography_screening"\nservice = "chest"\n',
                1,
            ),
            r"the file: no \[\[service\]\] rule for the service\(s\) mammography, which .*"
            r"registry\.toml lists",
        ),
    ],
)
def test_a_broken_rule_file_is_refused_with_the_rule_and_the_problem(
    tmp_path: Path, edit: Any, message: str
) -> None:
    text = edit(PACKAGED)
    assert text != PACKAGED, "the edit must change the file"
    path = write(tmp_path, text)
    with pytest.raises(RoutingRulesError, match=message) as raised:
        load_rules(path)
    assert str(path) in str(raised.value)


def test_a_missing_rule_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutingRulesError, match="cannot read routing rules"):
        load_rules(tmp_path / "absent.toml")


def test_the_fixtures_match_the_packaged_chest_rule() -> None:
    """The validation cases above edit these lines; if they drift, the edits would miss."""
    assert CHEST_RULE in PACKAGED


# --- An operator's edit -------------------------------------------------------------------------


def test_an_operator_adds_a_rule_and_routing_changes_without_code(
    tmp_path: Path, rules: Rules
) -> None:
    """A new clinic's console leaves ViewPosition blank on lumbar laterals; the operator adds a
    rule recognising them by the series description, in a copy of the file."""
    series = [
        series_row(
            "1.2.12.1",
            modality="DX",
            sop_class_uid=DX,
            body_part="LSPINE",
            series_description="L-SPINE LAT",
            presentation_intent="FOR PRESENTATION",
        )
    ]
    study = [study_row("1.2.12.1", "요추 측면촬영", sex="F", age_months=70 * 12)]
    [before] = decide(rules, series, study).values()
    assert outcome(before) == ("unrouted", None, None, "no_service")

    edited = load_rules(
        write(
            tmp_path,
            PACKAGED
            + """
[[service]]
name = "lumbar_spine_lateral_by_description"
service = "spine_fracture"
modality = ["DX", "CR"]
body_part = ["LSPINE"]
body_part_keywords = ["요추", "LUMBAR"]
series_keywords = ["LAT"]
""",
        )
    )
    [after] = decide(edited, series, study).values()
    assert outcome(after) == (
        "routed",
        "spine_fracture",
        "lumbar_spine_lateral_by_description",
        None,
    )
    assert after["rules_version"] == edited.version != rules.version


def test_an_operator_widens_an_age_limit(tmp_path: Path, rules: Rules) -> None:
    series, _ = exam_rows(EXAM["HAND_BONEAGE"], "1.2.12.2", blank_body_part=True, korean=False)
    study = [study_row("1.2.12.2", "Hand radiograph for bone age", "M", 20 * 12)]
    [before] = decide(rules, series, study).values()
    assert before["reason"] == "age_out_of_range"
    edited = load_rules(
        write(tmp_path, PACKAGED.replace("age_years = [0, 18]", "age_years = [0, 21]"))
    )
    [after] = decide(edited, series, study).values()
    assert outcome(after) == ("routed", "bone_age", "hand_bone_age", None)


def test_the_first_matching_service_rule_wins(tmp_path: Path, rules: Rules) -> None:
    """Rules are tried in file order: a rule put before chest_frontal takes its series, and a
    hold rule added at the end still comes before every service rule."""
    series, study = exam_rows(EXAM["CXR_PA"], "1.2.12.3", blank_body_part=False, korean=True)
    first = """[[service]]
name = "chest_pa_only"
service = "chest"
modality = ["DX"]
view_position = ["PA"]

"""
    edited = load_rules(write(tmp_path, PACKAGED.replace(CHEST_RULE, first + CHEST_RULE, 1)))
    [row] = decide(edited, series, [study]).values()
    assert outcome(row) == ("routed", "chest", "chest_pa_only", None)

    held = load_rules(
        write(
            tmp_path,
            PACKAGED
            + """
[[hold]]
name = "vendor_recall"
reason = "device_recalled"
message = "this detector was recalled; images wait for the vendor's fix"
modality = ["DX"]
series_keywords = ["CHEST"]
""",
        )
    )
    [row] = decide(held, series, [study]).values()
    assert outcome(row) == ("held_back", None, "vendor_recall", "device_recalled")
    assert row["message"].startswith("this detector was recalled")


def test_image_type_matches_whole_values_case_insensitively(tmp_path: Path, rules: Rules) -> None:
    """``image_type_all``/``image_type_any`` compare whole values of the backslash list ("ADC"
    is not "ADCMAP", "M" is not "MPR"), and rule values are case-insensitive like the data."""
    extra = """[[service]]
name = "derived_adc_maps"
service = "brain"
modality = ["mr"]
image_type_all = ["derived", "adc"]

[[service]]
name = "magnitude_images"
service = "brain"
modality = ["MR"]
image_type_any = ["M"]

"""
    edited = load_rules(write(tmp_path, PACKAGED.replace(CHEST_RULE, extra + CHEST_RULE, 1)))
    study = "1.2.13.1"
    cases = {
        "derived \\ primary \\ diffusion \\ adc": "derived_adc_maps",  # blanks around values
        "ORIGINAL\\PRIMARY\\DIFFUSION\\ADC": None,  # not DERIVED
        "DERIVED\\PRIMARY\\ADCMAP": None,
        "ORIGINAL\\PRIMARY\\M\\ND": "magnitude_images",
        "DERIVED\\SECONDARY\\MPR": None,
    }
    series = [
        series_row(study, modality="MR", body_part="ABDOMEN", image_type=image_type)
        for image_type in cases
    ]
    decisions = decide(edited, series, [study_row(study, "abdomen^liver")])
    assert [decisions[s["series_instance_uid"]]["rule"] for s in series] == list(cases.values())
    # The packaged rules route none of them: the body part is not the brain.
    assert {r["outcome"] for r in decide(rules, series, [study_row(study, None)]).values()} == {
        "unrouted"
    }


def test_attribute_values_are_compared_case_insensitively(rules: Rules) -> None:
    series = [
        series_row(
            "1.2.13.2",
            modality="dx",
            body_part=" chest ",
            view_position="pa",
            series_description="x",
        ),
        series_row("1.2.13.2", modality="DX", view_position="AP", series_description="Chest ap"),
        series_row("1.2.13.2", modality="DX", body_part="", view_position="AP"),
    ]
    decisions = decide(rules, series, [study_row("1.2.13.2", None)])
    assert [r["service"] for r in decisions.values()] == ["chest", "chest", None]
    assert list(decisions.values())[2]["message"] == (
        "no service rule matches this series (modality DX, body part blank, view AP, series '')"
    )
