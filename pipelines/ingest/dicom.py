"""Reading uploaded DICOM files: one header parse per file, in worker processes.

Clinics' upload agents write files into ``<drop folder>/imaging/<YKIHO>/...`` in whatever layout
they use (PACS exports by UID, flat console exports, CD-style ``DICOM/`` trees, several parts per
study). ``landed`` lists them; ``read`` (run in a worker per file) hashes the bytes, parses the
header once with ``stop_before_pixels`` (``pipelines.ingest.part10``, the file as bytes) and either
returns the instance's attributes or the specific reason it cannot be indexed:

* ``not_dicom``: no ``DICM`` prefix and nothing DICOM-like (a PDF, a thumbnail cache, a list);
* ``missing_file_meta``: a bare data set without the Part 10 header (preamble, ``DICM``, meta);
* ``corrupt_dicom``: the Part 10 header is damaged but DICOM content follows;
* ``truncated_dicom``: the file ends before an element it declares (an interrupted upload);
* ``malformed_header``: pydicom cannot parse the header for another reason;
* ``media_directory``: a DICOMDIR, an index of media rather than an instance;
* ``missing_uid`` / ``invalid_uid``: no usable Study, Series or SOP Instance UID or SOP Class;
* ``unsupported_transfer_syntax``: pixels no decoder here can read
  (``lakehouse/reference/codes/transfer_syntaxes.csv``).

Why values are read from the raw elements: pydicom converts an element lazily, on first access,
through a general machinery (value validation, multi-value wrappers, person-name objects) that
costs more than the parse itself. The index needs a few dozen plain values, so they are decoded
here straight from the raw bytes, with pydicom's own character-set decoding for text. The
patient ID is pseudonymised in the worker; only the key leaves it.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any, Final, TypeAlias

import pydicom
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from lakehouse import dicom_store
from lakehouse.dicom_store import is_uid
from lakehouse.pool import WorkerPool
from lakehouse.pseudonym import citizen_key, is_registration_number, local_key
from pipelines.ingest.part10 import (
    CORRUPT_DICOM,
    MEDIA_STORAGE_SOP_CLASS_TAG,
    TRANSFER_SYNTAX_TAG,
    Parsed,
    accepted_transfer_syntaxes,
    meta_uid,
    not_part10,
    parse,
    truncation,
)

SOURCE: Final = "imaging"
POOL: Final = "dicom-reader"
TABLE: Final = "silver.imaging_instances"
KST: Final = timezone(timedelta(hours=9))

TRUNCATED_DICOM: Final = "truncated_dicom"
MALFORMED_HEADER: Final = "malformed_header"
MEDIA_DIRECTORY: Final = "media_directory"
MISSING_UID: Final = "missing_uid"
INVALID_UID: Final = "invalid_uid"
UNSUPPORTED_TRANSFER_SYNTAX: Final = "unsupported_transfer_syntax"
# Decided across files, by the indexer: see pipelines.transform.imaging.
CONFLICTING_PATIENT_ID: Final = "conflicting_patient_id"
DUPLICATE_INSTANCE: Final = "duplicate_instance"

MEDIA_STORAGE_DIRECTORY: Final = "1.2.840.10008.1.3.10"
YKIHO: Final = re.compile(r"^[0-9]{8}$")
HIRA_SCHEME: Final = "99HIRA"

# The attributes the index reads, by keyword; their tags and dictionary VRs (implicit VR files
# carry no VR of their own).
KEYWORDS: Final = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "SeriesDate",
    "ContentDate",
    "StudyTime",
    "ContentTime",
    "AccessionNumber",
    "Modality",
    "InstitutionName",
    "StudyDescription",
    "SeriesDescription",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "BodyPartExamined",
    "ViewPosition",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "InstanceNumber",
    "Laterality",
    "ImageLaterality",
    "ImageType",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PhotometricInterpretation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "BurnedInAnnotation",
    "PresentationIntentType",
)
TAGS: Final = {k: int(tag_for_keyword(k) or 0) for k in KEYWORDS}
VRS: Final = {k: str(dictionary_VR(TAGS[k])) for k in KEYWORDS}
TEXT_VRS: Final = frozenset({"LO", "SH", "PN", "LT", "ST", "UT", "UC"})
DELIMITERS: Final = {"PN": {ord("^"), ord("=")}}  # component separators, as byte values


Job: TypeAlias = tuple[str, str]  # (path, path relative to the drop folder)


@dataclass(frozen=True)
class Landed:
    """One file in the drop folder."""

    path: Path
    rel: str  # relative to the drop folder, e.g. imaging/71010014/...
    size: int
    mtime_ns: int

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns // 1000 / 1e6, UTC)


def landed(root: Path, settle_s: float, now: datetime) -> list[Landed]:
    """Every file under ``<root>/imaging`` that has settled (not modified for ``settle_s``, so
    a file still being written is left for the next pass), oldest first. Names starting with a
    dot are an upload agent's work in progress and are skipped until renamed."""
    base = root / SOURCE
    found: list[Landed] = []
    if not base.is_dir():
        return found
    horizon = now.timestamp() - settle_s
    prefix = len(str(root)) + 1  # plain strings: a drop can hold a hundred thousand files
    folders = [str(base)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    folders.append(entry.path)
                    continue
                stat = entry.stat()
                if stat.st_mtime > horizon:
                    continue
                rel = entry.path[prefix:].replace(os.sep, "/")
                found.append(Landed(Path(entry.path), rel, stat.st_size, stat.st_mtime_ns))
    found.sort(key=lambda f: (f.mtime_ns, f.rel))
    return found


@dataclass
class FileResult:
    """What one file turned out to be: an instance's attributes, or why it is not one."""

    rel: str
    sha256: str
    size: int
    row: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    summary: dict[str, str] | None = None  # safe header facts for a quarantine payload
    stored: bool = False  # this file's bytes were written to the object store
    stored_sha256: str | None = None  # what the store held already, when it held something


@cache
def _encodings(raw: bytes) -> list[str]:
    terms = [t.strip() for t in raw.decode("ascii", "replace").split("\\")] if raw else [""]
    return list(convert_encodings(terms or [""]))


class Header:
    """Plain values from one parsed header's raw elements, each decoded once."""

    def __init__(self, ds: pydicom.Dataset) -> None:
        self.ds = ds
        # Plain int keys: looking a tag up among pydicom's BaseTag keys runs BaseTag.__eq__ in
        # Python for every hit, which for a few dozen lookups costs more than this copy.
        self._elements = {int(tag): element for tag, element in ds._dict.items()}
        raw = self._bytes("SpecificCharacterSet")
        self.encodings = _encodings(raw.strip(b" \0") if raw else b"")
        self._texts = {keyword: self._decode(keyword) for keyword in KEYWORDS}

    def _raw(self, keyword: str) -> Any:
        return self._elements.get(TAGS[keyword])  # the raw element, unconverted

    def _bytes(self, keyword: str) -> bytes | None:
        element = self._elements.get(TAGS[keyword])
        if element is None:
            return None
        value = element.value
        if type(value) is bytes:  # as read: the common case, first
            return value
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if value is None:
            return None
        if isinstance(value, list | tuple | MultiValue):  # pydicom converted it while parsing
            return "\\".join(str(v) for v in value).encode("utf-8")
        return str(value).encode("utf-8")

    def _decode(self, keyword: str) -> str | None:
        value = self._bytes(keyword)
        if not value:
            return None
        if value.isascii() and b"\x1b" not in value:
            # Plain ASCII is the same text in every character set DICOM allows; an ISO 2022
            # escape (ESC) switches sets, and then pydicom decodes it.
            decoded = value.decode("ascii")
        elif VRS[keyword] in TEXT_VRS:
            decoded = decode_bytes(value, self.encodings, DELIMITERS.get(VRS[keyword], set()))
        else:
            decoded = value.decode("ascii", "replace")
        if "\\" in decoded:
            decoded = "\\".join(v.strip(" \0") for v in decoded.split("\\")).strip("\\")
        return decoded.strip(" \0") or None

    def text(self, keyword: str) -> str | None:
        """The value as text (multi-values joined by a backslash), stripped; None when blank."""
        return self._texts[keyword]

    def upper(self, keyword: str) -> str | None:
        value = self.text(keyword)
        return value.upper() if value else None

    def integer(self, keyword: str) -> int | None:
        element = self._raw(keyword)
        if element is None or element.value in (None, b""):
            return None
        if VRS[keyword] == "US":
            value = element.value
            if isinstance(value, int):
                return value
            fmt = "<H" if element.is_little_endian else ">H"
            return int(struct.unpack(fmt, bytes(value)[:2])[0]) if len(value) >= 2 else None
        text = self.text(keyword)
        try:
            return int(float(text.split("\\")[0])) if text else None
        except ValueError:
            return None

    def decimal(self, keyword: str) -> float | None:
        text = self.text(keyword)
        try:
            return float(text.split("\\")[0]) if text else None
        except ValueError:
            return None

    def moment(self, date_keyword: str, time_keyword: str) -> datetime | None:
        """A DICOM date and time (local time, KST) as a UTC instant."""
        day = (self.text(date_keyword) or "")[:8]
        clock = (self.text(time_keyword) or "000000").split(".")[0].ljust(6, "0")[:6]
        if len(day) < 8 or not (day.isdigit() and clock.isdigit()):
            return None
        try:
            local = datetime(
                int(day[:4]),
                int(day[4:6]),
                int(day[6:8]),
                int(clock[:2]),
                int(clock[2:4]),
                int(clock[4:6]),
                tzinfo=KST,
            )
        except ValueError:
            return None
        return local.astimezone(UTC)


def age_months(age: str | None, birth: str | None, study: datetime | None) -> int | None:
    """PatientAge (``045Y``, ``018M``, ``003W``, ``010D``) in whole months, else from the birth
    date and the study date."""
    if age and len(age) == 4 and age[:3].isdigit():
        n, unit = int(age[:3]), age[3].upper()
        months = {"Y": n * 12, "M": n, "W": n * 7 // 30, "D": n // 30}.get(unit)
        if months is not None:
            return months
    if birth and study and len(birth) >= 8:
        try:
            born = datetime.strptime(birth[:8], "%Y%m%d")
        except ValueError:
            return None
        day = study.astimezone(KST)
        months = (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)
        return months if months >= 0 else None
    return None


def institution(rel: str, header: Header) -> str | None:
    """The sender's YKIHO: the clinic's own upload folder (``imaging/<YKIHO>/...``), else the
    header's InstitutionCodeSequence item in the HIRA scheme."""
    parts = rel.split("/")
    if len(parts) > 2 and YKIHO.match(parts[1]):
        return parts[1]
    sequence = header.ds.get("InstitutionCodeSequence")
    for item in sequence or []:
        if item.get("CodingSchemeDesignator") == HIRA_SCHEME:
            code = str(item.get("CodeValue", ""))
            if YKIHO.match(code):
                return code
    return None


def patient_keys(patient_id: str | None, ykiho: str | None) -> tuple[str | None, str | None]:
    """(citizen key, patient key) of a PatientID: a registration number is a citizen; any other
    id is a clinic's own number, pseudonymised within its institution."""
    if not patient_id:
        return None, None
    if is_registration_number(patient_id):
        key = citizen_key(patient_id)
        return key, key
    return None, local_key(ykiho or "unknown", patient_id)


def _waveform(ds: pydicom.Dataset) -> tuple[float | None, int | None]:
    """Sampling frequency and channels of the first waveform multiplex group (ECG)."""
    sequence = ds.get("WaveformSequence")
    if not sequence:
        return None, None
    group = sequence[0]
    frequency = group.get("SamplingFrequency")
    channels = group.get("NumberOfWaveformChannels")
    return (
        float(frequency) if frequency not in (None, "") else None,
        int(channels) if channels not in (None, "") else None,
    )


def read(job: Job) -> FileResult:
    """Hash and index one file (in a worker process). ``job`` is (path, rel)."""
    data = Path(job[0]).read_bytes()
    return index(job[1], data)


def index(rel: str, data: bytes) -> FileResult:
    """Hash one file's bytes and index its header, or say why it cannot be indexed."""
    result = FileResult(rel, hashlib.sha256(data).hexdigest(), len(data))
    if len(data) < 132 or data[128:132] != b"DICM":
        result.reason, result.message = not_part10(data)
        return result
    try:
        parsed = parse(data)
    except (EOFError, struct.error) as error:
        result.reason, result.message = TRUNCATED_DICOM, f"the header ends early: {error}"
        return result
    except OSError as error:
        if "No tag to read" in str(error) or "end of file" in str(error).lower():
            result.reason, result.message = TRUNCATED_DICOM, f"the header ends early: {error}"
        else:
            result.reason, result.message = MALFORMED_HEADER, f"pydicom cannot parse it: {error}"
        return result
    except InvalidDicomError as error:
        result.reason, result.message = CORRUPT_DICOM, f"the file meta is unreadable: {error}"
        return result
    except Exception as error:  # any other parser failure quarantines the one file
        result.reason = MALFORMED_HEADER
        result.message = f"pydicom cannot parse it: {type(error).__name__}: {error}"
        return result
    _index(parsed, data, result)
    return result


def _index(parsed: Parsed, data: bytes, result: FileResult) -> None:
    ds = parsed.ds
    media_class = meta_uid(parsed.meta, MEDIA_STORAGE_SOP_CLASS_TAG)
    transfer = meta_uid(parsed.meta, TRANSFER_SYNTAX_TAG)
    h = Header(ds)
    uids = {
        "sop_instance_uid": h.text("SOPInstanceUID"),
        "sop_class_uid": h.text("SOPClassUID") or (media_class or None),
        "study_instance_uid": h.text("StudyInstanceUID"),
        "series_instance_uid": h.text("SeriesInstanceUID"),
    }
    result.summary = {k: v for k, v in uids.items() if v} | (
        {"transfer_syntax_uid": transfer} if transfer else {}
    )
    if media_class == MEDIA_STORAGE_DIRECTORY:
        result.reason = MEDIA_DIRECTORY
        result.message = "a DICOMDIR (an index of removable media), not an instance"
        return
    truncated = truncation(parsed, data)
    if truncated:
        result.reason, result.message = TRUNCATED_DICOM, truncated
        return
    missing = [k for k, v in uids.items() if not v]
    if missing:
        result.reason = MISSING_UID
        result.message = f"no {', '.join(missing)} in the header"
        return
    bad = [f"{k} {v!r}" for k, v in uids.items() if not is_uid(v)]
    if not transfer:
        result.reason, result.message = MISSING_UID, "no transfer syntax in the file meta"
        return
    if bad or not is_uid(transfer):
        result.reason = INVALID_UID
        result.message = f"not a DICOM UID: {', '.join(bad) or transfer}"
        return
    if transfer not in accepted_transfer_syntaxes():
        result.reason = UNSUPPORTED_TRANSFER_SYNTAX
        result.message = f"transfer syntax {transfer} is not one the platform can decode"
        return
    ykiho = institution(result.rel, h)
    citizen, patient = patient_keys(h.text("PatientID"), ykiho)
    study_at = h.moment("StudyDate", "StudyTime")
    frequency, channels = _waveform(ds) if h.upper("Modality") == "ECG" else (None, None)
    spacing = h.decimal("PixelSpacing")
    burned = h.upper("BurnedInAnnotation")
    sex = h.upper("PatientSex")
    result.row = {
        **uids,
        "transfer_syntax_uid": transfer,
        "instance_number": h.integer("InstanceNumber"),
        "size_bytes": len(data),
        "sha256": result.sha256,
        "source_file": result.rel,
        "citizen_key": citizen,
        "patient_key": patient,
        "patient_sex": sex if sex in ("M", "F", "O") else None,
        "patient_age_months": age_months(
            h.upper("PatientAge"), h.text("PatientBirthDate"), study_at
        ),
        "institution": ykiho,
        "institution_name": h.text("InstitutionName"),
        "accession_number": h.text("AccessionNumber"),
        "study_description": h.text("StudyDescription"),
        "study_datetime": study_at,
        "content_datetime": h.moment("ContentDate", "ContentTime"),
        "rows": h.integer("Rows"),
        "columns": h.integer("Columns"),
        "number_of_frames": max(1, h.integer("NumberOfFrames") or 1),
        "photometric_interpretation": h.upper("PhotometricInterpretation"),
        "modality": h.upper("Modality"),
        "series_number": h.integer("SeriesNumber"),
        "series_description": h.text("SeriesDescription"),
        "body_part": h.upper("BodyPartExamined"),
        "view_position": h.upper("ViewPosition"),
        "laterality": h.upper("ImageLaterality") or h.upper("Laterality"),
        "image_type": h.upper("ImageType"),
        "presentation_intent": h.upper("PresentationIntentType"),
        "burned_in_annotation": {"YES": True, "NO": False}.get(burned or ""),
        "pixel_spacing_mm": spacing if spacing is not None else h.decimal("ImagerPixelSpacing"),
        "sampling_frequency_hz": frequency,
        "waveform_channels": channels,
    }


def read_and_store(job: Job) -> FileResult:
    """``read``, then store an indexable original in the object store (in a worker process, so
    the bytes are read, hashed and encrypted once, on both cores).

    The store keeps whichever copy of an instance arrives first and never overwrites; when the
    object was there already, the stored copy's hash is reported, and the indexer (which decides
    duplicates in file order) puts the right bytes in place if they differ.
    """
    data = Path(job[0]).read_bytes()
    result = index(job[1], data)
    row = result.row
    if row is not None:
        key = dicom_store.object_key(
            row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]
        )
        result.stored = dicom_store.put(key, data)
        if not result.stored:
            try:
                result.stored_sha256 = hashlib.sha256(dicom_store.get(key)).hexdigest()
            except dicom_store.ObjectStoreError:
                result.stored_sha256 = None  # unreadable: the indexer replaces it
    return result


class Readers:
    """The header workers, as a context manager: ``task`` (by default ``read_and_store``; the
    benchmark also times ``read`` alone) over files in order.

    The worker processes (``lakehouse.pool``) start on entry and each imports this module as it
    starts (pydicom, the cipher: about a second), so that import overlaps the caller's listing of
    the drop and its look at what is already indexed, rather than waiting for the first files.
    Drops of fewer than 64 files, or one worker, are read in this process.
    """

    def __init__(self, workers: int) -> None:
        self.pool = pool(workers)

    def __enter__(self) -> Readers:
        self.pool.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.close()

    def read_all(
        self, files: list[Landed], task: Callable[[Job], FileResult] = read_and_store
    ) -> Iterator[FileResult]:
        jobs = [(str(f.path), f.rel) for f in files]
        if len(jobs) < 64:
            yield from map(task, jobs)
            return
        # Chunks of up to 256 files: fewer round trips to the workers, still several per worker.
        yield from self.pool.map(task, jobs, self.pool.chunksize(len(jobs), most=256))


def pool(workers: int) -> WorkerPool:
    """The header workers' pool, not yet started. Each worker imports this module first (the
    pool's initializer, by name: the caller need not have imported it yet, see
    ``pipelines.intake``)."""
    return WorkerPool(workers, name=POOL, initializer=import_module, initargs=(__name__,))
