"""Statistical disclosure control of the count tables city health officials see.

An official sees aggregates only, and a small count is as good as a name: "the one 75+ woman in
Dong-gu who signed up" is a person. So a published table follows a minimum-frequency rule: a
count of 1-10 (``low``..``high``) is suppressed (*primary* suppression). A 0 shows: there is
nobody in it to protect, and hiding zeros would hide most of a sparse table for nothing.

Suppressing small cells alone protects nothing, because the table also publishes its margins: a
district's total minus its shown age groups is the hidden one. So *complementary* cells are
suppressed as well, until no suppressed cell can be worked out from what is shown. The table is
seen as the full cube of the dimensions' values, each extended by a margin value ``TOTAL``
(``"전체"``, "all"), so every margin up to the grand total is a cell of the same cube. Every
additive relation of the table is a combination of *lines*: the cells along one dimension, the
other dimensions fixed (at a value or at ``TOTAL``), and the line's total. Two passes:

1. **Lines** (the textbook rule, cheap and readable): a line with exactly one suppressed cell
   gives that cell away by subtraction, so such a line gets a complement, the smallest non-zero
   shown cell of the line, an inner cell before the line's total (a total is what officials came
   for) and, among equals, the first in the dimensions' sort order. Choices create new lonely
   lines, so this repeats until every line has no suppressed cell or at least two.
2. **Hypercubes** (the classic hypercube heuristic of Repsilber's GHMITER, as in τ-ARGUS): "at
   least two per line" is necessary, not sufficient. A suppressed cell that joins two otherwise
   separate groups of suppressed cells (a bridge) still has two per line, yet the equations of
   the two groups together pin it down. What is sufficient is a suppressed *hypercube*: pick
   two values on every dimension (one may be ``TOTAL``) and suppress the 2^k cells they span.
   Adding +t and -t alternately at its corners (the same sign on both corners of a dimension
   where one is ``TOTAL``) keeps every line's sum and its total consistent, so every corner can
   move and none is determined. The pass checks every suppressed cell, in the cube's order, and
   if no fully suppressed hypercube goes through it, suppresses the cheapest one that does:
   no zero corner, fewest new suppressions, smallest sum of newly hidden counts, then the
   dimensions' sort order. A cell of value v > 0 always has a hypercube without zeros: its
   partner at ``TOTAL`` on each of its inner dimensions (and, on a dimension where it is itself
   a margin, an inner value with a non-zero share of it), so zeros are never suppressed.
   Every cell on a suppressed hypercube also has a suppressed neighbour on each of its lines, so
   the line rule still holds afterwards.

Every choice is a deterministic function of the table (sorted values, ties broken by sort
order), so the same query always publishes the same table, and asking twice gives nothing away.

Residual limits, worth knowing before a table leaves the access layer:

* **Linked tables.** Protection is per table. Two queries over the same people (the same
  period by district and by sex, or two periods differing by a day) can be differenced; this
  module cannot see the other query. So officials are never shown a table protected on its
  own: ``lakehouse.disclosure_audit`` suppresses each measure once for every view (``forced``
  cells carry what linked tables hide), audits the set by linear programming and repairs it,
  and the access layer only slices and sums that published set (docs/disclosure.md).
* **Bounds, not equations.** The guarantee is that no suppressed cell follows from the
  published *equations*. An attacker also knows bounds: a suppressed cell is at least 1 (zeros
  show), and, if the ``status`` column is shown, a ``primary`` cell is at most ``high`` and a
  ``complementary`` one above it. With a line of 1 and 11 under a shown total of 12, the labels
  alone give both away. Show officials a single "suppressed" marker; ``status`` is for audit.
  Since each hypercube corner is at least 1, every suppressed cell can still move by at least
  one in both directions along its hypercube when only ``>= 1`` is known, but no protection
  interval (τ-ARGUS's "protection level", an LP per cell) is computed or promised.
* **Group disclosure.** Zeros show, so "a suppressed 4 in the only non-zero age group" tells
  that every counted person of that district is in that age group; the counts stay hidden, the
  attribute does not.
* **Not optimal.** Both passes are greedy: they may hide more than a minimal suppression
  pattern would (finding that is NP-hard). The hypercube search costs the product of the
  dimensions' sizes per uncovered cell, fine for the platform's few dimensions of a few values.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

TOTAL: Final = "전체"
"""The value of a dimension in a margin row: the sum over all of that dimension's values."""
STATUS: Final = "status"
"""The output column telling why a value is shown or null."""
Status = Literal["shown", "primary", "complementary"]
SHOWN: Final[Status] = "shown"
PRIMARY: Final[Status] = "primary"
COMPLEMENTARY: Final[Status] = "complementary"

