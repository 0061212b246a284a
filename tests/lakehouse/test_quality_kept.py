"""A derived table's checks counted on what it gained (``lakehouse.quality_kept``) against the
whole count (``lakehouse.quality.evaluate``), on a real Delta table through a run of nights:
appends clean and dirty, a compaction, a rewrite, a change of the table a foreign key reads, a
duplicate key, rows in the future and days passing. Every night the two agree in every count and
sample, and the nights that only appended count no check over the whole table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from lakehouse import delta, quality, quality_kept
from lakehouse.catalog import TABLES
from tests.lakehouse.test_quality import citizens, claims, key, write, write_all

CLAIMS = "silver.claims"
FIRST = date(2025, 6, 30)


@pytest.fixture
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    return tmp_path / "lakehouse"


def _rows(night: int, n: int, **changed: Any) -> list[dict[str, Any]]:
    """``n`` claims of one night, clean unless ``changed`` says otherwise."""
    base = claims()[0]
    return [
        {**base, "spec_id": f"N{night:02d}-{i:03d}", "citizen_key": key(1 + i % 3), **changed}
        for i in range(n)
    ]


def _same(day: date) -> list[quality.CheckResult]:
    kept = quality_kept.evaluate(CLAIMS, today=day)
    whole = quality.evaluate(CLAIMS, today=day)
    assert [(r.check.dagster_name, r.rows, r.violations, r.samples, r.note) for r in kept] == [
        (r.check.dagster_name, r.rows, r.violations, r.samples, r.note) for r in whole
    ]
    return kept


class Counted:
    """The checks ``quality_kept`` counted over the whole table, and over appended rows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.whole: list[str] = []
        self.appended: list[str] = []
        real: Callable[..., list[quality.CheckResult]] = quality.count

        def spy(
            con: duckdb.DuckDBPyConnection, table: Any, plans: list[quality.Plan]
        ) -> list[quality.CheckResult]:
            views = con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
            whole = not any(v == "_appended" for (v,) in views)
            (self.whole if whole else self.appended).extend(p.check.type for p in plans)
            return real(con, table, plans)

        monkeypatch.setattr(quality_kept, "count", spy)

    def clear(self) -> None:
        self.whole.clear()
        self.appended.clear()


