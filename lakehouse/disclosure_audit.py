"""Suppression of a set of linked tables, audited by linear programming and repaired.

``lakehouse.disclosure`` protects one cube against its own equations. The officials' app shows
more: one measure's cube (month x district x age group x sex with every margin) and, for the
whole period, the dongs within each district. The two share the district totals, and an
attacker combines everything shown. So the set is suppressed together and then *audited*:

* **Unknowns.** The finest counts: ``x``, the cube's inner cells, and ``y``, the children
  (dongs), all at least 0. One structural equation links them: a parent's children add up to
  the cube cell of that parent with every other dimension at its margin (``whole``).
* **What is known.** Every shown cell is an equation (the sum of its unknowns is its value);
  every hidden cell is at least 1 (zeros show, so a hidden cell is not 0).
* **Protection criterion.** For each hidden cell, the least and the greatest value its sum
  can take under those constraints (two linear programs, HiGHS). The cell is protected when
  ``max - min >= high - low``: the attacker's interval is at least as wide as the suppression
  range (9 for 1-10), so the published set cannot pin the count down to within 1-10 (nor to
  any narrower interval). An unbounded maximum is protected.
* **Runs of months.** For a flow the app also answers any run of months, as the sum of the
  published months, hidden when one of them is. Such a hidden answer (a run of two or more
  months short of the whole period) is audited too: it is protected by the same criterion, or
  when its least value is above ``high`` (it cannot be a small count, so working it out
  discloses nothing the app could not show).
* **Repair.** While a hidden cell fails, the shown cell that constrains it and is cheapest
  (smallest count, then first in order) is hidden: the constraining cells are the equations
  with a non-zero dual value in the cell's minimum or maximum program (releasing one of them
  is what can widen the interval). The engine's passes then run again with everything hidden
  so far forced, and the cube and the children agree again (a parent total hidden in one is
  hidden in the other). Hiding only removes equations, so a passing cell never fails later:
  only failing and newly hidden cells are audited again.

* **Relations between sets** (``publish_together``). Counts of several measures over the same
  people in the same cells are linked by more than their own equations: the linked residents of
  a cell are among its consented ones, an AI service's studies accepted by a clinician among
  those it flagged. Each such relation is an inequality between the two sets' finest unknowns,
  cell by cell (``x_a <= x_b``, ``y_a <= y_b``), which an attacker knows. The sets are then
  audited as one system with the relations as constraints, and a shown cell of one set that
  bounds a hidden cell of another through them is what the repair may hide.

The programs are over real numbers; counts are integers, but these are network-like systems
whose bounds are integral in practice, and a real interval at least 9 wide holds at least 10
integers anyway. A relation that holds only for most people (this month's app users minus last
month's against the month's sign-ups: people move, age or leave between the two) is not one of
this audit's (docs/disclosure.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.sparse as sp

from lakehouse.disclosure import Flags, Ints, suppress

HIGHS: Final = "highs"
# Round-off of the programs' optima: an interval this much short of the range still passes.
TOLERANCE: Final = 1e-6
# Solutions in random directions tried before each audit pass (``_System.explore``).
EXPLORE: Final = 4
Relation = tuple[int, int]
"""``(a, b)``: each finest count of set ``a`` is at most the same cell's count of set ``b``."""


@dataclass
class Linked:
    """One measure's published cells and what they hide.

    Attributes:
        values: The cube with its margins (``lakehouse.disclosure.cube``).
        children: Per value of the parent axis (in its order), the inner counts of its
            children (dongs); empty when no child level is published.
        parent_axis: The cube's axis the children nest in (the district).
        low: The smallest count that is suppressed.
        high: The largest.
        hidden: The cube's suppressed cells, once ``publish`` has run.
        hidden_children: Per parent, its children's suppressed cells.
        ranges: The first axis is months whose runs the app sums (a flow's period): every run
            of two or more months short of all of them is an answer too, hidden when one of
            its months is, and audited like a cell (it is never published as one).
        unresolved: Hidden cells no further suppression could widen (zero in a healthy run;
            the gold job reports it).
    """

    values: Ints
    children: Sequence[Ints] = ()
    parent_axis: int = 0
    low: int = 1
    high: int = 10
    ranges: bool = False
    hidden: Flags = field(init=False)
    hidden_children: list[Flags] = field(init=False)
    unresolved: int = field(init=False, default=0)

    def whole(self, parent: int) -> tuple[int, ...]:
        """The cube cell that is the total of a parent's children: the parent's value, every
        other axis at its margin."""
        at = [n - 1 for n in self.values.shape]
        at[self.parent_axis] = parent
        return tuple(at)


