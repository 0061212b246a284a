"""What a recomputed table changes in its stored rows, group by group: so a nightly refresh writes
only what changed, and a new day adds files instead of rewriting the table.

Gold is recomputed from silver (a correction can touch any month), but written by difference. The
rows are compared whole with the stored ones of the same groups (a key bucket, a day):

* a stored group that only gained rows (a new day's measurements in a key bucket) gets them
  appended: new files, none of the stored ones rewritten;
* a new group (a new day's cells) is written by the same predicate write as a changed one: no
  stored file holds its rows, so the write adds files and removes none (delta-rs skips files by
  their statistics), and the new files get the writer's layout (row groups);
* a group that lost or changed a row, or whose row count does not add up (duplicate rows), is
  replaced whole, in one commit, as before;
* a group with no difference is not written at all.

The result is exactly the recomputed table, whatever changed; only the files written differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Changes:
    """How to bring the stored rows of some groups to the recomputed ones.

    Attributes:
        rewrite: The groups to write whole with their recomputed rows: new groups, and stored
            ones that lost or changed rows.
        added: The rows to append: new rows of stored groups that lost none.
    """

    rewrite: list[object]
    added: pl.DataFrame

    @property
    def unchanged(self) -> bool:
        return not self.rewrite and self.added.is_empty()


def changes(new: pl.DataFrame, stored: pl.DataFrame, group: str) -> Changes:
    """Compare recomputed rows with the stored rows of the same groups.

    Args:
        new: The recomputed rows of some groups (every group's whole set of rows).
        stored: The stored rows of the same groups, with the same columns (conformed to the
            catalogue, as read back).
        group: The column the writes are bounded by (a partition column, or a column the
            files' statistics bound, such as a day).
    """
    stored = stored.select(new.columns).cast(new.schema)
    gone = stored.join(new, on=new.columns, how="anti", nulls_equal=True)
    fresh = new.join(stored, on=new.columns, how="anti", nulls_equal=True)
    counts = (
        new.group_by(group)
        .len("new")
        .join(stored.group_by(group).len("stored"), on=group, how="full", coalesce=True)
        .join(fresh.group_by(group).len("fresh"), on=group, how="left")
        .fill_null(0)
    )
    # Duplicate rows hide from an anti-join: a group whose counts do not add up is rewritten.
    uneven = counts.filter(
        (pl.col("stored") + pl.col("fresh") != pl.col("new")) | (pl.col("stored") == 0)
    )[group]
    rewrite = sorted(set(gone[group].to_list()) | set(uneven.to_list()))
    return Changes(rewrite, fresh.filter(~pl.col(group).is_in(rewrite)))