def test_the_kept_counts_are_the_whole_counts_night_after_night(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_all()
    delta.record_state(CLAIMS, {"derived": True})  # what makes quality_kept keep its counts
    counted = Counted(monkeypatch)
    day = FIRST
    version = delta.version(CLAIMS)
    _same(day)  # the first evaluation counts whole and keeps the counts
    assert counted.whole and not counted.appended

    def night(rows: list[dict[str, Any]]) -> list[quality.CheckResult]:
        counted.clear()
        write(CLAIMS, rows)
        return _same(day)

    found = night(_rows(1, 20))  # clean: every check on the appended rows, the key probed
    assert not counted.whole and len(counted.appended) == len(quality.checks(CLAIMS)) - 1
    assert {r.kept_since for r in found} == {version}

    night(_rows(2, 5, main_dx="XYZ") + _rows(3, 4, end_date=date(2025, 3, 1)))  # dirty values
    assert not counted.whole

    counted.clear()
    delta.optimize(CLAIMS)  # compaction: files rewritten, no row changed
    night(_rows(4, 3, citizen_key=key(99)))  # an unknown citizen: the foreign key
    assert not counted.whole

    night([{**_rows(5, 1)[0], "spec_id": "N01-007"}])  # a key held twice: probed, found, whole
    assert counted.whole == ["isPrimaryKey"]
    night(_rows(6, 3))  # duplicates now kept whole until they are gone
    assert counted.whole == ["isPrimaryKey"]

    future = FIRST + timedelta(days=3)
    night(_rows(7, 2, start_date=future, end_date=future))  # in the future of today
    assert set(counted.whole) == {"isPrimaryKey"}
    for n in range(1, 5):  # the days pass: what was in the future no longer is
        day += timedelta(days=1)
        night(_rows(8 + n, 2))
        # Counted whole while the last count found rows in the future (up to the day before
        # theirs), then kept again.
        assert ("plausibleNotInFuture" in counted.whole) == (n <= 3)

    counted.clear()
    write("silver.citizens", [{**citizens()[0], "citizen_key": key(99)}])  # the key's table
    night(_rows(20, 2))
    assert {"isForeignKey", "plausibleAfterBirth", "plausibleBeforeDeath"} <= set(counted.whole)

    # A rewrite removes files: every check whole, then appends are counted on their own again.
    counted.clear()
    kept = delta.open_table(CLAIMS).to_pyarrow_table().to_pylist()
    fixed = [r for r in kept if r["spec_id"] != "N01-007" or r["citizen_key"] == key(2)]
    delta.replace(CLAIMS, as_claims(fixed), "spec_id IS NOT NULL")
    _same(day)
    assert len(counted.whole) == len(quality.checks(CLAIMS))
    night(_rows(30, 4))
    assert counted.whole in ([], ["plausibleNotInFuture"])

    day -= timedelta(days=2)  # the clock went back: counted whole
    night(_rows(31, 2))
    assert len(counted.whole) == len(quality.checks(CLAIMS))


def test_a_foreign_key_is_kept_while_its_table_keeps_its_keys(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table a foreign key reads rewrote its rows (a night's merge of the citizens it
    touched) but lost no key: the key check that no row broke is counted on the appended rows
    alone. Once that table loses a key, the check is counted whole and finds the rows that
    lost theirs. Every night agrees with the whole count."""
    write_all()
    delta.record_state(CLAIMS, {"derived": True})
    counted = Counted(monkeypatch)
    _same(FIRST)
    people = TABLES["silver.citizens"].polars_schema()

    def rewrite(rows: list[dict[str, Any]]) -> None:
        frame = pl.DataFrame([{c: r.get(c) for c in people} for r in rows], schema=people)
        delta.replace("silver.citizens", frame, "citizen_key IS NOT NULL")

    held = delta.open_table("silver.citizens").to_pyarrow_table().to_pylist()
    rewrite([{**p, "dong_code": "2401002"} for p in held])  # every row rewritten, keys kept
    counted.clear()
    write(CLAIMS, _rows(1, 6))
    (citizen,) = (r for r in _same(FIRST) if r.check.argument == "silver.citizens.citizen_key")
    assert "isForeignKey" in counted.appended and "isForeignKey" not in counted.whole
    assert citizen.violations == 0 and citizen.kept_since is not None
    assert {"plausibleAfterBirth", "plausibleBeforeDeath"} <= set(counted.whole)  # values read

    rewrite([p for p in held if p["citizen_key"] != key(2)])  # a citizen's key is gone
    counted.clear()
    write(CLAIMS, _rows(2, 3))
    (citizen,) = (r for r in _same(FIRST) if r.check.argument == "silver.citizens.citizen_key")
    assert "isForeignKey" in counted.whole
    assert citizen.violations > 0 and citizen.kept_since is None  # that citizen's rows, whole


def as_claims(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows read back from the claims table as a frame of its catalogue schema (to write back)."""
    schema = TABLES[CLAIMS].polars_schema()
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def test_a_table_that_records_nothing_is_counted_whole_and_keeps_nothing(
    lakehouse: Path,
) -> None:
    """Silver tables are written by several runs at once: no property commit races them."""
    write_all()
    quality_kept.evaluate(CLAIMS, today=FIRST)
    assert delta.read_state(CLAIMS, delta.CHECKED_PROPERTY) == {}


def test_more_rows_appended_than_are_held_in_memory_are_counted_whole(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month of claims reaching a derived table is counted as DuckDB streams the table, not
    held in memory to be counted on its own."""
    write_all()
    delta.record_state(CLAIMS, {"derived": True})
    _same(FIRST)
    counted = Counted(monkeypatch)
    monkeypatch.setattr(quality_kept, "APPENDED_MOST", 10)
    write(CLAIMS, _rows(1, 11))
    _same(FIRST)
    assert len(counted.whole) == len(quality.checks(CLAIMS)) and not counted.appended
    counted.clear()
    write(CLAIMS, _rows(2, 10))
    _same(FIRST)
    assert not counted.whole and counted.appended
