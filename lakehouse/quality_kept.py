"""The catalogue's quality checks of a table that grows by appends, counted on what it gained:
the last counts are kept in the table's properties and the rows appended since are added.

A night at the city appends some 60,000 rows to ``gold.citizen_timeline`` (160 M rows); counting
its 21 checks over the whole table took about a minute of that night (docs/performance.md, "The
city's new day"). A check's count over the table is the count over its old rows plus the count
over the rows appended, as long as the old rows' verdicts cannot have changed:

* **Checks of a row on its own** (required, format, code list, bounds, start before end): add.
* **Not in the future**: today only moves forward, so an old row that was not in the future is
  still not; the count is kept while it was 0 (a row that was in the future may no longer be:
  that count is taken again whole), and taken whole if the clock went back.
* **Foreign keys and life checks** read another table: kept while that table changed no row; a
  foreign key that no row broke is kept too while that table lost no key (``delta.keys_kept``:
  rows rewritten with their keys, as a night's merge of the persons it touched does).
* **Primary keys**: while there was no duplicate, a duplicate now has a key among the appended
  rows; the table is probed for those keys only (one semi-join on the key columns instead of
  grouping every key of the table).

Anything else counts the whole table with ``lakehouse.quality.evaluate``'s own plans: a table
that lost or rewrote a file since (``lakehouse.delta.appended_rows`` says which), a check with
no kept count, a new table version made anew, a check that found violations where keeping them
would not be exact. The result is the whole count's, row for row (``tests/lakehouse/
test_quality_kept.py`` holds it to that over a series of appends, rewrites and compactions).

Only the derived tables (those whose refresh records what it was computed from,
``lakehouse.delta.read_state``) keep counts: one refresh writes such a table at a time, so the
property commit that keeps them never races another writer's append.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import duckdb
import polars as pl

from lakehouse import delta, quality
from lakehouse.delta import exists, spec
from lakehouse.quality import SAMPLES, Check, CheckResult, Plan, count, ident, plan, relation
from lakehouse.read import connect
from lakehouse.schema import Table

# More rows appended than this (a month of the city's claims reaching the timeline) are not
# held in memory to be counted on their own: the table is counted whole, as DuckDB streams it.
APPENDED_MOST: Final = 2_000_000


@dataclass(frozen=True)
class Kept:
    """What the table's properties keep of the last evaluation (``delta.CHECKED_PROPERTY``)."""

    table_id: str
    version: int
    today: date
    references: dict[str, int]
    counts: dict[str, tuple[int, int, tuple[str, ...]]]

    @classmethod
    def read(cls, raw: str | None) -> Kept | None:
        """The counts a table keeps, None when it keeps none or they cannot be read (its checks
        are then counted whole, and kept afresh)."""
        try:
            found = json.loads(raw or "null")
            return cls(
                str(found["table_id"]),
                int(found["version"]),
                date.fromisoformat(found["today"]),
                {str(k): int(v) for k, v in found["references"].items()},
                {
                    str(k): (int(v[0]), int(v[1]), tuple(str(s) for s in v[2]))
                    for k, v in found["counts"].items()
                },
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None

    def as_state(self) -> dict[str, object]:
        return {
            "table_id": self.table_id,
            "version": self.version,
            "today": self.today.isoformat(),
            "references": self.references,
            "counts": {k: [r, v, list(s)] for k, (r, v, s) in sorted(self.counts.items())},
        }


def _references_unchanged(check: Check, before: Kept, now: dict[str, int]) -> bool:
    """Whether every table the check reads besides its own changed no row since ``before``."""
    for ref in check.references:
        old, new = before.references.get(ref, -1), now.get(ref, -1)
        if new < old or (old < 0) != (new < 0):
            return False
        if new > old and delta.row_commits(ref, old, new):
            return False
    return True


def _keys_kept(check: Check, before: Kept, now: dict[str, int]) -> bool:
    """Whether a foreign key's table, though it changed rows since ``before``, lost no key:
    the old rows that met the key then meet it still."""
    if check.type != "isForeignKey":
        return False
    ref, column = str(check.argument).rsplit(".", 1)
    old, new = before.references.get(ref, -1), now.get(ref, -1)
    return 0 <= old <= new and delta.keys_kept(ref, column, old)


def _how(
    check: Check, kept: tuple[int, int, tuple[str, ...]] | None, before: Kept, refs: dict[str, int]
) -> str:
    """How to count one check now: ``added`` (the kept count plus the appended rows'), ``probe``
    (a key check without duplicates: the appended keys probed), or ``whole``. A foreign key
    with no violation stays ``added`` when its table changed rows but lost no key."""
    if kept is None:
        return "whole"
    if not _references_unchanged(check, before, refs) and not (
        kept[1] == 0 and _keys_kept(check, before, refs)
    ):
        return "whole"
    violations = kept[1]
    if check.type == "isPrimaryKey":
        return "probe" if violations == 0 else "whole"
    if check.type == "plausibleNotInFuture" and violations:
        return "whole"  # rows that were in the future may no longer be
    return "added"


def appended_view(
    table: Table, added: pl.DataFrame, present: set[str]
) -> duckdb.DuckDBPyConnection:
    """A connection where ``table``'s view holds only the appended rows (``added``); the other
    tables of ``present``, which its checks may read, are the stored ones. The OMOP report
    (``lakehouse.omop.dq``) counts its appended rows here too."""
    con = connect(sorted(present | {table.name}))  # (an empty list would mean every table)
    con.register("_appended", added.to_arrow())
    con.execute(f"CREATE OR REPLACE VIEW {relation(table.name)} AS SELECT * FROM _appended")
    return con


def _no_duplicate_key(con: duckdb.DuckDBPyConnection, p: Plan, added: pl.DataFrame) -> bool:
    """Whether no key of the appended rows is held by two rows of the table: the table's key
    columns read once and joined with the appended keys, not grouped whole."""
    keys = p.check.columns
    con.register("_appended_keys", added.select(keys).unique().to_arrow())
    on = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM a.{ident(k)}" for k in keys)
    listed = ", ".join(f"t.{ident(k)}" for k in keys)
    found = con.execute(
        f"SELECT count(*) FROM (SELECT {listed} FROM {relation(p.check.table)} AS t "
        f"SEMI JOIN _appended_keys AS a ON {on} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    return found is not None and int(found[0]) == 0


def evaluate(
    table: str | Table, only: Sequence[Check] | None = None, today: date | None = None
) -> list[CheckResult]:
    """``lakehouse.quality.evaluate``, with the same arguments and results: a derived table's
    checks counted on the rows it gained since its last evaluation where that is exact (and
    the counts kept for the next one), any other table's counted whole."""
    t = spec(table)
    if not exists(t) or not delta.read_state(t):
        return quality.evaluate(t, only, today)
    todo = list(only) if only is not None else quality.checks(t)
    present = {n for n in {t.name, *(r for c in todo for r in c.references)} if exists(n)}
    return _counted(t, todo, present, today or quality.today_in_korea())


def _counted(table: Table, todo: list[Check], present: set[str], day: date) -> list[CheckResult]:
    """The results of ``todo`` on the table's latest version, and its counts kept."""
    opened = delta.open_table(table)
    version, table_id = opened.version(), str(opened.metadata().id)
    before = Kept.read(opened.metadata().configuration.get(delta.CHECKED_PROPERTY))
    refs = {r: delta.version(r) for c in todo for r in c.references}
    added = None
    if before and before.table_id == table_id and before.version <= version and day >= before.today:
        added = delta.appended_rows(table, before.version, version, most=APPENDED_MOST)
    ways = [
        _how(c, before.counts.get(c.dagster_name), before, refs)
        if before and added is not None
        else "whole"
        for c in todo
    ]
    plans = [plan(c, table, present, day) for c in todo]
    results: dict[int, CheckResult] = {}
    whole = [i for i, w in enumerate(ways) if w == "whole"]
    con = connect(sorted(present))
    try:
        if before and added is not None:
            kept_or_probed = _added(con, table, present, todo, plans, ways, before, added)
            results |= kept_or_probed
            whole += [i for i, w in enumerate(ways) if w == "probe" and i not in kept_or_probed]
        if whole:
            todo_whole = sorted(whole)
            found = count(con, table, [plans[i] for i in todo_whole])
            results |= dict(zip(todo_whole, found, strict=True))
    finally:
        con.close()
    ordered = [results[i] for i in range(len(todo))]
    now = Kept(
        table_id,
        version,
        day,
        refs,
        {r.check.dagster_name: (r.rows, r.violations, r.samples) for r in ordered},
    )
    # Nothing appended and the same counts: the kept state still holds (a later evaluation
    # steps over the compactions since), and a table nothing changed gets no commit.
    same = (
        before is not None
        and added is not None
        and added.is_empty()
        and (before.references, before.counts) == (now.references, now.counts)
    )
    if not same and before != now:
        delta.record_state(table, now.as_state(), delta.CHECKED_PROPERTY)
    return ordered


def _added(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    present: set[str],
    todo: list[Check],
    plans: list[Plan],
    ways: list[str],
    before: Kept,
    added: pl.DataFrame,
) -> dict[int, CheckResult]:
    """The results of the checks counted on the appended rows (``added``) and of the key checks
    whose probe found no duplicate; a probe that found one is left out (counted whole)."""
    results: dict[int, CheckResult] = {}
    for i in (i for i, w in enumerate(ways) if w == "probe"):
        rows = before.counts[todo[i].dagster_name][0] + added.height
        if added.is_empty() or _no_duplicate_key(con, plans[i], added):
            results[i] = CheckResult(todo[i], rows, 0, (), plans[i].note, before.version)
    adding = [i for i, w in enumerate(ways) if w == "added"]
    if not adding:
        return results
    if added.is_empty():
        new = [CheckResult(todo[i], 0, 0, (), plans[i].note) for i in adding]
    else:
        appended = appended_view(table, added, present)
        try:
            new = count(appended, table, [plans[i] for i in adding])
        finally:
            appended.close()
    for i, found in zip(adding, new, strict=True):
        rows, violations, samples = before.counts[todo[i].dagster_name]
        merged = tuple(sorted({*samples, *found.samples})[:SAMPLES])
        results[i] = CheckResult(
            todo[i],
            rows + found.rows,
            violations + found.violations,
            merged,
            found.note,
            before.version,
        )
    return results
