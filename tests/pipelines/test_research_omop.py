"""OMOP research extracts: an approved request's cohort in the OMOP tables, beside its DICOM copy.

A real lakehouse: three patients' CT studies (the Korean clinic's study the de-identification
tests build, and two more like it under other registration numbers and UIDs) indexed by the real
imaging pipeline into the encrypted object store, and small ``omop.*`` tables written here
through ``lakehouse.delta`` as the catalogue declares them (the OMOP build fills them in
production): persons, periods, visits, conditions, drugs, procedures, measurements,
observations, a death, the studies' ``image_occurrence`` rows and an AI feature. The request asks
for two of the three patients' studies; the third patient's rows must stay behind.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pydicom
import pytest

from lakehouse import delta
from lakehouse.access import Access, Principal
from lakehouse.catalog import table
from lakehouse.omop import spec
from lakehouse.pseudonym import citizen_key
from pipelines.defs.imaging import imaging_index
from pipelines.defs.research import RequestRefusedError, request_salt, research_copy_job
from pipelines.research_copy import research_copy
from pipelines.research_omop import (
    EXTRACT_TABLES,
    PERSON_TABLES,
    WHOLE_TABLES,
    CohortError,
    IdentifierLeakError,
    cohort,
    date_shift,
    omop_extract,
    pseudonymous_id,
)
from pipelines.transform.deidentify import new_uid
from tests.pipelines.conftest import Lake
from tests.pipelines.test_deidentify import RRN, _korean_study

pytestmark = pytest.mark.integration

STUDY_PREFIX = "1.2.410.200099.7.20250314.1"
OTHER_RRNS = {"B": "750505-2345678", "C": "600303-1456789"}
REQUEST = "irb-2026-031"
INSTITUTION = "10000004"


@dataclass(frozen=True)
class Patient:
    """One patient of the test lakehouse: their citizen key, OMOP person id and study."""

    key: str
    person_id: int
    study_uid: str
    series_uids: tuple[str, ...]


def _studies() -> dict[str, list[bytes]]:
    """The Korean study for patient A, and the same study under patient B's and C's numbers
    (every UID of it moved to another root, so the three are three studies)."""
    out = {"A": _korean_study()}
    for n, (name, rrn) in enumerate(OTHER_RRNS.items(), start=2):
        files = []
        for data in out["A"]:
            ds = pydicom.dcmread(io.BytesIO(data))
            for element in [*ds.iterall(), *ds.file_meta.iterall()]:
                if element.VR == "UI" and str(element.value).startswith(STUDY_PREFIX):
                    element.value = str(element.value).replace(STUDY_PREFIX, f"{STUDY_PREFIX}{n}")
            ds.PatientID = rrn
            ds.OtherPatientIDs = rrn.replace("-", "")
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            files.append(buffer.getvalue())
        out[name] = files
    return out


def _rows(name: str, rows: list[dict[str, Any]]) -> None:
    delta.append(f"omop.{name}", pl.DataFrame(rows, schema=table(f"omop.{name}").polars_schema()))


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC)


def _write_omop(patients: dict[str, Patient]) -> None:
    """Small OMOP tables conforming to the catalogue, for the three patients."""
    a, b, c = patients["A"], patients["B"], patients["C"]
    births = {"A": (1980, 1, 1), "B": (1975, 5, 5), "C": (1960, 3, 3)}
    _rows(
        "person",
        [
            {
                "person_id": p.person_id,
                "gender_concept_id": 8507 if name != "B" else 8532,
                "year_of_birth": births[name][0],
                "month_of_birth": births[name][1],
                "day_of_birth": births[name][2],
                "birth_datetime": datetime(*births[name], tzinfo=UTC),
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "location_id": 24010,
                "care_site_id": 31,
                "provider_id": 901,
                "person_source_value": p.key,
                "gender_source_value": "M" if name != "B" else "F",
            }
            for name, p in patients.items()
        ],
    )
    _rows(
        "observation_period",
        [
            {
                "observation_period_id": 500 + i,
                "person_id": p.person_id,
                "observation_period_start_date": date(2024, 1, 1),
                "observation_period_end_date": date(2025, 12, 31),
                "period_type_concept_id": 32810,
            }
            for i, p in enumerate(patients.values())
        ],
    )
    visits = [
        (601, a, date(2025, 2, 10), None),
        (602, a, date(2025, 3, 14), 601),
        (603, b, date(2025, 4, 2), None),
        (604, c, date(2025, 5, 20), None),
    ]
    _rows(
        "visit_occurrence",
        [
            {
                "visit_occurrence_id": vid,
                "person_id": p.person_id,
                "visit_concept_id": 9202,
                "visit_start_date": day,
                "visit_start_datetime": _at(day),
                "visit_end_date": day,
                "visit_type_concept_id": 32810,
                "care_site_id": 31,
                "provider_id": 901,
                "visit_source_value": "outpatient",
                "preceding_visit_occurrence_id": before,
            }
            for vid, p, day, before in visits
        ],
    )
    _rows(
        "condition_occurrence",
        [
            {
                "condition_occurrence_id": 701,
                "person_id": a.person_id,
                "condition_concept_id": 0,
                "condition_start_date": date(2025, 2, 10),
                "condition_type_concept_id": 32810,
                "condition_status_concept_id": 32902,
                "visit_occurrence_id": 601,
                "condition_source_value": "E11.9",
            },
            {
                "condition_occurrence_id": 702,
                "person_id": c.person_id,
                "condition_concept_id": 0,
                "condition_start_date": date(2025, 5, 20),
                "condition_type_concept_id": 32810,
                "visit_occurrence_id": 604,
                "condition_source_value": "I10",
            },
        ],
    )
    _rows(
        "drug_exposure",
        [
            {
                "drug_exposure_id": 801,
                "person_id": a.person_id,
                "drug_concept_id": 0,
                "drug_exposure_start_date": date(2025, 2, 10),
                "drug_exposure_end_date": date(2025, 3, 11),
                "drug_type_concept_id": 32810,
                "quantity": 60.0,
                "days_supply": 30,
                "sig": "1일 2회 식후",
                "provider_id": 901,
                "visit_occurrence_id": 601,
                "drug_source_value": "224507CPC",
            },
            {
                "drug_exposure_id": 802,
                "person_id": c.person_id,
                "drug_concept_id": 0,
                "drug_exposure_start_date": date(2025, 5, 20),
                "drug_exposure_end_date": date(2025, 6, 18),
                "drug_type_concept_id": 32810,
                "visit_occurrence_id": 604,
                "drug_source_value": "111501ATB",
            },
        ],
    )
    _rows(
        "procedure_occurrence",
        [
            {
                "procedure_occurrence_id": 901001,
                "person_id": b.person_id,
                "procedure_concept_id": 0,
                "procedure_date": date(2025, 4, 2),
                "procedure_type_concept_id": 32810,
                "visit_occurrence_id": 603,
                "procedure_source_value": "HA424",
            }
        ],
    )
    _rows(
        "measurement",
        [
            {
                "measurement_id": 1001,
                "person_id": a.person_id,
                "measurement_concept_id": 3036277,
                "measurement_date": date(2025, 2, 10),
                "measurement_type_concept_id": 32810,
                "value_as_number": 172.0,
                "visit_occurrence_id": 601,
                "measurement_source_value": "HEIGHT",
                "unit_source_value": "cm",
            }
        ],
    )
    _rows(
        "observation",
        [
            {
                "observation_id": 1101,
                "person_id": b.person_id,
                "observation_concept_id": 0,
                "observation_date": date(2025, 4, 2),
                "observation_type_concept_id": 32810,
                "value_as_string": "never",
                "observation_source_value": "SMOKING",
            }
        ],
    )
    _rows(
        "death",
        [
            {"person_id": c.person_id, "death_date": date(2025, 7, 1), "cause_source_value": "I21"},
        ],
    )
    images = [
        (1201 + i, p, series)
        for i, (p, series) in enumerate((p, s) for p in (a, b, c) for s in sorted(p.series_uids))
    ]
    _rows(
        "image_occurrence",
        [
            {
                "image_occurrence_id": iid,
                "person_id": p.person_id,
                "visit_occurrence_id": {a.key: 602, b.key: 603, c.key: 604}[p.key],
                "anatomic_site_concept_id": 0,
                "wadors_uri": f"https://pacs.example/studies/{p.study_uid}/series/{series}",
                "local_path": f"objects/dicom/{p.study_uid}/{series}",
                "image_occurrence_date": date(2025, 3, 14),
                "image_study_uid": p.study_uid,
                "image_series_uid": series,
                "modality_concept_id": 0,
            }
            for iid, p, series in images
        ],
    )
    _rows(
        "image_feature",
        [
            {
                "image_feature_id": 1301,
                "person_id": a.person_id,
                "image_occurrence_id": images[0][0],
                "image_feature_event_field_concept_id": 0,
                "image_feature_event_id": images[0][0],
                "image_feature_concept_id": 0,
                "image_feature_type_concept_id": 32817,
                "image_finding_id": 1,
                "alg_system": "chest-ref 1.0",
                "alg_datetime": datetime(2025, 3, 14, 9, 41, tzinfo=UTC),
            },
            {
                "image_feature_id": 1302,
                "person_id": c.person_id,
                "image_occurrence_id": images[-1][0],
                "image_feature_event_field_concept_id": 0,
                "image_feature_event_id": images[-1][0],
                "image_feature_concept_id": 0,
                "image_feature_type_concept_id": 32817,
                "alg_system": "chest-ref 1.0",
                "alg_datetime": datetime(2025, 3, 14, 9, 45, tzinfo=UTC),
            },
        ],
    )
    _rows(
        "care_site",
        [{"care_site_id": 31, "care_site_name": "광주시민의원", "location_id": 24010}],
    )
    _rows(
        "location",
        [
            {"location_id": 24010, "location_source_value": "24010", "country_concept_id": 0},
            {"location_id": 24020, "location_source_value": "24020", "country_concept_id": 0},
        ],
    )
    _rows(
        "concept",
        [
            {
                "concept_id": 0,
                "concept_name": "No matching concept",
                "domain_id": "Metadata",
                "vocabulary_id": "None",
                "concept_class_id": "Undefined",
                "concept_code": "No matching concept",
                "valid_start_date": date(1970, 1, 1),
                "valid_end_date": date(2099, 12, 31),
            }
        ],
    )
    _rows(
        "cdm_source",
        [
            {
                "cdm_source_name": "Gwangju AI public medical service",
                "cdm_source_abbreviation": "GJH",
                "cdm_holder": "Gwangju",
                "source_release_date": date(2026, 12, 1),
                "cdm_release_date": date(2026, 12, 1),
                "cdm_version": "v5.4",
                "cdm_version_concept_id": 756265,
                "vocabulary_version": "gjh",
            }
        ],
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict[str, Patient]]:
    """The three patients' studies indexed by the imaging pipeline, and their OMOP rows."""
    root = tmp_path_factory.mktemp("research_omop")
    lake = Lake(root / "lakehouse", root / "sources")
    drop = lake.sources / "imaging" / INSTITUTION
    drop.mkdir(parents=True)
    past = time.time() - 600
    for name, files in _studies().items():
        for i, data in enumerate(files):
            path = drop / f"{name}{i}.dcm"
            path.write_bytes(data)
            os.utime(path, (past, past))
    lake.materialise([imaging_index])
    instances = lake.frame("silver.imaging_instances")
    patients: dict[str, Patient] = {}
    with lake.active():
        keys = {"A": citizen_key(RRN), **{n: citizen_key(r) for n, r in OTHER_RRNS.items()}}
        for n, (name, key) in enumerate(keys.items()):
            mine = instances.filter(pl.col("citizen_key") == key)
            (study,) = mine["study_instance_uid"].unique().to_list()
            series = tuple(sorted(mine["series_instance_uid"].unique().to_list()))
            patients[name] = Patient(key, 7_000_000_000_000_000_001 + n, study, series)
        _write_omop(patients)
    return lake, patients


