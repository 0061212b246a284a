"""Temporary lakehouses for the pipeline tests: real Delta tables written by real Dagster runs.

``Lake`` points the lakehouse modules at one temporary storage root and runs assets in process,
exactly as ``gjh build`` and the UI do (same asset definitions, same resource), so a test sees
what production would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from lakehouse import read as lake_read
from lakehouse.config import environment
from pipelines.defs.resources import Imaging, Lakehouse, Scoring


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
            ),
            "imaging": Imaging(workers=2),
            "scoring": Scoring(workers=2),
        }

    @contextmanager
    def active(self) -> Iterator[None]:
        """Point the lakehouse modules at this lakehouse for the duration (reads in tests)."""
        with environment(
            LAKEHOUSE_URI=str(self.root),
            GJH_SOURCES=str(self.sources),
            GJH_SECRETS_DIR=str(self.root.parent / "secrets"),
        ):
            yield

    def materialise(
        self,
        assets: Sequence[dg.AssetsDefinition],
        partitions: str | tuple[str, str] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        """Run ``assets`` in process: unpartitioned, one partition, or a ``(first, last)`` range
        as one run (the assets' single-run backfill policy). ``assets`` may include asset checks
        (``AssetChecksDefinition``); ``raise_on_error=False`` returns a failed run's result
        instead of raising (to inspect what a blocking check stopped)."""
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
                raise_on_error=raise_on_error,
            )

    def frame(self, name: str, where: pl.Expr | None = None) -> pl.DataFrame:
        """A whole table (or the rows matching ``where``) from this lakehouse."""
        with self.active():
            return lake_read.frame(name, where)

    def parquet(self, tables: Iterable[str]) -> list[Path]:
        """Every Parquet file these tables hold (for scans of what was written)."""
        return [p for t in tables for p in parquet_files(self.root / t.replace(".", "/"))]

    def snapshot(self, tables: Iterable[str]) -> dict[str, pl.DataFrame]:
        """These tables' rows in a fixed order, to compare before and after a rerun."""
        return {name: self.frame(name).sort(pl.all()) for name in tables}

    def copy(self, folder: Path) -> Lake:
        """This lakehouse copied to ``folder / "lakehouse"``, with what lies beside it (its
        secrets, the Dagster home a build recorded its runs in, the access log's outbox), fed
        from the same drop folder: a test that writes gets a lakehouse of its own in
        milliseconds instead of building one (a build of the small city takes a minute or two).

        The tables and the object store are hard-linked: Delta and the DICOM store write new
        files (or replace one by renaming), never into an existing file, so a write reaches
        neither this lakehouse nor another copy. What lies beside it is copied byte for byte:
        SQLite (the Dagster home, the outbox) writes into its files in place.
        """
        target = Lake(folder / "lakehouse", self.sources)
        shutil.copytree(self.root, target.root, copy_function=os.link)
        for beside in self.root.parent.iterdir():
            if beside != self.root and beside.is_dir():
                shutil.copytree(beside, folder / beside.name)
        return target


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


# A registration number: YYMMDD (a real month and day), optional hyphen, the sex digit and six
# more, standing alone (not digits inside a hex key or a longer id).
RRN = re.compile(
    r"(?<![0-9A-Za-z])\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])-?[1-8]\d{6}(?![0-9A-Za-z])"
)


def assert_no_identifiers(
    files: list[Path], names: Set[str], numbers: Set[str] = frozenset()
) -> None:
    """No string value of these Parquet files is a registration number or holds one of the
    given names or (hyphen-free) numbers."""
    for path in files:
        table = pl.read_parquet(path)
        for column in table.columns:
            if table[column].dtype != pl.String:
                continue
            for value in table[column].drop_nulls().unique().to_list():
                assert not RRN.search(value), f"{path}: {column} holds a registration number"
                assert not any(n in value for n in numbers), f"{path}: {column}: {value}"
                assert not any(n in value for n in names), f"{path}: {column} holds a name"


def resend(delivery: Path, delivery_id: str) -> Path:
    """Deliver ``delivery`` again, as a new delivery ``delivery_id`` of the same source."""
    resent = delivery.with_name(delivery_id)
    shutil.copytree(delivery, resent)
    manifest = json.loads((resent / "delivery.json").read_text(encoding="utf-8"))
    manifest["delivery_id"] = delivery_id
    (resent / "delivery.json").write_text(json.dumps(manifest), encoding="utf-8")
    return resent
