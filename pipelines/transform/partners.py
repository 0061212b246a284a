"""A partner's bronze rows into silver: typed as the OMOP specification declares, checked, linked.

Per delivery and table, each row is checked in this order and quarantined under the first rule
it breaks (one reason per row, so rows in = accepted + quarantined holds exactly):

1. ``missing_value``: a field the CDM requires is empty;
2. ``type_mismatch``: a value does not cast to its CDM type (integers, floats, ``YYYY-MM-DD``
   dates, ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS`` times in Korea's time);
3. ``too_long``: a text longer than its ``varchar(n)``;
4. ``duplicate_key``: a primary key an earlier line of the same file already holds;
5. ``unknown_person``: a ``person_id`` the delivery's accepted person rows do not hold.

``linkage.csv`` rows are ``malformed_linkage`` when the person id is not an integer, the token is
not 64 hex digits, the person is not in the delivery's person table, or the person id is given
twice. A linked person's rows carry the citizen key whose token (``vault.linkage``) equals
theirs; an unlinked person's rows are kept with no citizen key, counted, never merged.
Nothing here reads or writes the lakehouse.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.partners import DROPPED, key
from lakehouse.linkage import TOKEN_PATTERN
from lakehouse.omop import spec
from pipelines.ingest.parse import MISSING_VALUE, first_failure

TYPE_MISMATCH: Final = "type_mismatch"
TOO_LONG: Final = "too_long"
DUPLICATE_KEY: Final = "duplicate_key"
UNKNOWN_PERSON: Final = "unknown_person"
MALFORMED_LINKAGE: Final = "malformed_linkage"
LOCAL: Final = "Asia/Seoul"
LINEAGE_COLUMNS: Final = ("_delivery_id", "_file", "_line", "_period")


def _typed(name: str, datatype: str) -> pl.Expr:
    """One text field cast to its CDM type (null where it does not cast)."""
    text = pl.col(name).str.strip_chars()
    t = spec.column_type(datatype)
    if t == "int":
        return text.cast(pl.Int64, strict=False)
    if t == "float":
        return text.cast(pl.Float64, strict=False)
    if t == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    if t == "timestamp":
        local = pl.coalesce(
            text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"),
            text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us"),
        )
        return local.dt.replace_time_zone(LOCAL).dt.convert_time_zone("UTC")
    return pl.col(name)


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")


def conform(
    table: str, rows: pl.DataFrame, persons: pl.Series | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One delivery's bronze rows of ``table`` -> (typed rows with lineage, rejected rows).

    Args:
        table: The CDM table.
        rows: Its bronze rows of one delivery.
        persons: The delivery's accepted person ids (None for the person table itself).

    Returns:
        The accepted rows, typed, with ``partner``, ``delivery_id`` and the bronze lineage; the
        rejected rows with ``key``, ``reason``, ``message`` and ``payload`` beside the lineage
        (``pipelines.ingest.parse.rejected_rows``).
    """
    declared = spec.fields(table)
    blanked = rows.with_columns(
        pl.when(_blank(f.name)).then(None).otherwise(pl.col(f.name)).alias(f.name) for f in declared
    )
    checks: list[tuple[pl.Expr, str, pl.Expr]] = []
    for f in declared:
        if f.required:
            checks.append(
                (pl.col(f.name).is_null(), MISSING_VALUE, pl.lit(f"{f.name} is required"))
            )
    for f in declared:
        if f.type != "text":
            bad = pl.col(f.name).is_not_null() & _typed(f.name, f.datatype).is_null()
            checks.append((bad, TYPE_MISMATCH, pl.lit(f"{f.name} is not {f.datatype}")))
    for f in declared:
        if f.max_length:
            long = pl.col(f.name).str.len_chars() > f.max_length
            checks.append((long, TOO_LONG, pl.lit(f"{f.name} is longer than {f.datatype}")))
    checked = first_failure(blanked, checks)
    pk = key(table)
    passed = pl.col("reason").is_null()
    typed = checked.with_columns(_typed(f.name, f.datatype).alias(f.name) for f in declared)
    first = pl.col("_line") == pl.col("_line").filter(passed).min().over(pk)
    typed = typed.with_columns(
        pl.when(passed & ~first.fill_null(False))
        .then(pl.lit(DUPLICATE_KEY))
        .otherwise(pl.col("reason"))
        .alias("reason"),
        pl.when(passed & ~first.fill_null(False))
        .then(pl.lit(f"{', '.join(pk)} already given on an earlier line"))
        .otherwise(pl.col("message"))
        .alias("message"),
    )
    if persons is not None:
        unknown = pl.col("reason").is_null() & ~pl.col("person_id").is_in(persons.implode())
        typed = typed.with_columns(
            pl.when(unknown)
            .then(pl.lit(UNKNOWN_PERSON))
            .otherwise(pl.col("reason"))
            .alias("reason"),
            pl.when(unknown)
            .then(pl.lit("person_id is not in the delivery's person table"))
            .otherwise(pl.col("message"))
            .alias("message"),
        )
    good = typed.filter(pl.col("reason").is_null()).with_columns(
        pl.lit(None, pl.Utf8).alias(n) for n in DROPPED if n in typed.columns
    )
    accepted = good.select(
        "partner",
        *(f.name for f in declared),
        pl.col("_delivery_id").alias("delivery_id"),
        *LINEAGE_COLUMNS,
    )
    rejected = _rejected(checked, typed.filter(pl.col("reason").is_not_null()), table, pk)
    return accepted, rejected


