"""What changed in a derived table's sources since it was last computed: so the nightly gold and
OMOP refreshes recompute only the citizens and days a new day touched, not the whole city.

A derived table records, after its data commits, the version of each source it read
(``lakehouse.delta.record_state``). The next refresh opens each source's newest version and reads
the rows of the files added or removed in between (``lakehouse.delta.changed_rows``: a superset
of the rows that changed, which is all a key needs): their keys are what to recompute. Whenever
that cannot be known, the refresh recomputes the whole table, as a first build does:

* the table records nothing (never built, rebuilt from scratch, a lakehouse from before this);
* it was computed by another recipe (``RECIPE``, or its sources or columns changed);
* it was written since by anything but its refresh (a repair, a hand-made fix; the weekly
  upkeep's ``optimize`` and ``vacuum`` change no row and do not count);
* a source was recreated (its version went back) or its old files are vacuumed;
* a source whose every row can change every derived row changed (``WHOLE``: the institution
  register names every visit, a partner's holder name every partner row).

The versions recorded are those opened *before* reading: a write landing during the refresh
is read now and again next time, never missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from lakehouse import delta
from lakehouse.catalog import table as catalog_table

# Bump when a derived table's recipe changes in a way its stored rows do not show (same columns,
# other values): every table recorded under an older recipe is recomputed whole once.
RECIPE: Final = 1
# A source whose changes are read by these columns: no columns means any change recomputes all.
WHOLE: Final[tuple[str, ...]] = ()


@dataclass(frozen=True)
class Since:
    """What changed in one derived table's sources.

    Attributes:
        versions: Each source's version now (-1 when absent): what to record after writing.
        rows: Per changed source, the rows of its added or removed files (in the columns asked
            for); None when the table must be recomputed whole, and why in ``reason``.
        before: What the table recorded last time (its ``extra`` included).
        reason: Why the whole table is recomputed (None when it is not).
    """

    versions: dict[str, int]
    rows: dict[str, pl.DataFrame] | None
    before: dict[str, object]
    reason: str | None = None

    @property
    def whole(self) -> bool:
        return self.rows is None

    def changed(self, name: str) -> pl.DataFrame | None:
        """The changed rows of one source (None when it did not change)."""
        return None if self.rows is None else self.rows.get(name)

    def record(self, target: str, **extra: object) -> None:
        """Record in ``target`` that it now reflects ``versions`` (after its data commits), and
        the version that record makes: a commit after it is another writer's."""
        state = _state(target, self.versions, extra) | {"own": delta.version(target) + 1}
        delta.record_state(target, state)


def _recipe(target: str, sources: Mapping[str, object]) -> str:
    columns = ",".join(catalog_table(target).names)
    return f"{RECIPE}|{columns}|{','.join(sorted(sources))}"


def _state(target: str, versions: dict[str, int], extra: dict[str, object]) -> dict[str, object]:
    return {"recipe": _recipe(target, versions), "versions": versions, "extra": extra}


def _other(target: str, sources: Mapping[str, object], before: dict[str, object]) -> str | None:
    """Why ``target``'s stored rows are not what its recorded computation made, if they are not."""
    if before.get("recipe") != _recipe(target, sources):
        return "another recipe"
    own = before.get("own")
    if not isinstance(own, int) or own > delta.version(target) or delta.row_commits(target, own):
        return "written since by another writer"  # the upkeep's rewrites do not count
    return None


def since(target: str, sources: Mapping[str, tuple[str, ...]]) -> Since:
    """What changed in ``sources`` since ``target`` was last computed.

    Args:
        target: The derived table.
        sources: Each source table and the columns of its changed rows the caller keys on
            (``WHOLE``: any change recomputes everything).
    """
    versions = {name: delta.version(name) for name in sources}
    before = delta.read_state(target)
    old = before.get("versions")

    def whole(reason: str) -> Since:
        return Since(versions, None, before, reason)

    if not isinstance(old, dict) or not delta.exists(target):
        return whole("nothing recorded")
    if reason := _other(target, sources, before):
        return whole(reason)
    rows: dict[str, pl.DataFrame] = {}
    for name, columns in sources.items():
        then, now = int(old.get(name, -1)), versions[name]
        if now < then:
            return whole(f"{name} was recreated")
        if then == now or not delta.row_commits(name, then, now):
            continue  # nothing, or only the upkeep's rewrites, since
        if not columns:
            return whole(f"{name} changed")
        found = delta.changed_rows(name, then, columns, until=now)
        if found is None:
            return whole(f"{name} version {then} can no longer be read")
        rows[name] = found
    return Since(versions, rows, before)


def values(frame: pl.DataFrame | None, column: str) -> set[str]:
    """The distinct non-null values of a column of changed rows (none when no change)."""
    if frame is None or frame.is_empty():
        return set()
    return {v for v in frame[column].drop_nulls().unique().to_list() if v is not None}