def publish(linked: Linked) -> Linked:
    """Suppress one set, audit it and repair it until every hidden cell is protected (the
    module's criterion); fills ``linked.hidden`` and ``linked.hidden_children``."""
    return publish_together([linked])[0]


def publish_together(sets: Sequence[Linked], relations: Sequence[Relation] = ()) -> list[Linked]:
    """Suppress several sets, audit them together under ``relations`` and repair them until
    every hidden cell of every set is protected; fills each set's ``hidden``,
    ``hidden_children`` and ``unresolved``.

    Args:
        sets: Sets over the same people (a month's stocks, a table's counts).
        relations: ``(a, b)``: every finest count of ``sets[a]`` is at most the same cell's
            count in ``sets[b]`` (a subset of the same people, counted in the same cells), an
            inequality an attacker knows. The two sets have the same cube and children.

    Raises:
        ValueError: On a relation between sets of different shapes or of unknown index.
    """
    for a, b in relations:
        if not (0 <= a < len(sets) and 0 <= b < len(sets)) or a == b:
            raise ValueError(f"relation {(a, b)} is not between two of the {len(sets)} sets")
        if sets[a].values.shape != sets[b].values.shape or [len(k) for k in sets[a].children] != [
            len(k) for k in sets[b].children
        ]:
            raise ValueError(f"relation {(a, b)} is between sets of different shapes")
    forced = [
        (
            np.zeros(linked.values.shape, dtype=np.bool_),
            [np.zeros(len(k) + 1, dtype=np.bool_) for k in linked.children],
        )
        for linked in sets
    ]
    system = _System.of(sets, relations)
    passed = np.zeros(system.size, dtype=np.bool_)
    skipped = np.zeros(system.size, dtype=np.bool_)
    while True:
        for linked, (cube_forced, kids_forced) in zip(sets, forced, strict=True):
            _settle(linked, cube_forced, kids_forced)
        release = _audit_pass(system, system.flags(sets), passed, skipped)
        if release is None:
            for i, linked in enumerate(sets):
                linked.unresolved = int(skipped[system.owner == i].sum())
            return list(sets)
        system.force(release, forced)


def _audit_pass(system: _System, hidden: Flags, passed: Flags, skipped: Flags) -> int | None:
    """Audit the hidden rows not yet passed or skipped (marking them in ``passed`` and
    ``skipped``) until one fails; the shown row to hide for it, or None when none fails."""
    todo = [int(row) for row in np.flatnonzero(hidden & ~passed & ~skipped)]
    if all(system.spread(row) >= system.width[row] for row in todo):
        passed[todo] = True  # each already seen this far apart: no program needed
        return None
    program = system.reduced(hidden)  # the pass's constraints, built once for all its rows
    system.explore(program)
    for row in todo:
        if system.spread(row) >= system.width[row]:
            passed[row] = True  # two solutions already this far apart: no program needed
            continue
        lo, hi, binding = system.interval(row, program)
        # A run of months is an answer, not a cell: it may be worked out when it cannot be
        # small (at least high + 1, a count the app could show).
        if hi - lo >= system.width[row] or (system.run[row] and lo > system.high[row] + TOLERANCE):
            passed[row] = True
            continue
        shown = [b for b in binding if not hidden[b] and system.values[b] > 0]
        if not shown:
            skipped[row] = True  # nothing shown constrains it: no suppression can help
            continue
        return min(shown, key=lambda b: (system.values[b], b))
    return None


def _settle(linked: Linked, cube_forced: Flags, kids_forced: list[Flags]) -> None:
    """The engine's passes on the cube and on each parent's line of children, each with what is
    forced, until a parent total hidden in one is hidden in the other. Everything hidden is
    kept forced, so the hidden sets only grow and the loop ends."""
    while True:
        _, cube = suppress(linked.values, linked.low, linked.high, cube_forced)
        cube_forced |= cube
        grown = False
        lines = []
        for parent, kids in enumerate(linked.children):
            whole = linked.whole(parent)
            forced = kids_forced[parent]
            forced[-1] |= cube[whole]
            _, line = suppress(
                np.append(kids, kids.sum()).astype(np.int64), linked.low, linked.high, forced
            )
            forced |= line
            lines.append(line)
            if line[-1] and not cube[whole]:
                cube_forced[whole] = grown = True
        if not grown:
            linked.hidden, linked.hidden_children = cube, [line[:-1] for line in lines]
            return