def _rejected(
    text: pl.DataFrame, bad: pl.DataFrame, table: str, pk: tuple[str, ...]
) -> pl.DataFrame:
    """The rejected rows as quarantine rows: the delivered text as payload, the key as text."""
    fields = [f.name for f in spec.fields(table) if f.name not in DROPPED]
    originals = text.select("_file", "_line", *fields)
    return (
        bad.select(*LINEAGE_COLUMNS, "reason", "message")
        .join(originals, on=["_file", "_line"], how="left")
        .select(
            *LINEAGE_COLUMNS,
            pl.concat_str([pl.col(k).cast(pl.Utf8) for k in pk], separator=":").alias("key"),
            "reason",
            "message",
            pl.concat_str([pl.col(n).fill_null("") for n in fields], separator=",").alias(
                "payload"
            ),
        )
    )


def conform_linkage(rows: pl.DataFrame, persons: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One delivery's ``linkage.csv`` rows -> (``person_id``, ``token``) pairs and rejected
    rows (``malformed_linkage``, the message says why)."""
    token = pl.col("token").str.strip_chars().str.to_lowercase()
    person = pl.col("person_id").str.strip_chars().cast(pl.Int64, strict=False)
    checks = [
        (person.is_null(), MALFORMED_LINKAGE, pl.lit("person_id is not an integer")),
        (~token.str.contains(TOKEN_PATTERN).fill_null(False), MALFORMED_LINKAGE,
         pl.lit("token is not 64 hexadecimal digits")),
        (~person.is_in(persons.implode()), MALFORMED_LINKAGE,
         pl.lit("person_id is not in the delivery's person table")),
        (person.is_duplicated(), MALFORMED_LINKAGE, pl.lit("person_id is linked more than once")),
    ]  # fmt: skip
    checked = first_failure(rows, checks)
    good = checked.filter(pl.col("reason").is_null()).select(
        person.alias("person_id"), token.alias("token"), "_file"
    )
    rejected = checked.filter(pl.col("reason").is_not_null()).select(
        *LINEAGE_COLUMNS,
        pl.col("person_id").alias("key"),
        "reason",
        "message",
        pl.concat_str([pl.col("person_id").fill_null(""), pl.lit("<token>")], separator=",").alias(
            "payload"
        ),
    )
    return good, rejected


def link(rows: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``citizen_key`` from the delivery's linked persons (``person_id``,
    ``citizen_key``); null for an unlinked person."""
    return rows.join(persons, on="person_id", how="left")


def linked_persons(pairs: pl.DataFrame, vault: pl.DataFrame) -> pl.DataFrame:
    """The delivery's (``person_id``, ``citizen_key``) of the persons whose token is a
    citizen's (``vault.linkage``)."""
    return pairs.join(vault.select("token", "citizen_key"), on="token", how="inner").select(
        "person_id", "citizen_key"
    )


def silver_rows(table: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Accepted, linked rows as ``silver.partner_<table>`` holds them."""
    return catalog_table(f"silver.partner_{table}").conform(rows)


def report(counts: pl.DataFrame, partner: str | None = None) -> pl.DataFrame:
    """The count check (``gjh partner report``): per partner, delivery and table, the rows
    delivered, accepted, quarantined and linked, the persons linked and unlinked, and whether
    the file reconciles (delivered = accepted + quarantined), newest delivery first.

    Args:
        counts: ``silver.partner_counts``.
        partner: Only this partner's deliveries (all when None).
    """
    rows = counts if partner is None else counts.filter(pl.col("partner") == partner)
    return rows.sort(["partner", "delivered_at", "table"], descending=[False, True, False]).select(
        "partner",
        "delivery_id",
        "holder",
        "table",
        "status",
        pl.col("rows_delivered").alias("delivered"),
        pl.col("rows_accepted").alias("accepted"),
        pl.col("rows_quarantined").alias("quarantined"),
        pl.col("rows_linked").alias("linked"),
        "persons_linked",
        "persons_unlinked",
        (pl.col("rows_delivered") == pl.col("rows_accepted") + pl.col("rows_quarantined")).alias(
            "reconciles"
        ),
    )
