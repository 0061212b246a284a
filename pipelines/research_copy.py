"""Research copies: a de-identified export of requested DICOM instances, and its manifest.

On request the platform hands researchers a copy of studies de-identified per the DICOM PS3.15
Basic Application Level Confidentiality Profile (``pipelines.transform.deidentify`` does one
instance; this module reads the originals from the object store, writes the copies and accounts
for every requested instance). The layout is ``<out>/<study UID>/<series UID>/<SOP UID>.dcm``
with the new UIDs, and ``<out>/manifest.json``.

The manifest is itself de-identified: it names instances by their new UIDs only (never the
original UIDs, the object keys or the citizen key) and an excluded instance by its position in
the request (0-based row of ``instances``) and the new SOP Instance UID it would have had, so a
reference to it from an exported instance can still be recognised. An instance is excluded, with
its reason, when:

* ``burned_in_annotation``: Burned In Annotation is YES (in the request or in the header); the
  Clean Pixel Data Option is not performed, so such pixels are not exported;
* ``duplicate_instance``: the same SOP Instance UID was requested before in the same request;
* ``deidentification_failed``: reading, de-identifying or writing it raised. The error message is
  kept, with the request's identifiers and the instance's header values cut out of it.

One failing instance never stops the export.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl
import pydicom
from pydicom.multival import MultiValue

from lakehouse import dicom_store
from pipelines.transform.deidentify import (
    PROFILE,
    BurnedInAnnotationError,
    deidentify,
    new_uid,
    research_pseudonym,
)

MANIFEST: Final = "manifest.json"
BURNED_IN: Final = "burned_in_annotation"
DUPLICATE: Final = "duplicate_instance"
FAILED: Final = "deidentification_failed"
COLUMNS: Final = (
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "file_uri",
    "citizen_key",
    "burned_in_annotation",
)
# Error messages are cut to this length, after identifiers are taken out.
MAX_ERROR: Final = 300
REDACTED: Final = "[removed]"
# Header text shorter than this is not searched for in error messages (codes such as "CT", "M").
MIN_REDACT: Final = 4
# Value representations whose values are text (PS3.5 6.2), searched for in error messages.
TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)


@dataclass(frozen=True)
class Excluded:
    """A requested instance that was not exported."""

    position: int
    sop_instance_uid: str | None  # the new UID, never the original
    reason: str
    error: str | None = None


@dataclass(frozen=True)
class Written:
    """An exported instance, by its new UIDs."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    patient_id: str
    path: str  # relative to the export folder


@dataclass(frozen=True)
class ResearchCopy:
    """What an export wrote and left out."""

    request_id: str
    out: Path
    manifest: Path
    instances: tuple[Written, ...]
    excluded: tuple[Excluded, ...]

    @property
    def written(self) -> int:
        return len(self.instances)


def _header_values(ds: pydicom.Dataset | None) -> list[str]:
    """Every text value of a header (nested items too), to keep them out of error messages."""
    if ds is None:
        return []
    values: list[str] = []
    try:
        for element in ds.iterall():
            if element.VR not in TEXT_VRS or element.value is None:
                continue
            multiple = isinstance(element.value, MultiValue | list)
            items = element.value if multiple else [element.value]
            for item in items:
                text = str(item)
                values.append(text)
                values.extend(part for part in text.replace("^", "=").split("=") if part)
    except Exception:  # a header broken enough to fail de-identification may fail here too
        pass
    return values


def _scrub(message: str, identifiers: Iterable[str | None]) -> str:
    found = {text.strip() for text in identifiers if text and len(text.strip()) >= MIN_REDACT}
    for text in sorted(found, key=len, reverse=True):
        message = message.replace(text, REDACTED)
    return message[:MAX_ERROR]


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: a research copy goes to a new folder")
    out.mkdir(parents=True, exist_ok=True)


def _write(copy: pydicom.Dataset, out: Path) -> str:
    uids = [str(copy.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID")]
    uids.append(str(copy.SOPInstanceUID))
    if not all(dicom_store.is_uid(uid) for uid in uids):
        raise ValueError("the instance lacks a Study, Series or SOP Instance UID")
    relative = "/".join(uids) + ".dcm"
    buffer = io.BytesIO()
    copy.save_as(buffer, enforce_file_format=True)
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return relative


def _manifest(request_id: str, written: list[Written], excluded: list[Excluded]) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "profile": PROFILE.as_dict(),
        "library": {"name": PROFILE.library, "version": PROFILE.library_version},
        "standard_edition": PROFILE.standard_edition,
        "written": len(written),
        "excluded_count": len(excluded),
        "instances": [vars(w) for w in written],
        "excluded": [vars(e) for e in excluded],
    }


def research_copy(instances: pl.DataFrame, request_id: str, salt: bytes, out: Path) -> ResearchCopy:
    """Export de-identified copies of ``instances`` to ``out`` (new or empty) with a manifest.

    ``instances`` has the columns in ``COLUMNS``: the original UIDs, the object-store key
    (``file_uri``), the citizen key (may be null) and Burned In Annotation (may be null). Patient
    ID and Name become ``research_pseudonym(salt, citizen key)``, or of the original Patient ID
    when the citizen key is null (or of the Study Instance UID when that is empty too, so that
    unidentified patients are not merged into one).
    """
    missing = [c for c in COLUMNS if c not in instances.columns]
    if missing:
        raise ValueError(f"instances lack the columns {missing}")
    _prepare(out)
    written: list[Written] = []
    excluded: list[Excluded] = []
    seen: set[str] = set()
    for position, row in enumerate(instances.select(COLUMNS).iter_rows(named=True)):
        sop = row["sop_instance_uid"]
        new_sop = new_uid(salt, sop) if sop else None
        if sop and sop in seen:
            excluded.append(Excluded(position, new_sop, DUPLICATE))
            continue
        if sop:
            seen.add(sop)
        if row["burned_in_annotation"] is True:
            excluded.append(Excluded(position, new_sop, BURNED_IN))
            continue
        original: pydicom.Dataset | None = None
        try:
            original = dicom_store.dataset(row["file_uri"])
            identity = (
                row["citizen_key"]
                or str(original.get("PatientID", "") or "").strip()
                or f"study:{original.StudyInstanceUID}"
            )
            copy = deidentify(original, salt, research_pseudonym(salt, identity))
            path = _write(copy, out)
        except BurnedInAnnotationError:
            excluded.append(Excluded(position, new_sop, BURNED_IN))
            continue
        except Exception as error:
            known = [
                row["study_instance_uid"],
                row["series_instance_uid"],
                sop,
                row["file_uri"],
                row["citizen_key"],
                *_header_values(original),
            ]
            message = _scrub(f"{type(error).__name__}: {error}", known)
            excluded.append(Excluded(position, new_sop, FAILED, message))
            continue
        written.append(
            Written(
                study_instance_uid=str(copy.StudyInstanceUID),
                series_instance_uid=str(copy.SeriesInstanceUID),
                sop_instance_uid=str(copy.SOPInstanceUID),
                sop_class_uid=str(copy.SOPClassUID),
                patient_id=str(copy.PatientID),
                path=path,
            )
        )
    manifest = out / MANIFEST
    manifest.write_text(
        json.dumps(_manifest(request_id, written, excluded), ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    return ResearchCopy(request_id, out, manifest, tuple(written), tuple(excluded))
