"""The access layer's reads of what the pipelines write, as functions of plain values.

Only ``lakehouse.access`` calls these, after it has decided the principal may read the rows
and before it audits the read. They take strings, tuples and dates and return frames, so an app
may memoise them (``st.cache_data`` with a time to live, ``apps/common/cache.py``) without the
cache ever skipping a check or an audit row: the access layer checks and audits on every call,
cached or not. Tables the apps themselves write (``ops.*``: grants, decisions, requests, the
audit log) are never read here; they are read fresh, so a decision shows at once.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any, Final

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse import buckets, delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from lakehouse.config import storage_options

TIMELINE: Final = "gold.citizen_timeline"
CONSENT: Final = "gold.citizen_consent"
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
EVENT_COLUMNS: Final = ("event_id", "event_type", "occurred_at", "details")  # what a fold reads


def version_of(name: str) -> tuple[str, int] | None:
    """``name``'s table id and latest version from the log this process keeps open
    (``lakehouse.read.snapshot``), or None before its first build or when it cannot be read as
    it is: what a cache of a whole table is keyed by (a table made anew at the same place
    starts its versions again; its id tells them apart)."""
    snap = lake.snapshot(name)
    return None if snap is None else (snap.table_id, snap.version)


def _citizen_rows(subject: str, name: str = TIMELINE) -> pl.LazyFrame:
    """One citizen's rows of a gold table partitioned by key bucket (the timeline, the consent
    states), read the way the table is laid out for them (``lakehouse.read.lookup``): the files
    of the citizen's key bucket whose ``citizen_key`` range holds the key, and in them only the
    row groups whose range does (the gold job writes each pass sorted by citizen, in small row
    groups, ``pipelines.defs.gold.ROW_GROUP_ROWS``)."""
    bucket = buckets.key_bucket(subject)  # raises unless ``subject`` is a citizen key
    return lake.lookup(name, {"key_bucket": [bucket], "citizen_key": [subject]})


def timeline(subject: str) -> pl.DataFrame:
    """A citizen's timeline (one partition, a few row groups), newest first."""
    return (
        _citizen_rows(subject)
        .drop("key_bucket")
        .sort("event_date", "source_ref", descending=[True, False])
        .collect()
    )


