"""Silver, imaging and AI tables → the OMOP CDM v5.4 tables (with the imaging extension).

Pure Polars, frames in, frames out: ``build(Sources(...), as_of=...)`` returns every ``omop.*``
table the platform fills, conformed to the catalogue (hence to OHDSI's specification), and how
many source rows were left out because their person is not in the resident register (they are
never invented). The mapping follows the Korean claims ETL conventions (docs/omop.md):

* citizens → ``person`` (sex, birth year and month, district), ``observation_period`` (residence
  in the city, widened to the first and last event), ``death``;
* districts → ``location``; institutions → ``care_site``;
* statements → ``visit_occurrence``: inpatient forms 9201, emergency medicine (department 24)
  9203, pharmacy statements 581458, else 9202;
* diagnoses → ``condition_occurrence`` (type Claim, status primary / secondary diagnosis);
* prescriptions (type Claim) and dispensings (type Pharmacy claim) → ``drug_exposure``,
  ``quantity = dose × times a day × days``, ``days_supply = days``, end = start + days − 1;
* procedure lines of statements and imaging studies → ``procedure_occurrence``; each series of a
  study → ``image_occurrence``; AI findings → ``image_feature`` linked to a ``measurement`` row
  holding the finding code and score;
* centre measurements → ``measurement`` (height, weight, blood pressure with their concepts).

Only the version of a statement's children that is in use (the delivery of ``silver.claims``) is
mapped. Every id comes from ``lakehouse.omop.ids``; no citizen key, name or registration number
reaches a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.omop import vocabulary as v
from lakehouse.omop.ids import with_id, with_person_id
from pipelines.transform.gold import inpatient_forms

PHARMACY_FORM: Final = "081"
PHARMACY_CLASS: Final = "81"
EMERGENCY_DEPARTMENT: Final = "24"  # 응급의학과 (lakehouse/reference/codes/departments.csv)
# Claim-line item types (line_types.csv) that record a procedure done to the patient: procedures
# and physiotherapy, imaging, dental procedures, Korean medicine procedures. Consultations, ward
# days, medication fees, injections, laboratory tests (no result on a claim) and drug costs are
# not procedures here.
PROCEDURE_LINE_TYPES: Final = ("05", "07", "08", "09")
SOURCE_NAME: Final = "Gwangju AI public medical service lakehouse"
SOURCE_ABBREVIATION: Final = "GJH"
HOLDER: Final = "Gwangju Metropolitan City"
CITY: Final = "Gwangju"
# Kinds of row for lakehouse.omop.ids: one namespace each, so two tables never share an id by
# sharing a source key.
VISIT: Final = "visit"
CONDITION: Final = "condition"
PRESCRIBED: Final = "drug_prescribed"
DISPENSED: Final = "drug_dispensed"
PROCEDURE_LINE: Final = "procedure_claim_line"
PROCEDURE_STUDY: Final = "procedure_imaging_study"
IMAGE: Final = "image_series"
FEATURE: Final = "image_feature"
MEASURED: Final = "measurement_centre"
FINDING: Final = "measurement_ai_finding"
CARE_SITE: Final = "care_site"
LOCATION: Final = "location"
PERIOD: Final = "observation_period"


@dataclass(frozen=True)
class Sources:
    """The tables the OMOP layer is made from (eager frames in the catalogue's schemas)."""

    citizens: pl.DataFrame
    institutions: pl.DataFrame
    claims: pl.DataFrame
    claim_lines: pl.DataFrame
    diagnoses: pl.DataFrame
    prescriptions: pl.DataFrame
    dispensings: pl.DataFrame
    members: pl.DataFrame
    measurements: pl.DataFrame
    studies: pl.DataFrame
    series: pl.DataFrame
    findings: pl.DataFrame


@dataclass
class Built:
    """The OMOP tables by catalogue name, and per table the source rows left out because their
    person is unknown (not in the resident register, or no citizen key at all)."""

    tables: dict[str, pl.DataFrame]
    unknown_person: dict[str, int] = field(default_factory=dict)


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in the catalogue's columns (absent ones null) and types."""
    table = catalog_table(name)
    if frame.width == 0:
        return pl.DataFrame(schema=table.polars_schema())
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in table.polars_schema().items()
        if c not in frame.columns
    ]
    return table.conform(frame.with_columns(missing))


