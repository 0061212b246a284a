"""The OHDSI Data Quality Dashboard over the omop tables (``lakehouse.omop.dq``), on small real
Delta tables written here through ``lakehouse.delta`` and conforming to the catalogue: every
check type of the DQD's list has a row, the clean tables pass every check that applies, each
check type catches one planted violation, thresholds are honoured, expected failures are
explained, and the results table is written and read back."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import write_deltalake

from lakehouse import delta, quality
from lakehouse import read as lake
from lakehouse.catalog import TABLES
from lakehouse.catalog.dq import RESULTS
from lakehouse.catalog.omop import TABLES as HELD
from lakehouse.omop import dq, spec

TODAY = date(2025, 6, 30)
Rows = dict[str, list[dict[str, Any]]]

# The concepts the hand-built tables use: (id, name, domain, vocabulary, class, standard).
CONCEPTS = [
    (0, "No matching concept", "Metadata", "None", "Undefined", None),
    (8507, "MALE", "Gender", "Gender", "Gender", "S"),
    (8532, "FEMALE", "Gender", "Gender", "Gender", "S"),
    (9202, "Outpatient Visit", "Visit", "Visit", "Visit", "S"),
    (32810, "Claim", "Type Concept", "Type Concept", "Type Concept", "S"),
    (26662, "Testicular hypofunction", "Condition", "SNOMED", "Clinical Finding", "S"),
    (201826, "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "S"),
    (45000001, "E11.9", "Condition", "KCD7", "KCD7 code", None),
    (1503297, "metformin", "Drug", "RxNorm", "Ingredient", "S"),
    (4163872, "Plain X-ray of chest", "Procedure", "SNOMED", "Procedure", "S"),
    (3036277, "Body height", "Measurement", "LOINC", "Clinical Observation", "S"),
    (8582, "centimeter", "Unit", "UCUM", "Unit", "S"),
    (4275495, "Tobacco smoking behavior", "Observation", "SNOMED", "Observable Entity", "S"),
    (756265, "OMOP CDM Version 5.4.0", "Metadata", "CDM", "CDM", "S"),
    (2000001, "CR", "Meas Value", "DICOM", "Modality", "S"),
    (2000002, "Consolidation", "Observation", "SNOMED", "Clinical Finding", "S"),
]


def clean() -> Rows:
    """Three people (a man, a woman, a woman who died) with a visit each and one record of
    every kind, every concept mapped: no check may fail on these."""
    person = {"race_concept_id": 0, "ethnicity_concept_id": 0, "location_id": 1}
    period = {"period_type_concept_id": 32810, "observation_period_start_date": date(2025, 1, 1)}
    visit = {"visit_concept_id": 9202, "visit_type_concept_id": 32810, "visit_source_value": "02"}
    condition = {"condition_type_concept_id": 32810, "condition_source_concept_id": 45000001}
    return {
        "person": [
            {
                **person,
                "person_id": 1,
                "gender_concept_id": 8507,
                "gender_source_value": "M",
                "year_of_birth": 1950,
                "month_of_birth": 6,
            },
            {
                **person,
                "person_id": 2,
                "gender_concept_id": 8532,
                "gender_source_value": "F",
                "year_of_birth": 1988,
                "month_of_birth": 2,
            },
            {
                **person,
                "person_id": 3,
                "gender_concept_id": 8532,
                "gender_source_value": "F",
                "year_of_birth": 1940,
                "month_of_birth": 1,
            },
        ],
        "observation_period": [
            {
                **period,
                "observation_period_id": 1,
                "person_id": 1,
                "observation_period_end_date": date(2025, 5, 31),
            },
            {
                **period,
                "observation_period_id": 2,
                "person_id": 2,
                "observation_period_end_date": date(2025, 5, 31),
            },
            {
                **period,
                "observation_period_id": 3,
                "person_id": 3,
                "observation_period_end_date": date(2025, 3, 10),
            },
        ],
        "visit_occurrence": [
            {
                **visit,
                "visit_occurrence_id": 11,
                "person_id": 1,
                "visit_start_date": date(2025, 3, 3),
                "visit_end_date": date(2025, 3, 3),
            },
            {
                **visit,
                "visit_occurrence_id": 12,
                "person_id": 2,
                "visit_start_date": date(2025, 3, 5),
                "visit_end_date": date(2025, 3, 5),
            },
            {
                **visit,
                "visit_occurrence_id": 13,
                "person_id": 3,
                "visit_start_date": date(2025, 2, 1),
                "visit_end_date": date(2025, 2, 1),
            },
        ],
        "condition_occurrence": [
            {
                **condition,
                "condition_occurrence_id": 21,
                "person_id": 1,
                "condition_concept_id": 26662,
                "condition_source_value": "E29.1",
                "condition_start_date": date(2025, 3, 3),
                "visit_occurrence_id": 11,
            },
            {
                **condition,
                "condition_occurrence_id": 22,
                "person_id": 2,
                "condition_concept_id": 201826,
                "condition_source_value": "E11.9",
                "condition_start_date": date(2025, 3, 5),
                "visit_occurrence_id": 12,
            },
            {
                **condition,
                "condition_occurrence_id": 23,
                "person_id": 3,
                "condition_concept_id": 201826,
                "condition_source_value": "E11.9",
                "condition_start_date": date(2025, 2, 1),
                "visit_occurrence_id": 13,
            },
        ],
        "drug_exposure": [
            {
                "drug_exposure_id": 31,
                "person_id": 1,
                "drug_concept_id": 1503297,
                "drug_type_concept_id": 32810,
                "drug_source_value": "224507CPC",
                "drug_exposure_start_date": date(2025, 3, 3),
                "drug_exposure_end_date": date(2025, 3, 9),
                "days_supply": 7,
                "quantity": 14.0,
                "visit_occurrence_id": 11,
            },
        ],
        "procedure_occurrence": [
            {
                "procedure_occurrence_id": 41,
                "person_id": 2,
                "procedure_concept_id": 4163872,
                "procedure_type_concept_id": 32810,
                "procedure_date": date(2025, 3, 5),
                "procedure_source_value": "G2101",
                "visit_occurrence_id": 12,
            },
        ],
        "measurement": [
            {
                "measurement_id": 51,
                "person_id": 2,
                "measurement_concept_id": 3036277,
                "measurement_type_concept_id": 32810,
                "measurement_date": date(2025, 3, 5),
                "value_as_number": 160.0,
                "unit_concept_id": 8582,
                "unit_source_value": "cm",
                "measurement_source_value": "HEIGHT",
                "visit_occurrence_id": 12,
            },
            {
                "measurement_id": 52,
                "person_id": 1,
                "measurement_concept_id": 3036277,
                "measurement_type_concept_id": 32810,
                "measurement_date": date(2025, 3, 3),
                "value_as_number": 171.0,
                "unit_concept_id": 8582,
                "unit_source_value": "cm",
                "measurement_source_value": "HEIGHT",
                "visit_occurrence_id": 11,
            },
        ],
        "observation": [
            {
                "observation_id": 61,
                "person_id": 1,
                "observation_concept_id": 4275495,
                "observation_type_concept_id": 32810,
                "observation_date": date(2025, 3, 3),
                "observation_source_value": "SMOKE",
            },
        ],
        "death": [{"person_id": 3, "death_date": date(2025, 3, 10)}],
        "care_site": [{"care_site_id": 1, "location_id": 1, "care_site_source_value": "11111111"}],
        "location": [{"location_id": 1, "location_source_value": "24010"}],
        "provider": [{"provider_id": 1, "care_site_id": 1}],
        "cdm_source": [
            {
                "cdm_source_name": "Gwangju",
                "cdm_source_abbreviation": "GJH",
                "cdm_holder": "city",
                "source_release_date": date(2025, 6, 1),
                "cdm_release_date": date(2025, 6, 2),
                "cdm_version_concept_id": 756265,
                "vocabulary_version": "test",
            },
        ],
        "image_occurrence": [
            {
                "image_occurrence_id": 71,
                "person_id": 2,
                "procedure_occurrence_id": 41,
                "visit_occurrence_id": 12,
                "image_occurrence_date": date(2025, 3, 5),
                "image_study_uid": "1.2.3",
                "image_series_uid": "1.2.3.4",
                "modality_concept_id": 2000001,
            },
        ],
        "image_feature": [
            {
                "image_feature_id": 81,
                "person_id": 2,
                "image_occurrence_id": 71,
                "image_feature_concept_id": 2000002,
                "image_feature_type_concept_id": 32810,
            },
        ],
        "concept": [
            {
                "concept_id": i,
                "concept_name": n,
                "domain_id": d,
                "vocabulary_id": v,
                "concept_class_id": c,
                "standard_concept": s,
                "concept_code": str(i),
                "valid_start_date": date(1970, 1, 1),
                "valid_end_date": date(2099, 12, 31),
            }
            for i, n, d, v, c, s in CONCEPTS
        ],
    }


@pytest.fixture
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    return tmp_path / "lakehouse"


def write(rows: Rows) -> None:
    """Each table of ``rows`` through ``lakehouse.delta``, conformed to the catalogue."""
    for name, found in rows.items():
        schema = TABLES[f"omop.{name}"].polars_schema()
        frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in found], schema=schema)
        delta.append(f"omop.{name}", frame)


def results(rows: Rows | None = None) -> dict[str, dq.DqResult]:
    write(clean() if rows is None else rows)
    return {r.check.check_id: r for r in dq.evaluate(TODAY)}


def failed(found: dict[str, dq.DqResult]) -> dict[str, dq.DqResult]:
    return {k: r for k, r in found.items() if r.passed is False}


# --- generation ------------------------------------------------------------------------------


def test_every_check_type_of_the_dqd_has_a_row_run_or_not_applicable() -> None:
    types = [row["checkName"] for row in spec.check_types()]
    assert len(types) == 27
    for shipped in (None, frozenset({0, 26662, 3036277})):
        checks = dq.generate(shipped)
        assert {c.name for c in checks} == set(types)
        ids = [c.check_id for c in checks]
        assert len(ids) == len(set(ids))  # the DQD's check ids are unique
        for c in checks:
            assert c.not_applicable or c.threshold is not None, c.check_id
            assert c.kind["kahnCategory"] in ("Conformance", "Completeness", "Plausibility")
            assert c.severity in ("fatal", "convention", "characterization")
    never = {c.name: c.not_applicable for c in dq.generate(None) if c.table is None}
    assert never["plausibleGenderUseDescendants"] == "no_ancestors"
    assert never["plausibleGender"] == "no_concepts"  # omop.concept unknown: none shipped
    era = next(c for c in dq.generate(None) if c.name == "measureConditionEraCompleteness")
    assert (era.table, era.not_applicable) == ("condition_era", "era_not_built")


def test_checks_come_from_the_specification() -> None:
    checks = {c.check_id: c for c in dq.generate(frozenset({26662, 3036277}))}
    # Every CDM table has cdmTable; the tables not held here are not applicable, not failed.
    tables = [c for c in checks.values() if c.name == "cdmTable"]
    assert len(tables) == len(spec.tables())
    assert checks["cdmtable_note"].not_applicable == "not_held"
    assert checks["cdmtable_person"].not_applicable is None
    # Every field of a held table: cdmField and measureValueCompleteness, with the DQD's
    # default threshold (0 % when required, else 100 %).
    for name in HELD:
        for f in spec.fields(name):
            assert f"cdmfield_{name}_{f.name}" in checks
            mvc = checks[f"measurevaluecompleteness_{name}_{f.name}"]
            assert mvc.threshold == (0.0 if f.required else 100.0)
            assert (f"isrequired_{name}_{f.name}" in checks) is f.required
            assert (f"isprimarykey_{name}_{f.name}" in checks) is f.primary_key
    assert checks["fkdomain_condition_occurrence_condition_concept_id"].argument == "Condition"
    assert "isstandardvalidconcept_condition_occurrence_condition_source_concept_id" not in checks
    # A foreign key into a table the layer does not hold cannot be checked: said so.
    assert (
        checks["isforeignkey_condition_occurrence_visit_detail_id"].not_applicable == "fk_not_held"
    )
    # From the DQD's threshold file: bounds, the end of a start, concept completeness.
    low = checks["plausiblevaluelow_person_year_of_birth"]
    assert (low.argument, low.threshold, low.source) == ("1850", 1.0, "dqd-field")
    end = checks["plausiblestartbeforeend_drug_exposure_drug_exposure_start_date"]
    assert end.argument == "drug_exposure_end_date"
    scrc = checks["standardconceptrecordcompleteness_condition_occurrence_condition_concept_id"]
    assert scrc.threshold == 5.0
    completeness = checks["measurepersoncompleteness_drug_exposure"]
    assert (completeness.threshold, completeness.source) == (95.0, "dqd-table")
    # CONCEPT checks: only for the concepts shipped.
    concept = [c for c in checks.values() if c.level == "CONCEPT" and not c.not_applicable]
    assert {c.concept_id for c in concept} == {26662, 3036277}
    assert checks["plausiblegender_condition_occurrence_condition_concept_id_26662"].argument == (
        "Male"
    )


# --- evaluation ----------------------------------------------------------------------------


@pytest.mark.usefixtures("lakehouse")
def test_clean_tables_pass_every_check_that_applies() -> None:
    found = results()
    assert not failed(found), {k: (r.failing, r.rows) for k, r in failed(found).items()}
    statuses = Counter(
        "na" if r.not_applicable else ("passed" if r.passed else "failed") for r in found.values()
    )
    assert statuses["passed"] > 400 and statuses["failed"] == 0
    # Checks of every kind ran (not only not-applicable rows) on the clean tables.
    ran = {r.check.name for r in found.values() if r.passed}
    assert ran == {
        row["checkName"] for row in spec.check_types() if row["checkName"] not in dq.NOT_RUN
    }
    # The DQD's not-applicable rules: a field holding no value, a table not held.
    assert found["plausiblevaluelow_person_birth_datetime"].not_applicable == "empty_field"
    assert found["cdmtable_specimen"].not_applicable == "not_held"
    assert found["isrequired_person_person_id"].rows == 3


def _set(table: str, index: int, **values: Any) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        rows[table][index].update(values)

    return change


def _add(table: str, **values: Any) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        rows[table].append({**rows[table][0], **values})

    return change


def _drop(table: str, column: str, value: Any) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        rows[table] = [r for r in rows[table] if r.get(column) != value]

    return change


def _cast_float(rows: Rows) -> None:
    """A value with a fraction in an integer field: the table is rewritten with the field as a
    float (what an ETL writing the wrong type would leave)."""
    rows["location"][0]["location_id"] = 1.5


def _concept(**values: Any) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        for r in rows["concept"]:
            if r["concept_id"] == values["concept_id"]:
                r.update(values)

    return change


PLANTED: list[tuple[str, Callable[[Rows], None], int]] = [
    ("isrequired_condition_occurrence_condition_start_date",
     _set("condition_occurrence", 0, condition_start_date=None), 1),
    ("isprimarykey_visit_occurrence_visit_occurrence_id",
     _add("visit_occurrence", person_id=2), 2),
    ("isforeignkey_drug_exposure_person_id", _set("drug_exposure", 0, person_id=99), 1),
    ("fkdomain_condition_occurrence_condition_concept_id",
     _set("condition_occurrence", 1, condition_concept_id=1503297), 1),
    ("isstandardvalidconcept_condition_occurrence_condition_concept_id",
     _set("condition_occurrence", 1, condition_concept_id=45000001), 1),
    ("measurevaluecompleteness_person_year_of_birth", _set("person", 0, year_of_birth=None), 1),
    ("standardconceptrecordcompleteness_measurement_unit_concept_id",
     _set("measurement", 0, unit_concept_id=None), 1),
    ("sourceconceptrecordcompleteness_condition_occurrence_condition_source_concept_id",
     _set("condition_occurrence", 2, condition_source_concept_id=0), 1),
    ("sourcevaluecompleteness_condition_occurrence_condition_source_value",
     _set("condition_occurrence", 0, condition_concept_id=0), 1),
    ("plausiblevaluelow_drug_exposure_days_supply", _set("drug_exposure", 0, days_supply=0), 1),
    ("plausiblevaluehigh_drug_exposure_days_supply",
     _set("drug_exposure", 0, days_supply=400), 1),
    ("plausiblevaluehigh_visit_occurrence_visit_end_date",
     _set("visit_occurrence", 0, visit_end_date=date(2025, 7, 2)), 1),
    ("plausibleafterbirth_condition_occurrence_condition_start_date",
     _set("condition_occurrence", 1, condition_start_date=date(1987, 12, 31)), 1),
    ("plausiblebeforedeath_condition_occurrence_condition_start_date",
     _set("condition_occurrence", 2, condition_start_date=date(2025, 5, 10)), 1),
    ("plausiblestartbeforeend_drug_exposure_drug_exposure_start_date",
     _set("drug_exposure", 0, drug_exposure_end_date=date(2025, 3, 1)), 1),
    ("withinvisitdates_measurement_measurement_date",
     _set("measurement", 0, measurement_date=date(2025, 3, 13)), 1),
    ("plausiblegender_condition_occurrence_condition_concept_id_26662",
     _set("condition_occurrence", 1, condition_concept_id=26662), 1),
    ("plausibleunitconceptids_measurement_measurement_concept_id_3036277",
     _set("measurement", 1, unit_concept_id=8507), 1),
    ("measurepersoncompleteness_observation_period",
     _drop("observation_period", "person_id", 2), 1),
    ("measureobservationperiodoverlap_observation_period",
     _add("observation_period", observation_period_id=9,
          observation_period_start_date=date(2025, 6, 1),
          observation_period_end_date=date(2025, 6, 30)), 1),
    ("cdmdatatype_location_location_id", _cast_float, 1),
]  # fmt: skip


@pytest.mark.usefixtures("lakehouse")
@pytest.mark.parametrize(
    ("check_id", "plant", "failing"), PLANTED, ids=[p[0].split("_")[0] for p in PLANTED]
)
def test_each_check_type_catches_its_planted_violation(
    check_id: str, plant: Callable[[Rows], None], failing: int
) -> None:
    rows = copy.deepcopy(clean())
    plant(rows)
    if check_id.startswith("cdmdatatype"):
        write({k: v for k, v in rows.items() if k != "location"})
        schema = {**TABLES["omop.location"].polars_schema(), "location_id": pl.Float64()}
        frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows["location"]], schema)
        write_deltalake(delta.uri("omop.location"), frame.to_arrow(), mode="overwrite")
        found = {r.check.check_id: r for r in dq.evaluate(TODAY)}
    else:
        found = results(rows)
    result = found[check_id]
    assert result.passed is False and result.failing == failing, (result.failing, result.rows)


@pytest.mark.usefixtures("lakehouse")
def test_missing_tables_fail_cdm_table_and_make_their_checks_not_applicable() -> None:
    rows = clean()
    del rows["provider"], rows["death"]
    found = results(rows)
    assert found["cdmtable_provider"].passed is False and found["cdmtable_provider"].check.fatal
    assert found["isprimarykey_provider_provider_id"].not_applicable == "not_written"
    # A check needing a missing table is not applicable, with the table named by the reason.
    before = found["plausiblebeforedeath_condition_occurrence_condition_start_date"]
    assert before.not_applicable == "no_death"
    # A foreign key into it cannot hold: a fatal failure, not a silent pass.
    fk = found["isforeignkey_person_provider_id"]
    assert fk.not_applicable == "empty_field"  # no person names a provider: nothing to check


@pytest.mark.usefixtures("lakehouse")
def test_a_missing_field_fails_cdm_field_and_its_other_checks_do_not_apply() -> None:
    rows = clean()
    write({k: v for k, v in rows.items() if k != "location"})
    schema = TABLES["omop.location"].polars_schema()
    frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows["location"]], schema)
    write_deltalake(delta.uri("omop.location"), frame.drop("county").to_arrow())
    found = {r.check.check_id: r for r in dq.evaluate(TODAY)}
    assert found["cdmfield_location_county"].passed is False
    assert found["cdmfield_location_county"].check.fatal
    assert found["measurevaluecompleteness_location_county"].not_applicable == "no_field"
    assert found["cdmfield_location_city"].passed is True


def test_person_completeness_falls_back_to_the_specification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the DQD's row for a table the specification flags, its own threshold holds."""
    rows = tuple(
        r
        for r in dq.threshold_rows()
        if (r["check"], r["table"]) != ("measurePersonCompleteness", "drug_exposure")
    )
    monkeypatch.setattr(dq, "threshold_rows", lambda: rows)
    checks = {c.check_id: c for c in dq.generate(None)}
    drugs = checks["measurepersoncompleteness_drug_exposure"]
    assert (drugs.threshold, drugs.source) == (0.0, "spec")
    assert "measurepersoncompleteness_person" not in checks  # not flagged by either