def treated(subject: str, institution: str, since: date) -> bool:
    """The citizen had a visit or an admission at the institution on or after ``since`` (their
    timeline), or a study it sent taken then."""
    seen = (
        _citizen_rows(subject)
        .filter(
            (pl.col("institution") == institution)
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
        lake.lookup(STUDIES, {"citizen_key": [subject], "institution": [institution]})
        .filter(pl.col("study_date") >= since)
        .select(pl.len())
        .collect()
        .item()
    )
    return bool(sent)


def records_until() -> date | None:
    """The newest day on any timeline, from the Delta log's file statistics (no data read):
    how far the extracts reach. None when the timeline has no rows or no statistics."""
    snap = lake.snapshot(TIMELINE)
    if snap is None:
        return None
    actions = snap.files
    column = "max.event_date"
    if column not in actions.columns or actions[column].is_null().all():
        return None
    newest = actions[column].max()
    return newest if isinstance(newest, date) else None


def _accounts(subject: str) -> pl.Series:
    """The citizen's app accounts (``silver.app_users``)."""
    return lake.frame(APP_USERS, pl.col("citizen_key") == subject)["app_user_id"]


def consent_events(subject: str, types: tuple[str, ...]) -> pl.DataFrame:
    """The programme's events of these ``types`` of the citizen's app accounts, every day of
    them: what decides what they agreed to (``lakehouse.access.folds.consent``) when
    ``consent`` cannot answer."""
    return lake.frame(
        PROGRAMME_EVENTS,
        pl.col("app_user_id").is_in(_accounts(subject).implode())
        & pl.col("event_type").is_in(list(types)),
    )


@functools.lru_cache(maxsize=4)
def _files_at(location: str, version: int) -> frozenset[str] | None:
    """A table's files at an older version (the one a gold build read), or None when that
    version can no longer be loaded (its log was cleaned up)."""
    try:
        return frozenset(
            DeltaTable(location, version=version, storage_options=storage_options()).file_uris()
        )
    except DeltaError:
        return None


def _events_since(version: int, through: date) -> list[str] | None:
    """The files ``silver.programme_events`` gained after ``version``, when they are all of
    days after ``through`` and every file of ``version`` is still there: the events a build of
    ``gold.citizen_consent`` did not fold, each later than every event it did. None when the
    events changed otherwise since (a day up to ``through`` delivered again or late, the files
    compacted, ``version``'s log cleaned up): only a fold of every day is right then."""
    snap = lake.snapshot(PROGRAMME_EVENTS)
    if snap is None:
        return None
    if snap.version == version:
        return []
    now = set(snap.files["uri"].to_list())
    newer = snap.files.filter(pl.col("partition.event_date") > through)["uri"].to_list()
    before = _files_at(delta.uri(PROGRAMME_EVENTS), version)
    if before is None or now != before | set(newer):
        return None
    return newer


def _consent_build() -> tuple[int, date] | None:
    """The version of ``silver.programme_events`` and its newest day that the rows of
    ``gold.citizen_consent`` folded, from the Delta log's file statistics (one build writes
    the whole table in one commit); None when the table is missing, empty or mixed."""
    snap = lake.snapshot(CONSENT)
    if snap is None:
        return None
    actions = snap.files
    built = actions.select(
        pl.col(f"{stat}.{column}").unique().alias(f"{stat}.{column}")
        for stat in ("min", "max")
        for column in ("events_version", "events_through")
    )
    if actions.is_empty() or built.height != 1 or built.row(0)[:2] != built.row(0)[2:]:
        return None
    version, through = built.row(0)[:2]
    return (version, through) if isinstance(through, date) else None


def consent(
    subject: str, types: tuple[str, ...]
) -> tuple[dict[str, Any] | None, pl.DataFrame] | None:
    """What decides the citizen's consent state, read by their key bucket: their row of
    ``gold.citizen_consent`` (None: no account when it was built) and their events of these
    ``types`` that arrived since the build, read from the newest days' files only (``start``
    and ``events`` of ``lakehouse.access.folds.consent``). None when the table cannot answer
    (not built, or the events changed otherwise than by new days since, ``_events_since``):
    fold ``consent_events`` then."""
    built = _consent_build()
    if built is None:
        return None
    files = _events_since(*built)
    if files is None:
        return None
    rows = _citizen_rows(subject, CONSENT).collect()
    if rows.height > 1:
        return None
    since = catalog_table(PROGRAMME_EVENTS).polars_schema()
    events = pl.DataFrame(schema={c: since[c] for c in EVENT_COLUMNS})
    if files:
        events = (
            pl.scan_parquet(files, storage_options=storage_options())
            .filter(
                pl.col("app_user_id").is_in(_accounts(subject).implode())
                & pl.col("event_type").is_in(list(types))
            )
            .select(pl.col(c).cast(since[c]) for c in EVENT_COLUMNS)
            .collect()
        )
    return (rows.row(0, named=True) if rows.height else None), events


def citizens(keys: tuple[str, ...]) -> pl.DataFrame:
    """These citizens' rows (key, sex, birth year and month, ...), no direct identifier."""
    return lake.frame(CITIZENS, pl.col("citizen_key").is_in(list(keys)))


def citizens_born(year: int, month: int) -> pl.DataFrame:
    """The citizens born in one month: the few a lookup by birth date decrypts in the vault."""
    return lake.frame(CITIZENS, (pl.col("birth_year") == year) & (pl.col("birth_month") == month))


def findings_of_institution(institution: str) -> pl.DataFrame:
    """Every AI finding row of the studies an institution sent."""
    return lake.lookup(FINDINGS, {"institution": [institution]}).collect()


def findings_of_studies(studies: tuple[str, ...]) -> pl.DataFrame:
    """Every AI finding row of these studies."""
    return lake.lookup(FINDINGS, {"study_instance_uid": studies}).collect()


def findings_of_patient(patient_key: str) -> pl.DataFrame:
    """Every AI finding row of one patient's studies."""
    return lake.lookup(FINDINGS, {"patient_key": [patient_key]}).collect()


def studies(uids: tuple[str, ...]) -> pl.DataFrame:
    """These studies' rows."""
    return lake.lookup(STUDIES, {"study_instance_uid": uids}).collect()


def studies_of_institution(institution: str) -> pl.DataFrame:
    """Every study an institution sent."""
    return lake.lookup(STUDIES, {"institution": [institution]}).collect()


def studies_of_patient(patient_key: str) -> pl.DataFrame:
    """One patient's studies, newest first."""
    return (
        lake.lookup(STUDIES, {"patient_key": [patient_key]})
        .collect()
        .sort("study_datetime", descending=True, nulls_last=True)
    )


def instances(study: str) -> pl.DataFrame:
    """A study's instances in reading order: series, then instance number."""
    return (
        lake.lookup(INSTANCES, {"study_instance_uid": [study]})
        .collect()
        .sort("series_number", "series_instance_uid", "instance_number", nulls_last=True)
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


# --- One citizen's medicines (lakehouse.access.medicines) -------------------------------------
# ``silver.prescriptions`` and ``silver.dispensings`` are partitioned by claim month, and every
# month's files hold every citizen, so one citizen's read scans each month it asks for: these
# reads ask only for the months that can hold a supply still running (the caller's window, about
# 16 months), never a lifetime; the lifetime view of diagnoses comes from the citizen's one
# partition of ``gold.citizen_timeline``. Only the statement version in use counts: a child row
# is kept when its ``delivery_id`` is its statement's in ``silver.claims``.

PRESCRIPTIONS: Final = "silver.prescriptions"
DISPENSINGS: Final = "silver.dispensings"
CLAIMS: Final = "silver.claims"
DRUG_COLUMNS: Final = ("ingredient_code", "product_code", "name", "dose", "per_day", "days")


def _in_use(table: str, subject: str, first_month: str, last_month: str) -> pl.LazyFrame:
    """One citizen's rows of a statement child table in these claim months (``YYYY-MM``,
    inclusive), of the statement versions in use."""
    months = pl.col("claim_month").is_between(pl.lit(first_month), pl.lit(last_month))
    mine = pl.col("citizen_key") == subject
    heads = lake.scan(CLAIMS).filter(months & mine).select("spec_id", "delivery_id")
    return lake.scan(table).filter(months & mine).join(heads, on=["spec_id", "delivery_id"])


def prescriptions_in_use(subject: str, first_month: str, last_month: str) -> pl.DataFrame:
    """One citizen's prescriptions in use issued on statements of these claim months."""
    return (
        _in_use(PRESCRIPTIONS, subject, first_month, last_month)
        .select(
            "spec_id",
            "delivery_id",
            "line_no",
            "ykiho",
            "prescription_no",
            "issued_on",
            *DRUG_COLUMNS,
        )
        .collect()
    )


def dispensings_in_use(subject: str, first_month: str, last_month: str) -> pl.DataFrame:
    """One citizen's dispensings in use of these claim months."""
    return (
        _in_use(DISPENSINGS, subject, first_month, last_month)
        .select(
            "spec_id",
            "delivery_id",
            "line_no",
            "pharmacy_ykiho",
            "dispensed_on",
            "prescriber_ykiho",
            "prescription_no",
            *DRUG_COLUMNS,
        )
        .collect()
    )


def medicines_extract_end() -> date | None:
    """The last day the national extracts' medicines reach (the latest day issued or
    dispensed, read from the latest claim month only); None before any was loaded.

    Claims reach the lakehouse months after care, so "now" for the citizen's medicines is this
    day when it is earlier than today."""
    last: list[date] = []
    for table, day in ((PRESCRIPTIONS, "issued_on"), (DISPENSINGS, "dispensed_on")):
        month = lake.scan(table).select(pl.col("claim_month").max()).collect().item()
        if month is not None:
            found = (
                lake.scan(table)
                .filter(pl.col("claim_month") == month)
                .select(pl.col(day).max())
                .collect()
                .item()
            )
            last.append(found)
    return max(last) if last else None
