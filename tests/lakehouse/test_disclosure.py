"""Disclosure control of officials' aggregates: hand-computed tables, and, over many random
tables, the strong property that no suppressed count follows from what is published.

The oracle here is independent of the module: it rebuilds the cube from the published rows,
recomputes every margin from the input rows, writes every additive relation as a linear
equation and asks numpy whether a suppressed cell is fixed by the equations (its unit vector
lies in the row space of the equations restricted to the unknowns, i.e. every null vector is
zero there).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import polars as pl
import pytest

from lakehouse.disclosure import COMPLEMENTARY, PRIMARY, SHOWN, STATUS, TOTAL, protect

pytestmark = pytest.mark.security

Key = tuple[str, ...]
TOL = 1e-9


def table(dims: list[str], rows: list[tuple[Any, ...]], measure: str = "n") -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={**dict.fromkeys(dims, pl.String), measure: pl.Int64},
        orient="row",
    )


def published(out: pl.DataFrame, dims: list[str], measure: str = "n") -> dict[Key, Any]:
    """Each row's value (None when suppressed) and status, by its dimension values."""
    return {tuple(r[:-2]): (r[-2], r[-1]) for r in out.select(*dims, measure, STATUS).rows()}


def hidden(out: pl.DataFrame, dims: list[str], status: str) -> set[Key]:
    return {tuple(r) for r in out.filter(pl.col(STATUS) == status).select(dims).rows()}


# --- the oracle -------------------------------------------------------------------------------