def _known(frame: pl.DataFrame, persons: pl.DataFrame, table: str, built: Built) -> pl.DataFrame:
    """The rows whose person is in ``persons``; the others counted against ``table``."""
    keep = frame.filter(pl.col("citizen_key").is_not_null())
    keep = with_person_id(keep).join(persons.select("person_id"), on="person_id", how="semi")
    built.unknown_person[table] = built.unknown_person.get(table, 0) + frame.height - keep.height
    return keep


def _in_use(children: pl.DataFrame, claims: pl.DataFrame) -> pl.DataFrame:
    """The children of the statement version in use (its delivery), with its first day."""
    return children.join(
        claims.select("spec_id", "delivery_id", pl.col("start_date").alias("_start")),
        on=["spec_id", "delivery_id"],
        how="inner",
    )


def _text50(column: str | pl.Expr) -> pl.Expr:
    """A source value in the CDM's varchar(50)."""
    return (pl.col(column) if isinstance(column, str) else column).str.slice(0, 50)


def _on_statement(frame: pl.DataFrame, name: str, kind: str, *keys: str) -> pl.DataFrame:
    """A statement's child rows with their own id and their statement's visit id."""
    return with_id(with_id(frame, name, kind, *keys), "visit_occurrence_id", VISIT, "spec_id")


def persons(citizens: pl.DataFrame) -> pl.DataFrame:
    """``omop.person``: one row per citizen of the register."""
    out = with_person_id(citizens)
    out = with_id(out, "location_id", LOCATION, "district_code")
    return out.select(
        "person_id",
        pl.col("sex")
        .replace_strict({"M": v.MALE, "F": v.FEMALE}, default=v.NO_MATCH, return_dtype=pl.Int64)
        .alias("gender_concept_id"),
        pl.col("birth_year").alias("year_of_birth"),
        pl.col("birth_month").alias("month_of_birth"),
        pl.lit(v.NO_MATCH).alias("race_concept_id"),
        pl.lit(v.NO_MATCH).alias("ethnicity_concept_id"),
        "location_id",
        pl.col("sex").alias("gender_source_value"),
    )


def locations(citizens: pl.DataFrame, institutions: pl.DataFrame) -> pl.DataFrame:
    """``omop.location``: one row per district, keyed by its 5-digit code."""
    codes = (
        pl.concat([citizens.select("district_code"), institutions.select("district_code")])
        .unique()
        .sort("district_code")
    )
    return with_id(codes, "location_id", LOCATION, "district_code").select(
        "location_id",
        pl.lit(CITY).alias("city"),
        pl.col("district_code").alias("location_source_value"),
        pl.lit("KR").alias("country_source_value"),
    )


def care_sites(institutions: pl.DataFrame) -> pl.DataFrame:
    """``omop.care_site``: one row per institution; pharmacies have the pharmacy place of
    service, other settings are told by each visit."""
    out = with_id(institutions, "care_site_id", CARE_SITE, "ykiho")
    out = with_id(out, "location_id", LOCATION, "district_code")
    return out.select(
        "care_site_id",
        pl.col("name").str.slice(0, 255).alias("care_site_name"),
        pl.when(pl.col("class_code") == PHARMACY_CLASS)
        .then(pl.lit(v.PHARMACY))
        .otherwise(None)
        .alias("place_of_service_concept_id"),
        "location_id",
        pl.col("ykiho").alias("care_site_source_value"),
        pl.col("class_code").alias("place_of_service_source_value"),
    )


