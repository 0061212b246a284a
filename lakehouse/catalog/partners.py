"""Hospital partners' OMOP CDM v5.4 extracts: bronze as delivered, silver typed and linked, the
count check, and the city's own linkage tokens.

A partner delivers one file per CDM table (``partners/<partner>/<delivery>/``, docs/partners.md).
The tables here are generated from the OMOP specification (``lakehouse.catalog.omop.columns``),
never retyped: bronze keeps each delivered field as text with its lineage, silver types them as
the specification declares and adds who delivered the row and, when the partner's person is
linked by token, the citizen key. A partner's records stay in these tables: they are never
merged into the city's own ``omop.*`` tables.
"""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.bronze import LINEAGE
from lakehouse.catalog.columns import citizen, column
from lakehouse.catalog.omop import PERSON_TABLES
from lakehouse.catalog.omop import columns as omop_columns
from lakehouse.linkage import TOKEN_PATTERN
from lakehouse.omop import spec
from lakehouse.schema import Table

# The CDM tables the platform takes from a partner (the clinical tables of one person's care);
# every other table a partner sends (vocabulary, cost, note, ...) is recorded and skipped.
USED: Final = PERSON_TABLES
PARTNER_PATTERN: Final = r"^[a-z0-9_]{2,32}$"
PARTNER: Final = column(
    "partner", "text", "the partner's code (its folder under partners/)", required=True,
    pattern=PARTNER_PATTERN,
)  # fmt: skip
# A partner's own patient number would identify the person at the hospital: never kept.
DROPPED: Final = frozenset({"person_source_value"})


def key(table: str) -> tuple[str, ...]:
    """The CDM primary key of a used table within one partner (``death`` has none in the
    specification: one row per person)."""
    return spec.primary_key(table) or ("person_id",)


def _bronze(table: str) -> Table:
    fields = tuple(column(f.name, "text", f"as delivered ({f.name})") for f in spec.fields(table))
    return Table(
        f"bronze.partner_{table}",
        f"A partner's OMOP {table} rows as delivered (text), with their lineage.",
        (PARTNER, *fields, *LINEAGE),
        key=("_file", "_line"),
        partition_by=("partner",),
    )


def _silver(table: str) -> Table:
    return Table(
        f"silver.partner_{table}",
        f"Partners' OMOP {table} rows of each partner's latest delivery, typed as the CDM "
        "v5.4 specification declares them; citizen_key set when the person is linked by token.",
        (
            PARTNER,
            *omop_columns(table, layer="silver", held=()),
            column("delivery_id", "text", "the delivery the row came in", required=True),
            citizen(required=False, fk=False),
        ),
        key=("partner", *key(table)),
        partition_by=("partner",),
    )


PARTNERS: Final = (
    Table(
        "vault.linkage",
        "Each citizen's linkage token (HMAC-SHA-256 of the normalised registration number under "
        "the linkage key shared with partners, lakehouse.linkage): pseudonymous, kept as it is, "
        "never with the number.",
        (
            citizen(),
            column(
                "token",
                "text",
                "linkage token: 64 lowercase hex digits",
                required=True,
                personal="pseudonym",
                pattern=TOKEN_PATTERN,
            ),
            column("key_id", "text", "fingerprint of the linkage key", required=True),
        ),
        key=("citizen_key",),
    ),
    *(_bronze(t) for t in USED),
    Table(
        "bronze.partner_linkage",
        "A partner's linkage.csv as delivered: its person_id and the person's linkage token.",
        (
            PARTNER,
            column("person_id", "text", "as delivered (the partner's person_id)"),
            column("token", "text", "as delivered (the linkage token)", personal="pseudonym"),
            *LINEAGE,
        ),
        key=("_file", "_line"),
        partition_by=("partner",),
    ),
    *(_silver(t) for t in USED),
    Table(
        "silver.partner_counts",
        "The count check of every partner delivery, per file: rows delivered, accepted and "
        "quarantined (delivered = accepted + quarantined), rows and persons linked.",
        (
            PARTNER,
            column("delivery_id", "text", "the delivery folder", required=True),
            column("period", "text", "the delivery's period (its manifest)", required=True),
            column("delivered_at", "timestamp", "when the partner sent it", required=True),
            column("holder", "text", "the partner's name as its manifest gives it"),
            column("table", "text", "CDM table (lower case) or linkage", required=True),
            column("file", "text", "file path relative to the drop folder", required=True),
            column(
                "status",
                "text",
                "ingested | skipped (a table the platform does not use) | rejected | duplicate",
                required=True,
                pattern=r"^(ingested|skipped|rejected|duplicate)$",
            ),
            column("rows_delivered", "int", "data rows in the file", required=True, low=0),
            column("rows_accepted", "int", "rows in silver", required=True, low=0),
            column("rows_quarantined", "int", "rows quarantined", required=True, low=0),
            column("rows_linked", "int", "accepted rows of a linked person", required=True, low=0),
            column("persons_linked", "int", "distinct persons linked", required=True, low=0),
            column("persons_unlinked", "int", "distinct persons unlinked", required=True, low=0),
        ),
        key=("partner", "delivery_id", "file"),
    ),
)
