"""OMOP research extracts: a research request's cohort in the ``omop.*`` tables, as Parquet.

An approved research request (``pipelines.defs.research``) receives, with its de-identified DICOM
copies, the OMOP CDM v5.4 rows of its cohort: ``<out>/omop/<table>.parquet``, one file per table,
each with exactly the specification's columns and types (the catalogue's ``omop.<table>``), and an
``omop`` section in the copy's ``manifest.json`` (tables, files, rows, fields). The cohort is the
persons of the requested studies: the ``person_id`` of their rows in ``omop.image_occurrence``.

**What the extract holds.** Of each person-level table (``PERSON_TABLES``) only the cohort's rows;
the tables that hold no person's data (``WHOLE_TABLES``: the care sites, the districts, the
shipped concepts, the CDM source) whole. ``omop.provider`` is never extracted: its rows are
clinicians, who are not a request's subjects, so every ``provider_id`` is emptied.

**De-identified for the request**, with the request's salt (``request_salt``, the same one the
DICOM copy uses), so that the same request always gives the same extract and two requests cannot
be linked to each other:

* **Ids.** Every row id of a person-level table (its primary key, its foreign keys to other
  person-level rows, the event ids that point to any of them, ``person_id`` itself) becomes
  ``pseudonymous_id(salt, id)``: 63 bits of HMAC-SHA256 under the salt. One function for every
  id, without the table's name: the lakehouse's OMOP ids are unique across tables (hashes of
  namespaced source keys, ``lakehouse.omop.ids``), so the polymorphic event ids
  (``measurement_event_id``, ``image_feature_event_id``...) still find their rows. The extract's
  ids are therefore neither the lakehouse's nor another request's.
* **Imaging.** ``image_study_uid`` and ``image_series_uid`` become ``new_uid(salt, uid)``, the
  very UIDs the DICOM copy gives the study and the series, so the extract joins the copy;
  ``local_path`` is the series' folder in the copy (relative to the request's folder) when the
  copy holds any of its instances, else empty; ``wadors_uri`` is empty (the copy is files, not a
  DICOMweb service).
* **Dates.** The DICOM copy keeps no real date: the Basic Profile empties or removes every date
  and time (PS3.15 Table E.1-1 without the Retain Longitudinal Temporal Information Options),
  and so does nothing here reveal one, or joining the extract to the copy by UID would give the
  copy its study dates back. The CDM cannot drop them (start dates are required, and research
  is about what happened after what), so every date and datetime of a person's rows moves by the
  same whole number of days, ``date_shift(salt, person_id)`` (1 to ``MAX_SHIFT_DAYS`` days,
  earlier or later): the intervals within a person and the order of their events stay exact
  (PS3.15's Retain Longitudinal Temporal Information with Modified Dates Option is the same
  idea), the calendar moves by up to a month. Birth is kept to its year (``month_of_birth``,
  ``day_of_birth`` and ``birth_datetime`` emptied), as the DICOM copy removes the birth date.
* **Source values.** ``person_source_value`` is emptied (it holds the citizen key). The other
  ``*_source_value`` fields hold codes of a code system (KCD, HIRA EDI and ingredient codes, the
  centre's measure codes, units, sex, visit kinds) and stay, as does every ``*_concept_id``;
  ``sig`` (free-text instructions) is emptied, as the DICOM copy removes free-text comments.
* **A last check.** No text value of the extract may contain a cohort member's citizen key or
  patient key, or an original study or series UID; one that does stops the extract
  (``IdentifierLeakError``, naming the table and column, never the value) before anything is
  written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from lakehouse import read as lake
from lakehouse.catalog import table
from lakehouse.catalog.omop import TABLES as OMOP_TABLES
from lakehouse.omop import spec
from pipelines.research_copy import ResearchCopy
from pipelines.transform.deidentify import new_uid

FOLDER: Final = "omop"
# The catalogue's OMOP tables that hold person-level rows (a ``person_id`` in the specification):
# only the cohort's rows of these leave.
PERSON_TABLES: Final = tuple(
    t for t in OMOP_TABLES if "person_id" in {f.name for f in spec.fields(t)}
)
# Clinicians, not a request's subjects: never extracted (every ``provider_id`` is emptied).
NOT_EXTRACTED: Final = frozenset({"provider"})
# Tables without person-level rows, extracted whole (their ids are kept: they are not a person's).
WHOLE_TABLES: Final = tuple(
    t for t in OMOP_TABLES if t not in PERSON_TABLES and t not in NOT_EXTRACTED
)
EXTRACT_TABLES: Final = PERSON_TABLES + WHOLE_TABLES
IMAGES: Final = "omop.image_occurrence"
# Dates move by 1 to this many days, earlier or later, per person and request.
MAX_SHIFT_DAYS: Final = 30
# Columns emptied in every table that has them, and why (the manifest repeats this).
EMPTIED: Final[dict[str, str]] = {
    "person_source_value": "the citizen key",
    "month_of_birth": "birth is kept to its year",
    "day_of_birth": "birth is kept to its year",
    "birth_datetime": "birth is kept to its year",
    "provider_id": "clinicians are not a request's subjects; omop.provider is not extracted",
    "sig": "free text",
    "wadors_uri": "the copy is files, not a DICOMweb service",
}
_SHIFT: Final = "__shift_days"


class IdentifierLeakError(ValueError):
    """A text value of the extract holds a cohort member's key or an original UID."""


