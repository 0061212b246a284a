"""The SR's elements and content items, encoded as pydicom writes them, shared ones once.

Each content sequence is encoded as soon as its items are built, into a raw element that
``save_as`` copies as it is, and what every report of a process or of an algorithm shares (coded
concepts, the head of each kind of content item, the constant items) is encoded once per
process. Every dataset is marked as encoded the way the file is, so that pydicom's writer skips
its ambiguous-VR pass (the document has no element of ambiguous VR). Why, and what each step
saves: docs/sr.md, "How it is written".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from io import BytesIO
from typing import Final, ParamSpec, cast

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import data_element_generator
from pydicom.filewriter import write_dataset, write_sequence_item
from pydicom.sr.coding import Code
from pydicom.tag import BaseTag
from pydicom.valuerep import DS

from lakehouse.sr.codes import CHARACTER_SET, CONTAINS, MAX_SH

ENCODINGS: Final = convert_encodings(CHARACTER_SET)
CONTENT_SEQUENCE: Final = BaseTag(0x0040A730)
Raw = tuple[RawDataElement, ...]
CodeKey = tuple[str, str, str, str | None]
P = ParamSpec("P")


def new_item(*raw: RawDataElement) -> pydicom.Dataset:
    """A new dataset of the document holding ``raw`` elements, marked as encoded like it."""
    item = pydicom.Dataset(parent_encoding=ENCODINGS)
    item.set_original_encoding(False, True, ENCODINGS)
    for element in raw:
        item[element.tag] = element
    return item


def encode_items(*items: pydicom.Dataset | bytes) -> bytes:
    """Sequence items as pydicom writes them in the document (bytes: items encoded before)."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    for item in items:
        if isinstance(item, bytes):
            buffer.write(item)
        else:
            write_sequence_item(buffer, item, ENCODINGS)
    return buffer.getvalue()


def sequence(tag: BaseTag, *items: pydicom.Dataset | bytes) -> RawDataElement:
    """A sequence element of ``items``, encoded now: pydicom copies it into the file as it is."""
    value = encode_items(*items)
    return RawDataElement(tag, "SQ", len(value), value, 0, False, True)


def tag_of(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - a typo
        raise KeyError(keyword)
    return BaseTag(tag)


def encoded_once(build: Callable[P, list[pydicom.Dataset]]) -> Callable[P, bytes]:
    """``build``'s content items, encoded on the first call for these arguments and reused.

    The arguments, hashable, must tell apart whatever differs: codes go in as plain tuples
    (``code_key``), since ``Code`` equality ignores the meaning.
    """

    def encoded(*args: P.args, **kwargs: P.kwargs) -> bytes:
        return encode_items(*build(*args, **kwargs))

    return cast(Callable[P, bytes], wraps(build)(lru_cache(maxsize=256)(encoded)))


def raw_elements(item: pydicom.Dataset) -> Raw:
    """``item``'s elements encoded as in the document and read back raw."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    write_dataset(buffer, item, ENCODINGS)
    elements = tuple(data_element_generator(BytesIO(buffer.getvalue()), False, True))
    raw = tuple(element for element in elements if isinstance(element, RawDataElement))
    if len(raw) != len(elements):  # pragma: no cover - only undefined lengths read back parsed
        raise AssertionError("an encoded element did not read back raw")
    return raw


def code_key(code: Code) -> CodeKey:
    """A code as a cache key: ``Code`` itself compares equal to codes of other meanings."""
    return (code.value, code.scheme_designator, code.meaning, code.scheme_version)


def _concept(code: CodeKey) -> pydicom.Dataset:
    """A coded concept as highdicom's ``CodedConcept`` writes it."""
    value, scheme, meaning, version = code
    concept = new_item()
    if len(value) > MAX_SH:
        if value.startswith("urn") or "://" in value:
            concept.URNCodeValue = value
        else:
            concept.LongCodeValue = value
    else:
        concept.CodeValue = value
    concept.CodeMeaning = meaning
    concept.CodingSchemeDesignator = scheme
    if version is not None:
        concept.CodingSchemeVersion = version
    return concept


@lru_cache(maxsize=1024)
def _coded_sequence(keyword: str, code: CodeKey) -> RawDataElement:
    return sequence(tag_of(keyword), _concept(code))


def code_sequence(keyword: str, code: Code) -> RawDataElement:
    """The sequence element ``keyword`` holding one coded concept, encoded once."""
    return _coded_sequence(keyword, code_key(code))


@lru_cache(maxsize=1024)
def content_head(value_type: str, name: CodeKey, relationship: str | None) -> Raw:
    """A content item's value type, concept name and relationship, encoded once."""
    item = new_item(_coded_sequence("ConceptNameCodeSequence", name))
    item.ValueType = value_type
    if relationship is not None:
        item.RelationshipType = relationship
    if value_type == "CONTAINER":
        item.ContinuityOfContent = "CONTINUOUS"  # highdicom's containers all are
    return raw_elements(item)


def content_item(value_type: str, name: Code, relationship: str | None) -> pydicom.Dataset:
    """A content item with its value type, concept name and relationship (encoded once)."""
    return new_item(*content_head(value_type, code_key(name), relationship))


@lru_cache(maxsize=8)
def template_sequence(identifier: str) -> RawDataElement:
    """A container's Content Template Sequence (TID ``identifier``)."""
    reference = new_item()
    reference.MappingResource = "DCMR"
    reference.TemplateIdentifier = identifier
    return sequence(tag_of("ContentTemplateSequence"), reference)


def text_item(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = content_item("TEXT", name, relationship)
    item.TextValue = str(value)
    return item


def code_item(name: Code, value: Code, relationship: str) -> pydicom.Dataset:
    item = content_item("CODE", name, relationship)
    element = code_sequence("ConceptCodeSequence", value)
    item[element.tag] = element
    return item


def uid_item(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = content_item("UIDREF", name, relationship)
    item.UID = value
    return item


def pname_item(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = content_item("PNAME", name, relationship)
    item.PersonName = value
    return item


def num_item(name: Code, value: float, unit: Code, relationship: str = CONTAINS) -> pydicom.Dataset:
    """TID 300 as highdicom writes it: the value as DS and, being a float, as FD too."""
    measured = new_item(code_sequence("MeasurementUnitsCodeSequence", unit))
    measured.NumericValue = DS(value, auto_format=True)
    measured.FloatingPointValue = value
    item = content_item("NUM", name, relationship)
    item.MeasuredValueSequence = [measured]
    return item


def reference_item(
    value_type: str,
    name: Code,
    source: pydicom.Dataset,
    relationship: str,
    frame: int | None = None,
) -> pydicom.Dataset:
    """An IMAGE or COMPOSITE item referencing ``source`` by its class and instance, and by
    ``frame`` (Referenced Frame Number, 1-based) in a multi-frame image."""
    item = content_item(value_type, name, relationship)
    reference = new_item()
    reference.ReferencedSOPClassUID = str(source.SOPClassUID)
    reference.ReferencedSOPInstanceUID = str(source.SOPInstanceUID)
    if frame is not None:
        reference.ReferencedFrameNumber = frame
    item.ReferencedSOPSequence = [reference]
    return item
