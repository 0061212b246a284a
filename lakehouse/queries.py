"""The access layer's reads of what the pipelines write, as functions of plain values.

Only ``lakehouse.access`` calls these, after it has decided the principal may read the rows
and before it audits the read. They take strings, tuples and dates and return frames, so an app
may memoise them (``st.cache_data`` with a time to live, ``apps/common/cache.py``) without the
cache ever skipping a check or an audit row: the access layer checks and audits on every call,
cached or not. Tables the apps themselves write (``ops.*``: grants, decisions, requests, the
audit log) are never read here; they are read fresh, so a decision shows at once.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from lakehouse import buckets
from lakehouse import read as lake

TIMELINE: Final = "gold.citizen_timeline"
FINDINGS: Final = "ai.findings"
STUDIES: Final = "silver.imaging_studies"
INSTANCES: Final = "silver.imaging_instances"
INSTITUTIONS: Final = "silver.institutions"
CITIZENS: Final = "silver.citizens"
READING_CLASSES: Final = ("01", "11")  # tertiary and general hospitals read for clinics


def timeline(subject: str) -> pl.DataFrame:
    """A citizen's timeline (one partition read), newest first."""
    return (
        lake.scan(TIMELINE)
        .filter(
            (pl.col("key_bucket") == buckets.key_bucket(subject))
            & (pl.col("citizen_key") == subject)
        )
        .drop("key_bucket")
        .sort("event_date", "source_ref", descending=[True, False])
        .collect()
    )


def visited(subject: str, institution: str) -> bool:
    """The citizen has a visit at the institution on their timeline, or a study it sent."""
    seen = (
        lake.scan(TIMELINE)
        .filter(
            (pl.col("key_bucket") == buckets.key_bucket(subject))
            & (pl.col("citizen_key") == subject)
            & (pl.col("institution") == institution)
        )
        .select(pl.len())
        .collect()
        .item()
    )
    if seen:
        return True
    sent = (
        lake.scan(STUDIES)
        .filter((pl.col("citizen_key") == subject) & (pl.col("institution") == institution))
        .select(pl.len())
        .collect()
        .item()
    )
    return bool(sent)


def citizens(keys: tuple[str, ...]) -> pl.DataFrame:
    """These citizens' rows (key, sex, birth year and month, ...), no direct identifier."""
    return lake.frame(CITIZENS, pl.col("citizen_key").is_in(list(keys)))


def citizens_born(year: int, month: int) -> pl.DataFrame:
    """The citizens born in one month: the few a lookup by birth date decrypts in the vault."""
    return lake.frame(CITIZENS, (pl.col("birth_year") == year) & (pl.col("birth_month") == month))


def findings_of_institution(institution: str) -> pl.DataFrame:
    """Every AI finding row of the studies an institution sent."""
    return lake.frame(FINDINGS, pl.col("institution") == institution)


def findings_of_studies(studies: tuple[str, ...]) -> pl.DataFrame:
    """Every AI finding row of these studies."""
    return lake.frame(FINDINGS, pl.col("study_instance_uid").is_in(list(studies)))


def findings_of_patient(patient_key: str) -> pl.DataFrame:
    """Every AI finding row of one patient's studies."""
    return lake.frame(FINDINGS, pl.col("patient_key") == patient_key)


def studies(uids: tuple[str, ...]) -> pl.DataFrame:
    """These studies' rows."""
    return lake.frame(STUDIES, pl.col("study_instance_uid").is_in(list(uids)))


def studies_of_institution(institution: str) -> pl.DataFrame:
    """Every study an institution sent."""
    return lake.frame(STUDIES, pl.col("institution") == institution)


def studies_of_patient(patient_key: str) -> pl.DataFrame:
    """One patient's studies, newest first."""
    return lake.frame(STUDIES, pl.col("patient_key") == patient_key).sort(
        "study_datetime", descending=True, nulls_last=True
    )


def instances(study: str) -> pl.DataFrame:
    """A study's instances in reading order: series, then instance number."""
    return lake.frame(INSTANCES, pl.col("study_instance_uid") == study).sort(
        "series_number", "series_instance_uid", "instance_number", nulls_last=True
    )


def reading_hospitals() -> pl.DataFrame:
    """The hospitals a clinic may ask for a remote reading (code, name), by name."""
    return (
        lake.scan(INSTITUTIONS)
        .filter(pl.col("class_code").is_in(list(READING_CLASSES)))
        .select("ykiho", "name", "class_code")
        .sort("class_code", "name")
        .collect()
    )


def institution_names(codes: tuple[str, ...]) -> dict[str, str]:
    """Institution names by code."""
    found = lake.frame(INSTITUTIONS, pl.col("ykiho").is_in(list(codes)))
    return dict(zip(found["ykiho"].to_list(), found["name"].to_list(), strict=True))


CENTRE_MEMBERS: Final = "silver.centre_members"
CENTRE_MEASUREMENTS: Final = "silver.centre_measurements"
CENTRE_COLUMNS: Final = (
    "device",
    "measure",
    "context",
    "value",
    "unit",
    "measured_at",
    "measured_on",
)


def centre_values(subject: str) -> pl.DataFrame:
    """Every seniors' centre measurement of one citizen (all their member numbers), oldest
    first."""
    members = lake.scan(CENTRE_MEMBERS).filter(pl.col("citizen_key") == subject)
    return (
        lake.scan(CENTRE_MEASUREMENTS)
        .join(members.select("member_no"), on="member_no", how="semi")
        .select(*CENTRE_COLUMNS)
        .sort("measured_at", "measure", "context")
        .collect()
    )


def citizen_rows(table: str, subject: str) -> pl.DataFrame:
    """Every row of one table that names the citizen (``citizen_key``): claims and their
    children (every delivered version), studies, AI findings."""
    return lake.frame(table, pl.col("citizen_key") == subject)