def _config(patients: dict[str, Patient], **changes: Any) -> dict[str, Any]:
    request = {
        "request_id": REQUEST,
        "study_uids": [patients["A"].study_uid, patients["B"].study_uid],
        "requested_by": "researcher@cnu.ac.kr",
        "purpose": "IRB 2026-031: diabetes and chest CT findings",
        "approval": "CNUH IRB 2026-031",
        "approved_by": "irb-office@cnuh.or.kr",
        **changes,
    }
    return {"ops": {"copy_studies": {"config": request}}}


@pytest.fixture(scope="module")
def extracted(lake: tuple[Lake, dict[str, Patient]]) -> Path:
    """The request served by a real run of the research job."""
    lake_, patients = lake
    with lake_.active():
        result = research_copy_job.execute_in_process(
            run_config=_config(patients), resources=lake_.resources
        )
    assert result.success
    return Path(result.output_for_node("copy_studies"))


def _parquet(out: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(out / "omop" / f"{name}.parquet")


def test_the_extract_holds_exactly_the_cohorts_rows(
    lake: tuple[Lake, dict[str, Patient]], extracted: Path
) -> None:
    lake_, patients = lake
    salt = request_salt(REQUEST)
    cohort_ids = {patients[n].person_id for n in ("A", "B")}
    for name in PERSON_TABLES:
        source = lake_.frame(f"omop.{name}")
        expected = source.filter(pl.col("person_id").is_in(cohort_ids)).height
        assert _parquet(extracted, name).height == expected, name
    for name in WHOLE_TABLES:
        assert _parquet(extracted, name).height == lake_.frame(f"omop.{name}").height, name
    # Patient C's rows stayed behind: their diagnosis, drug, death and study.
    c = patients["C"]
    assert set(_parquet(extracted, "person")["person_id"]) == {
        pseudonymous_id(salt, p) for p in cohort_ids
    }
    assert _parquet(extracted, "condition_occurrence")["condition_source_value"].to_list() == [
        "E11.9"
    ]
    assert _parquet(extracted, "drug_exposure")["drug_source_value"].to_list() == ["224507CPC"]
    assert _parquet(extracted, "death").height == 0
    assert new_uid(salt, c.study_uid) not in set(
        _parquet(extracted, "image_occurrence")["image_study_uid"]
    )
    assert pseudonymous_id(salt, c.person_id) not in set(
        _parquet(extracted, "image_feature")["person_id"]
    )


def test_ids_are_the_requests_own_and_still_join(
    lake: tuple[Lake, dict[str, Patient]], extracted: Path
) -> None:
    _, patients = lake
    salt = request_salt(REQUEST)
    originals = {p.person_id for p in patients.values()}
    persons = set(_parquet(extracted, "person")["person_id"])
    assert not persons & originals
    visits = _parquet(extracted, "visit_occurrence")
    visit_ids = set(visits["visit_occurrence_id"])
    assert not visit_ids & {601, 602, 603, 604}
    assert visit_ids == {pseudonymous_id(salt, v) for v in (601, 602, 603)}
    for name in PERSON_TABLES:
        assert set(_parquet(extracted, name)["person_id"]) <= persons, name
    # Foreign keys between person-level rows point at the extract's own rows.
    assert set(visits["preceding_visit_occurrence_id"].drop_nulls()) == {pseudonymous_id(salt, 601)}
    for name in ("condition_occurrence", "drug_exposure", "measurement", "image_occurrence"):
        assert set(_parquet(extracted, name)["visit_occurrence_id"].drop_nulls()) <= visit_ids
    images = set(_parquet(extracted, "image_occurrence")["image_occurrence_id"])
    feature = _parquet(extracted, "image_feature")
    assert set(feature["image_occurrence_id"]) <= images
    assert feature["image_feature_event_id"].to_list() == feature["image_occurrence_id"].to_list()
    # Not a person's: kept, so they join the whole tables.
    assert set(_parquet(extracted, "person")["location_id"]) == {24010}
    assert set(visits["care_site_id"]) == set(_parquet(extracted, "care_site")["care_site_id"])


def test_the_same_request_gives_the_same_extract_and_another_request_another(
    lake: tuple[Lake, dict[str, Patient]], tmp_path: Path
) -> None:
    lake_, patients = lake
    wanted = [patients["A"].study_uid, patients["B"].study_uid]
    instances = lake_.frame("silver.imaging_instances", pl.col("study_instance_uid").is_in(wanted))
    frames: dict[str, dict[str, pl.DataFrame]] = {}
    with lake_.active():
        members = cohort(instances)
        for label, request in (("first", REQUEST), ("again", REQUEST), ("other", "dsa-2026-002")):
            salt = request_salt(request)
            copy = research_copy(instances, request, salt, tmp_path / label)
            omop_extract(members, salt, copy)
            frames[label] = {t: _parquet(tmp_path / label, t) for t in PERSON_TABLES}
    for name in PERSON_TABLES:
        assert frames["first"][name].equals(frames["again"][name]), name
    for column in ("person_id", "visit_occurrence_id"):
        first = set(frames["first"]["visit_occurrence"][column])
        other = set(frames["other"]["visit_occurrence"][column])
        assert len(first) == len(other) and not first & other
    studies = set(frames["first"]["image_occurrence"]["image_study_uid"])
    assert not studies & set(frames["other"]["image_occurrence"]["image_study_uid"])


def test_image_occurrence_joins_the_dicom_copy(
    lake: tuple[Lake, dict[str, Patient]], extracted: Path
) -> None:
    _, patients = lake
    salt = request_salt(REQUEST)
    images = _parquet(extracted, "image_occurrence")
    assert set(images["image_study_uid"]) == {
        new_uid(salt, patients[n].study_uid) for n in ("A", "B")
    }
    assert images["wadors_uri"].null_count() == images.height
    copied = {
        (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in extracted.rglob("*.dcm"))
    }
    assert copied
    for study, series, folder in images.select(
        "image_study_uid", "image_series_uid", "local_path"
    ).iter_rows():
        if (study, series) in copied:
            assert folder == f"{study}/{series}"
            assert list((extracted / folder).glob("*.dcm"))
        else:  # the burned-in series: not in the copy, so nowhere to point
            assert folder is None
    assert copied <= set(images.select("image_study_uid", "image_series_uid").iter_rows())
    assert images["local_path"].null_count() == 2  # one burned-in series per requested study


def test_dates_move_per_person_and_identifiers_are_emptied(
    lake: tuple[Lake, dict[str, Patient]], extracted: Path
) -> None:
    _, patients = lake
    salt = request_salt(REQUEST)
    a = patients["A"]
    shift = timedelta(days=date_shift(salt, a.person_id))
    assert shift and abs(shift.days) <= 30
    visits = _parquet(extracted, "visit_occurrence").filter(
        pl.col("person_id") == pseudonymous_id(salt, a.person_id)
    )
    assert sorted(visits["visit_start_date"]) == [
        date(2025, 2, 10) + shift,
        date(2025, 3, 14) + shift,
    ]
    assert set(visits["visit_start_datetime"]) == {
        _at(date(2025, 2, 10)) + shift,
        _at(date(2025, 3, 14)) + shift,
    }
    feature = _parquet(extracted, "image_feature")
    assert feature["alg_datetime"].to_list() == [datetime(2025, 3, 14, 9, 41, tzinfo=UTC) + shift]
    person = _parquet(extracted, "person")
    assert sorted(person["year_of_birth"]) == [1975, 1980]
    for column in ("month_of_birth", "day_of_birth", "birth_datetime", "person_source_value"):
        assert person[column].null_count() == person.height, column
    for name in ("person", "visit_occurrence", "drug_exposure"):
        assert _parquet(extracted, name)["provider_id"].null_count() > 0
        assert _parquet(extracted, name)["provider_id"].drop_nulls().len() == 0
    assert _parquet(extracted, "drug_exposure")["sig"].to_list() == [None]
    # Nothing in any file names a citizen or an original UID.
    secrets = [p.key for p in patients.values()] + [
        u for p in patients.values() for u in (p.study_uid, *p.series_uids)
    ]
    for path in (extracted / "omop").glob("*.parquet"):
        for secret in secrets:
            assert secret.encode() not in path.read_bytes(), path.name


def test_files_have_the_specifications_columns_and_the_manifest_lists_them(
    extracted: Path,
) -> None:
    manifest = json.loads((extracted / "manifest.json").read_text(encoding="utf-8"))
    listed = {t["table"]: t for t in manifest["omop"]["tables"]}
    assert set(listed) == set(EXTRACT_TABLES)
    for name in EXTRACT_TABLES:
        frame = _parquet(extracted, name)
        assert frame.columns == [f.name for f in spec.fields(name)], name
        assert frame.schema == table(f"omop.{name}").polars_schema(), name
        assert listed[name]["rows"] == frame.height
        assert listed[name]["file"] == f"omop/{name}.parquet"
        assert [f["name"] for f in listed[name]["fields"]] == frame.columns
    assert manifest["omop"]["persons"] == 2
    assert manifest["written"] > 0  # the DICOM part is still there


def test_every_citizen_is_audited_and_sees_it(
    lake: tuple[Lake, dict[str, Patient]], extracted: Path
) -> None:
    lake_, patients = lake
    log = lake_.frame("ops.audit_log", pl.col("action").str.starts_with("export:research"))
    omop = log.filter(pl.col("action") == "export:research_omop")
    dicom = log.filter(pl.col("action") == "export:research")
    cohort_keys = {patients["A"].key, patients["B"].key}
    assert set(omop["subject_key"]) == cohort_keys and omop.height == 2
    assert set(dicom["subject_key"]) == cohort_keys
    assert set(omop["origin"]) == set(dicom["origin"])  # the same run
    a = omop.filter(pl.col("subject_key") == patients["A"].key).row(0, named=True)
    # A: person, period, 2 visits, condition, drug, measurement, 2 series, 1 feature.
    assert a["rows"] == 10
    assert "visit_occurrence 2" in a["detail"] and "image_occurrence 2" in a["detail"]
    assert "CNUH IRB 2026-031" in a["detail"] and "irb-office@cnuh.or.kr" in a["detail"]
    assert "E11.9" not in a["detail"] and "224507CPC" not in a["detail"]
    assert set(omop["purpose"]) == {"research"}
    with lake_.active():
        citizen = Access(
            Principal("citizen-a", "citizen", citizen_key=patients["A"].key, origin="test")
        )
        history = citizen.who_viewed_me()
    assert {"export:research", "export:research_omop"} <= set(history["action"])
    assert history.filter(pl.col("action") == "export:research_omop")["rows"].to_list() == [10]


@pytest.mark.parametrize(
    ("request_id", "changes", "reason"),
    [
        ("refused-1", {"approval": " "}, "no approval"),
        ("refused-2", {"approved_by": "Researcher@cnu.ac.kr "}, "approved by its own requester"),
        ("refused-3", {"approved_by": ""}, "no approver"),
        ("refused-4", {"omop_tables": ["person", "provider"]}, "not extracted: provider"),
        ("refused-5", {"study_uids": []}, "no studies"),
        ("refused-6", {"study_uids": ["1.2.3' OR 1=1"]}, "not a DICOM UID"),
    ],
)
def test_an_unapproved_or_malformed_request_is_refused(
    lake: tuple[Lake, dict[str, Patient]], request_id: str, changes: dict[str, Any], reason: str
) -> None:
    lake_, patients = lake
    request = request_id
    config = _config(patients, request_id=request, **changes)
    with lake_.active(), pytest.raises(RequestRefusedError, match=reason):
        research_copy_job.execute_in_process(run_config=config, resources=lake_.resources)
    assert not (lake_.root / "research" / request).exists()
    refused = lake_.frame(
        "ops.audit_log", (pl.col("outcome") == "denied") & pl.col("detail").str.contains(request)
    )
    assert refused["refusal"].to_list() == ["unapproved"]
    assert refused["subject_key"].to_list() == [None]


def test_a_study_missing_from_the_omop_tables_is_refused(
    lake: tuple[Lake, dict[str, Patient]],
) -> None:
    lake_, patients = lake
    instances = lake_.frame(
        "silver.imaging_instances", pl.col("study_instance_uid") == patients["A"].study_uid
    )
    unbuilt = instances.with_columns(pl.lit("1.2.410.200099.99").alias("study_instance_uid"))
    with lake_.active(), pytest.raises(CohortError, match="run the OMOP build"):
        cohort(unbuilt)


def test_an_identifier_in_a_text_value_stops_the_extract(
    lake: tuple[Lake, dict[str, Patient]], tmp_path: Path
) -> None:
    lake_, patients = lake
    b = patients["B"]
    instances = lake_.frame("silver.imaging_instances", pl.col("study_instance_uid") == b.study_uid)
    with lake_.active():
        members = cohort(instances)
        _rows(
            "observation",
            [
                {
                    "observation_id": 1102,
                    "person_id": b.person_id,
                    "observation_concept_id": 0,
                    "observation_date": date(2025, 4, 3),
                    "observation_type_concept_id": 32810,
                    "value_as_string": f"ref {b.key}",
                }
            ],
        )
        try:
            salt = request_salt("leak-test")
            copy = research_copy(instances, "leak-test", salt, tmp_path / "copy")
            with pytest.raises(IdentifierLeakError, match=r"omop\.observation\.value_as_string"):
                omop_extract(members, salt, copy)
        finally:
            delta.delete("omop.observation", "observation_id = 1102")
    assert not (tmp_path / "copy" / "omop").exists()


def test_a_request_for_the_dicom_copy_alone_needs_no_omop_tables(tmp_path: Path) -> None:
    """``omop_tables: []`` serves the copy even where the OMOP tables were never built."""
    lake_ = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    drop = lake_.sources / "imaging" / INSTITUTION
    drop.mkdir(parents=True)
    past = time.time() - 600
    for i, data in enumerate(_korean_study()):
        (drop / f"{i}.dcm").write_bytes(data)
        os.utime(drop / f"{i}.dcm", (past, past))
    lake_.materialise([imaging_index])
    study = lake_.frame("silver.imaging_studies")["study_instance_uid"].to_list()
    config = {
        "ops": {
            "copy_studies": {
                "config": {
                    "request_id": "dicom-only-1",
                    "study_uids": study,
                    "requested_by": "researcher@cnu.ac.kr",
                    "purpose": "external validation",
                    "approval": "CNUH IRB 2026-040",
                    "approved_by": "irb-office@cnuh.or.kr",
                    "omop_tables": [],
                }
            }
        }
    }
    with lake_.active():
        result = research_copy_job.execute_in_process(run_config=config, resources=lake_.resources)
        with pytest.raises(dg.DagsterInvalidConfigError):
            research_copy_job.execute_in_process(
                run_config={"ops": {"copy_studies": {"config": {"request_id": "x"}}}},
                resources=lake_.resources,
            )
    out = Path(result.output_for_node("copy_studies"))
    assert list(out.rglob("*.dcm")) and not (out / "omop").exists()
    assert "omop" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))
