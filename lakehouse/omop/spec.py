"""The OMOP CDM v5.4 specification, read from OHDSI's own machine-readable files.

The files in ``lakehouse/reference/omop/`` are OHDSI's (``OMOP_CDMv5.4_Field_Level.csv``,
``OMOP_CDMv5.4_Table_Level.csv``) plus the Medical Imaging extension's two tables written in the
same layout (``MI_CDM_Field_Level.csv``). Everything that needs a table's fields, types, required
flags or keys (the catalogue's ``omop.*`` tables, the partners' extracts, the data-quality checks)
asks here, so a field is declared once, by the specification, never retyped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from lakehouse.schema import ColumnType

ROOT: Final = Path(__file__).resolve().parent.parent / "reference" / "omop"
FIELD_FILES: Final = ("OMOP_CDMv5.4_Field_Level.csv", "MI_CDM_Field_Level.csv")
TABLE_FILE: Final = "OMOP_CDMv5.4_Table_Level.csv"
CHECK_FILE: Final = "DQD_Check_Descriptions_v5.4.csv"
# The CDM's vocabulary tables: a partner may deliver them; the platform reads only its own
# shipped vocabulary (lakehouse/reference/omop), never a delivered one.
VOCABULARY: Final = frozenset(
    {
        "concept",
        "vocabulary",
        "domain",
        "concept_class",
        "concept_relationship",
        "relationship",
        "concept_synonym",
        "concept_ancestor",
        "source_to_concept_map",
        "drug_strength",
    }
)


@dataclass(frozen=True)
class Field:
    """One field of a CDM table, as the specification declares it.

    Attributes:
        table: The table, lower case (``person``).
        name: The field, lower case (``person_id``).
        datatype: The specification's type as written (``integer``, ``varchar(50)``, ``date``).
        required: Must not be null (DQD ``isRequired``).
        primary_key: The table's primary key (DQD ``isPrimaryKey``).
        fk_table: The table a foreign key points to, lower case, or None.
        fk_field: The field it points to, lower case, or None.
        fk_domain: The OMOP domain the concept must be in (DQD ``fkDomain``), or None.
        guidance: The specification's user guidance, or "".
    """

    table: str
    name: str
    datatype: str
    required: bool
    primary_key: bool
    fk_table: str | None
    fk_field: str | None
    fk_domain: str | None
    guidance: str

    @property
    def type(self) -> ColumnType:
        """The catalogue's logical type for this field."""
        return column_type(self.datatype)

    @property
    def max_length(self) -> int | None:
        """The varchar length, or None (not text, or ``varchar(MAX)``)."""
        m = re.fullmatch(r"varchar\((\d+)\)", self.datatype.lower())
        return int(m.group(1)) if m else None


@dataclass(frozen=True)
class TableSpec:
    """A CDM table's table-level declaration.

    Attributes:
        name: Lower case.
        required: The specification expects the table to be present.
        person_completeness: The DQD's ``measurePersonCompleteness`` applies.
        person_completeness_threshold: Its threshold in percent, if any.
        description: The specification's table description.
    """

    name: str
    required: bool
    person_completeness: bool
    person_completeness_threshold: float | None
    description: str


def column_type(datatype: str) -> ColumnType:
    """The catalogue type of a specification type (``integer``, ``varchar(n)``, ``datetime``…)."""
    d = datatype.strip().lower()
    if d in {"integer", "bigint"}:
        return "int"
    if d == "float":
        return "float"
    if d == "date":
        return "date"
    if d == "datetime":
        return "timestamp"
    if d.startswith("varchar") or d == "text":
        return "text"
    raise ValueError(f"unknown OMOP datatype {datatype!r}")


def _na(value: str) -> str | None:
    v = value.strip()
    return None if v in {"", "NA"} else v


def _yes(value: str) -> bool:
    return value.strip().lower() == "yes"


@cache
def _fields() -> tuple[Field, ...]:
    out: list[Field] = []
    for name in FIELD_FILES:
        with (ROOT / name).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                fk = _na(row["fkTableName"]) if _yes(row["isForeignKey"]) else None
                fk_field = _na(row["fkFieldName"]) if fk else None
                out.append(
                    Field(
                        table=row["cdmTableName"].strip().lower(),
                        name=row["cdmFieldName"].strip().lower(),
                        datatype=row["cdmDatatype"].strip(),
                        required=_yes(row["isRequired"]),
                        primary_key=_yes(row["isPrimaryKey"]),
                        fk_table=fk.lower() if fk else None,
                        fk_field=fk_field.lower() if fk_field else None,
                        fk_domain=_na(row["fkDomain"]),
                        guidance=_na(row["userGuidance"]) or "",
                    )
                )
    return tuple(out)


def tables() -> tuple[str, ...]:
    """Every table the specification (with the imaging extension) declares, in its order."""
    return tuple(dict.fromkeys(f.table for f in _fields()))


def fields(table: str) -> tuple[Field, ...]:
    """The fields of one table (any case), in the specification's order.

    Raises:
        KeyError: the specification has no such table.
    """
    t = table.lower()
    out = tuple(f for f in _fields() if f.table == t)
    if not out:
        raise KeyError(f"the OMOP CDM v5.4 specification has no table {table!r}")
    return out


def primary_key(table: str) -> tuple[str, ...]:
    """The primary-key fields of one table (empty for tables such as ``death``)."""
    return tuple(f.name for f in fields(table) if f.primary_key)


@cache
def table_specs() -> dict[str, TableSpec]:
    """The table-level declarations, by lower-case name (the imaging tables included)."""
    out: dict[str, TableSpec] = {}
    with (ROOT / TABLE_FILE).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            name = row["cdmTableName"].strip().lower()
            threshold = _na(row["measurePersonCompletenessThreshold"])
            out[name] = TableSpec(
                name=name,
                required=_yes(row["isRequired"]),
                person_completeness=_yes(row["measurePersonCompleteness"]),
                person_completeness_threshold=float(threshold) if threshold else None,
                description=" ".join((_na(row["tableDescription"]) or "").split()),
            )
    for name, description in (
        ("image_occurrence", "One row per DICOM series of an imaging study (MI-CDM)."),
        (
            "image_feature",
            "One row per feature derived from an image, such as an AI finding (MI-CDM).",
        ),
    ):
        out[name] = TableSpec(name, False, False, None, description)
    return out


@cache
def check_types() -> tuple[dict[str, str], ...]:
    """The DQD's check types as OHDSI lists them (``checkLevel``, ``checkName``,
    ``kahnCategory``, ``severity``…), one dict per row."""
    with (ROOT / CHECK_FILE).open(newline="", encoding="utf-8") as f:
        return tuple({k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f))