def relations(shape: tuple[int, ...]) -> np.ndarray:
    """Every line of the extended cube (last index of an axis = its margin) as one equation:
    +1 on the line's inner cells, -1 on its total, over the cube's cells in C order."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    rows = []
    for axis, n in enumerate(shape):
        others = [range(m) for a, m in enumerate(shape) if a != axis]
        for fixed in itertools.product(*others):
            at = list(fixed)
            line = [index[(*at[:axis], i, *at[axis:])] for i in range(n)]
            row = np.zeros(index.size, dtype=np.int64)
            row[line[:-1]] = 1
            row[line[-1]] = -1
            rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(-1, index.size)


def determined(equations: np.ndarray, suppressed: np.ndarray) -> np.ndarray:
    """For each suppressed cell (C order), whether the published equations fix its value.

    The shown cells are known, so they move to the right-hand side; x_i is fixed iff e_i is in
    the row space of the equations restricted to the unknowns, i.e. iff every null vector is 0
    at i. Reduced row echelon form gives both: a free column is never fixed, and a pivot column
    is fixed iff its row is 0 on every free column. (Plain elimination in numpy rather than
    LAPACK's SVD: threaded BLAS on a busy machine made the SVD fifty times slower.)
    """
    unknown = np.flatnonzero(suppressed.ravel())
    a = equations[:, unknown].astype(float)
    pivots: list[int] = []
    for col in range(a.shape[1]):
        row = len(pivots)
        if row == a.shape[0]:
            break
        best = row + int(np.argmax(np.abs(a[row:, col])))
        if abs(a[best, col]) < TOL:
            continue
        a[[row, best]] = a[[best, row]]
        a[row] /= a[row, col]
        factors = a[:, col].copy()
        factors[row] = 0.0
        a -= factors[:, None] * a[row][None, :]
        pivots.append(col)
    free = np.ones(unknown.size, dtype=bool)
    free[pivots] = False
    fixed = np.zeros(unknown.size, dtype=bool)
    for row, col in enumerate(pivots):
        fixed[col] = bool((np.abs(a[row, free]) < TOL).all())
    return fixed


def determined_by_rank(equations: np.ndarray, suppressed: np.ndarray) -> np.ndarray:
    """The same by the definition, with LAPACK: x_i is fixed iff adding e_i as an equation does
    not raise the rank."""
    a = equations[:, np.flatnonzero(suppressed.ravel())].astype(float)
    rank = np.linalg.matrix_rank(a) if a.size else 0
    return np.array(
        [np.linalg.matrix_rank(np.vstack([a, unit])) == rank for unit in np.eye(a.shape[1])],
        dtype=bool,
    )


def cube(out: pl.DataFrame, dims: list[str], measure: str = "n") -> tuple[Any, ...]:
    """The published table as an extended cube: levels (``TOTAL`` last), true margins of the
    input (``truth``), published values and statuses; checks the output lists each cell once,
    in order."""
    levels = [[*sorted(v for v in out[d].unique().to_list() if v != TOTAL), TOTAL] for d in dims]
    shape = tuple(len(level) for level in levels)
    expected = [tuple(k) for k in itertools.product(*levels)]
    assert [tuple(r) for r in out.select(dims).rows()] == expected  # complete, once, in order
    value = np.array([-1 if v is None else v for v in out[measure]]).reshape(shape)
    status = np.array(out[STATUS].to_list()).reshape(shape)
    return levels, shape, value, status


def truth(cells: pl.DataFrame, dims: list[str], levels: list[list[str]]) -> np.ndarray:
    """Every cell and margin, summed straight from the input rows: each row counts towards the
    2^k cells that keep or replace by ``TOTAL`` each of its dimension values."""
    sums: dict[Key, int] = {}
    for *values, n in cells.select(*dims, "n").rows():
        for keep in itertools.product((True, False), repeat=len(dims)):
            key = tuple(v if k else TOTAL for v, k in zip(values, keep, strict=True))
            sums[key] = sums.get(key, 0) + n
    shape = tuple(len(level) for level in levels)
    return np.array([sums.get(k, 0) for k in itertools.product(*levels)]).reshape(shape)


def check(cells: pl.DataFrame, dims: list[str], low: int = 1, high: int = 10) -> np.ndarray:
    """Every property of a published table; returns its suppressed cells."""
    out = protect(cells, dims, "n", low, high)
    levels, shape, value, status = cube(out, dims)
    true = truth(cells, dims, levels)
    suppressed = status != SHOWN
    # Shown values are the true sums; suppressed ones are null.
    assert (value[~suppressed] == true[~suppressed]).all()
    assert (value[suppressed] == -1).all()
    # Primary exactly on low..high; zeros and complements outside it; zeros never hidden.
    small = (true >= low) & (true <= high)
    assert ((status == PRIMARY) == small).all()
    assert not (suppressed & (true == 0)).any()
    assert ((status == COMPLEMENTARY) <= (~small & (true > 0))).all()
    # Every line has no suppressed cell or at least two.
    equations = relations(shape)
    per_line = np.abs(equations) @ suppressed.ravel().astype(np.int64)
    assert not (per_line == 1).any()
    # The strong property: no suppressed count follows from the published equations.
    fixed = determined(equations, suppressed)
    assert not fixed.any(), np.argwhere(suppressed)[fixed]
    return suppressed


def random_table(rng: np.random.Generator, shape: tuple[int, ...]) -> pl.DataFrame:
    """A table of the given shape: some zeros, some small counts, some large, some rows missing
    (absent combinations count as 0; a value absent from every row is not a level)."""
    zeros, small = rng.uniform(0, 0.7), rng.uniform(0, 0.8)
    draw = rng.random(shape)
    counts = np.where(
        draw < zeros,
        0,
        np.where(
            draw < zeros + (1 - zeros) * small,
            rng.integers(1, 11, shape),
            rng.integers(11, 400, shape),
        ),
    )
    dims = [f"d{a}" for a in range(len(shape))]
    rows = [
        (*(f"{d}_{i}" for d, i in zip(dims, index, strict=True)), int(counts[index]))
        for index in itertools.product(*(range(n) for n in shape))
        if counts[index] or rng.random() < 0.5
    ]
    return table(dims, rows)


# --- hand-computed tables ---------------------------------------------------------------------


def test_one_small_district_is_complemented_by_the_smallest_other() -> None:
    cells = table(
        ["district"], [("동구", 5), ("서구", 40), ("남구", 30), ("북구", 100), ("광산구", 80)]
    )
    out = protect(cells, ["district"], "n")
    assert out.rows() == [  # sorted, the total last
        ("광산구", 80, SHOWN),
        ("남구", None, COMPLEMENTARY),  # the smallest other: 30
        ("동구", None, PRIMARY),
        ("북구", 100, SHOWN),
        ("서구", 40, SHOWN),
        (TOTAL, 255, SHOWN),  # the total stays: an inner complement is preferred
    ]
    assert out.schema == pl.Schema({"district": pl.String, "n": pl.Int64, STATUS: pl.String})
    check(cells, ["district"])


def test_zeros_show_and_are_never_complements() -> None:
    cells = table(["district"], [("A", 0), ("B", 7), ("C", 0), ("D", 0), ("E", 250)])
    out = published(protect(cells, ["district"], "n"), ["district"])
    assert out == {
        ("A",): (0, SHOWN),
        ("B",): (None, PRIMARY),
        ("C",): (0, SHOWN),
        ("D",): (0, SHOWN),
        ("E",): (None, COMPLEMENTARY),  # 250, the only non-zero choice inside the line
        (TOTAL,): (257, SHOWN),
    }


def test_two_dimensions_close_a_rectangle() -> None:
    #      x   y | 전체    A,x = 3 is primary. Column x: its smallest other, B,x = 15; row A:
    #   A  3  20 |  23    A,y = 20; row B now has B,x alone: B,y = 25. Every row and column
    #   B 15  25 |  40    then has two, and {A,B} x {x,y} is a suppressed rectangle (a
    #   C 30  12 |  42    hypercube), so the margins all show.
    cells = table(
        ["district", "age"],
        [
            *[("A", "x", 3), ("A", "y", 20), ("B", "x", 15)],
            *[("B", "y", 25), ("C", "x", 30), ("C", "y", 12)],
        ],
    )
    out = protect(cells, ["district", "age"], "n")
    assert hidden(out, ["district", "age"], PRIMARY) == {("A", "x")}
    assert hidden(out, ["district", "age"], COMPLEMENTARY) == {
        ("A", "y"),
        ("B", "x"),
        ("B", "y"),
    }
    shown = published(out, ["district", "age"])
    assert shown[("C", "y")] == (12, SHOWN)  # 11+ shows
    assert shown[("A", TOTAL)] == (23, SHOWN)
    assert shown[(TOTAL, TOTAL)] == (105, SHOWN)
    check(cells, ["district", "age"])


def test_a_total_is_the_complement_when_nothing_else_can_be() -> None:
    #      x   y | 전체    Row A: A,x = 5 -> A,y = 20. Column y then holds A,y and zeros:
    #   A  5  20 |  25    only its total can go, 전체,y = 20. Column x -> B,x = 30; row B
    #   B 30   0 |  30    has B,x and a 0: B,전체. The total row -> 전체,x; the total column
    #   C 40   0 |  40    -> A,전체. Zeros still show; the grand total stays.
    dims = ["district", "age"]
    cells = table(dims, [("A", "x", 5), ("A", "y", 20), ("B", "x", 30), ("C", "x", 40)])
    out = protect(cells, dims, "n")  # B,y and C,y are missing: they count as 0
    assert hidden(out, dims, COMPLEMENTARY) == {
        ("A", "y"),
        (TOTAL, "y"),
        ("B", "x"),
        ("B", TOTAL),
        (TOTAL, "x"),
        ("A", TOTAL),
    }
    shown = published(out, dims)
    assert shown[("B", "y")] == shown[("C", "y")] == (0, SHOWN)
    assert shown[("C", TOTAL)] == (40, SHOWN)
    assert shown[(TOTAL, TOTAL)] == (95, SHOWN)
    check(cells, dims)


BRIDGE = [  # x, y, z; the line rule alone leaves B,z (6) derivable
    ("A", [6, 0, 0]),
    ("B", [68, 0, 6]),
    ("C", [0, 57, 33]),
]


def test_the_hypercube_pass_closes_what_the_line_rule_leaves_open() -> None:
    #      x   y   z | 전체    The line rule alone suppresses the rectangle {A,B} x {x,전체},
    #   A  6   0   0 |   6    the rectangle {C,전체} x {y,z}, and B,z, the bridge between
    #   B 68   0   6 |  74    them: every line has two, yet row C, row 전체 and columns y, z
    #   C  0  57  33 |  90    give B,z = 전체,z - C,z = (96 - 전체,y) - (90 - C,y) = 6.
    dims = ["district", "age"]
    rows = [(d, a, n) for d, counts in BRIDGE for a, n in zip("xyz", counts, strict=True)]
    cells = table(dims, rows)
    line_rule = {("A", "x"), ("A", "T"), ("B", "x"), ("B", "T"), ("B", "z"), ("C", "y")}
    line_rule |= {("C", "z"), ("T", "y"), ("T", "z")}
    pattern = np.array([[(r, c) in line_rule for c in "xyzT"] for r in "ABCT"])
    fixed = determined(relations((4, 4)), pattern)
    assert [tuple(p) for p in np.argwhere(pattern)[fixed]] == [(1, 2)]  # B,z: the oracle sees it
    out = protect(cells, dims, "n")
    assert hidden(out, dims, PRIMARY) == {("A", "x"), ("A", TOTAL), ("B", "z")}
    assert hidden(out, dims, COMPLEMENTARY) == {
        ("B", "x"),
        ("B", TOTAL),
        ("C", "y"),
        ("C", "z"),
        (TOTAL, "y"),
        (TOTAL, "z"),
        (TOTAL, "x"),  # the hypercube {B,전체} x {x,z} closes the bridge
    }
    check(cells, dims)


def test_grand_total() -> None:
    assert protect(table([], [(7,)]), [], "n").rows() == [(None, PRIMARY)]
    assert protect(table([], [(11,)]), [], "n").rows() == [(11, SHOWN)]
    assert protect(table([], []), [], "n").rows() == [(0, SHOWN)]
    # All small: everything is primary, the grand total too.
    out = protect(table(["s"], [("F", 2), ("M", 3)]), ["s"], "n")
    assert out.rows() == [("F", None, PRIMARY), ("M", None, PRIMARY), (TOTAL, None, PRIMARY)]
    # Large counts and zeros: nothing to hide.
    out = protect(table(["s"], [("F", 12), ("M", 0)]), ["s"], "n")
    assert out.rows() == [("F", 12, SHOWN), ("M", 0, SHOWN), (TOTAL, 12, SHOWN)]
    out = protect(table(["d", "s"], [("A", "F", 30), ("A", "M", 4)]), ["d", "s"], "n")
    assert published(out, ["d", "s"]) == {  # one district: each column is its own total
        ("A", "F"): (None, COMPLEMENTARY),
        ("A", "M"): (None, PRIMARY),
        ("A", TOTAL): (34, SHOWN),  # {A,전체} x {F,M} is hidden: 34 = F + M, both unknown
        (TOTAL, "F"): (None, COMPLEMENTARY),
        (TOTAL, "M"): (None, PRIMARY),
        (TOTAL, TOTAL): (34, SHOWN),
    }
    # An empty breakdown is the grand total of nobody.
    assert protect(table(["d", "s"], []), ["d", "s"], "n").rows() == [(TOTAL, TOTAL, 0, SHOWN)]


def test_large_counts_all_show() -> None:
    cells = table(["d", "s"], [("A", "F", 11), ("A", "M", 12), ("B", "F", 400), ("B", "M", 0)])
    out = protect(cells, ["d", "s"], "n")
    assert set(out[STATUS]) == {SHOWN}
    assert out["n"].to_list() == [11, 12, 23, 400, 0, 400, 411, 12, 423]


def test_thresholds_are_arguments() -> None:
    cells = table(["d"], [("A", 3), ("B", 5), ("C", 50), ("D", 60)])
    out = published(protect(cells, ["d"], "n", high=4), ["d"])
    assert out[("A",)] == (None, PRIMARY)
    assert out[("B",)] == (None, COMPLEMENTARY)  # 5 is no longer small, just the smallest other
    out = published(protect(cells, ["d"], "n", low=4), ["d"])
    assert out[("A",)] == (None, COMPLEMENTARY)  # 3 is not small now, just the smallest other
    assert out[("B",)] == (None, PRIMARY)
    check(cells, ["d"], low=4)
    check(cells, ["d"], high=4)


def test_other_columns_are_ignored_and_the_measure_keeps_its_name() -> None:
    cells = pl.DataFrame(
        {"sex": ["F", "M"], "signups": [40, 3], "note": ["x", "y"]},
        schema={"sex": pl.String, "signups": pl.UInt32, "note": pl.String},
    )
    out = protect(cells, ["sex"], "signups")
    assert out.schema == pl.Schema({"sex": pl.String, "signups": pl.Int64, STATUS: pl.String})
    assert out.rows() == [("F", None, COMPLEMENTARY), ("M", None, PRIMARY), (TOTAL, 43, SHOWN)]


# --- the strong property over random tables ---------------------------------------------------

SHAPES: dict[int, list[tuple[int, ...]]] = {
    1: [(n,) for n in range(1, 10)],
    2: [(a, b) for a in range(1, 7) for b in range(1, 7)],
    3: [(a, b, c) for a in range(1, 5) for b in range(1, 5) for c in range(1, 4)],
    4: [(a, b, c, d) for a in (2, 3) for b in (2, 3) for c in (1, 2) for d in (2, 3)],
}
TABLES = {1: 60, 2: 150, 3: 120, 4: 24}


@pytest.mark.parametrize("k", sorted(SHAPES))
def test_no_suppressed_count_can_be_derived(k: int) -> None:
    rng = np.random.default_rng(20250601 + k)
    hid = 0
    for t in range(TABLES[k]):
        shape = SHAPES[k][t % len(SHAPES[k])]
        cells = random_table(rng, shape)
        try:
            hid += int(check(cells, [f"d{a}" for a in range(k)]).sum())
        except AssertionError as e:
            raise AssertionError(f"table {t} of shape {shape}:\n{cells}") from e
    assert hid > TABLES[k]  # the tables did exercise suppression


def test_the_oracle_sees_a_lone_cell_and_not_a_rectangle() -> None:
    lone = np.zeros((3, 3), dtype=bool)
    lone[0, 0] = True
    assert determined(relations((3, 3)), lone).all()
    rectangle = lone.copy()
    rectangle[0, 1] = rectangle[1, 0] = rectangle[1, 1] = True
    assert not determined(relations((3, 3)), rectangle).any()
    pair = np.array([True, False, True])  # x_0 - total = -x_1: one equation, two unknowns
    assert not determined(relations((3,)), pair).any()


def test_the_oracle_agrees_with_the_rank_definition() -> None:
    rng = np.random.default_rng(3)
    for shape in [(3,), (4,), (3, 3), (4, 3), (3, 3, 2), (3, 2, 2)]:
        equations = relations(shape)
        for density in (0.2, 0.4, 0.6):
            for _ in range(5):
                pattern = rng.random(shape) < density
                if pattern.any():
                    assert (
                        determined(equations, pattern) == determined_by_rank(equations, pattern)
                    ).all()


# --- determinism ------------------------------------------------------------------------------


def test_same_table_whatever_the_row_order() -> None:
    rng = np.random.default_rng(7)
    for shape in [(6,), (4, 5), (3, 3, 3), (5, 4, 2)]:
        cells = random_table(rng, shape)
        dims = cells.columns[:-1]
        first = protect(cells, dims, "n")
        assert protect(cells, dims, "n").equals(first)
        rows = cells.rows()
        for seed in range(3):
            random.Random(seed).shuffle(rows)
            shuffled = pl.DataFrame(rows, schema=cells.schema, orient="row")
            assert protect(shuffled, dims, "n").equals(first)


def test_ties_go_to_the_first_in_sort_order() -> None:
    cells = table(["d"], [("C", 20), ("B", 20), ("A", 4), ("D", 20)])
    assert hidden(protect(cells, ["d"], "n"), ["d"], COMPLEMENTARY) == {("B",)}


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "dims", "measure", "message"),
    [
        (table(["d"], [("A", -1), ("B", 20)]), ["d"], "n", "negative"),
        (pl.DataFrame({"d": ["A"], "n": [1.5]}), ["d"], "n", "not an integer count"),
        (table(["d"], [("A", None)]), ["d"], "n", "measure 'n' has nulls"),
        (table(["d"], [("A", 20)]), ["district"], "n", r"unknown columns \['district'\]"),
        (table(["d"], [("A", 20)]), ["d"], "count", r"unknown columns \['count'\]"),
        (table(["d"], [("A", 20), ("A", 30)]), ["d"], "n", "same finest cell"),
        (table([], [(20,), (30,)]), [], "n", "same finest cell"),
        (pl.DataFrame({"d": [1, 2], "n": [20, 30]}), ["d"], "n", "not a string column"),
        (table(["d"], [(None, 20)]), ["d"], "n", "dimension 'd' has nulls"),
        (table(["d"], [(TOTAL, 20)]), ["d"], "n", "reserved margin value"),
        (table(["d"], [("A", 20)]), "d", "n", "not the string"),
        (table(["d"], [("A", 20)]), ["d", "d"], "n", "repeat"),
        (table(["d"], [("A", 20)]), ["d", "n"], "n", "both a dimension and the measure"),
        (table([STATUS], [("A", 20)]), [STATUS], "n", "status column"),
    ],
)
def test_bad_input_is_refused(cells: pl.DataFrame, dims: Any, measure: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        protect(cells, dims, measure)


@pytest.mark.parametrize(("low", "high"), [(0, 10), (5, 4), (-1, 3)])
def test_bad_thresholds_are_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="low <= high"):
        protect(table(["d"], [("A", 20)]), ["d"], "n", low, high)
