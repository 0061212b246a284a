"""The Part 10 file as bytes: the header parsed once, and what is wrong with a file that is not
a whole, readable Part 10 file (no ``DICM`` prefix, a damaged file meta, an upload cut short).

``pipelines.ingest.dicom`` indexes what ``parse`` returns; this module knows nothing of the index,
only of the encoding (PS3.10 file meta, PS3.5 transfer syntaxes and element headers), so that the
byte-level checks can be read, and tested, apart from the attributes the index takes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import pydicom
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag

from lakehouse.dicom_store import is_uid
from lakehouse.reference import code_set

NOT_DICOM: Final = "not_dicom"
MISSING_FILE_META: Final = "missing_file_meta"
CORRUPT_DICOM: Final = "corrupt_dicom"

DICOM_UID_ROOT: Final = b"1.2.840.10008."
# The SOP Class UID tag (0008,0016) as a little- or big-endian element header: binary DICOM
# content, which a text file that merely mentions a UID does not have.
SOP_CLASS_TAGS: Final = (b"\x08\x00\x16\x00", b"\x00\x08\x00\x16")
# Where a header ends: pixel data, float or double float pixel data (as stop_before_pixels).
PIXEL_TAGS: Final = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
TRANSFER_SYNTAX_TAG: Final = 0x00020010
MEDIA_STORAGE_SOP_CLASS_TAG: Final = 0x00020002
IMPLICIT_LITTLE: Final = "1.2.840.10008.1.2"
EXPLICIT_BIG: Final = "1.2.840.10008.1.2.2"
DEFLATED: Final = "1.2.840.10008.1.2.1.99"
UNDEFINED: Final = 0xFFFFFFFF


def truncation(parsed: Parsed, data: bytes) -> str | None:
    """Why the file ends too early, if it does: an element (or the pixel data) declares more
    bytes than the file holds, or encapsulated pixel data lacks its closing delimiter."""
    size, stopped_at = len(data), parsed.stopped_at
    for element in parsed.ds._dict.values():
        value_tell = getattr(element, "value_tell", None)
        length = getattr(element, "length", None)
        if value_tell is None or length is None or length == UNDEFINED:
            continue
        if value_tell + length > size:
            return f"element {element.tag} declares {length} bytes at {value_tell}; file has {size}"
    return _pixel_overrun(parsed, data) if stopped_at < size else None


def _pixel_header(head: bytes, little: bool, implicit: bool) -> tuple[int, int] | None:
    """(value length, header size) of the element header in ``head``, None when cut short."""
    order = "<" if little else ">"
    if len(head) < 8:
        return None
    if implicit:
        return struct.unpack(order + "I", head[4:8])[0], 8
    if head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"):
        return (struct.unpack(order + "I", head[8:12])[0], 12) if len(head) >= 12 else None
    return struct.unpack(order + "H", head[6:8])[0], 8


def _pixel_overrun(parsed: Parsed, data: bytes) -> str | None:
    """The pixel data element (where the parse stopped) against the file's end."""
    little, stopped_at = parsed.little, parsed.stopped_at
    header = _pixel_header(data[stopped_at : stopped_at + 12], little, parsed.implicit)
    if header is None:
        return f"pixel data element cut at byte {len(data)}"
    length, start = header[0], stopped_at + header[1]
    if length == UNDEFINED:
        delimiter = b"\xfe\xff\xdd\xe0\0\0\0\0" if little else b"\xff\xfe\xe0\xdd\0\0\0\0"
        if data.rfind(delimiter, start) < 0:
            return "encapsulated pixel data has no sequence delimiter: the file was cut"
        return None
    if start + length > len(data):
        return f"pixel data declares {length} bytes; the file holds {len(data) - start}"
    return None


def not_part10(data: bytes) -> tuple[str, str]:
    """Classify a file without the ``DICM`` prefix."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        uids = [ds.get(k) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")]
        if all(isinstance(u, str) and is_uid(u) for u in uids):
            return (
                MISSING_FILE_META,
                "a DICOM data set without the Part 10 file header (preamble, DICM prefix, "
                "file meta); the sender must export DICOM files",
            )
    except Exception:  # force-reading arbitrary bytes fails in many ways: not DICOM then
        pass
    head = data[:16384]
    if DICOM_UID_ROOT in head and any(tag in head for tag in SOP_CLASS_TAGS):
        return (
            CORRUPT_DICOM,
            "DICOM content without a readable Part 10 header: the preamble, DICM prefix or file "
            "meta is damaged",
        )
    return NOT_DICOM, "not a DICOM file (no DICM prefix at byte 128)"


@dataclass
class Parsed:
    """One file's header as read: the file meta, the data set up to the pixel data, how it is
    encoded, and where the parse stopped (the pixel data element, or the end)."""

    meta: pydicom.Dataset
    ds: pydicom.Dataset
    implicit: bool
    little: bool
    stopped_at: int


def _past_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def parse(data: bytes) -> Parsed:
    """The header of a Part 10 file, parsed once with pydicom's ``read_dataset``.

    Why not ``dcmread``: for the common encodings it does the same parse plus work the index
    does not need (validating and wrapping the file meta, a command-set pass, the FileDataset),
    which costs about two fifths of the read. Anything else (deflated, no transfer syntax, a
    command set, an empty data set) and any failure is read by ``dcmread`` itself, whose error
    then names the fault.
    """
    fp = io.BytesIO(data)
    fp.seek(132)
    try:
        meta = read_dataset(fp, is_implicit_VR=False, is_little_endian=True, stop_when=_past_meta)
        element = meta._dict.get(BaseTag(TRANSFER_SYNTAX_TAG))
        ok = element is not None and element.VR == "UI"  # explicit VR, as Part 10 requires
        encoding = _encoding(_uid_bytes(element.value)) if ok and element is not None else None
        start = fp.tell()
        if encoding is not None and data[start : start + 2] != b"\0\0":  # no command set
            ds = read_dataset(fp, *encoding, stop_when=_at_pixels)
            return Parsed(meta, ds, *encoding, fp.tell())
    except Exception:  # dcmread below reads it again, and its error names the fault
        pass
    fp.seek(0)
    full = pydicom.dcmread(fp, stop_before_pixels=True)
    implicit, little = full.original_encoding[:2]
    return Parsed(full.file_meta, full, bool(implicit), bool(little), fp.tell())


def _encoding(transfer_syntax: str) -> tuple[bool, bool] | None:
    """(implicit VR, little endian) of an accepted syntax ``read_dataset`` reads as it is; None
    for a deflated or unaccepted one. Encapsulated syntaxes are explicit VR little endian
    (PS3.5 A.4)."""
    if transfer_syntax == DEFLATED or transfer_syntax not in accepted_transfer_syntaxes():
        return None
    return transfer_syntax == IMPLICIT_LITTLE, transfer_syntax != EXPLICIT_BIG


def _uid_bytes(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", "replace").strip(" \0")
    return str(value or "").strip(" \0")


def meta_uid(meta: pydicom.Dataset, tag: int) -> str:
    element = meta._dict.get(BaseTag(tag))
    return _uid_bytes(element.value) if element is not None else ""


@cache
def accepted_transfer_syntaxes() -> frozenset[str]:
    """The transfer syntaxes whose pixels a decoder here reads
    (``lakehouse/reference/codes/transfer_syntaxes.csv``)."""
    return code_set("transfer_syntaxes")