@dataclass
class _Part:
    """One set's rows (its cube's cells in C order, its children, then its runs of months)
    as linear functions of its own unknowns (``x`` then ``y``), and its structural links."""

    cells: sp.csr_matrix
    values: npt.NDArray[np.float64]
    links: sp.csr_matrix
    cube_size: int
    published: int  # the rows that are published cells; the rest are runs of months
    runs: sp.csr_matrix
    offsets: list[int]
    own: Ints  # each unknown's own row: its inner cube cell or its child

    @staticmethod
    def of(linked: Linked) -> _Part:
        inner = [n - 1 for n in linked.values.shape]
        cube = _margins(inner)
        n_x = cube.shape[1]
        sizes = [len(k) for k in linked.children]
        n_y = sum(sizes)
        runs = _runs(inner[0] if linked.ranges else 0)
        summed = (
            sp.kron(runs, _margins(inner[1:]), format="csr")
            if runs.shape[0]
            else sp.csr_matrix((0, n_x))
        )
        x_true = linked.values[tuple(slice(0, n) for n in inner)].ravel()
        cells = sp.vstack(
            [
                sp.block_diag([cube, sp.identity(n_y)], format="csr") if n_y else cube,
                sp.hstack([summed, sp.csr_matrix((summed.shape[0], n_y))]) if n_y else summed,
            ],
            format="csr",
        )
        values = np.concatenate(
            [linked.values.ravel(), *(np.asarray(k) for k in linked.children), summed @ x_true]
        ).astype(np.float64)
        offsets = np.cumsum([0, *sizes]).tolist()
        links = []
        for parent in range(len(sizes)):
            whole = int(np.ravel_multi_index(linked.whole(parent), linked.values.shape))
            row = sp.lil_matrix((1, n_x + n_y))
            row[0, :n_x] = -cube[whole].toarray()
            row[0, n_x + offsets[parent] : n_x + offsets[parent + 1]] = 1
            links.append(row.tocsr())
        link = sp.vstack(links, format="csr") if links else sp.csr_matrix((0, n_x + n_y))
        inner_rows = np.ravel_multi_index(
            np.unravel_index(np.arange(n_x), inner), linked.values.shape
        )
        own = np.concatenate([inner_rows, cube.shape[0] + np.arange(n_y)]).astype(np.int64)
        return _Part(cells, values, link, cube.shape[0], cube.shape[0] + n_y, runs, offsets, own)

    def flags(self, linked: Linked) -> Flags:
        """Which rows are hidden: the published cells as suppressed, a run of months where
        any of its months is (the access layer shows a run only when all of them are)."""
        months = (
            linked.hidden[:-1].reshape(linked.hidden.shape[0] - 1, -1)
            if self.runs.shape[0]
            else None
        )
        runs = (self.runs @ months.astype(np.float64) > 0).ravel() if months is not None else []
        return np.concatenate(
            [linked.hidden.ravel(), *linked.hidden_children, np.asarray(runs, dtype=np.bool_)]
        ).astype(np.bool_)

    def force(self, row: int, cube_forced: Flags, kids_forced: list[Flags]) -> None:
        """Force one more of its rows hidden."""
        if row < self.cube_size:
            cube_forced.ravel()[row] = True
            return
        at = row - self.cube_size
        parent = int(np.searchsorted(self.offsets, at, side="right")) - 1
        kids_forced[parent][at - self.offsets[parent]] = True


