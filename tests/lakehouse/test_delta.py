"""The one Delta IO module against real Delta tables: each write touches exactly what it says,
concurrent writers lose nothing, and upkeep keeps the data while shedding files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from lakehouse.schema import Table

QUARANTINE = "quarantine.records"
CLAIMS = "silver.claims"


@pytest.fixture(autouse=True)
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    yield tmp_path / "lakehouse"


def _records(period: str, n: int, reason: str = "malformed_row") -> pl.DataFrame:
    """``n`` quarantine records of one period (the quarantine's schema, from the catalogue)."""
    rows = [
        {
            "stage": "bronze",
            "source": "claims",
            "table": "bronze.claims_t200",
            "period": period,
            "delivery_id": period.replace("-", ""),
            "file": f"claims/{period}/T200.csv",
            "line": i + 2,
            "record_key": str(i),
            "reason": reason,
            "message": "a test record",
            "payload": None,
            "rows": 1,
        }
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=catalog_table(QUARANTINE).polars_schema())


def _claims(versions: dict[str, tuple[str, int]]) -> pl.DataFrame:
    """``silver.claims`` rows: statement id -> (delivery id, day of April it was delivered)."""
    schema = catalog_table(CLAIMS).polars_schema()
    rows = [
        {
            "spec_id": spec_id,
            "claim_month": "2025-03",
            "delivery_id": delivery,
            "delivered_at": datetime(2025, 4, day, tzinfo=UTC),
        }
        for spec_id, (delivery, day) in versions.items()
    ]
    return pl.DataFrame(rows, schema=schema)


def _delivery_of(rows: pl.DataFrame) -> dict[str, str]:
    return dict(zip(rows["spec_id"], rows["delivery_id"], strict=True))


def test_append_creates_the_table_with_the_catalogue_schema() -> None:
    """Columns come in the catalogue's order and types whatever the frame's; a frame missing a
    declared column is refused with its name."""
    frame = _records("2025-03", 3)
    result = delta.append(QUARANTINE, frame.select(reversed(frame.columns)))
    stored = lake.frame(QUARANTINE)
    assert result.rows == 3 and stored.height == 3
    assert dict(stored.schema) == dict(catalog_table(QUARANTINE).polars_schema())
    with pytest.raises(ValueError, match=r"missing columns \['payload'\]"):
        delta.append(QUARANTINE, frame.drop("payload"))
    assert lake.frame(QUARANTINE).height == 3


def test_replace_touches_only_the_rows_its_predicate_names() -> None:
    delta.append(QUARANTINE, pl.concat([_records("2025-03", 3), _records("2025-04", 4)]))
    delta.replace(QUARANTINE, _records("2025-03", 2, "wrong_encoding"), "period = '2025-03'")
    stored = lake.frame(QUARANTINE)
    by_period = dict(stored.group_by("period").len().iter_rows())
    assert by_period == {"2025-03": 2, "2025-04": 4}
    march = stored.filter(pl.col("period") == "2025-03")
    assert set(march["reason"]) == {"wrong_encoding"}
    delta.replace(QUARANTINE, _records("2025-03", 0), "period = '2025-03'")
    assert lake.frame(QUARANTINE)["period"].to_list() == ["2025-04"] * 4


def test_merge_keeps_the_latest_delivery_whatever_the_order() -> None:
    """A rerun of an older delivery never undoes a later correction (``newer``)."""
    delta.merge(CLAIMS, _claims({"A": ("202504", 10), "B": ("202504", 10)}), newer="delivered_at")
    delta.merge(CLAIMS, _claims({"A": ("202505", 12), "C": ("202505", 12)}), newer="delivered_at")
    delta.merge(CLAIMS, _claims({"A": ("202504", 10), "B": ("202504", 10)}), newer="delivered_at")
    assert _delivery_of(lake.frame(CLAIMS)) == {"A": "202505", "B": "202504", "C": "202505"}


def test_an_insert_only_merge_never_rewrites_a_stored_row() -> None:
    delta.merge(CLAIMS, _claims({"A": ("first", 10)}), insert_only=True)
    delta.merge(CLAIMS, _claims({"A": ("second", 20), "B": ("second", 20)}), insert_only=True)
    assert _delivery_of(lake.frame(CLAIMS)) == {"A": "first", "B": "second"}


def test_concurrent_writers_all_land(caplog: pytest.LogCaptureFixture) -> None:
    """Four threads merge statements into one partition at once, each also updating one shared
    statement. Each merge rewrites the file the others read, so Delta's optimistic concurrency
    fails the commits that lose the race; the module retries them, and every statement lands."""
    delta.merge(CLAIMS, _claims({"seed": ("0", 1)}))
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for n in range(3):
                rows = {"seed": (f"{thread}-{n}", 1), f"{thread}-{n}": (str(thread), 1)}
                delta.merge(CLAIMS, _claims(rows))
        except BaseException as exc:  # kept, and reported by the assertion below
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="lakehouse.delta"):
        threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert set(lake.frame(CLAIMS)["spec_id"]) == {"seed"} | {
        f"{t}-{n}" for t in range(4) for n in range(3)
    }
    assert any("commit conflict, retrying" in r.message for r in caplog.records)


