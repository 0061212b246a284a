"""The catalogue's OMOP tables are the specification's tables, field for field."""

from __future__ import annotations

import csv
import re

import pytest

from lakehouse.catalog import OMOP, table
from lakehouse.catalog.omop import TABLES
from lakehouse.omop import spec

_TYPES = {"integer": "int", "float": "float", "date": "date", "datetime": "timestamp"}


def _spec_rows(name: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for file in spec.FIELD_FILES:
        with (spec.ROOT / file).open(newline="", encoding="utf-8") as f:
            rows += [r for r in csv.DictReader(f) if r["cdmTableName"].lower() == name]
    return rows


@pytest.mark.parametrize("name", TABLES)
def test_every_omop_table_matches_the_specification(name: str) -> None:
    """Names, order, types, required flags and primary keys, read straight from OHDSI's CSV."""
    t = table(f"omop.{name}")
    rows = _spec_rows(name)
    assert rows, name
    assert t.names == [r["cdmFieldName"].lower() for r in rows]
    for c, r in zip(t.columns, rows, strict=True):
        datatype = r["cdmDatatype"].lower()
        assert c.type == _TYPES.get(datatype, "text"), (name, c.name)
        assert c.required is (r["isRequired"] == "Yes"), (name, c.name)
    assert t.key == tuple(r["cdmFieldName"].lower() for r in rows if r["isPrimaryKey"] == "Yes")


def test_the_imaging_extension_and_the_cdm_tables_are_all_held() -> None:
    held = {t.short for t in OMOP}
    assert {"person", "visit_occurrence", "image_occurrence", "image_feature", "cdm_source"} <= held
    assert table("omop.image_feature").column("image_occurrence_id").references == (
        "omop.image_occurrence.image_occurrence_id"
    )


def test_foreign_keys_point_only_at_held_tables() -> None:
    """A foreign key to a table the layer does not hold (visit_detail, note) is not invented."""
    for t in OMOP:
        for c in t.columns:
            if c.references:
                layer, target, _ = c.references.split(".")
                assert layer == "omop" and target in TABLES, (t.name, c.name)
    assert table("omop.condition_occurrence").column("visit_detail_id").references is None


def test_varchar_lengths_become_patterns() -> None:
    c = table("omop.person").column("gender_source_value")
    assert c.pattern is not None
    assert re.fullmatch(c.pattern, "M" * 50)
    assert not re.fullmatch(c.pattern, "M" * 51)


def test_unknown_tables_and_types_are_refused() -> None:
    with pytest.raises(KeyError):
        spec.fields("no_such_table")
    with pytest.raises(ValueError, match="unknown OMOP datatype"):
        spec.column_type("blob")
    assert spec.column_type("varchar(MAX)") == "text"
    assert "concept" in spec.VOCABULARY and "person" in spec.tables()
