"""The SR's elements and content items, encoded straight to bytes as pydicom writes them, shared
ones once.

A report is bytes from the start. Each element is its explicit VR little endian header and its
value (``element``, ``text``); each item is its elements in tag order behind a defined length
(``item``), and a sequence its items behind a defined length (``sq``): the layout pydicom's
writer gives a dataset it builds. What every report of a process or of an algorithm shares
(coded concepts, the head of each kind of content item, the constant items) is encoded once per
process. Building pydicom datasets and writing them cost about 2.5 ms a report, as much as
reading, preparing and inferring the study; encoding the values directly costs a fraction of
that. Values taken from a source instance (its patient and study) are still encoded by pydicom's
writer (``encoded``): they come in any VR and character set. docs/sr.md, "How it is written".

For what is built around a parsed document (a verification's re-issue), ``sequence`` gives a
raw sequence element and ``dataset_of`` a dataset of an encoded item.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, wraps
from io import BytesIO
from typing import Final, ParamSpec, cast

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import data_element_generator
from pydicom.filewriter import write_data_element, write_sequence_item
from pydicom.sr.coding import Code
from pydicom.tag import BaseTag
from pydicom.valuerep import DS

from lakehouse.sr.codes import CHARACTER_SET, CONTAINS, MAX_SH

ENCODINGS: Final = convert_encodings(CHARACTER_SET)
CODEC: Final = "utf-8"  # ISO_IR 192, the document's character set
CONTENT_SEQUENCE: Final = BaseTag(0x0040A730)
CodeKey = tuple[str, str, str, str | None]
P = ParamSpec("P")

# The VRs whose explicit VR header has two reserved bytes and a 32-bit length (PS3.5 7.1.2).
_LONG: Final = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_SHORT_HEAD: Final = struct.Struct("<HH2sH")
_LONG_HEAD: Final = struct.Struct("<HH2sHI")
_ITEM_HEAD: Final = struct.Struct("<HHI")
_TAG: Final = struct.Struct("<HH")


def tag_of(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - a typo
        raise KeyError(keyword)
    return BaseTag(tag)


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One element: its header and ``value`` (of even length, padded by the caller)."""
    if vr in _LONG:
        return _LONG_HEAD.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return _SHORT_HEAD.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def text(keyword: str, value: str | None) -> bytes:
    """A string element (its VR the dictionary's) in the document's character set, padded as
    pydicom pads it: UI with a NUL, the rest with a space; None is an empty value."""
    tag, vr = _keyword(keyword)
    data = b"" if value is None else value.encode(CODEC)
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return element(tag, vr, data)


def number(keyword: str, value: float) -> bytes:
    """A DS as pydicom formats a float (``auto_format``), or an IS of an integer."""
    _, vr = _keyword(keyword)
    return text(keyword, str(DS(value, auto_format=True)) if vr == "DS" else str(int(value)))


def floats(keyword: str, values: Sequence[float]) -> bytes:
    """An FD (64-bit) or FL (32-bit) element of ``values``."""
    tag, vr = _keyword(keyword)
    return element(tag, vr, struct.pack(f"<{len(values)}{'d' if vr == 'FD' else 'f'}", *values))


@lru_cache(maxsize=512)
def _keyword(keyword: str) -> tuple[BaseTag, str]:
    tag = tag_of(keyword)
    return tag, dictionary_VR(tag)


def tag_key(encoded_element: bytes) -> tuple[int, int]:
    """An encoded element's tag as (group, element): what orders a dataset's elements."""
    return cast(tuple[int, int], _TAG.unpack_from(encoded_element))


def item(*elements: bytes) -> bytes:
    """An item of ``elements`` (each one encoded element), in tag order, of defined length."""
    ordered: list[bytes] = sorted(elements, key=tag_key)
    body = b"".join(ordered)
    return _ITEM_HEAD.pack(0xFFFE, 0xE000, len(body)) + body


def sq(keyword: str | BaseTag, *items: bytes) -> bytes:
    """A sequence element of encoded ``items``."""
    tag = keyword if isinstance(keyword, BaseTag) else tag_of(keyword)
    return element(tag, "SQ", b"".join(items))


def encoded(elements: Iterable[DataElement | RawDataElement]) -> tuple[bytes, ...]:
    """Elements pydicom holds (a source's, in any VR), each encoded by pydicom's writer in the
    document's encoding and character set. About 15-45 us an element: for values this module
    cannot encode itself, and for what is encoded once."""
    out = []
    for data_element in elements:
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = False, True
        write_data_element(buffer, data_element, ENCODINGS)
        out.append(buffer.getvalue())
    return tuple(out)


def dataset_encoded(dataset: pydicom.Dataset) -> tuple[bytes, ...]:
    """Every element of ``dataset`` (built with pydicom, once per process), encoded."""
    return encoded(dataset.get_item(tag) for tag in sorted(dataset.keys()))


def pydicom_encoded(keyword: str, value: object) -> bytes:
    """One element as pydicom converts and writes ``value`` (dates and times as pydicom formats
    them, several values)."""
    holder = pydicom.Dataset()
    setattr(holder, keyword, value)
    return dataset_encoded(holder)[0]


def new_item(*raw: RawDataElement) -> pydicom.Dataset:
    """A new dataset of the document holding ``raw`` elements, marked as encoded like it, so
    that pydicom's writer skips its ambiguous-VR pass (the document has no such element)."""
    item = pydicom.Dataset(parent_encoding=ENCODINGS)
    item.set_original_encoding(False, True, ENCODINGS)
    for raw_element in raw:
        item[raw_element.tag] = raw_element
    return item