@pytest.mark.usefixtures("lakehouse")
def test_thresholds_are_honoured() -> None:
    """measurePersonCompleteness on drug_exposure passes up to 95 % of persons without one
    (the DQD's threshold): 2 of 3 persons have none, 66.7 %, within it; at 0 % it would fail."""
    found = results()
    drugs = found["measurepersoncompleteness_drug_exposure"]
    assert (drugs.failing, drugs.rows, drugs.passed) == (2, 3, True)
    strict = dq.DqResult(
        dq.DqCheck("TABLE", "measurePersonCompleteness", "drug_exposure", threshold=0.0), 3, 2
    )
    assert strict.passed is False
    at_threshold = dq.DqResult(dq.DqCheck("FIELD", "x", "t", threshold=50.0), 2, 1)
    assert at_threshold.passed is True  # within: the share may equal the threshold


@pytest.mark.usefixtures("lakehouse")
def test_a_share_within_the_threshold_passes_and_above_it_fails() -> None:
    """plausibleAfterBirth passes up to 1 % (the DQD's threshold): 1 of 200 passes, 3 fail."""
    rows = clean()
    base = rows["condition_occurrence"][1]
    rows["condition_occurrence"] += [
        {**base, "condition_occurrence_id": 1000 + i} for i in range(197)
    ]
    rows["condition_occurrence"][1]["condition_start_date"] = date(1980, 1, 1)
    found = results(rows)
    birth = found["plausibleafterbirth_condition_occurrence_condition_start_date"]
    assert (birth.failing, birth.rows, birth.passed) == (1, 200, True)
    for i in (3, 4):  # copies of the second person's, born in 1988
        rows["condition_occurrence"][i]["condition_start_date"] = date(1980, 1, 1)
    delta.delete("omop.condition_occurrence", "true")
    write({"condition_occurrence": rows["condition_occurrence"]})
    birth = {r.check.check_id: r for r in dq.evaluate(TODAY)}[
        "plausibleafterbirth_condition_occurrence_condition_start_date"
    ]
    assert (birth.failing, birth.rows, birth.passed) == (3, 200, False)