_CODES: Final[tuple[Status, ...]] = (SHOWN, PRIMARY, COMPLEMENTARY)
_PRIMARY: Final = 1
_COMPLEMENTARY: Final = 2

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
T = TypeVar("T")


def protect(
    cells: pl.DataFrame, dims: Sequence[str], measure: str, low: int = 1, high: int = 10
) -> pl.DataFrame:
    """The table as it may be published: every cell and margin, small and complementary cells
    suppressed.

    Args:
        cells: One row per finest cell: the ``dims`` as string columns, ``measure`` an integer
            count of at least 0. A combination of the dimensions' values that has no row counts
            as 0 (the table spans the full cross product of the values present). Other columns
            are ignored.
        dims: The dimensions, in the order of the output's columns and sort. None gives the
            grand total alone (``cells`` then has at most one row).
        measure: The count column. The output keeps its name, as ``Int64``.
        low: The smallest count that is suppressed (at least 1: a 0 always shows).
        high: The largest count that is suppressed; from ``high + 1`` on, a count shows unless
            it is needed as a complement.

    Returns:
        The ``dims``, ``measure`` and ``status`` columns, one row per cell of the cube of the
        dimensions' values, each extended by ``TOTAL`` (so every margin, up to the grand total,
        is a row). Rows are sorted by the dimensions in order, values by their sort order with
        ``TOTAL`` last, so the grand total is the last row. ``measure`` is null where
        suppressed, and ``status`` says why: ``shown``, ``primary`` (a count of ``low`` to
        ``high``) or ``complementary`` (hidden so that a primary cell cannot be derived).

    Raises:
        ValueError: On a column missing from ``cells``, a dimension that is not a string
            column or that holds nulls or ``TOTAL``, a measure that is not an integer column or
            has nulls or negative counts, two rows of the same finest cell, repeated or clashing
            column names, or ``low``/``high`` outside ``1 <= low <= high``.
    """
    names = _validate(cells, dims, measure, low, high)
    levels, values = cube(cells, names, measure)
    primary, suppressed = suppress(values, low, high)
    codes = np.where(primary, _PRIMARY, np.where(suppressed, _COMPLEMENTARY, 0))
    # Each cell's index on every dimension, its count and its status, cells in C order (the
    # output's row order), turned into labels in one pass.
    flat = pl.DataFrame(
        {
            **{d: c.ravel() for d, c in zip(names, np.indices(values.shape), strict=True)},
            measure: values.ravel(),
            STATUS: codes.ravel(),
        }
    )
    return flat.select(
        *(
            pl.lit(pl.Series([*level, TOTAL], dtype=pl.String)).gather(pl.col(d)).alias(d)
            for d, level in zip(names, levels, strict=True)
        ),
        pl.when(pl.col(STATUS) == 0).then(pl.col(measure)).cast(pl.Int64).alias(measure),
        pl.lit(pl.Series(_CODES, dtype=pl.String)).gather(pl.col(STATUS)).alias(STATUS),
    )