class CohortError(ValueError):
    """The requested studies' persons cannot be found in the OMOP tables."""


@dataclass(frozen=True)
class Cohort:
    """The persons of a request: their lakehouse ``person_id`` and citizen key (None for a
    patient known only by a clinic's chart number), and the keys and UIDs that must not leave."""

    citizens: dict[int, str | None]
    secrets: frozenset[str] = field(default_factory=frozenset)

    @property
    def person_ids(self) -> list[int]:
        return sorted(self.citizens)


@dataclass(frozen=True)
class OmopExtract:
    """What an extract wrote: rows per table, and per citizen their rows per table."""

    out: Path
    rows: dict[str, int]
    by_citizen: dict[str, dict[str, int]]

    @property
    def persons(self) -> int:
        return self.rows.get("person", 0)


def pseudonymous_id(salt: bytes, old_id: int) -> int:
    """The id that replaces a lakehouse OMOP id in one request's extract: the first 63 bits of
    HMAC-SHA256(salt, ``omop:<id>``), never 0."""
    digest = hmac.new(salt, f"omop:{old_id}".encode("ascii"), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> 1) or 1


def date_shift(salt: bytes, person_id: int) -> int:
    """The days every date of one person moves in one request's extract: -``MAX_SHIFT_DAYS``
    to ``MAX_SHIFT_DAYS``, never 0 (so no date of the extract is its real date by design)."""
    digest = hmac.new(salt, f"date-shift:{person_id}".encode("ascii"), hashlib.sha256).digest()
    days = int.from_bytes(digest[:8], "big") % (2 * MAX_SHIFT_DAYS) - MAX_SHIFT_DAYS
    return days + 1 if days >= 0 else days