@pytest.mark.usefixtures("lakehouse")
def test_unmapped_concepts_fail_with_their_explanation() -> None:
    """Concept 0 for diagnoses and drugs (no KCD or HIRA mapping is shipped): the DQD's
    standardConceptRecordCompleteness fails, explained; other failures carry none."""
    rows = clean()
    for r in rows["condition_occurrence"]:
        r.update(condition_concept_id=0, condition_source_concept_id=0)
    rows["drug_exposure"][0]["drug_concept_id"] = 0
    rows["person"][0]["year_of_birth"] = 1700  # an unexpected failure: no explanation
    found = failed(results(rows))
    condition = found["standardconceptrecordcompleteness_condition_occurrence_condition_concept_id"]
    assert (condition.failing, condition.rows, condition.explanation) == (3, 3, "kcd_not_mapped")
    drug = found["standardconceptrecordcompleteness_drug_exposure_drug_concept_id"]
    assert drug.explanation == "drug_not_mapped"
    assert found["sourcevaluecompleteness_condition_occurrence_condition_source_value"].explanation
    assert found["plausiblevaluelow_person_year_of_birth"].explanation is None
    for result in found.values():
        assert result.explanation is None or (f"dq.explanation.{result.explanation}" in _messages())


def _messages() -> set[str]:
    from apps.common.i18n import messages

    return set(messages())


