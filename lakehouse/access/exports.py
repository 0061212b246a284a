"""Officials' downloads of published aggregates (a chart's data as CSV, the chart as PNG).

A download leaves the platform's screens, so it is an access of its own: the official's role
is checked and one audit row says what left (``export:aggregate``, the table's rows, the file's
kind and what it showed). The table must be one the access layer published
(``Aggregates.uptake`` and what is derived from it); as a last check before it leaves, a table
holding a count of 1-10 in any integer column is refused (and the refusal audited): the
suppression rule must hold for what is downloaded as it does for what is shown.
"""

from __future__ import annotations

from typing import Final, Literal

import polars as pl

from lakehouse.access.gate import Gate

LOW: Final = 1
HIGH: Final = 10
ExportKind = Literal["csv", "png"]


def small_counts(frame: pl.DataFrame, low: int = LOW, high: int = HIGH) -> list[str]:
    """The integer columns of ``frame`` that hold a count of ``low``-``high`` (none for a
    table as published: such cells are suppressed, their values null)."""
    counts = [c for c, dtype in frame.schema.items() if dtype.is_integer()]
    if not counts or not frame.height:
        return []
    found = frame.select(pl.col(c).is_between(low, high).any().alias(c) for c in counts).row(0)
    return [c for c, small in zip(counts, found, strict=True) if small]


class Exports(Gate):
    """The download methods of ``Access``."""

    def export_aggregate(self, frame: pl.DataFrame, kind: ExportKind, what: str) -> None:
        """Allow and audit the download of a published table (``kind`` ``csv``) or of the
        chart drawn from it (``png``); ``AccessDeniedError`` (audited) for another role or a
        table that holds a count of 1-10.

        Args:
            frame: The table as the official sees it, the chart's data.
            kind: What leaves: the table as CSV, or the chart as PNG.
            what: Which chart or table (the audit row's detail, with the kind).
        """
        action = "export:aggregate"
        self._require(action, "official")
        small = small_counts(frame)
        if small:
            raise self._deny(
                action, f"{kind} {what}: counts of {LOW}-{HIGH} in {small}", code="small_cells"
            )
        self._audit(action, "monitoring", rows=frame.height, detail=f"{kind} {what}")