def cohort(instances: pl.DataFrame) -> Cohort:
    """The persons of the requested studies, from ``omop.image_occurrence``.

    Args:
        instances: The requested instances (``silver.imaging_instances`` rows: study and series
            UIDs, citizen and patient keys).

    Raises:
        CohortError: a requested study of a known patient has no row in
            ``omop.image_occurrence`` (the OMOP tables are older than the imaging index, or were
            never built), or one person's studies carry two citizen keys. A study known only by
            a clinic's chart number may have no OMOP person: its copy goes without OMOP rows.
    """
    studies = instances.select("study_instance_uid", "citizen_key", "patient_key").unique()
    uids = studies["study_instance_uid"].to_list()
    images = lake.frame(IMAGES, pl.col("image_study_uid").is_in(uids))
    known = studies.filter(pl.col("citizen_key").is_not_null())
    missing = set(known["study_instance_uid"]) - set(images["image_study_uid"])
    if missing:
        raise CohortError(
            f"{len(missing)} requested studies have no row in {IMAGES}: "
            "run the OMOP build before extracting"
        )
    linked = (
        images.select("person_id", pl.col("image_study_uid").alias("study_instance_uid"))
        .unique()
        .join(studies, on="study_instance_uid", how="left")
    )
    keys = linked.group_by("person_id").agg(pl.col("citizen_key").drop_nulls().unique())
    if keys.filter(pl.col("citizen_key").list.len() > 1).height:
        raise CohortError("one OMOP person holds the studies of two citizens")
    citizens = {
        int(pid): (found[0] if found else None)
        for pid, found in keys.select("person_id", "citizen_key").iter_rows()
    }
    secrets = set(studies["citizen_key"].drop_nulls()) | set(studies["patient_key"].drop_nulls())
    secrets |= set(instances["study_instance_uid"]) | set(instances["series_instance_uid"])
    return Cohort(citizens, frozenset(secrets))


def not_extracted(tables: Iterable[str]) -> list[str]:
    """The names among ``tables`` that an extract does not offer (``omop.provider``, typos)."""
    return sorted(set(tables) - set(EXTRACT_TABLES))


def _id_columns(name: str) -> tuple[list[str], list[str], list[str]]:
    """A person-level table's columns to give request ids, to empty, and to shift (dates)."""
    rekeyed: list[str] = []
    dates: list[str] = []
    for f in spec.fields(name):
        kind = f.type
        if kind in {"date", "timestamp"} and f.name not in EMPTIED:
            dates.append(f.name)
        is_row_id = kind == "int" and f.name.endswith("_id") and not f.name.endswith("concept_id")
        if is_row_id and f.name not in EMPTIED and f.fk_table not in WHOLE_TABLES:
            rekeyed.append(f.name)
    emptied = [f.name for f in spec.fields(name) if f.name in EMPTIED]
    return rekeyed, emptied, dates


def _series_in_copy(copy: ResearchCopy) -> dict[str, str]:
    """New series UID → its folder in the copy (``<study>/<series>``), for the written ones."""
    return {
        w.series_instance_uid: f"{w.study_instance_uid}/{w.series_instance_uid}"
        for w in copy.instances
    }


def _deidentify(
    name: str, frame: pl.DataFrame, salt: bytes, shifts: dict[int, int], folders: dict[str, str]
) -> pl.DataFrame:
    rekeyed, emptied, dates = _id_columns(name)
    out = frame.with_columns(
        pl.col("person_id").replace_strict(shifts, default=0, return_dtype=pl.Int64).alias(_SHIFT)
    )
    out = out.with_columns(
        *(pl.col(c) + pl.duration(days=pl.col(_SHIFT)) for c in dates),
        *(pl.lit(None).alias(c) for c in emptied),
    ).drop(_SHIFT)
    for column in rekeyed:
        ids = out[column].drop_nulls().unique().to_list()
        mapping = {i: pseudonymous_id(salt, i) for i in ids}
        out = out.with_columns(
            pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Int64)
        )
    if name == "image_occurrence":
        uids = set(out["image_study_uid"].drop_nulls()) | set(out["image_series_uid"].drop_nulls())
        new = {uid: new_uid(salt, uid) for uid in uids}
        out = out.with_columns(
            pl.col("image_study_uid", "image_series_uid").replace_strict(
                new, default=None, return_dtype=pl.Utf8
            )
        ).with_columns(
            pl.col("image_series_uid")
            .replace_strict(folders, default=None, return_dtype=pl.Utf8)
            .alias("local_path")
        )
    return out