@pytest.mark.usefixtures("lakehouse")
def test_the_results_table_is_written_and_read_back() -> None:
    write(clean())
    run_at = datetime(2025, 6, 30, 1, 2, 3, tzinfo=UTC)
    found, written = dq.run(TODAY, run_at)
    assert written.rows == found.height == len(dq.generate(dq.shipped_concepts()))
    back = lake.frame(RESULTS)
    assert back.sort("check_id").equals(found.sort("check_id"))
    assert back["run_id"].unique().to_list() == ["2025-06-30T01:02:03+00:00"]
    assert back["cdm_source_release"].unique().to_list() == [date(2025, 6, 1)]
    row = back.filter(pl.col("check_id") == "isrequired_person_person_id").row(0, named=True)
    assert (row["level"], row["category"], row["subcategory"], row["severity"]) == (
        "FIELD",
        "Conformance",
        "Relational",
        "fatal",
    )
    assert (row["rows_checked"], row["rows_failing"], row["passed"]) == (3, 0, True)
    na = back.filter(pl.col("check_name") == "fkClass").row(0, named=True)
    assert (na["passed"], na["not_applicable_reason"], na["rows_checked"]) == (
        None,
        "no_class_field",
        None,
    )
    # Every check type of the DQD is in the table.
    assert set(back["check_name"]) == {r["checkName"] for r in spec.check_types()}
    # A later run replaces it whole, in one commit (the earlier run stays in the Delta history).
    later = datetime(2025, 7, 1, tzinfo=UTC)
    dq.run(TODAY, later)
    back = lake.frame(RESULTS)
    assert back["run_id"].unique().to_list() == ["2025-07-01T00:00:00+00:00"]
    assert back.height == found.height
    # Each run: its rows in one commit, then the counts kept for the next run (no row changed).
    assert delta.open_table(RESULTS).version() == written.version + 3


