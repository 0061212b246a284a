"""Adverse drug event signals for officials and researchers: the published table only.

``gold.ade_signals`` is published with small counts already hidden (pipelines.transform.signals):
every answer here is a filter of it, never a computation over the OMOP tables, so no page can
show more than the table does. Officials read it as they read every aggregate: required role,
one audited row per read.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.omop.signals import CITY

SIGNALS: Final = "gold.ade_signals"


class Signals(Gate):
    """The adverse drug event signal methods of ``Access``."""

    def ade_signals(self, scope: str = CITY, prespecified_only: bool = False) -> pl.DataFrame:
        """The published signals of one scope, the prespecified pairs first, then the signals,
        then by adjusted sequence ratio (highest first); hidden values are null.

        Args:
            scope: ``city`` or a district code (``24010``...).
            prespecified_only: Only the pairs named in advance (the known effect and the
                negative control), not the screened ones.
        """
        self._require("read:aggregate", "official")
        where = pl.col("scope") == scope
        if prespecified_only:
            where &= pl.col("prespecified")
        found = (
            lake.scan(SIGNALS)
            .filter(where)
            .sort(
                ["prespecified", "signal", "adjusted_sr", "drug", "event"],
                descending=[True, True, True, False, False],
                nulls_last=True,
            )
            .collect()
        )
        self._audit(
            "read:aggregate",
            "monitoring",
            rows=found.height,
            detail=f"ade signals {scope}{' prespecified' if prespecified_only else ''}",
        )
        return found
