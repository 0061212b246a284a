"""``omop``: the lakehouse as an OMOP CDM v5.4 database, with the Medical Imaging extension.

Every table here is generated from OHDSI's specification files (``lakehouse.omop.spec``): the
fields, their order, types, required flags and keys are the specification's. The catalogue adds
only what the specification cannot know: which fields are personal data here, and which foreign
keys point to a table this layer holds (so the quality checks can join them). A foreign key to a
table not held here (``visit_detail``, ``note``, ``episode``…) is left unchecked rather than
invented.
"""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import column
from lakehouse.omop import spec
from lakehouse.schema import Column, Personal, Table

# The clinical tables of one person's care: what the platform fills from its own sources and
# what it takes from a partner's extract (lakehouse.catalog.partners).
PERSON_TABLES: Final = (
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
)
# All the layer holds: those, the health system's tables, the imaging extension's two, and the
# vocabulary table holding the concepts the platform ships (lakehouse/reference/omop).
TABLES: Final = (
    *PERSON_TABLES,
    "care_site",
    "location",
    "provider",
    "cdm_source",
    "image_occurrence",
    "image_feature",
    "concept",
)
# Fields that narrow a person down in combination (the catalogue's "quasi" class); every
# person_id is a pseudonym: stable, derived from the citizen key, never the registration number.
_QUASI: Final = frozenset(
    {"year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime", "location_id"}
)


def _personal(table: str, f: spec.Field) -> Personal | None:
    if f.name in {"person_id", "person_source_value"}:
        return "pseudonym"
    if table == "person" and (f.name in _QUASI or f.name.startswith("gender")):
        return "quasi"
    if table == "death" and f.name.startswith("death_date"):
        return "quasi"
    return None


def columns(
    table: str, *, layer: str = "omop", held: tuple[str, ...] = TABLES, personal: bool = True
) -> tuple[Column, ...]:
    """The columns of one CDM table as the specification declares them.

    Args:
        table: The CDM table (any case).
        layer: The layer the foreign keys' tables live in (``omop``; a partner's silver tables
            name their own).
        held: The CDM tables held in that layer; a foreign key to any other is not checked.
        personal: Mark person ids and birth fields as personal data.
    """
    t = table.lower()
    out: list[Column] = []
    for f in spec.fields(t):
        references = (
            f"{layer}.{f.fk_table}.{f.fk_field}"
            if f.fk_table in held and f.fk_field and not (f.fk_table == t and f.primary_key)
            else None
        )
        length = f.max_length
        out.append(
            column(
                f.name,
                f.type,
                (f.guidance or f"{t}.{f.name}")[:300],
                required=f.required,
                personal=_personal(t, f) if personal else None,
                # varchar(n) of the specification: at most n characters (DQD's field length).
                pattern=rf"^(?s:.{{0,{length}}})$" if length else None,
                references=references,
            )
        )
    return tuple(out)


def omop_table(table: str) -> Table:
    """One CDM table declared in the ``omop`` layer, from the specification."""
    t = table.lower()
    return Table(
        f"omop.{t}",
        spec.table_specs()[t].description or t,
        columns(t),
        key=spec.primary_key(t),
    )


OMOP: Final = tuple(omop_table(t) for t in TABLES)