def _counts(rows: pl.DataFrame) -> dict[str, tuple[object, ...]]:
    columns = ("rows_checked", "rows_failing", "passed", "not_applicable_reason")
    return {r["check_id"]: tuple(r[c] for c in columns) for r in rows.iter_rows(named=True)}


def _fresh(today: date) -> dict[str, tuple[object, ...]]:
    return _counts(dq.frame(dq.evaluate(today), datetime.now(UTC)))


@pytest.mark.usefixtures("lakehouse")
def test_a_run_counts_again_only_the_checks_whose_tables_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nightly report keeps the counts of the checks whose tables did not change since the
    last run, and its results are those of a run that counts everything, every night: with no
    change, on a later day (the bounds at today+1 rose; a check failing under them is counted
    again), and after one table changed (only the checks reading it are counted)."""
    rows = clean()
    _add("measurement", measurement_id=52, measurement_date=TODAY + timedelta(days=5))(rows)
    write(rows)
    whole, appended = _tallied(monkeypatch)

    def run(day: date) -> tuple[dict[str, tuple[object, ...]], int]:
        before = len(whole) + len(appended)
        found, _ = dq.run(day)
        return _counts(found), len(whole) + len(appended) - before

    first, everything = run(TODAY)
    assert first == _fresh(TODAY) and everything > 100
    assert run(TODAY) == (first, 0)  # nothing changed: nothing counted
    later = TODAY + timedelta(days=5)  # the bound, today+1, is past the measurement now
    moved, recounted = run(later)
    # Only the future measurement's rising bound is counted again (it failed), and it passes now.
    assert recounted == 1 and moved == _fresh(later) and moved != first
    extra = _rows_of("measurement", clean()["measurement"][0] | {"measurement_id": 53})
    delta.append("omop.measurement", extra)
    changed, recounted = run(later)
    assert 0 < recounted < everything and changed == _fresh(later)


@pytest.mark.usefixtures("lakehouse")
def test_rows_a_day_appends_are_counted_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A day appends measurements: the checks that judge each measurement on its own (values,
    concepts, foreign keys into tables that did not change) count only the appended rows and
    add them to their kept counts; the key and the person-level checks read the table whole.
    Every night's results are those of a run that counts everything."""
    write(clean())
    dq.run(TODAY)
    whole, appended = _tallied(monkeypatch)
    base = clean()["measurement"][0]
    nights = [
        [base | {"measurement_id": 60}, base | {"measurement_id": 61, "person_id": 1}],
        # An unmapped unit and a value above its plausible bound: failures are added too.
        [base | {"measurement_id": 62, "unit_concept_id": 0, "value_as_number": 9_999.0}],
        [base | {"measurement_id": 63, "measurement_date": TODAY + timedelta(days=3)}],
    ]
    for rows in nights:
        whole.clear()
        appended.clear()
        delta.append("omop.measurement", pl.concat([_rows_of("measurement", r) for r in rows]))
        found, _ = dq.run(TODAY)
        assert len(appended) > 10, appended  # the measurement's own checks, on the new rows
        assert 0 < len(whole) < 10, whole  # its key and person-level checks, whole
        assert _counts(found) == _fresh(TODAY)
    failing = found.filter((pl.col("cdm_table") == "measurement") & (pl.col("rows_failing") > 0))
    assert failing.height >= 2  # the dirty nights' rows were found, counted on their own


