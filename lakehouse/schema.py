"""The vocabulary of the table catalogue: columns, tables and the checks they declare.

A table is declared once (``lakehouse.catalog``); its Polars and Arrow schemas, its data-quality
checks and its documentation are all derived from that declaration, never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import polars as pl

ColumnType = Literal["text", "int", "float", "date", "timestamp", "bool"]
POLARS_TYPES: Final[dict[str, pl.DataType]] = {
    "text": pl.Utf8(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us", "UTC"),
    "bool": pl.Boolean(),
}
# Personal-data classes. "pseudonym": a keyed-HMAC citizen key (still personal data under Korean
# law, but not identifying without the key). "quasi": can narrow a person down in combination
# (sex, birth year, district). "encrypted": a direct identifier, stored only encrypted.
Personal = Literal["pseudonym", "quasi", "encrypted"]
Layer = Literal["bronze", "silver", "gold", "ai", "quarantine", "vault", "ops", "omop"]
Grain = Literal["month", "day"]


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        name: The column's name in the table.
        type: Its logical type.
        description: What it holds, in a sentence.
        required: Must never be null (OHDSI DQD ``isRequired``).
        personal: The personal-data class, if any.
        source: The header in the delivered file, where it differs from ``name`` (bronze).
        pattern: A regular expression every value must match (``fieldFormat``).
        low: The lowest plausible value (``plausibleValueLow``).
        high: The highest plausible value (``plausibleValueHigh``).
        references: ``"<table>.<column>"`` this column's values must exist in (``isForeignKey``).
        codes: A reference code list the values must belong to (``lakehouse/reference/codes``).
    """

    name: str
    type: ColumnType
    description: str
    required: bool = False
    personal: Personal | None = None
    source: str | None = None
    pattern: str | None = None
    low: float | None = None
    high: float | None = None
    references: str | None = None
    codes: str | None = None

    @property
    def header(self) -> str:
        """The column's header in the delivered file."""
        return self.source or self.name


@dataclass(frozen=True)
class Table:
    """One table of the lakehouse.

    Attributes:
        name: ``<layer>.<name>``.
        description: What one row is and why the table exists.
        columns: Its columns, in order.
        key: Columns whose values identify a row (``isPrimaryKey``).
        partition_by: Delta partition columns, laid out for the lookups the readers make.
        grain: The pipeline partition (monthly or daily runs), if the table is partitioned in time.
        during_life: ``(date column, citizen column)``: events fall within the citizen's life in
            the city (``plausibleDuringLife``).
        start_before_end: ``(start, end)`` dates of one row (``plausibleStartBeforeEnd``).
        sort_by: The column readers look rows up by inside a partition (a citizen key, a
            clinic, a study): the weekly ``optimize`` z-orders by it (and the gold writer
            sorts by it), so the files' statistics in the Delta log and their row groups'
            let a lookup (``lakehouse.read.lookup``) skip the rest of the table.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    grain: Grain | None = None
    during_life: tuple[str, str] | None = None
    start_before_end: tuple[str, str] | None = None
    sort_by: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short(self) -> str:
        """The name without its layer."""
        return self.name.split(".", 1)[1]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def polars_schema(self) -> pl.Schema:
        """The table's schema as Polars types."""
        return pl.Schema({c.name: POLARS_TYPES[c.type] for c in self.columns})

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with exactly this table's columns, in order and types.

        Raises:
            ValueError: a column is missing or has values that do not cast (a bug upstream, never
                bad input: bad input is quarantined before it gets here).
        """
        missing = [c for c in self.names if c not in frame.columns]
        if missing:
            raise ValueError(f"{self.name}: missing columns {missing}")
        return frame.select(
            pl.col(c.name).cast(POLARS_TYPES[c.type], strict=True) for c in self.columns
        )
