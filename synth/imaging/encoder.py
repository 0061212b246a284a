"""Part 10 encoding that reuses the bytes of repeated elements.

pydicom's writer spends tens of microseconds per element, and a city writes millions of elements
whose values repeat: the same manufacturer, image type, bit depth, study and series attributes in
every slice of a series. ``encode`` produces exactly the bytes ``pydicom.dcmwrite(...,
enforce_file_format=True)`` would (the tests compare the two), but encodes each distinct
(tag, VR, value, encoding) only once per process, assembles sequences itself so their items are
cached too, and writes the file meta group directly.

Datasets must carry resolved VRs: the builders give pixel and waveform data OB or OW explicitly,
so no "OB or OW" correction pass is needed.
"""

from __future__ import annotations

import struct

from pydicom import __version_info__
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import VR

PREAMBLE = b"\x00" * 128 + b"DICM"
ITEM = b"\xfe\xff\x00\xe0"
UNDEFINED = b"\xff\xff\xff\xff"
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
IMPLEMENTATION_VERSION = f"PYDICOM {'.'.join(__version_info__)}"
META_GROUP_LENGTH = 0x00020000
# Values that are bulky or unique per object are not worth remembering.
UNCACHED = {VR.OB, VR.OW, VR.OF, VR.OD, VR.OL, VR.OV, VR.UN, VR.UI}
CACHE_LIMIT = 200_000

_cache: dict[tuple[object, ...], bytes] = {}


def _element(elem: DataElement, implicit: bool, charset: str | list[str]) -> bytes:
    """One element's bytes; sequences are assembled here so their items hit the cache too."""
    if " or " in elem.VR:
        raise ValueError(f"{elem.tag} has the unresolved VR {elem.VR!r}")
    if elem.VR == VR.SQ:
        return _sequence(elem, implicit, charset)
    key: tuple[object, ...] | None = None
    if elem.VR not in UNCACHED:
        charset_key = charset if isinstance(charset, str) else tuple(charset)
        key = (elem.tag, elem.VR, repr(elem.value), implicit, charset_key)
        cached = _cache.get(key)
        if cached is not None:
            return cached
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_data_element(fp, elem, charset)
    data = fp.getvalue()
    if key is not None:
        if len(_cache) >= CACHE_LIMIT:
            _cache.clear()
        _cache[key] = data
    return data


def _body(ds: Dataset, implicit: bool, charset: str | list[str]) -> bytes:
    """A dataset's elements in tag order (retired group lengths dropped, as pydicom does)."""
    own = ds.get("SpecificCharacterSet", charset)
    return b"".join(
        _element(ds[tag], implicit, own)
        for tag in sorted(ds.keys())
        if not (tag.element == 0 and tag.group > 6)
    )


def _sequence(elem: DataElement, implicit: bool, charset: str | list[str]) -> bytes:
    """A sequence of defined-length items, with its items' elements taken from the cache."""
    items = []
    for item in elem.value:
        body = _body(item, implicit, charset)
        items.append(ITEM + struct.pack("<I", len(body)) + body)
    value = b"".join(items)
    head = struct.pack("<HH", elem.tag.group, elem.tag.element)
    if not implicit:
        head += b"SQ\x00\x00"
    if elem.is_undefined_length:
        return head + UNDEFINED + value + SEQUENCE_END
    return head + struct.pack("<I", len(value)) + value


def _file_meta(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    """The file meta group as ``dcmwrite(enforce_file_format=True)`` writes it."""
    elements = [
        DataElement(0x00020001, VR.OB, b"\x00\x01"),
        DataElement(0x00020002, VR.UI, sop_class),
        DataElement(0x00020003, VR.UI, sop_instance),
        DataElement(0x00020010, VR.UI, syntax),
        DataElement(0x00020012, VR.UI, PYDICOM_IMPLEMENTATION_UID),
        DataElement(0x00020013, VR.SH, IMPLEMENTATION_VERSION),
    ]
    body = b"".join(_element(e, False, default_encoding) for e in elements)
    length = _element(DataElement(META_GROUP_LENGTH, VR.UL, len(body)), False, default_encoding)
    return length + body


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
    charset = default_encoding
    return (
        PREAMBLE
        + _file_meta(ds.SOPClassUID, ds.SOPInstanceUID, syntax)
        + _body(ds, implicit, charset)
    )