def dataset_of(encoded_item: bytes) -> pydicom.Dataset:
    """The dataset of one encoded item, its elements raw (decoded when read)."""
    body = encoded_item[_ITEM_HEAD.size :]
    return new_item(
        *(
            e
            for e in data_element_generator(BytesIO(body), False, True)
            if isinstance(e, RawDataElement)
        )
    )


def encode_items(*items: pydicom.Dataset | bytes) -> bytes:
    """Sequence items as pydicom writes them in the document (bytes: items encoded before)."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    for each in items:
        if isinstance(each, bytes):
            buffer.write(each)
        else:
            write_sequence_item(buffer, each, ENCODINGS)
    return buffer.getvalue()


def sequence(tag: BaseTag, *items: pydicom.Dataset | bytes) -> RawDataElement:
    """A raw sequence element of ``items`` (datasets, or items encoded before), for a dataset."""
    value = encode_items(*items)
    return RawDataElement(tag, "SQ", len(value), value, 0, False, True)


def encoded_once(build: Callable[P, list[bytes]]) -> Callable[P, bytes]:
    """``build``'s content items, joined on the first call for these arguments and reused.

    The arguments, hashable, must tell apart whatever differs: codes go in as plain tuples
    (``code_key``), since ``Code`` equality ignores the meaning.
    """

    def joined(*args: P.args, **kwargs: P.kwargs) -> bytes:
        return b"".join(build(*args, **kwargs))

    return cast(Callable[P, bytes], wraps(build)(lru_cache(maxsize=256)(joined)))


def code_key(code: Code) -> CodeKey:
    """A code as a cache key: ``Code`` itself compares equal to codes of other meanings."""
    return (code.value, code.scheme_designator, code.meaning, code.scheme_version)


@lru_cache(maxsize=1024)
def _coded_sequence(keyword: str, code: CodeKey) -> bytes:
    """A sequence of one coded concept, as highdicom's ``CodedConcept`` writes it."""
    value, scheme, meaning, version = code
    if len(value) > MAX_SH:
        kind = "URNCodeValue" if value.startswith("urn") or "://" in value else "LongCodeValue"
    else:
        kind = "CodeValue"
    parts = [
        text(kind, value),
        text("CodeMeaning", meaning),
        text("CodingSchemeDesignator", scheme),
    ]
    if version is not None:
        parts.append(text("CodingSchemeVersion", version))
    return sq(keyword, item(*parts))


def code_sequence(keyword: str, code: Code) -> bytes:
    """The sequence element ``keyword`` holding one coded concept, encoded once."""
    return _coded_sequence(keyword, code_key(code))


@lru_cache(maxsize=1024)
def content_head(value_type: str, name: CodeKey, relationship: str | None) -> tuple[bytes, ...]:
    """A content item's value type, concept name and relationship, encoded once."""
    head = [_coded_sequence("ConceptNameCodeSequence", name), text("ValueType", value_type)]
    if relationship is not None:
        head.append(text("RelationshipType", relationship))
    if value_type == "CONTAINER":
        head.append(text("ContinuityOfContent", "CONTINUOUS"))  # highdicom's containers all are
    return tuple(head)


def content_item(value_type: str, name: Code, relationship: str | None, *more: bytes) -> bytes:
    """A content item: its value type, concept name and relationship (encoded once), and
    ``more`` elements."""
    return item(*content_head(value_type, code_key(name), relationship), *more)


@lru_cache(maxsize=8)
def template_sequence(identifier: str) -> bytes:
    """A container's Content Template Sequence (TID ``identifier``)."""
    return sq(
        "ContentTemplateSequence",
        item(text("MappingResource", "DCMR"), text("TemplateIdentifier", identifier)),
    )


def text_item(name: Code, value: str, relationship: str, *more: bytes) -> bytes:
    return content_item("TEXT", name, relationship, text("TextValue", str(value)), *more)


def code_item(name: Code, value: Code, relationship: str, *more: bytes) -> bytes:
    concept = code_sequence("ConceptCodeSequence", value)
    return content_item("CODE", name, relationship, concept, *more)


def uid_item(name: Code, value: str, relationship: str) -> bytes:
    return content_item("UIDREF", name, relationship, text("UID", value))


def pname_item(name: Code, value: str, relationship: str) -> bytes:
    return content_item("PNAME", name, relationship, text("PersonName", value))


def num_item(name: Code, value: float, unit: Code, relationship: str = CONTAINS) -> bytes:
    """TID 300 as highdicom writes it: the value as DS and, being a float, as FD too."""
    measured = item(
        code_sequence("MeasurementUnitsCodeSequence", unit),
        number("NumericValue", value),
        floats("FloatingPointValue", [value]),
    )
    return content_item("NUM", name, relationship, sq("MeasuredValueSequence", measured))


def reference_item(
    value_type: str,
    name: Code,
    source: pydicom.Dataset,
    relationship: str,
    frame: int | None = None,
) -> bytes:
    """An IMAGE or COMPOSITE item referencing ``source`` by its class and instance, and by
    ``frame`` (Referenced Frame Number, 1-based) in a multi-frame image."""
    reference = [
        text("ReferencedSOPClassUID", str(source.SOPClassUID)),
        text("ReferencedSOPInstanceUID", str(source.SOPInstanceUID)),
    ]
    if frame is not None:
        reference.append(number("ReferencedFrameNumber", frame))
    return content_item(
        value_type, name, relationship, sq("ReferencedSOPSequence", item(*reference))
    )
