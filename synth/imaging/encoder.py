"""Part 10 encoding that reuses the bytes of repeated elements.

pydicom's writer spends tens of microseconds per element, and a city writes millions of elements
whose values repeat: the same manufacturer, image type, bit depth, study and series attributes in
every slice of a series. ``encode`` produces exactly the bytes ``pydicom.dcmwrite(...,
enforce_file_format=True)`` would write for the object's dataset (the tests compare the two), but:

* an object is given as attributes by keyword (a ``DicomObject``), and each (keyword, value,
  VR mode, character set) is encoded once per process and then looked up, without building a
  pydicom dataset at all;
* a ``SharedElement`` (one object held by many datasets, never mutated) keeps its own bytes per
  encoding; ``element`` hands them out, so sequence items built once, and the datasets of the
  rare objects that are compressed, reuse bytes too;
* ASCII strings (UIDs, dates, accession and patient IDs, ...) and uncompressed bulk data
  (pixels, waveforms), which are often unique per object, are encoded directly: their layout is
  trivial, and pydicom's generic path costs tens of microseconds an element;
* the file meta group is written directly.

Bulk elements must carry resolved VRs (OB or OW), so no "OB or OW" correction pass is needed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import __version_info__
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)
from pydicom.valuerep import CUSTOMIZABLE_CHARSET_VR, EXPLICIT_VR_LENGTH_32, VR

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
# VRs whose bytes depend on the character set: pydicom encodes only these with it, and items.
CHARSET_VRS = CUSTOMIZABLE_CHARSET_VR | {VR.SQ}
CACHE_LIMIT = 100_000  # entries per cache; a full cache is emptied and refills with what recurs

Charset = str | tuple[str, ...]


class SharedElement(DataElement):
    """A data element shared between datasets; it must never be mutated after creation.

    Its encoded bytes are kept per (implicit VR, character set). A single string of a plain-text
    VR is stored as it is: pydicom's conversion would return it unchanged, and skipping its
    validation halves the cost of the many elements that are new with every study (dates,
    accession, IDs).
    """

    def __init__(self, tag: int, vr: str, value: Any) -> None:
        plain = isinstance(value, str) and "\\" not in value and vr in PLAIN_TEXT
        super().__init__(tag, vr, value, already_converted=plain)
        self.encoded: dict[tuple[bool, Charset], bytes] = {}


class SharedSequence(Sequence):
    """A sequence built once per process and held by many datasets; never mutate it.

    ``element`` shares the data element of such a value, so its bytes are encoded once.
    """


@dataclass(frozen=True)
class DicomObject:
    """One object to encode.

    Attributes:
        attributes: Values by keyword, as ``element`` takes them.
        bulk: Elements whose VR must be given (pixel or waveform data, OB or OW).
        rle_pixels: Pixels to store RLE Lossless instead of any uncompressed pixel data.
    """

    attributes: dict[str, Any]
    bulk: tuple[DataElement, ...] = ()
    rle_pixels: NDArray[np.uint16] | None = None


# Data elements shared between datasets: a series repeats most of its attributes in every
# instance, and building an element (value conversion and validation) costs more than encoding
# it.
_ELEMENTS: dict[tuple[str, object], SharedElement] = {}
# Encoded attributes by (keyword, value, implicit VR, character set): tag, bytes and the value
# (which keeps a sequence keyed by identity alive).
_ATTRIBUTES: dict[tuple[str, object, bool, Charset], tuple[int, bytes, object]] = {}


@cache
def _tag_and_vr(keyword: str) -> tuple[BaseTag, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"unknown DICOM keyword {keyword!r}")
    return Tag(tag), dictionary_VR(tag)


def _value_key(value: Any) -> object | None:
    """How a value is recognised when it recurs: simple values (strings, numbers, lists of
    them) by their repr, a ``SharedSequence`` by identity; ``None`` for values unique to their
    dataset (other sequences)."""
    if value is None or isinstance(value, str | int | float | list):
        return repr(value)
    if isinstance(value, SharedSequence):
        return id(value)
    return None


def element(keyword: str, value: Any) -> DataElement:
    """The data element ``keyword = value``, shared when the same value recurs (see
    ``_value_key``). Person names are never shared: a ``PersonName`` remembers its first
    encoding, and datasets differ in character set."""
    key = _value_key(value)
    if key is None:
        return DataElement(*_tag_and_vr(keyword), value)
    shared = _ELEMENTS.get((keyword, key))
    if shared is None:
        tag, vr = _tag_and_vr(keyword)
        if vr == VR.PN:
            return DataElement(tag, vr, value)
        if len(_ELEMENTS) >= CACHE_LIMIT:
            _ELEMENTS.clear()
        shared = _ELEMENTS[(keyword, key)] = SharedElement(tag, vr, value)
    return shared


def dataset(attributes: dict[str, Any], *elements: DataElement) -> Dataset:
    """A dataset of keyword attributes (see ``element``) plus ready-made elements (pixel data
    with its VR resolved), built without pydicom's per-item bookkeeping."""
    items: dict[BaseTag, DataElement | RawDataElement] = {}
    for keyword, value in attributes.items():
        elem = element(keyword, value)
        items[elem.tag] = elem
    for elem in elements:
        items[elem.tag] = elem
    return Dataset(items)


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


