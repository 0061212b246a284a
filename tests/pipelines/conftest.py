"""Temporary lakehouses for the pipeline tests: real Delta tables written by real Dagster runs.

``Lake`` points the lakehouse modules at one temporary storage root and runs assets in process,
exactly as ``gjh build`` and the UI do (same asset definitions, same resource), so a test sees
what production would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from lakehouse import read as lake_read
from pipelines.defs.resources import Lakehouse


@dataclass(frozen=True)
class Lake:
    """One temporary lakehouse fed from one drop folder."""

    root: Path
    sources: Path

    @property
    def resources(self) -> dict[str, object]:
        return {
            "lakehouse": Lakehouse(
                lakehouse_uri=str(self.root),
                sources_dir=str(self.sources),
                secrets_dir=str(self.root.parent / "secrets"),
            )
        }

    @contextmanager
    def active(self) -> Iterator[None]:
        """Point the lakehouse modules at this lakehouse for the duration (reads in tests)."""
        names = ("LAKEHOUSE_URI", "GJH_SOURCES", "GJH_SECRETS_DIR")
        saved = {k: os.environ.get(k) for k in names}
        os.environ["LAKEHOUSE_URI"] = str(self.root)
        os.environ["GJH_SOURCES"] = str(self.sources)
        os.environ["GJH_SECRETS_DIR"] = str(self.root.parent / "secrets")
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def materialise(
        self,
        assets: Sequence[dg.AssetsDefinition],
        partitions: str | tuple[str, str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Run ``assets`` in process: unpartitioned, one partition, or a ``(first, last)`` range
        as one run (the assets' single-run backfill policy)."""
        tags: dict[str, str] = {}
        key = None
        if isinstance(partitions, tuple):
            tags = {
                "dagster/asset_partition_range_start": partitions[0],
                "dagster/asset_partition_range_end": partitions[1],
            }
        else:
            key = partitions
        with self.active():
            return dg.materialize(
                list(assets),
                resources=self.resources,
                partition_key=key,
                tags=tags,
                instance=dg.DagsterInstance.ephemeral(),
            )

    def frame(self, name: str, where: pl.Expr | None = None) -> pl.DataFrame:
        """A whole table (or the rows matching ``where``) from this lakehouse."""
        with self.active():
            return lake_read.frame(name, where)
