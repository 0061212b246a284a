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


def test_the_upkeeps_optimize_and_vacuum_are_no_change(lake: Lake) -> None:
    """The weekly upkeep rewrites files without changing a row: the night after reads only the
    day's own rows, and an optimized derived table still counts as its refresh's own."""
    with lake.active():
        delta.append(SOURCE, _rows(date(2025, 3, 1), "BG0000003"))  # two files in one day
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        assert delta.optimize(SOURCE)["numFilesRemoved"] == 2
        delta.vacuum(SOURCE, retention_hours=168)
        found = since(TARGET, {SOURCE: ()})  # even a source any change recomputes whole
        assert not found.whole and found.changed(SOURCE) is None
        # A day before the upkeep, the upkeep, a day after: both days' rows, none compacted.
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000004"))
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000005"))
        delta.optimize(SOURCE)
        delta.append(SOURCE, _rows(date(2025, 3, 3), "BG0000006"))
        delta.append(TARGET, pl.DataFrame(schema=catalog_table(TARGET).polars_schema()))
        delta.append(TARGET, pl.DataFrame(schema=catalog_table(TARGET).polars_schema()))
        # The derived table's own appends are not recorded as its refresh's: another writer.
        assert since(TARGET, {SOURCE: COLUMNS}).reason == "written since by another writer"
        since(TARGET, {SOURCE: COLUMNS}).record(TARGET)
        delta.append(SOURCE, _rows(date(2025, 3, 4), "BG0000007"))
        delta.optimize(SOURCE)
        delta.optimize(TARGET)
        found = since(TARGET, {SOURCE: COLUMNS})
        assert not found.whole, found.reason
        changed = found.changed(SOURCE)
        assert changed is not None and changed.rows() == [("BG0000007", date(2025, 3, 4))]


def test_changed_rows_steps_over_a_compaction_in_between(lake: Lake) -> None:
    with lake.active():
        start = delta.version(SOURCE)
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000004"))
        delta.append(SOURCE, _rows(date(2025, 3, 2), "BG0000005"))
        delta.optimize(SOURCE)  # the two files above become one, with the same rows
        delta.append(SOURCE, _rows(date(2025, 3, 3), "BG0000006"))
        delta.replace(SOURCE, _rows(date(2025, 3, 2), "BG0000009"), "measured_on = '2025-03-02'")
        changed = delta.changed_rows(SOURCE, start, COLUMNS)
        rowless = delta.row_commits(SOURCE, start)
    assert changed is not None
    # Added then compacted (still read from the files the compaction removed), the compacted
    # file the replace removed, the replace's and the last day's: nothing of 2025-03-01.
    assert sorted(changed["member_no"]) == [
        "BG0000004", "BG0000004", "BG0000005", "BG0000005", "BG0000006", "BG0000009",
    ]  # fmt: skip
    assert len(rowless) == 4  # two appends, the day, the replace: not the optimize