def test_a_lost_commit_race_is_retried_and_a_persistent_one_is_raised() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise CommitFailedError("another writer committed first")
        return "committed"

    assert delta._retry(flaky, "test") == "committed"
    assert len(attempts) == 3

    def always() -> None:
        raise CommitFailedError("another writer committed first")

    with pytest.raises(CommitFailedError):
        delta._retry(always, "test")


def test_upkeep_compacts_and_vacuums_without_changing_the_rows(lakehouse: Path) -> None:
    for month in range(1, 7):
        delta.replace(QUARANTINE, _records(f"2025-{month:02d}", 5), f"period = '2025-{month:02d}'")
    before = lake.frame(QUARANTINE).sort("period", "line")
    files_before = len(delta.open_table(QUARANTINE).file_uris())
    from pipelines.defs import maintenance
    from pipelines.defs.resources import Lakehouse

    outcome = maintenance.upkeep_job.execute_in_process(
        run_config={"ops": {"compact_and_vacuum": {"config": {"retention_hours": 0}}}},
        resources={"lakehouse": Lakehouse()},
    )
    assert outcome.success
    summary = outcome.output_for_node("compact_and_vacuum")
    assert summary["tables"] == 1 and summary["files_compacted"] == files_before > 1
    assert summary["files_removed"] >= files_before
    assert len(delta.open_table(QUARANTINE).file_uris()) < files_before
    assert lake.frame(QUARANTINE).sort("period", "line").equals(before)
    parquet = list((lakehouse / "quarantine" / "records").rglob("*.parquet"))
    assert len(parquet) == len(delta.open_table(QUARANTINE).file_uris())


def test_appends_reuse_one_handle_and_see_every_other_writer(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access log takes one append per read, so an append must not reopen the table (a
    replay of the commit files each time). Appends from threads of this process and from
    another process interleave; every row lands and each version is the table's latest."""
    delta.append(QUARANTINE, _records("2025-03", 1))
    opened: list[str] = []
    real_open = delta.open_table

    def counting_open(name: str | Table) -> DeltaTable:
        opened.append(str(name))
        return real_open(name)

    monkeypatch.setattr(delta, "open_table", counting_open)
    versions = [delta.append(QUARANTINE, _records("2025-03", 1)).version for _ in range(5)]
    assert len(opened) <= 1
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, polars as pl; from deltalake import write_deltalake; "
            "from lakehouse import delta; "
            "t = delta.spec(sys.argv[1]); "
            "write_deltalake(delta.uri(t.name), pl.read_ipc(sys.argv[2]).to_arrow(), "
            "mode='append', partition_by=list(t.partition_by) or None)",
            QUARANTINE,
            str(_ipc(lakehouse, _records("2025-04", 2))),
        ],
        env={**os.environ, "LAKEHOUSE_URI": str(lakehouse)},
        check=True,
    )
    assert other.returncode == 0
    after = delta.append(QUARANTINE, _records("2025-03", 1)).version
    assert versions == sorted(versions) and after == real_open(QUARANTINE).version()
    assert after == versions[-1] + 2  # the other process's commit sits between them

    def write() -> None:
        for _ in range(3):
            delta.append(QUARANTINE, _records("2025-05", 1))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = dict(lake.frame(QUARANTINE).group_by("period").len().iter_rows())
    assert counts == {"2025-03": 7, "2025-04": 2, "2025-05": 12}


def _ipc(folder: Path, frame: pl.DataFrame) -> Path:
    path = folder.parent / "rows.arrow"
    frame.with_columns(pl.col(pl.Categorical).cast(pl.String)).write_ipc(path)
    return path


def _grown(table: Table, position: int, required: bool = False) -> Table:
    """``table`` as a later catalogue declares it: one more column at ``position``."""
    added = replace(table.columns[-1], name="added_later", type="int", required=required)
    columns = (*table.columns[:position], added, *table.columns[position:])
    return replace(table, columns=columns)


def test_a_column_the_catalogue_gains_reaches_a_table_written_before_it() -> None:
    """A deployed table moves forward with the catalogue: the next write adds the new column
    (wherever the catalogue puts it), the old rows read it as null, and no rebuild is needed."""
    old = catalog_table(QUARANTINE)
    delta.append(old, _records("2025-01", 3))
    new = _grown(old, position=3)
    delta.append(new, _records("2025-02", 2).with_columns(added_later=pl.lit(7)))
    back = lake.frame(new).sort("period")
    assert sorted(back.columns) == sorted(new.names)
    assert back["added_later"].to_list() == [None, None, None, 7, 7]
    assert delta.evolve(new) == []  # already there: nothing to add


def test_a_required_column_the_table_lacks_stops_the_write_with_its_reason() -> None:
    """Old rows hold no value for a column that must never be null: evolving would break the
    catalogue's own rule, so the write stops and says to rebuild."""
    old = catalog_table(QUARANTINE)
    delta.append(old, _records("2025-01", 1))
    with pytest.raises(delta.SchemaError, match="added_later"):
        delta.evolve(_grown(old, position=1, required=True))