def _validate(
    cells: pl.DataFrame, dims: Sequence[str], measure: str, low: int, high: int
) -> list[str]:
    """The dimensions as a list, once the arguments are known to make a table."""
    if isinstance(dims, str):
        raise ValueError(f"dims is a sequence of column names, not the string {dims!r}")
    names = list(dims)
    if len(set(names)) != len(names):
        raise ValueError(f"dimensions repeat: {names}")
    if measure in names:
        raise ValueError(f"{measure!r} is both a dimension and the measure")
    if STATUS in (*names, measure):
        raise ValueError(f"{STATUS!r} is the output's status column; rename the input column")
    missing = [c for c in (*names, measure) if c not in cells.columns]
    if missing:
        raise ValueError(f"unknown columns {missing}; the table has {cells.columns}")
    if not 1 <= low <= high:
        raise ValueError(f"need 1 <= low <= high, got low={low}, high={high}")
    for d in names:
        if cells.schema[d] != pl.String:
            raise ValueError(f"dimension {d!r} is {cells.schema[d]}, not a string column")
    if not cells.schema[measure].is_integer():
        raise ValueError(f"measure {measure!r} is {cells.schema[measure]}, not an integer count")
    # Every check on the values in one scan; the first failing one, in this order, is reported.
    found = cells.select(
        *(pl.col(d).is_null().any().alias(f"dimension {d!r} has nulls") for d in names),
        *(
            (pl.col(d) == TOTAL)
            .any()
            .alias(f"dimension {d!r} holds {TOTAL!r}, the reserved margin value")
            for d in names
        ),
        pl.col(measure).is_null().any().alias(f"measure {measure!r} has nulls"),
        (pl.col(measure) < 0).any().alias(f"measure {measure!r} has negative counts"),
        (pl.struct(names).is_duplicated().any() if names else pl.len() > 1).alias(
            f"several rows for the same finest cell of {names or 'the total'}"
        ),
    ).row(0, named=True)
    for problem, present in found.items():
        if present:
            raise ValueError(problem)
    return names


def suppress(
    values: Ints, low: int = 1, high: int = 10, forced: Flags | None = None
) -> tuple[Flags, Flags]:
    """The two passes on a cube of counts with its margins (``cube``): which cells are primary
    (``low`` to ``high``) and which are suppressed (primary, ``forced`` and their complements).

    Args:
        values: The counts, the last index of each axis its margin.
        low: The smallest count that is suppressed.
        high: The largest count that is suppressed.
        forced: Cells to hide besides the primary ones (a table linked to this one hides
            them, or an audit found they must go, ``lakehouse.disclosure_audit``); the passes
            then protect them like any other. A forced zero is hidden too.
    """
    suppressed = np.array((values >= low) & (values <= high), dtype=np.bool_)  # 0-d stays array
    primary = suppressed.copy()
    if forced is not None:
        suppressed |= forced
    _complete_lines(values, suppressed)
    _close_hypercubes(values, suppressed)
    return primary, suppressed


def cube(cells: pl.DataFrame, dims: list[str], measure: str) -> tuple[list[list[str]], Ints]:
    """Each dimension's values in sort order, and the counts as a cube with one axis per
    dimension; the last index of each axis is its margin (``TOTAL``), so ``cube[i, -1]`` is
    the total of the first dimension's i-th value. ``cells`` are as ``protect`` takes them."""
    levels: list[list[str]] = (
        list(cells.select(pl.col(d).unique().sort().implode() for d in dims).row(0)) if dims else []
    )
    inner = np.zeros([len(level) for level in levels], dtype=np.int64)
    if cells.height:
        found = cells.select(
            *(pl.col(d).rank("dense").cast(pl.Int64) - 1 for d in dims),  # its index in levels
            pl.col(measure).cast(pl.Int64),
        )
        index = tuple(found[d].to_numpy() for d in dims)
        counts = found[measure].to_numpy()
        inner[index] = counts if dims else counts.sum()  # no dimensions: one row at most
    full = inner
    for axis in range(full.ndim):
        full = np.concatenate([full, full.sum(axis=axis, keepdims=True)], axis=axis)
    return levels, full