def _implicit(explicit: bytes) -> bytes:
    """Explicit VR bytes of an element (not a sequence) recast as implicit VR: the same value
    after a tag and a 4-byte length."""
    long = explicit[4:6].decode() in EXPLICIT_VR_LENGTH_32
    value = explicit[12:] if long else explicit[8:]
    return explicit[:4] + struct.pack("<I", len(value)) + value


def _element(elem: DataElement, implicit: bool, charset: Charset) -> bytes:
    """One element's bytes, from its own cache when it is shared.

    Only text VRs (and sequences, which may hold text) depend on the character set, and an
    element's implicit VR bytes follow from its explicit ones, so a shared element is encoded
    by pydicom at most once per character set it is written in.
    """
    if not isinstance(elem, SharedElement):
        return _encode(elem, implicit, charset)
    cs = charset if elem.VR in CHARSET_VRS else ""
    data = elem.encoded.get((implicit, cs))
    if data is None:
        if implicit and elem.VR != VR.SQ:
            data = _implicit(_element(elem, False, charset))
        else:
            data = _encode(elem, implicit, charset)
        elem.encoded[(implicit, cs)] = data
    return data


def _attribute(keyword: str, value: Any, implicit: bool, charset: Charset) -> tuple[int, bytes]:
    """Tag and bytes of ``keyword = value``, looked up when the value recurs."""
    key = _value_key(value)
    if key is None:
        elem = element(keyword, value)
        return int(elem.tag), _encode(elem, implicit, charset)
    hit = _ATTRIBUTES.get((keyword, key, implicit, charset))
    if hit is None:
        elem = element(keyword, value)
        if len(_ATTRIBUTES) >= CACHE_LIMIT:
            _ATTRIBUTES.clear()
        hit = (int(elem.tag), _element(elem, implicit, charset), value)
        _ATTRIBUTES[(keyword, key, implicit, charset)] = hit
    return hit[0], hit[1]


def _join(parts: list[tuple[int, bytes]]) -> bytes:
    """Elements in tag order, retired group lengths dropped (as pydicom does)."""
    parts.sort(key=itemgetter(0))
    return b"".join(data for tag, data in parts if tag & 0xFFFF or tag >> 16 <= 6)


def _body(ds: Dataset, implicit: bool, charset: Charset) -> bytes:
    """A dataset's elements in tag order."""
    if SPECIFIC_CHARACTER_SET in ds:
        charset = _charset(ds[SPECIFIC_CHARACTER_SET].value)
    parts = []
    for tag, elem in zip(map(int, ds.keys()), ds.values(), strict=True):
        full = ds[tag] if isinstance(elem, RawDataElement) else elem
        parts.append((tag, _element(full, implicit, charset)))
    return _join(parts)


def _sequence(elem: DataElement, implicit: bool, charset: Charset) -> bytes:
    """A sequence of defined-length items, with its items' shared elements from their cache."""
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


def _charset(value: Any) -> Charset:
    return value if isinstance(value, str) else tuple(value)


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


def encode(obj: DicomObject, implicit_vr: bool) -> bytes:
    """The Part 10 bytes of ``obj``: preamble, file meta and the little-endian dataset.

    ``implicit_vr`` chooses between Implicit and Explicit VR Little Endian; an object with
    ``rle_pixels`` is RLE Lossless (explicit VR) whatever it says.
    """
    attributes = obj.attributes
    sop_class, sop_instance = attributes["SOPClassUID"], attributes["SOPInstanceUID"]
    if obj.rle_pixels is not None:
        ds = dataset(attributes, *obj.bulk)
        ds.compress(RLELossless, obj.rle_pixels, generate_instance_uid=False)
        ds["PixelData"].is_undefined_length = True
        syntax = UID(ds.file_meta.TransferSyntaxUID)
        body = _body(ds, False, default_encoding)
        return PREAMBLE + _file_meta(sop_class, sop_instance, syntax) + body
    syntax = ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian
    charset = _charset(attributes.get("SpecificCharacterSet", default_encoding))
    parts = [_attribute(k, v, implicit_vr, charset) for k, v in attributes.items()]
    parts += [(int(e.tag), _element(e, implicit_vr, charset)) for e in obj.bulk]
    return PREAMBLE + _file_meta(sop_class, sop_instance, syntax) + _join(parts)
