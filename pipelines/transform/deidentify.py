"""De-identification of one DICOM instance for research: DICOM PS3.15 Annex E, Basic Profile.

The Basic Application Level Confidentiality Profile (PS3.15 E.1) is applied with KitwareMedical's
``dicom-anonymizer``, which ships the Annex E action table (Table E.1-1) of several editions of the
standard; ``EDITION`` names the one used. The table decides, attribute by attribute, what is
removed (X), emptied (Z), replaced by a dummy (D) or given a new UID (U); nothing here lists tags.
Private attributes are removed (no Retain Safe Private Option), and so are curves and overlays.

Where this module departs from the library's default behaviour, and why:

* **UIDs** (U, and UIDs met inside replaced sequences) are derived from the request's salt and the
  old UID, never drawn at random: the same old UID gets the same new UID within one request, so
  the Study, Series and Frame of Reference UIDs and every reference between instances (Referenced
  SOP Instance UID, Source Image Sequence, ...) stay consistent across a study, while another
  request gets other UIDs. The library's own UID action keeps a process-wide dictionary of random
  UIDs (``simpledicomanonymizer.dictionary``); none of its UID-generating actions is used here, so
  that dictionary stays empty and a de-identification touches no global state (safe in threads
  and worker processes alike).
* **X** removes the attribute. The library writes the dummy date ``00010101`` into an X date
  instead; PS3.15 says remove.
* **X/Z/U*** (Referenced Image Sequence, Source Image Sequence) keeps the sequence and replaces
  the instance UIDs it contains (the "U*" choice), instead of the library's emptying every UID in
  it: a research copy keeps its internal references.
* **Sequences** the table does not name are kept, and their items are de-identified with the same
  table, recursively ("K: unchanged for non-sequence attributes, cleaned for sequences"). The
  library applies single-tag actions at the top level only, which would leave, for example, a
  Referenced SOP Instance UID inside an RT plan's Referenced Structure Set Sequence unchanged.

Then, as PS3.15 E.1.1 requires, Patient Identity Removed is set to ``YES`` and the method recorded
in De-identification Method and its code sequence (113100, DCM). Patient ID and Patient's Name
carry the request's research pseudonym (``research_pseudonym``). Pixel Data is never touched: the
copy's pixel bytes are the original's. The Clean Pixel Data Option is not performed, so an
instance whose Burned In Annotation is ``YES`` is refused (``BurnedInAnnotationError``).

The library's functions may ``print`` on a tag they cannot look up; that is left alone, since
redirecting ``sys.stdout`` would be process-wide and not thread safe.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version
from typing import Any, Final

import pydicom
from dicomanonymizer import simpledicomanonymizer as library
from pydicom.dataset import FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

EDITION: Final = "2026c"
TABLE: Final = f"dicomfields_{EDITION}"
LIBRARY: Final = "dicom-anonymizer"
# A short salt would make pseudonyms of registration numbers (a small space) guessable.
MIN_SALT_BYTES: Final = 16
# PS3.5 B.2: a UUID-derived UID is "2.25." and the UUID as one integer.
UUID_ROOT: Final = "2.25."

# The table's keys: (group, element), or (group, element, group mask, element mask) for a repeating
# group. Actions are called with a (group, element) pair either way.
Key = tuple[int, ...]
Tag = tuple[int, int]
Action = Callable[[pydicom.Dataset, Tag], None]


@dataclass(frozen=True)
class Profile:
    """What a research copy was de-identified with, as the manifest records it."""

    name: str
    code_value: str
    coding_scheme: str
    code_meaning: str
    standard: str
    standard_edition: str
    table: str
    library: str
    library_version: str
    private_attributes: str
    clean_pixel_data: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILE: Final = Profile(
    name="DICOM PS3.15 Basic Application Level Confidentiality Profile",
    code_value="113100",
    coding_scheme="DCM",
    code_meaning="Basic Application Confidentiality Profile",
    standard="DICOM PS3.15 Annex E, Table E.1-1",
    standard_edition=EDITION,
    table=f"dicomanonymizer.dicom_anonymization_databases.{TABLE}",
    library=LIBRARY,
    library_version=version(LIBRARY),
    private_attributes="removed",
    clean_pixel_data=False,
)

# De-identification Method (LO, VM 1-n): each value at most 64 characters.
METHOD: Final = (
    PROFILE.code_meaning,
    f"PS3.15 {EDITION} Table E.1-1",
    f"{LIBRARY} {PROFILE.library_version}"[:64],
)


class BurnedInAnnotationError(ValueError):
    """The instance declares text burned into its pixels, which the Basic Profile cannot clear."""


def _check_salt(salt: bytes) -> None:
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"the request salt must be at least {MIN_SALT_BYTES} bytes")


def research_pseudonym(salt: bytes, identity: str) -> str:
    """The research ID of one person in one request: ``R`` and 16 hex digits of
    HMAC-SHA256(salt, identity), where identity is the citizen key (or the original Patient ID)."""
    _check_salt(salt)
    return "R" + hmac.new(salt, identity.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def new_uid(salt: bytes, old_uid: str) -> str:
    """The UID that replaces ``old_uid`` in this request's copies.

    Deterministic per (salt, old UID). pydicom's ``generate_uid(prefix="2.25.", entropy_srcs=...)``
    is deterministic too, but appends a 512-bit hash truncated to 59 digits, which is not a UUID
    and so not a valid "2.25." UID (PS3.5 B.2). Here the keyed hash's first 128 bits are made a
    version-4 UUID (to anyone without the salt they are as random as one).
    """
    _check_salt(salt)
    digest = hmac.new(salt, old_uid.strip("\x00 ").encode("utf-8"), hashlib.sha256).digest()
    return f"{UUID_ROOT}{uuid.UUID(bytes=digest[:16], version=4).int}"


@cache
def _table() -> dict[Key, Action]:
    """Tag (or repeating-group mask) to the library's action, from the Annex E table."""
    actions: dict[Key, Action] = library.initialize_actions(TABLE)
    return actions