@dataclass
class _System:
    """Every published cell of the sets as a linear function of the finest unknowns: the
    sets' rows one after the other (``_Part``), columns likewise; the sets' structural links
    are equations, the relations between sets inequalities (``relations @ z <= 0``)."""

    parts: list[_Part]
    cells: sp.csr_matrix
    values: npt.NDArray[np.float64]
    links: sp.csr_matrix
    relations: sp.csr_matrix
    starts: list[int]  # each set's first row
    owner: Ints  # each row's set
    run: Flags  # the rows that are runs of months, not published cells
    width: npt.NDArray[np.float64]  # each row's set's protection width (high - low)
    high: npt.NDArray[np.float64]  # each row's set's largest suppressed count
    own: Ints  # each unknown's own row: its inner cube cell or its child
    # The least and greatest value of each row over every solution the programs found. The
    # feasible set only grows as cells are hidden, so these stay attainable, and a row whose
    # spread already reaches the range needs no program of its own.
    seen_low: npt.NDArray[np.float64]
    seen_high: npt.NDArray[np.float64]

    def spread(self, row: int) -> float:
        """How far apart two feasible values of the row are known to be."""
        return float(self.seen_high[row] - self.seen_low[row])

    def _saw(self, solution: npt.NDArray[np.float64]) -> None:
        found = self.cells @ solution
        np.minimum(self.seen_low, found, out=self.seen_low)
        np.maximum(self.seen_high, found, out=self.seen_high)

    @property
    def size(self) -> int:
        return int(self.cells.shape[0])

    @staticmethod
    def of(sets: Sequence[Linked], relations: Sequence[Relation]) -> _System:
        parts = [_Part.of(linked) for linked in sets]
        rows = np.cumsum([0, *(p.cells.shape[0] for p in parts)]).tolist()
        columns = np.cumsum([0, *(p.cells.shape[1] for p in parts)]).tolist()
        n = columns[-1]
        relation = sp.vstack(
            [sp.csr_matrix((0, n))]
            + [
                _placed(sp.identity(parts[a].cells.shape[1]), columns[a], n)
                - _placed(sp.identity(parts[b].cells.shape[1]), columns[b], n)
                for a, b in relations
            ],
            format="csr",
        )
        sizes = [p.cells.shape[0] for p in parts]
        values = np.concatenate([p.values for p in parts])
        high = np.repeat([float(s.high) for s in sets], sizes)
        return _System(
            parts,
            sp.vstack(
                [_placed(p.cells, c, n) for p, c in zip(parts, columns, strict=False)],
                format="csr",
            ),
            values,
            sp.vstack(
                [sp.csr_matrix((0, n))]
                + [_placed(p.links, c, n) for p, c in zip(parts, columns, strict=False)],
                format="csr",
            ),
            relation,
            rows[:-1],
            np.repeat(np.arange(len(parts)), sizes).astype(np.int64),
            np.concatenate(
                [np.arange(s) >= p.published for p, s in zip(parts, sizes, strict=True)]
            ),
            np.repeat([float(s.high - s.low) - TOLERANCE for s in sets], sizes),
            high,
            np.concatenate([p.own + r for p, r in zip(parts, rows, strict=False)]).astype(np.int64),
            np.full(len(values), np.inf),
            np.full(len(values), -np.inf),
        )

    def flags(self, sets: Sequence[Linked]) -> Flags:
        """Which rows are hidden (``_Part.flags`` of each set)."""
        return np.concatenate([p.flags(s) for p, s in zip(self.parts, sets, strict=True)])

    def force(self, row: int, forced: list[tuple[Flags, list[Flags]]]) -> None:
        """Force one more row hidden, in its set."""
        at = int(self.owner[row])
        self.parts[at].force(row - self.starts[at], *forced[at])

    def interval(self, row: int, program: _Program) -> tuple[float, float, list[int]]:
        """The least and greatest value of one row under ``program`` (``reduced``: the shown
        rows, the hidden ones at least 1, the relations), and the shown rows whose constraints
        bind either optimum."""
        objective = self.cells[row]
        offset = float((objective @ program.known)[0])
        c = objective[:, program.free].toarray().ravel()
        ends = []
        binding: set[int] = set()
        for sign in (1.0, -1.0):
            result = program.solve(sign * c, (1, None))
            if result.status == 3:  # unbounded: only the maximum can be
                ends.append(np.inf)
                continue
            if result.status != 0:
                raise RuntimeError(f"the audit's program failed: {result.message}")
            ends.append(offset + sign * result.fun)
            self._saw(program.solution(result.x))
            binding.update(program.binding(result))
        return ends[0], ends[1], self._releasable(program, binding)

    def reduced(self, hidden: Flags) -> _Program:
        """The programs' common constraints under ``hidden``, built once per audit pass: which
        unknowns are free (their own cell hidden), the known values of the others, the shown
        cells' equations and the relations over the free ones, and the full row each constraint
        comes from.

        An unknown whose own cell is shown is that value; only the hidden finest cells stay
        unknowns, each at least 1 (which implies every hidden margin is at least 1 too), and
        the shown cells' equations and the relations are over them (a constraint with none of
        them in it says nothing new and is left out)."""
        free = hidden[self.own]
        known = np.where(free, 0.0, self.values[self.own])
        shown = np.flatnonzero(~hidden & ~self.run)
        rest = self.cells[shown]
        equations = sp.vstack([rest, self.links], format="csr")
        eq_useful = np.diff(equations[:, free].indptr) > 0
        ub_useful = np.diff(self.relations[:, free].indptr) > 0
        b_eq = np.concatenate([self.values[shown], np.zeros(self.links.shape[0])])
        eq_rows = equations[eq_useful]
        ub_rows = self.relations[ub_useful]
        cell_of = np.concatenate([shown, np.full(self.links.shape[0], -1)])[eq_useful]
        return _Program(
            free,
            known,
            eq_rows[:, free],
            (b_eq[eq_useful] - eq_rows @ known),
            ub_rows[:, free],
            -(ub_rows @ known),
            sp.vstack([eq_rows, ub_rows], format="csr"),
            np.concatenate([cell_of, np.full(ub_rows.shape[0], -1)]).astype(np.int64),
        )

    def explore(self, program: _Program, tries: int = EXPLORE) -> None:
        """A few feasible solutions pushed in random directions (seeded, so a build is
        repeatable): each hidden cell goes up in some and down in others, so most cells'
        spreads reach the range before any program of their own is solved. The unknowns are
        capped here (each a restriction of the feasible set, so the solutions stay feasible)."""
        if not program.free.any():
            return
        cap = 2 * float(self.values.max()) + 2 * TOLERANCE + 20
        rng = np.random.default_rng(0)
        for _ in range(tries):
            result = program.solve(rng.choice([-1.0, 1.0], size=int(program.free.sum())), (1, cap))
            if result.status == 0:
                self._saw(program.solution(result.x))

    def _releasable(self, program: _Program, binding: set[int]) -> list[int]:
        """The shown rows whose hiding can widen an interval bound by these constraints: the
        binding cells themselves, and the shown finest cells inside any binding constraint
        (their values were substituted, so they bind through it: a link's or a relation's
        shown cells too)."""
        rows = {int(program.cell_of[b]) for b in binding if program.cell_of[b] >= 0}
        for b in binding:
            constraint = program.rows[b]
            inside = constraint.indices[~program.free[constraint.indices]]
            rows.update(int(r) for r in self.own[inside])
        return sorted(rows)


