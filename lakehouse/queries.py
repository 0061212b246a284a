"""The access layer's reads of what the pipelines write, as functions of plain values.

Only ``lakehouse.access`` calls these, after it has decided the principal may read the rows
and before it audits the read. They take strings, tuples and dates and return frames, so an app
may memoise them (``st.cache_data`` with a time to live, ``apps/common/cache.py``) without the
cache ever skipping a check or an audit row: the access layer checks and audits on every call,
cached or not. Tables the apps themselves write (``ops.*``: grants, decisions, requests, the
audit log) are never read here; they are read fresh, so a decision shows at once.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

from lakehouse import buckets, delta
from lakehouse import read as lake

TIMELINE: Final = "gold.citizen_timeline"
FINDINGS: Final = "ai.findings"
STUDIES: Final = "silver.imaging_studies"
INSTANCES: Final = "silver.imaging_instances"
INSTITUTIONS: Final = "silver.institutions"
CITIZENS: Final = "silver.citizens"
APP_USERS: Final = "silver.app_users"
PROGRAMME_EVENTS: Final = "silver.programme_events"
READING_CLASSES: Final = ("01", "11")  # tertiary and general hospitals read for clinics
PHARMACY: Final = "81"  # institution class (lakehouse/reference/codes/institution_classes.csv)
ENCOUNTERS: Final = ("visit", "admission")  # timeline kinds that are a treatment relationship


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


def treated(subject: str, institution: str, since: date) -> bool:
    """The citizen had a visit or an admission at the institution on or after ``since`` (their
    timeline), or a study it sent taken then."""
    seen = (
        lake.scan(TIMELINE)
        .filter(
            (pl.col("key_bucket") == buckets.key_bucket(subject))
            & (pl.col("citizen_key") == subject)
            & (pl.col("institution") == institution)
            & pl.col("kind").is_in(list(ENCOUNTERS))
            & (pl.col("event_date") >= since)
        )
        .select(pl.len())
        .collect()
        .item()
    )
    if seen:
        return True
    sent = (
        lake.scan(STUDIES)
        .filter(
            (pl.col("citizen_key") == subject)
            & (pl.col("institution") == institution)
            & (pl.col("study_date") >= since)
        )
        .select(pl.len())
        .collect()
        .item()
    )
    return bool(sent)


def records_until() -> date | None:
    """The newest day on any timeline, from the Delta log's file statistics (no data read):
    how far the extracts reach. None when the timeline has no rows or no statistics."""
    if not delta.exists(TIMELINE):
        return None
    actions = pl.DataFrame(delta.open_table(TIMELINE).get_add_actions(flatten=True))
    column = "max.event_date"
    if column not in actions.columns or actions[column].is_null().all():
        return None
    newest = actions[column].max()
    return newest if isinstance(newest, date) else None


def consent_events(subject: str, types: tuple[str, ...]) -> pl.DataFrame:
    """The programme's events of these ``types`` of the citizen's app accounts: what decides
    what they agreed to (``lakehouse.access.folds.consent``)."""
    accounts = lake.frame(APP_USERS, pl.col("citizen_key") == subject)["app_user_id"]
    return lake.frame(
        PROGRAMME_EVENTS,
        pl.col("app_user_id").is_in(accounts.implode()) & pl.col("event_type").is_in(list(types)),
    )


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


def care_institutions() -> pl.DataFrame:
    """Every institution but pharmacies (code, name, class), by name: those a citizen may
    give a standing consent to."""
    return (
        lake.scan(INSTITUTIONS)
        .filter(pl.col("class_code") != PHARMACY)
        .select("ykiho", "name", "class_code")
        .sort("name", "ykiho")
        .collect()
    )


def institution_names(codes: tuple[str, ...]) -> dict[str, str]:
    """Institution names by code."""
    found = lake.frame(INSTITUTIONS, pl.col("ykiho").is_in(list(codes)))
    return dict(zip(found["ykiho"].to_list(), found["name"].to_list(), strict=True))