def _check_no_secrets(name: str, frame: pl.DataFrame, secrets: Iterable[str]) -> None:
    needles = sorted(secrets)
    if not needles:
        return
    for column, dtype in frame.schema.items():
        if dtype != pl.Utf8:
            continue
        if frame.select(pl.col(column).str.contains_any(needles).any()).item():
            raise IdentifierLeakError(
                f"omop.{name}.{column} holds a cohort member's key or an original UID"
            )


def _fields(name: str) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "datatype": f.datatype, "required": f.required} for f in spec.fields(name)
    ]


def _manifest_section(rows: Mapping[str, int], persons: int) -> dict[str, Any]:
    return {
        "cdm_version": "5.4",
        "persons": persons,
        "ids": "HMAC-SHA256 of the request's salt over each lakehouse id (63 bits)",
        "dates": f"moved by 1 to {MAX_SHIFT_DAYS} days earlier or later, the same for all of "
        "one person's rows; birth kept to its year",
        "emptied": dict(EMPTIED),
        "tables": [
            {
                "table": name,
                "file": f"{FOLDER}/{name}.parquet",
                "rows": count,
                "fields": _fields(name),
            }
            for name, count in rows.items()
        ],
    }


def omop_extract(
    members: Cohort,
    salt: bytes,
    copy: ResearchCopy,
    tables: Iterable[str] = EXTRACT_TABLES,
) -> OmopExtract:
    """Write the cohort's OMOP tables, de-identified for the request, into the copy's folder
    (``<copy.out>/omop/``) and add them to its manifest.

    Args:
        members: The request's persons (``cohort``).
        salt: The request's salt, the one the DICOM copy was written with.
        copy: The request's DICOM copy (already written): its folder, manifest and new UIDs.
        tables: The CDM tables the request asked for, from ``EXTRACT_TABLES``.

    Raises:
        ValueError: a table that is not extracted.
        IdentifierLeakError: a text value would carry a key or an original UID (nothing written).
    """
    wanted: list[str] = [t for t in EXTRACT_TABLES if t in set(tables)]
    unknown = not_extracted(tables)
    if unknown:
        raise ValueError(f"OMOP tables not extracted: {', '.join(unknown)}")
    ids = members.person_ids
    shifts = {pid: date_shift(salt, pid) for pid in ids}
    folders = _series_in_copy(copy)
    frames: dict[str, pl.DataFrame] = {}
    by_citizen: dict[str, dict[str, int]] = {}
    secrets = set(members.secrets)
    for name in wanted:
        catalogue = table(f"omop.{name}")
        if name in WHOLE_TABLES:
            frames[name] = catalogue.conform(lake.frame(catalogue))
            continue
        rows = lake.frame(catalogue, pl.col("person_id").is_in(ids))
        for pid, count in rows.group_by("person_id").len().iter_rows():
            citizen = members.citizens.get(int(pid))
            if citizen is not None:
                by_citizen.setdefault(citizen, {})[name] = int(count)
        if name == "image_occurrence":  # the cohort's other studies too
            secrets |= set(rows["image_study_uid"].drop_nulls())
            secrets |= set(rows["image_series_uid"].drop_nulls())
        frames[name] = catalogue.conform(_deidentify(name, rows, salt, shifts, folders))
    for name, frame in frames.items():
        _check_no_secrets(name, frame, secrets)
    out = copy.out / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}.parquet")
    counts = {name: frame.height for name, frame in frames.items()}
    manifest = json.loads(copy.manifest.read_text(encoding="utf-8"))
    persons = counts.get("person", len(ids))
    manifest[FOLDER] = _manifest_section(counts, persons)
    copy.manifest.write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return OmopExtract(out, counts, by_citizen)


def audit_detail(rows: Mapping[str, int]) -> str:
    """What of one citizen's data an extract held: its tables and row counts, never values."""
    return "OMOP " + ", ".join(f"{name} {count}" for name, count in rows.items())