@dataclass
class _Program:
    """The constraints of the programs on the hidden finest unknowns (``_System.reduced``):
    the equations ``a_eq @ z = b_eq``, the relations ``a_ub @ z <= b_ub``, and per constraint
    (equations first) its full row and the shown cell it is (-1: a link or a relation)."""

    free: Flags
    known: npt.NDArray[np.float64]
    a_eq: sp.csr_matrix
    b_eq: npt.NDArray[np.float64]
    a_ub: sp.csr_matrix
    b_ub: npt.NDArray[np.float64]
    rows: sp.csr_matrix
    cell_of: Ints

    def solve(
        self, c: npt.NDArray[np.float64], bounds: tuple[float, float | None]
    ) -> scipy.optimize.OptimizeResult:
        """One program over the free unknowns (HiGHS)."""
        return scipy.optimize.linprog(
            c,
            A_ub=self.a_ub if self.a_ub.shape[0] else None,
            b_ub=self.b_ub if self.a_ub.shape[0] else None,
            A_eq=self.a_eq if self.a_eq.shape[0] else None,
            b_eq=self.b_eq if self.a_eq.shape[0] else None,
            bounds=bounds,
            method=HIGHS,
        )

    def solution(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Every unknown: the known ones' values, the free ones' from a program."""
        found = self.known.copy()
        found[self.free] = x
        return found

    def binding(self, result: scipy.optimize.OptimizeResult) -> list[int]:
        """The constraints (equations first) with a non-zero dual value at the optimum."""
        duals = [
            np.asarray(result.eqlin.marginals) if self.a_eq.shape[0] else np.zeros(0),
            np.asarray(result.ineqlin.marginals) if self.a_ub.shape[0] else np.zeros(0),
        ]
        return np.flatnonzero(np.abs(np.concatenate(duals)) > TOLERANCE).tolist()


def _placed(block: sp.spmatrix, column: int, width: int) -> sp.csr_matrix:
    """``block`` with its columns moved to start at ``column`` of ``width`` columns."""
    block = sp.csr_matrix(block)
    return sp.csr_matrix(
        (block.data, block.indices + column, block.indptr), shape=(block.shape[0], width)
    )


def _margins(inner: Sequence[int]) -> sp.csr_matrix:
    """Every cell of a cube with margins (C order) as a sum of its inner cells: per axis its
    values, then its margin."""
    cube = sp.csr_matrix(np.ones((1, 1)))
    for n in inner:
        cube = sp.kron(cube, sp.vstack([sp.identity(n), np.ones((1, n))]), format="csr")
    return cube


def _runs(months: int) -> sp.csr_matrix:
    """Every run of two or more consecutive months short of all ``months`` of them, as rows
    of ones over the months (none for fewer than three months)."""
    found = [
        ((np.arange(months) >= a) & (np.arange(months) <= b)).astype(np.float64)
        for a in range(months)
        for b in range(a + 1, months)
        if b - a + 1 < months
    ]
    return sp.csr_matrix(np.array(found).reshape(len(found), months))