def _complete_lines(values: Ints, suppressed: Flags) -> None:
    """Pass 1: give every line with a single suppressed cell a complement, until none is left.

    Lines along one axis are disjoint, so one axis's lonely lines are all settled before the
    counts are taken again for the next axis.
    """
    flat_values, flat_suppressed = values.ravel(), suppressed.ravel().copy()
    positions = np.arange(values.size, dtype=np.int64).reshape(values.shape)
    lines = [
        np.moveaxis(positions, axis, -1).reshape(-1, values.shape[axis])
        for axis in range(values.ndim)
        if values.shape[axis] > 1
    ]
    changed = True
    while changed:
        changed = False
        for line in lines:
            for members in line[flat_suppressed[line].sum(axis=1) == 1]:
                last = len(members) - 1
                free = [i for i in range(len(members)) if not flat_suppressed[members[i]]]
                choice = min(
                    free,
                    key=lambda i: (
                        flat_values[members[i]] == 0,  # never a zero while something else can go
                        i == last,  # an inner cell before the line's total
                        flat_values[members[i]],
                        i,
                    ),
                )
                flat_suppressed[members[choice]] = True
                changed = True
    suppressed[...] = flat_suppressed.reshape(values.shape)


def _close_hypercubes(values: Ints, suppressed: Flags) -> None:
    """Pass 2: put every suppressed cell on a fully suppressed hypercube.

    A hypercube through a cell is one partner index per axis (any other index of that axis,
    margin included); its corners are the 2^k cells mixing the cell's and the partners' indices.
    """
    if not values.ndim:
        return  # the grand total alone: nothing it could be derived from
    corners = list(product((False, True), repeat=values.ndim))
    covered = np.zeros_like(suppressed)
    for cell in (tuple(int(i) for i in c) for c in np.argwhere(suppressed)):
        if covered[cell]:
            continue
        chosen = _suppressed_hypercube(suppressed, cell, corners)
        if chosen is None:
            chosen = _cheapest_hypercube(values, suppressed, cell, corners)
        for corner in corners:
            at = _corner(chosen, corner, cell)
            suppressed[at] = covered[at] = True


def _corner(
    partners: Sequence[T], corner: tuple[bool, ...], cell: tuple[int, ...]
) -> tuple[T | int, ...]:
    """The index of one corner: the partner's index on the axes where ``corner`` is set."""
    return tuple(p if far else c for p, far, c in zip(partners, corner, cell, strict=True))


def _suppressed_hypercube(
    suppressed: Flags, cell: tuple[int, ...], corners: list[tuple[bool, ...]]
) -> list[int] | None:
    """The partners of a fully suppressed hypercube through ``cell``, if there is one. Its
    partner on each axis is a suppressed neighbour of the cell along that axis, which keeps the
    search small."""
    partners = []
    for axis, c in enumerate(cell):
        along: list[int | slice] = list(cell)
        along[axis] = slice(None)
        near = np.flatnonzero(suppressed[tuple(along)])
        partners.append(near[near != c])
    if any(not len(p) for p in partners):
        return None
    grid = np.meshgrid(*partners, indexing="ij")
    hidden = np.ones(grid[0].shape, dtype=np.bool_)
    for corner in corners:
        hidden &= suppressed[_corner(grid, corner, cell)]
    found = np.flatnonzero(hidden.ravel())
    return [int(g.ravel()[found[0]]) for g in grid] if found.size else None


def _cheapest_hypercube(
    values: Ints, suppressed: Flags, cell: tuple[int, ...], corners: list[tuple[bool, ...]]
) -> list[int]:
    """The partners of the hypercube through ``cell`` that is cheapest to suppress: no zero
    corner, fewest new suppressions, smallest sum of newly hidden counts, first in order."""
    partners = [
        np.array([i for i in range(n) if i != c], dtype=np.int64)
        for c, n in zip(cell, values.shape, strict=True)
    ]
    grid = np.meshgrid(*partners, indexing="ij")
    new = np.zeros(grid[0].shape, dtype=np.int64)
    hidden = np.zeros(grid[0].shape, dtype=np.int64)
    zero = np.zeros(grid[0].shape, dtype=np.bool_)
    for corner in corners:
        at = _corner(grid, corner, cell)
        v, s = values[at], suppressed[at]
        new += ~s
        hidden += np.where(s, 0, v)
        zero |= v == 0
    # A stable sort: among equal costs, the first hypercube in the dimensions' sort order.
    best = np.lexsort((hidden.ravel(), new.ravel(), zero.ravel()))[0]
    return [int(g.ravel()[best]) for g in grid]