def visit_concept() -> pl.Expr:
    """A statement's visit concept: pharmacy, inpatient form, emergency medicine, else
    outpatient (the order of the spec's hierarchy IP → ER → OP, pharmacy first: its own
    statements)."""
    pharmacy = (pl.col("form_type") == PHARMACY_FORM) | (pl.col("class_code") == PHARMACY_CLASS)
    return (
        pl.when(pharmacy)
        .then(pl.lit(v.PHARMACY))
        .when(pl.col("form_type").is_in(sorted(inpatient_forms())))
        .then(pl.lit(v.INPATIENT))
        .when(pl.col("department") == EMERGENCY_DEPARTMENT)
        .then(pl.lit(v.EMERGENCY))
        .otherwise(pl.lit(v.OUTPATIENT))
    )


def visits(claims: pl.DataFrame) -> pl.DataFrame:
    """``omop.visit_occurrence``: one row per statement (its version in use)."""
    out = with_id(claims, "visit_occurrence_id", VISIT, "spec_id")
    out = with_id(out, "care_site_id", CARE_SITE, "ykiho")
    concept = visit_concept()
    return out.select(
        "visit_occurrence_id",
        "person_id",
        concept.alias("visit_concept_id"),
        pl.col("start_date").alias("visit_start_date"),
        pl.col("end_date").alias("visit_end_date"),
        pl.when(concept == v.PHARMACY)
        .then(pl.lit(v.PHARMACY_CLAIM))
        .otherwise(pl.lit(v.CLAIM))
        .alias("visit_type_concept_id"),
        "care_site_id",
        pl.col("form_type").alias("visit_source_value"),
    )


def conditions(diagnoses: pl.DataFrame) -> pl.DataFrame:
    """``omop.condition_occurrence``: one row per diagnosis on a statement in use; the main
    diagnosis is the primary one, the others secondary (condition status), all from claims."""
    out = _on_statement(diagnoses, "condition_occurrence_id", CONDITION, "spec_id", "seq")
    return out.select(
        "condition_occurrence_id",
        "person_id",
        pl.lit(v.NO_MATCH).alias("condition_concept_id"),
        pl.col("diagnosed_on").alias("condition_start_date"),
        pl.lit(v.CLAIM).alias("condition_type_concept_id"),
        pl.when(pl.col("kind") == "main")
        .then(pl.lit(v.PRIMARY_DIAGNOSIS))
        .otherwise(pl.lit(v.SECONDARY_DIAGNOSIS))
        .alias("condition_status_concept_id"),
        "visit_occurrence_id",
        pl.col("kcd").alias("condition_source_value"),
        pl.lit(v.NO_MATCH).alias("condition_source_concept_id"),
        pl.col("kind").alias("condition_status_source_value"),
    )


def drugs(frame: pl.DataFrame, start: str, kind: str, type_concept: int) -> pl.DataFrame:
    """``omop.drug_exposure`` rows of prescriptions or dispensings: quantity = dose × times a
    day × days, days supply = days, the last day = first + days − 1."""
    out = _on_statement(frame, "drug_exposure_id", kind, "spec_id", "line_no")
    return out.select(
        "drug_exposure_id",
        "person_id",
        pl.lit(v.NO_MATCH).alias("drug_concept_id"),
        pl.col(start).alias("drug_exposure_start_date"),
        (pl.col(start) + pl.duration(days=pl.col("days") - 1)).alias("drug_exposure_end_date"),
        pl.lit(type_concept).alias("drug_type_concept_id"),
        (pl.col("dose") * pl.col("per_day") * pl.col("days")).alias("quantity"),
        pl.col("days").alias("days_supply"),
        "visit_occurrence_id",
        pl.col("ingredient_code").alias("drug_source_value"),
        pl.lit(v.NO_MATCH).alias("drug_source_concept_id"),
    )