def _base_rules() -> dict[Key, Action]:
    # ``anonymize_dataset`` updates what this returns with the extra rules: hand it a copy.
    return dict(_table())


def is_burned_in(ds: pydicom.Dataset) -> bool:
    return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"


class _Run:
    """One de-identification: the salt and the sequences already replaced wholesale."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt
        # Sequences a D action replaced with dummies: their UIDs are already new, so the recursive
        # pass must not map them a second time. Elements are kept so their ids stay unique.
        self.replaced: dict[int, pydicom.DataElement] = {}
        overrides: dict[Any, Action] = {
            library.replace_UID: self.replace_uid,
            library.delete_or_empty_or_replace_UID: self.replace_contained_uids,
            library.delete: self.remove,
            library.replace: self.replace,
            library.empty_or_replace: self.replace,
            library.delete_or_replace: self.replace,
            library.delete_or_empty_or_replace: self.replace,
        }
        self.rules = {
            tag: overrides[action] for tag, action in _table().items() if action in overrides
        }

    def uid(self, element: pydicom.DataElement) -> None:
        def mapped(value: Any) -> Any:
            return UID(new_uid(self.salt, str(value))) if value else value

        if isinstance(element.value, MultiValue):
            element.value = [mapped(v) for v in element.value]
        else:
            element.value = mapped(element.value)

    def replace_uid(self, ds: pydicom.Dataset, tag: Tag) -> None:
        """U: a new UID, the same for the same old UID throughout the request."""
        if tag in ds:
            self.uid(ds[tag])

    def replace_contained_uids(self, ds: pydicom.Dataset, tag: Tag) -> None:
        """X/Z/U*: keep the sequence; the recursive pass gives its instance UIDs new values."""
        if tag not in ds:
            return
        element = ds[tag]
        if element.VR == "UI":
            self.uid(element)
        elif element.VR != "SQ":
            library.empty_element(element)

    def remove(self, ds: pydicom.Dataset, tag: Tag) -> None:
        """X: remove."""
        if tag in ds:
            del ds[tag]

    def replace(self, ds: pydicom.Dataset, tag: Tag) -> None:
        """D (and X/D, Z/D, X/Z/D, where the library takes D): the library's dummy for the VR,
        except UIDs (new ones, deterministic) and sequences (their contents, element by element)."""
        if tag not in ds:
            return
        element = ds[tag]
        if element.VR == "UI":
            self.uid(element)
        elif element.VR == "SQ":
            self.replaced[id(element)] = element
            for item in element.value:
                for inner in list(item.keys()):
                    self.replace(item, (inner.group, inner.element))
        else:
            library.replace_element(element)

    def apply(self, ds: pydicom.Dataset) -> None:
        library.anonymize_dataset(
            ds,
            extra_anonymization_rules=self.rules,
            delete_private_tags=True,
            base_rules_gen=_base_rules,
        )
        for tag in list(ds.keys()):
            element = ds[tag]
            if element.VR == "SQ" and id(element) not in self.replaced:
                for item in element.value:
                    self.apply(item)


def _transfer_syntax(ds: pydicom.Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def deidentify(ds: pydicom.Dataset, salt: bytes, patient_pseudonym: str) -> pydicom.Dataset:
    """A de-identified copy of ``ds`` (left untouched), ready to save as a Part 10 file.

    Raises ``BurnedInAnnotationError`` for an instance with burned-in annotation, ``ValueError``
    for one without a SOP Instance UID or with a short salt; whatever the library raises on an
    attribute it cannot process (an unsupported VR in a replaced sequence) passes through.
    """
    _check_salt(salt)
    if is_burned_in(ds):
        raise BurnedInAnnotationError(
            "Burned In Annotation is YES (Clean Pixel Data not performed)"
        )
    if not ds.get("SOPInstanceUID"):
        raise ValueError("the instance has no SOP Instance UID")
    transfer_syntax = _transfer_syntax(ds)
    out = copy.deepcopy(ds)
    _Run(salt).apply(out)

    out.PatientID = patient_pseudonym
    out.PatientName = patient_pseudonym
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = list(METHOD)
    code = pydicom.Dataset()
    code.CodeValue = PROFILE.code_value
    code.CodingSchemeDesignator = PROFILE.coding_scheme
    code.CodeMeaning = PROFILE.code_meaning
    out.DeidentificationMethodCodeSequence = Sequence([code])

    # A new file meta: it describes the file this copy becomes (and its writer), so nothing of the
    # original's (source AE title, implementation, private information) is carried over.
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out
