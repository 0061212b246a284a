"""What changed in a derived table's sources since it was last computed
(``lakehouse.delta.changed_rows``, ``pipelines.defs.since``): the rows of the files a source
added or removed since the recorded version, or "recompute whole" when that cannot be known."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse import delta
from lakehouse.catalog import table as catalog_table
from pipelines.defs.since import since
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]

SOURCE = "silver.centre_measurements"  # partitioned by day
TARGET = "gold.programme_uptake_daily"
COLUMNS = ("member_no", "measured_on")


def _rows(day: date, *members: str) -> pl.DataFrame:
    schema = catalog_table(SOURCE).polars_schema()
    rows = pl.DataFrame(
        {
            "measurement_id": [f"M{day:%m%d}{i}" for i in range(len(members))],
            "member_no": list(members),
            "measured_on": [day] * len(members),
            "device": ["body"] * len(members),
            "measured_at": [datetime(day.year, day.month, day.day, 1, tzinfo=UTC)] * len(members),
            "measure": ["weight_kg"] * len(members),
            "value": [60.0] * len(members),
            "unit": ["kg"] * len(members),
        }
    )
    return rows.with_columns(
        pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in rows.columns
    ).select(schema.names())


def _target() -> None:
    """A derived table to record state in (any gold table will do)."""
    delta.append(TARGET, pl.DataFrame(schema=catalog_table(TARGET).polars_schema()))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    with lake.active():
        delta.append(SOURCE, _rows(date(2025, 3, 1), "BG0000001", "BG0000002"))
        _target()
    return lake


def test_nothing_recorded_means_recompute_whole(lake: Lake) -> None:
    with lake.active():
        found = since(TARGET, {SOURCE: COLUMNS})
    assert found.whole and found.reason == "nothing recorded"


def test_only_the_rows_of_new_files_are_read(lake: Lake) -> None:
    with lake.active():
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        assert not (found := since(TARGET, {SOURCE: COLUMNS})).whole
        assert found.changed(SOURCE) is None  # nothing changed since
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000003"))
        found = since(TARGET, {SOURCE: COLUMNS})
    changed = found.changed(SOURCE)
    assert changed is not None
    assert changed.rows() == [("BG0000003", date(2025, 3, 2))]


def test_a_replaced_partition_gives_its_old_and_new_rows(lake: Lake) -> None:
    with lake.active():
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000003"))
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        delta.replace(SOURCE, _rows(date(2025, 3, 1), "BG0000009"), "measured_on = '2025-03-01'")
        changed = since(TARGET, {SOURCE: COLUMNS}).changed(SOURCE)
    assert changed is not None
    assert sorted(changed["member_no"]) == ["BG0000001", "BG0000002", "BG0000009"]
    assert set(changed["measured_on"]) == {date(2025, 3, 1)}


def test_unreadable_history_or_a_changed_recipe_means_recompute_whole(lake: Lake) -> None:
    with lake.active():
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000003"))
        # A source that any change recomputes whole, and another set of sources: another recipe.
        assert since(TARGET, {SOURCE: ()}).reason == f"{SOURCE} changed"
        assert since(TARGET, {SOURCE: COLUMNS, "silver.citizens": ()}).reason == "another recipe"
        # The files the recorded version held are gone (vacuumed): its changes cannot be known.
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        delta.append(SOURCE, _rows(date(2025, 3, 3), "BG0000004"))
        assert not since(TARGET, {SOURCE: COLUMNS}).whole
        delta.replace(SOURCE, _rows(date(2025, 3, 1), "BG0000009"), "measured_on = '2025-03-01'")
        delta.vacuum(SOURCE, retention_hours=0)
        found = since(TARGET, {SOURCE: COLUMNS})
    assert found.whole and found.reason == f"{SOURCE} version 1 can no longer be read"