def line_procedures(lines: pl.DataFrame) -> pl.DataFrame:
    """``omop.procedure_occurrence`` rows of claim lines that are procedures, dated by their
    statement's first day (a line carries no date); a quantity below 1 counts as 1."""
    out = lines.filter(pl.col("line_type").is_in(PROCEDURE_LINE_TYPES))
    out = _on_statement(out, "procedure_occurrence_id", PROCEDURE_LINE, "spec_id", "line_no")
    return out.select(
        "procedure_occurrence_id",
        "person_id",
        pl.lit(v.NO_MATCH).alias("procedure_concept_id"),
        pl.col("_start").alias("procedure_date"),
        pl.lit(v.CLAIM).alias("procedure_type_concept_id"),
        pl.max_horizontal(pl.col("quantity").round(0), pl.lit(1.0))
        .cast(pl.Int64)
        .alias("quantity"),
        "visit_occurrence_id",
        _text50("code").alias("procedure_source_value"),
        pl.lit(v.NO_MATCH).alias("procedure_source_concept_id"),
    )


def _study_date() -> pl.Expr:
    """A study's day: StudyDate, else the day of StudyDateTime, else when it first arrived."""
    return pl.coalesce(
        "study_date",
        pl.col("study_datetime").dt.convert_time_zone("Asia/Seoul").dt.date(),
        pl.col("first_received_at").dt.convert_time_zone("Asia/Seoul").dt.date(),
    )


def study_procedures(studies: pl.DataFrame) -> pl.DataFrame:
    """``omop.procedure_occurrence`` rows of imaging studies (the clinic's record, EHR)."""
    out = with_id(studies, "procedure_occurrence_id", PROCEDURE_STUDY, "study_instance_uid")
    return out.select(
        "procedure_occurrence_id",
        "person_id",
        pl.lit(v.NO_MATCH).alias("procedure_concept_id"),
        _study_date().alias("procedure_date"),
        pl.col("study_datetime").alias("procedure_datetime"),
        pl.lit(v.EHR).alias("procedure_type_concept_id"),
        pl.lit(1).alias("quantity"),
        _text50("modalities").alias("procedure_source_value"),
        pl.lit(v.NO_MATCH).alias("procedure_source_concept_id"),
    )


def images(series: pl.DataFrame, studies: pl.DataFrame) -> pl.DataFrame:
    """``omop.image_occurrence``: one row per series of a mapped study (modality concept 0:
    no DICOM modality concept is shipped)."""
    out = series.join(
        studies.select(
            "study_instance_uid", "person_id", _study_date().alias("image_occurrence_date")
        ),
        on="study_instance_uid",
        how="inner",
    )
    out = with_id(out, "image_occurrence_id", IMAGE, "series_instance_uid")
    out = with_id(out, "procedure_occurrence_id", PROCEDURE_STUDY, "study_instance_uid")
    return out.select(
        "image_occurrence_id",
        "person_id",
        "procedure_occurrence_id",
        "image_occurrence_date",
        pl.col("study_instance_uid").alias("image_study_uid"),
        pl.col("series_instance_uid").alias("image_series_uid"),
        pl.lit(v.NO_MATCH).alias("modality_concept_id"),
    )


