"""Part 10 encoding that reuses the bytes of repeated elements.

pydicom's writer spends tens of microseconds per element, and a city writes millions of elements
whose values repeat: the same manufacturer, image type, bit depth, study and series attributes in
every slice of a series. ``encode`` produces exactly the bytes ``pydicom.dcmwrite(...,
enforce_file_format=True)`` would (the tests compare the two), but:

* a ``SharedElement`` (one object held by many datasets, never mutated) keeps its own bytes per
  encoding, so it is encoded once per process however often it is written, and sequences are
  assembled here so their items' shared elements hit that cache too;
* person names, which cannot be shared elements, are cached by value and character set;
* ASCII strings (UIDs, dates, accession and patient IDs, ...) and uncompressed bulk data
  (pixels, waveforms), which are often unique per object, are encoded directly: their layout is
  trivial, and pydicom's generic path costs tens of microseconds an element;
* the file meta group is written directly.

Datasets must carry resolved VRs: the builders give pixel and waveform data OB or OW explicitly,
so no "OB or OW" correction pass is needed.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any

from pydicom import __version_info__
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

PREAMBLE = b"\x00" * 128 + b"DICM"
ITEM = b"\xfe\xff\x00\xe0"
UNDEFINED = b"\xff\xff\xff\xff"
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
IMPLEMENTATION_VERSION = f"PYDICOM {'.'.join(__version_info__)}"
META_GROUP_LENGTH = 0x00020000
SPECIFIC_CHARACTER_SET = 0x00080005
# Bulk VRs written as-is (padded to even length) when they have a defined length.
BULK = {VR.OB, VR.OW}
# String VRs whose single ASCII values pydicom writes as their bytes, padded to even length: the
# same bytes in every character set used here (ASCII is their common subset).
PLAIN_TEXT = {
    VR.AE,
    VR.AS,
    VR.CS,
    VR.DA,
    VR.DT,
    VR.TM,
    VR.SH,
    VR.LO,
    VR.ST,
    VR.LT,
    VR.UC,
    VR.UT,
    VR.UI,
}

Charset = str | tuple[str, ...]
# Person names are not shared elements (see ``dicom_common.element``), but a study repeats its
# patient's name in every object, so their bytes are kept by value and character set.
_NAMES: dict[tuple[int, str, bool, Charset], bytes] = {}
NAME_CACHE_LIMIT = 10_000


class SharedElement(DataElement):
    """A data element shared between datasets; it must never be mutated after creation.

    Its encoded bytes are kept per (implicit VR, character set), so a value repeated in every
    object of a city is encoded once per process. A single string of a plain-text VR is stored
    as it is: pydicom's conversion would return it unchanged, and skipping its validation
    halves the cost of the many elements that are new with every study (dates, accession, IDs).
    """

    def __init__(self, tag: int, vr: str, value: Any) -> None:
        plain = isinstance(value, str) and "\\" not in value and vr in PLAIN_TEXT
        super().__init__(tag, vr, value, already_converted=plain)
        self.encoded: dict[tuple[bool, Charset], bytes] = {}


def _header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    """Tag, VR (explicit only) and length of an element with a defined length."""
    if implicit:
        return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)
    if vr in EXPLICIT_VR_LENGTH_32:  # two reserved bytes, then a 4-byte length
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _text(tag: int, vr: str, value: str, implicit: bool) -> bytes:
    """A single ASCII string, padded to even length as pydicom pads it (UIDs with NUL)."""
    data = value.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == VR.UI else b" "
    return _header(tag, vr, len(data), implicit) + data


def _encode(elem: DataElement, implicit: bool, charset: Charset) -> bytes:
    """One element's bytes, by the direct routes where they apply, else by pydicom."""
    if " or " in elem.VR:
        raise ValueError(f"{elem.tag} has the unresolved VR {elem.VR!r}")
    if elem.VR == VR.SQ:
        return _sequence(elem, implicit, charset)
    value = elem.value
    if elem.VR in PLAIN_TEXT and isinstance(value, str) and value.isascii():
        return _text(elem.tag, elem.VR, value, implicit)
    if elem.VR in BULK and isinstance(value, bytes) and not elem.is_undefined_length:
        pad = b"\x00" if len(value) % 2 else b""
        return _header(elem.tag, elem.VR, len(value) + len(pad), implicit) + value + pad
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_data_element(fp, elem, list(charset) if isinstance(charset, tuple) else charset)
    return fp.getvalue()