@pytest.mark.usefixtures("lakehouse")
def test_a_table_whose_commits_changed_no_row_keeps_the_counts_of_what_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A night that writes nothing to ``omop.person`` still records its properties there (a new
    version): the plans that read it keep their counts, as when it did not change at all."""
    write(clean())
    dq.run(TODAY)
    whole, appended = _tallied(monkeypatch)
    before = delta.version("omop.person")
    delta.record_state("omop.person", {"refreshed": "the persons a night touched: none"})
    assert delta.version("omop.person") > before
    found, _ = dq.run(TODAY)
    assert whole == appended == []  # nothing counted again
    assert _counts(found) == _fresh(TODAY)


@pytest.mark.usefixtures("lakehouse")
def test_a_foreign_key_into_persons_rewritten_with_their_keys_counts_the_appended_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A night rewrites ``omop.person`` for the persons it touched, keys and all: a foreign key
    into it that no row broke still holds for the old rows, so the measurements' key check is
    counted on the day's appended measurements alone. A night that loses a person counts it
    whole again. Every night's results are those of a run that counts everything."""
    write(clean())
    dq.run(TODAY)
    whole, appended = _tallied(monkeypatch)

    def into_persons(plans: list[Any]) -> list[Any]:
        own = quality.relation("omop.measurement")
        return [p for p in plans if p.keyed == ("omop.person", "person_id") and own in p.source]

    persons = lake.frame("omop.person")
    base = clean()["measurement"][0]
    for n, kept in enumerate((persons, persons.filter(pl.col("person_id") != 2))):
        whole.clear()
        appended.clear()
        delta.replace("omop.person", kept.with_columns(location_id=pl.lit(2)), "person_id > 0")
        delta.append("omop.measurement", _rows_of("measurement", base | {"measurement_id": 70 + n}))
        found, _ = dq.run(TODAY)
        lost = n == 1  # the second night lost person 2, whose measurement now breaks the key
        assert bool(into_persons(whole)) == lost and bool(into_persons(appended)) != lost
        key = found.filter(
            (pl.col("check_name") == "isForeignKey")
            & (pl.col("cdm_table") == "measurement")
            & (pl.col("cdm_field") == "person_id")
        )
        assert key["rows_failing"].to_list() == ([3] if lost else [0])  # 51, 70 and 71
        assert _counts(found) == _fresh(TODAY)


def _tallied(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """The plans the report counts from now on: over whole tables, and over appended rows
    (the ``_appended`` view of ``lakehouse.quality_kept.appended_view``)."""
    whole: list[Any] = []
    appended: list[Any] = []
    tally = quality.tally

    def spy(con: Any, plans: Any) -> list[tuple[int, int]]:
        views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        (appended if ("_appended",) in views else whole).extend(plans)
        return tally(con, plans)

    monkeypatch.setattr(quality, "tally", spy)
    return whole, appended


def _rows_of(name: str, row: dict[str, Any]) -> pl.DataFrame:
    schema = TABLES[f"omop.{name}"].polars_schema()
    return pl.DataFrame([{c: row.get(c) for c in schema}], schema=schema)
