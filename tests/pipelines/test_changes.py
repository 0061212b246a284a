"""``pipelines.transform.changes``: which groups a recomputed table rewrites and which rows it
appends, so a refresh writes only what changed and the result is the recomputed table."""

from __future__ import annotations

import polars as pl

from pipelines.transform.changes import changes

STORED = pl.DataFrame(
    {"day": [1, 1, 2, 2, 3], "cell": ["a", "b", "a", "b", "a"], "n": [1, 2, 3, 4, 5]}
)


def test_nothing_changed_writes_nothing() -> None:
    assert changes(STORED, STORED, "day").unchanged


def test_rows_gained_by_a_stored_group_are_appended() -> None:
    new = pl.concat([STORED, pl.DataFrame({"day": [3], "cell": ["b"], "n": [6]})])
    found = changes(new, STORED, "day")
    assert found.rewrite == []
    assert found.added.rows() == [(3, "b", 6)]


def test_a_new_group_is_written_whole() -> None:
    new = pl.concat([STORED, pl.DataFrame({"day": [4, 4], "cell": ["a", "b"], "n": [7, 8]})])
    found = changes(new, STORED, "day")
    assert found.rewrite == [4]
    assert found.added.is_empty()


def test_a_changed_or_lost_row_rewrites_its_group_only() -> None:
    new = STORED.with_columns(pl.when(pl.col("day") == 2).then(pl.col("n") * 10).otherwise("n"))
    assert changes(new, STORED, "day").rewrite == [2]
    assert changes(STORED.filter(pl.col("cell") != "b"), STORED, "day").rewrite == [1, 2]


def test_duplicates_and_nulls_are_compared_exactly() -> None:
    doubled = pl.concat([STORED, STORED.filter(pl.col("day") == 3)])
    assert changes(doubled, STORED, "day").rewrite == [3]
    nulls = STORED.with_columns(pl.lit(None, pl.Int64).alias("n"))
    assert changes(nulls, nulls, "day").unchanged