def _element(elem: DataElement, implicit: bool, charset: Charset) -> bytes:
    """One element's bytes, from its own cache when it is shared, else from the name cache."""
    if isinstance(elem, SharedElement):
        key = (implicit, charset)
        data = elem.encoded.get(key)
        if data is None:
            data = elem.encoded[key] = _encode(elem, implicit, charset)
        return data
    if elem.VR != VR.PN:
        return _encode(elem, implicit, charset)
    name_key = (elem.tag, str(elem.value), implicit, charset)
    data = _NAMES.get(name_key)
    if data is None:
        if len(_NAMES) >= NAME_CACHE_LIMIT:
            _NAMES.clear()
        data = _NAMES[name_key] = _encode(elem, implicit, charset)
    return data


def _body(ds: Dataset, implicit: bool, charset: Charset) -> bytes:
    """A dataset's elements in tag order (retired group lengths dropped, as pydicom does).

    Tags are sorted as plain integers: pydicom's tag comparisons run in Python.
    """
    if SPECIFIC_CHARACTER_SET in ds:
        own = ds[SPECIFIC_CHARACTER_SET].value
        charset = own if isinstance(own, str) else tuple(own)
    parts = []
    for tag, elem in sorted(zip(map(int, ds.keys()), ds.values(), strict=True), key=itemgetter(0)):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        parts.append(
            _element(ds[tag] if isinstance(elem, RawDataElement) else elem, implicit, charset)
        )
    return b"".join(parts)


def _sequence(elem: DataElement, implicit: bool, charset: Charset) -> bytes:
    """A sequence of defined-length items, with its items' elements taken from the cache."""
    items = []
    for item in elem.value:
        body = _body(item, implicit, charset)
        items.append(ITEM + struct.pack("<I", len(body)) + body)
    value = b"".join(items)
    head = struct.pack("<HH", elem.tag >> 16, elem.tag & 0xFFFF)
    if not implicit:
        head += b"SQ\x00\x00"
    if elem.is_undefined_length:
        return head + UNDEFINED + value + SEQUENCE_END
    return head + struct.pack("<I", len(value)) + value


# The file meta elements that never change, as dcmwrite(enforce_file_format=True) writes them.
_META_VERSION = SharedElement(0x00020001, VR.OB, b"\x00\x01")
_META_IMPLEMENTATION = SharedElement(0x00020013, VR.SH, IMPLEMENTATION_VERSION)


def _file_meta(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    """The file meta group as ``dcmwrite(enforce_file_format=True)`` writes it."""
    body = b"".join(
        (
            _element(_META_VERSION, False, default_encoding),
            _text(0x00020002, VR.UI, sop_class, False),
            _text(0x00020003, VR.UI, sop_instance, False),
            _text(0x00020010, VR.UI, syntax, False),
            _text(0x00020012, VR.UI, PYDICOM_IMPLEMENTATION_UID, False),
            _element(_META_IMPLEMENTATION, False, default_encoding),
        )
    )
    return _header(META_GROUP_LENGTH, VR.UL, 4, False) + struct.pack("<I", len(body)) + body


def encode(ds: Dataset, implicit_vr: bool) -> bytes:
    """The Part 10 bytes of ``ds``: preamble, file meta and the little-endian dataset.

    A dataset whose pixel data is already compressed keeps its transfer syntax; otherwise
    ``implicit_vr`` chooses between Implicit and Explicit VR Little Endian.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = (
        UID(meta.TransferSyntaxUID)
        if meta and "TransferSyntaxUID" in meta
        else (ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian)
    )
    implicit = syntax == ImplicitVRLittleEndian
    if "PixelData" in ds:
        ds["PixelData"].is_undefined_length = syntax.is_compressed
    return (
        PREAMBLE
        + _file_meta(ds.SOPClassUID, ds.SOPInstanceUID, syntax)
        + _body(ds, implicit, default_encoding)
    )