def findings(scored: pl.DataFrame, image_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``omop.image_feature`` and its ``omop.measurement`` rows from the scored AI findings.

    Each finding is a feature of the series that holds its located instance (else the study's
    first series), by ``alg_system`` (the model's name and version) at ``alg_datetime`` (when
    scored); its code and score or value are a measurement row (concept 0, the finding code in
    ``measurement_source_value``) that the feature names as its event.
    """
    first = image_rows.group_by("image_study_uid").agg(
        pl.col("image_series_uid").min().alias("_first_series"),
        pl.col("image_occurrence_date").min().alias("_date"),
    )
    out = scored.join(
        first, left_on="study_instance_uid", right_on="image_study_uid", how="inner"
    ).with_columns(pl.coalesce("series_instance_uid", "_first_series").alias("_series"))
    keys = ("study_instance_uid", "service", "algorithm_version", "finding_code")
    out = with_id(out, "image_feature_id", FEATURE, *keys)
    out = with_id(out, "measurement_id", FINDING, *keys)
    out = with_id(out, "image_occurrence_id", IMAGE, "_series")
    feature = out.select(
        "image_feature_id",
        "person_id",
        "image_occurrence_id",
        pl.col("measurement_id").alias("image_feature_event_id"),
        pl.lit(v.NO_MATCH).alias("image_feature_concept_id"),
        pl.lit(v.EHR).alias("image_feature_type_concept_id"),
        pl.concat_str("algorithm_name", pl.lit(" "), "algorithm_version").alias("alg_system"),
        pl.col("scored_at").alias("alg_datetime"),
    )
    measurement = out.select(
        "measurement_id",
        "person_id",
        pl.lit(v.NO_MATCH).alias("measurement_concept_id"),
        pl.col("_date").alias("measurement_date"),
        pl.lit(v.EHR).alias("measurement_type_concept_id"),
        pl.coalesce("score", "value").alias("value_as_number"),
        _text50("finding_code").alias("measurement_source_value"),
        pl.lit(v.NO_MATCH).alias("measurement_source_concept_id"),
        pl.col("unit").alias("unit_source_value"),
    )
    return feature, measurement


def centre_measurements(rows: pl.DataFrame) -> pl.DataFrame:
    """``omop.measurement`` rows of the centre's devices: height, weight and blood pressure
    with their LOINC concepts and UCUM units, every other measure concept 0 with its code."""
    out = with_id(rows, "measurement_id", MEASURED, "measurement_id", "measure", "context")
    source = (
        pl.when(pl.col("context").is_null())
        .then(pl.col("measure"))
        .otherwise(pl.concat_str("measure", pl.lit(":"), "context"))
    )
    return out.select(
        "measurement_id",
        "person_id",
        pl.col("measure")
        .replace_strict(v.MEASURES, default=v.NO_MATCH, return_dtype=pl.Int64)
        .alias("measurement_concept_id"),
        pl.col("measured_on").alias("measurement_date"),
        pl.col("measured_at").alias("measurement_datetime"),
        pl.lit(v.EHR).alias("measurement_type_concept_id"),
        pl.col("value").alias("value_as_number"),
        pl.col("unit")
        .replace_strict(v.UNITS, default=v.NO_MATCH, return_dtype=pl.Int64)
        .alias("unit_concept_id"),
        _text50(source).alias("measurement_source_value"),
        pl.lit(v.NO_MATCH).alias("measurement_source_concept_id"),
        _text50("unit").alias("unit_source_value"),
    )


def _event_days(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Each person's first and last event day over the mapped event tables (a drug counts by
    its first day: a supply running past the sources' last day is not observation)."""
    days = [
        ("omop.visit_occurrence", "visit_start_date", "visit_end_date"),
        ("omop.condition_occurrence", "condition_start_date", "condition_start_date"),
        ("omop.drug_exposure", "drug_exposure_start_date", "drug_exposure_start_date"),
        ("omop.procedure_occurrence", "procedure_date", "procedure_date"),
        ("omop.measurement", "measurement_date", "measurement_date"),
        ("omop.image_occurrence", "image_occurrence_date", "image_occurrence_date"),
    ]
    spans = pl.concat(
        [
            tables[t].select("person_id", pl.col(a).alias("first"), pl.col(b).alias("last"))
            for t, a, b in days
        ]
    )
    return spans.group_by("person_id").agg(pl.col("first").min(), pl.col("last").max())


def periods(citizens: pl.DataFrame, tables: dict[str, pl.DataFrame], as_of: date) -> pl.DataFrame:
    """``omop.observation_period``: one per person, their residence in the city (from the
    register: to the day before they left, or their death, else ``as_of``), widened to cover
    every mapped event (the claims history of linked citizens reaches back before it)."""
    resident = with_person_id(citizens).select(
        "person_id",
        pl.col("resident_from").alias("_from"),
        pl.coalesce(pl.col("resident_to") - pl.duration(days=1), "died_on", pl.lit(as_of)).alias(
            "_to"
        ),
    )
    out = resident.join(_event_days(tables), on="person_id", how="left").with_columns(
        pl.min_horizontal("_from", "first").alias("observation_period_start_date"),
        pl.max_horizontal("_to", "last").alias("observation_period_end_date"),
    )
    out = out.with_columns(
        pl.max_horizontal("observation_period_start_date", "observation_period_end_date").alias(
            "observation_period_end_date"
        )
    )
    return with_id(out, "observation_period_id", PERIOD, pl.col("person_id")).select(
        "observation_period_id",
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
        pl.lit(v.REGISTRY).alias("period_type_concept_id"),
    )


def deaths(citizens: pl.DataFrame) -> pl.DataFrame:
    """``omop.death``: the register's deaths."""
    return with_person_id(citizens.filter(pl.col("died_on").is_not_null())).select(
        "person_id",
        pl.col("died_on").alias("death_date"),
        pl.lit(v.REGISTRY).alias("death_type_concept_id"),
    )


def cdm_source(source_release: date, cdm_release: date) -> pl.DataFrame:
    """``omop.cdm_source``: the one row describing this CDM."""
    return pl.DataFrame(
        {
            "cdm_source_name": [SOURCE_NAME],
            "cdm_source_abbreviation": [SOURCE_ABBREVIATION],
            "cdm_holder": [HOLDER],
            "source_description": [
                "The city's resident register, HIRA claims and pharmacy claims, the seniors' "
                "centre devices, DICOM studies sent through the AI platform and the AI "
                "findings of reference models trained on synthetic data, pseudonymised."
            ],
            "source_documentation_reference": ["docs/omop.md"],
            "cdm_etl_reference": ["pipelines/transform/omop.py"],
            "source_release_date": [source_release],
            "cdm_release_date": [cdm_release],
            "cdm_version": ["v5.4"],
            "cdm_version_concept_id": [v.CDM_V54],
            "vocabulary_version": [v.version()],
        }
    )


# The tables not about one person: built once from the registers, whatever the passes.
SHARED: Final = (
    "omop.location",
    "omop.care_site",
    "omop.concept",
    "omop.cdm_source",
    "omop.provider",
    "omop.observation",
)


def shared(
    districts: pl.DataFrame, institutions: pl.DataFrame, as_of: date, released: date
) -> dict[str, pl.DataFrame]:
    """The ``SHARED`` tables, conformed.

    Args:
        districts: The citizens' district codes (a ``district_code`` column; the register
            itself will do).
        institutions: The institution register.
        as_of: The last day the sources cover (``cdm_source.source_release_date``).
        released: The day this CDM is built (``cdm_source.cdm_release_date``).
    """
    tables = {
        "omop.location": locations(districts, institutions),
        "omop.care_site": care_sites(institutions),
        "omop.concept": v.concept_frame(),
        "omop.cdm_source": cdm_source(as_of, released),
        # No source holds providers (the claims name institutions, not clinicians) or facts
        # the specification files as observations: both tables exist, empty.
        "omop.provider": pl.DataFrame(),
        "omop.observation": pl.DataFrame(),
    }
    return {name: _conform(name, frame) for name, frame in tables.items()}


def person_level(src: Sources, as_of: date) -> Built:
    """The person-level omop tables (every table but ``SHARED``) of the citizens in ``src``.

    Each row depends only on its own person's source rows, so the city can be built in passes
    of citizens, each pass's sources narrowed to its citizens (``pipelines.defs.omop``), and the
    passes' rows together are the rows of one pass over everyone: the ids are stable hashes of
    source keys, and a person's observation period spans only their own events.
    """
    built = Built({})
    person = persons(src.citizens)
    claims = _known(src.claims, person, "omop.visit_occurrence", built)
    diagnoses = _known(_in_use(src.diagnoses, claims), person, "omop.condition_occurrence", built)
    prescribed = _known(_in_use(src.prescriptions, claims), person, "omop.drug_exposure", built)
    dispensed = _known(_in_use(src.dispensings, claims), person, "omop.drug_exposure", built)
    lines = _in_use(src.claim_lines, claims).join(
        claims.select("spec_id", "person_id"), on="spec_id", how="inner"
    )
    studies = _known(src.studies, person, "omop.image_occurrence", built)
    members = src.measurements.join(
        src.members.select("member_no", "citizen_key"), on="member_no", how="left"
    )
    measured = _known(members, person, "omop.measurement", built)
    scored = _known(
        src.findings.filter(pl.col("status") == "scored"), person, "omop.image_feature", built
    )
    image_rows = images(src.series, studies)
    feature, finding_rows = findings(scored, image_rows)
    tables = {
        "omop.person": person,
        "omop.visit_occurrence": visits(claims),
        "omop.condition_occurrence": conditions(diagnoses),
        "omop.drug_exposure": pl.concat(
            [
                drugs(prescribed, "issued_on", PRESCRIBED, v.CLAIM),
                drugs(dispensed, "dispensed_on", DISPENSED, v.PHARMACY_CLAIM),
            ]
        ),
        "omop.procedure_occurrence": pl.concat(
            [line_procedures(lines), study_procedures(studies)], how="diagonal_relaxed"
        ),
        "omop.measurement": pl.concat(
            [centre_measurements(measured), finding_rows], how="diagonal_relaxed"
        ),
        "omop.image_occurrence": image_rows,
        "omop.image_feature": feature,
        "omop.death": deaths(src.citizens),
    }
    conformed = {name: _conform(name, frame) for name, frame in tables.items()}
    conformed["omop.observation_period"] = _conform(
        "omop.observation_period", periods(src.citizens, conformed, as_of)
    )
    built.tables = conformed
    return built


# The claims family (``pipelines.transform.gold.CLAIMS_FAMILY``): the sources of the national
# claims and the pharmacies' dispensings, by far the largest and delivered monthly, and the rows
# they make: every visit, condition and drug exposure, and the procedures of claim lines (type
# Claim; an imaging study's procedure is type EHR). A person's rows of the family depend only on
# that person's claims, lines, diagnoses, prescriptions, dispensings and register row.
CLAIMS_SOURCES: Final = ("claims", "claim_lines", "diagnoses", "prescriptions", "dispensings")
CLAIMS_TABLES: Final = (
    "omop.visit_occurrence",
    "omop.condition_occurrence",
    "omop.drug_exposure",
    "omop.procedure_occurrence",
)


def from_claims(name: str) -> pl.Expr:
    """Which rows of one of ``CLAIMS_TABLES`` the claims family made."""
    if name == "omop.procedure_occurrence":
        return pl.col("procedure_type_concept_id") == v.CLAIM
    return pl.lit(True)


def with_claims_kept(
    built: Mapping[str, pl.DataFrame],
    stored: Mapping[str, pl.DataFrame],
    citizens: pl.DataFrame,
    as_of: date,
) -> dict[str, pl.DataFrame]:
    """Some persons' tables made without reading the claims family (``person_level`` of
    sources whose claims family is empty), completed with the family's rows stored for them,
    and their observation periods made again over the completed tables: the tables a
    ``person_level`` of every source gives, when the family and the register rows of these
    persons did not change since the stored rows were made.

    Args:
        built: ``person_level(...).tables`` of the persons, the claims family's sources empty.
        stored: Each of ``CLAIMS_TABLES``' stored rows of the same persons.
        citizens: The persons' rows of ``silver.citizens``.
        as_of: The sources' last day.
    """
    tables = dict(built)
    for name in CLAIMS_TABLES:
        kept = _conform(name, stored[name].filter(from_claims(name)))
        tables[name] = pl.concat([built[name], kept])
    tables[f"omop.{PERIOD}"] = _conform(f"omop.{PERIOD}", periods(citizens, tables, as_of))
    return tables


def build(src: Sources, as_of: date, released: date) -> Built:
    """Every omop table from the sources, in one pass.

    Args:
        src: The silver, imaging and AI frames.
        as_of: The last day the sources cover: the end of the observation of citizens still
            resident, and the source release date.
        released: The day this CDM is built (``cdm_source.cdm_release_date``).
    """
    built = person_level(src, as_of)
    built.tables |= shared(src.citizens, src.institutions, as_of, released)
    return built
