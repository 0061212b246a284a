"""The linked set's audit and repair on hand-computed lines and random cubes with children.

The oracle is a plain linear program per hidden cell, written here from the cells' meaning
(a dense matrix over the finest unknowns), not the module's reduced one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
import scipy.optimize

from lakehouse.catalog.gold import SERVICE_COUNTS
from lakehouse.disclosure import cube, suppress
from lakehouse.disclosure_audit import Linked, publish, publish_together
from pipelines.transform.published import services_published

pytestmark = pytest.mark.security


def with_margins(inner: np.ndarray) -> np.ndarray:
    full = inner.astype(np.int64)
    for axis in range(full.ndim):
        full = np.concatenate([full, full.sum(axis=axis, keepdims=True)], axis=axis)
    return full


def _meaning(linked: Linked) -> tuple[np.ndarray, list[float], list[bool], list[np.ndarray]]:
    """Every published cell of a set (cube in C order, then children) as a row over its finest
    unknowns, its value and whether it is hidden; and the links (a parent's children add up to
    its cube cell) as rows equal to 0."""
    inner = [n - 1 for n in linked.values.shape]
    n_x = int(np.prod(inner))
    kids = [np.asarray(k) for k in linked.children]
    n = n_x + sum(len(k) for k in kids)
    rows, values, hidden = [], [], []
    for index in np.ndindex(*linked.values.shape):
        pick = np.ones(inner, dtype=bool)
        for axis, i in enumerate(index):
            if i < inner[axis]:
                keep = np.zeros(inner[axis], dtype=bool)
                keep[i] = True
                shape = [1] * len(inner)
                shape[axis] = inner[axis]
                pick &= keep.reshape(shape)
        row = np.zeros(n)
        row[:n_x] = pick.ravel()
        rows.append(row)
        values.append(float(linked.values[index]))
        hidden.append(bool(linked.hidden[index]))
    links = []
    at = n_x
    for parent, k in enumerate(kids):
        for j in range(len(k)):
            row = np.zeros(n)
            row[at + j] = 1
            rows.append(row)
            values.append(float(k[j]))
            hidden.append(bool(linked.hidden_children[parent][j]))
        whole = rows[int(np.ravel_multi_index(linked.whole(parent), linked.values.shape))]
        link = -whole.copy()
        link[at : at + len(k)] = 1
        links.append(link)
        at += len(k)
    return np.array(rows), values, hidden, links


def widths(linked: Linked) -> list[float]:
    """``max - min`` of every hidden cell (cube and children) given everything shown."""
    return widths_together([linked])


def widths_together(sets: list[Linked], relations: Sequence[tuple[int, int]] = ()) -> list[float]:
    """``max - min`` of every hidden cell of every set given everything shown and the
    relations (``(a, b)``: each finest count of ``a`` at most the same one of ``b``)."""
    meant = [_meaning(s) for s in sets]
    sizes = [m[0].shape[1] for m in meant]
    starts = np.cumsum([0, *sizes])
    n = int(starts[-1])

    def spread(row: np.ndarray, at: int) -> np.ndarray:
        wide = np.zeros(n)
        wide[starts[at] : starts[at + 1]] = row
        return wide

    rows = [spread(r, i) for i, m in enumerate(meant) for r in m[0]]
    values = [v for m in meant for v in m[1]]
    hidden = [h for m in meant for h in m[2]]
    links = [spread(r, i) for i, m in enumerate(meant) for r in m[3]]
    ub = [
        spread(np.eye(sizes[a])[j], a) - spread(np.eye(sizes[b])[j], b)
        for a, b in relations
        for j in range(sizes[a])
    ]
    a = np.array(rows)
    shown = [i for i, h in enumerate(hidden) if not h]
    secret = [i for i, h in enumerate(hidden) if h]
    a_eq = np.array([a[i] for i in shown] + links)
    b_eq = np.array([values[i] for i in shown] + [0.0] * len(links))
    a_ub = np.vstack([-a[secret], *([np.array(ub)] if ub else [])])
    b_ub = np.concatenate([-np.ones(len(secret)), np.zeros(len(ub))])
    found = []
    for i in secret:
        low = scipy.optimize.linprog(a[i], a_ub, b_ub, a_eq, b_eq, method="highs")
        high = scipy.optimize.linprog(-a[i], a_ub, b_ub, a_eq, b_eq, method="highs")
        assert low.status == 0, low.message
        top = np.inf if high.status == 3 else -high.fun
        found.append(top - low.fun)
    return found


def test_a_line_the_engine_leaves_pinned_down_is_repaired() -> None:
    """2 and 3 hidden under a shown 35 beside a shown 30: 2 + 3 = 5, so the 2 lies in [1, 4].
    The engine's line rule is satisfied (two hidden cells), the audit is not: it hides the 30,
    the cheapest shown cell that bounds them."""
    values = np.array([2, 3, 30, 35], dtype=np.int64)
    _, engine = suppress(values)
    assert engine.tolist() == [True, True, False, False]
    linked = publish(Linked(values))
    assert linked.hidden.tolist() == [True, True, True, False]
    assert min(widths(linked)) >= 9
    assert linked.unresolved == 0


@pytest.mark.parametrize("seed", range(6))
def test_random_cubes_with_children_hold_the_criterion_and_agree_on_totals(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inner = rng.poisson(rng.choice([2.0, 6.0, 15.0]), size=(2, 3, 2))
    values = with_margins(inner)
    children = []
    for parent in range(3):
        total = int(values[-1, parent, -1])
        children.append(rng.multinomial(total, np.ones(3) / 3).astype(np.int64))
    linked = publish(Linked(values, children, parent_axis=1))
    assert all(w >= 9 - 1e-6 for w in widths(linked))
    for parent in range(3):
        kids = children[parent]
        line = np.append(kids, kids.sum())
        hidden_line = np.append(linked.hidden_children[parent], linked.hidden[linked.whole(parent)])
        # The children's total is the cube's cell: hidden in both or in neither, and no
        # child line leaves a single hidden cell to be subtracted out.
        assert hidden_line[line > 0].sum() != 1
    shown = ~linked.hidden
    assert not ((values >= 1) & (values <= 10) & shown).any()


def test_a_relation_between_two_sets_pins_down_what_each_alone_protects() -> None:
    """Accepted flags [5, 19 | 24] under flagged [11, 20 | 31]: alone, the accepted line hides
    the 5 and its complement 19, and the 5 lies anywhere in [1, 23]. But accepted flags are
    among the flagged, so 5 <= 11 and 24 - 5 <= 20: the 5 lies in [4, 11], 7 wide. Published
    together, the cheapest shown cell bounding it through the relation (the flagged 11) and
    its complement go too."""
    accepted = np.array([5, 19, 24], dtype=np.int64)
    flagged = np.array([11, 20, 31], dtype=np.int64)
    alone = [publish(Linked(accepted)), publish(Linked(flagged))]
    assert alone[0].hidden.tolist() == [True, True, False]
    assert not alone[1].hidden.any()
    assert min(widths(alone[0])) >= 9  # each set alone holds
    assert min(widths_together(alone, [(0, 1)])) < 9  # the relation breaks it
    together = publish_together([Linked(accepted), Linked(flagged)], [(0, 1)])
    assert together[0].hidden.tolist() == [True, True, False]
    assert together[1].hidden.tolist() == [True, True, False]
    assert min(widths_together(together, [(0, 1)])) >= 9
    assert [s.unresolved for s in together] == [0, 0]


@pytest.mark.parametrize("seed", range(6))
def test_random_chains_of_subsets_hold_the_criterion_under_their_relations(seed: int) -> None:
    """Three measures, each a random subset of the one before (studies, flagged, accepted),
    as cubes with children: every hidden cell of every set is protected under the chain."""
    rng = np.random.default_rng(100 + seed)
    whole = rng.poisson(rng.choice([4.0, 12.0, 30.0]), size=(3, 3, 2))
    chain = [whole]
    for _ in range(2):
        chain.append(rng.binomial(chain[-1], rng.uniform(0.3, 0.9)))
    sets = []
    split = rng.dirichlet(np.ones(3), size=3)  # each parent's children's shares
    for inner in chain:
        values = with_margins(inner)
        children = [
            rng.multinomial(int(values[-1, p, -1]), split[p]).astype(np.int64) for p in range(3)
        ]
        sets.append(Linked(values, children, parent_axis=1))
    # The children must be subsets too: take each from the one before it.
    for at in (1, 2):
        for p in range(3):
            bigger = sets[at - 1].children[p]
            total = int(sets[at].values[-1, p, -1])
            kids = np.zeros(len(bigger), dtype=np.int64)
            pool = np.repeat(np.arange(len(bigger)), bigger)
            np.add.at(kids, rng.choice(pool, size=total, replace=False), 1)
            sets[at].children[p][:] = kids
    relations = [(1, 0), (2, 1)]
    published = publish_together(sets, relations)
    assert all(w >= 9 - 1e-6 for w in widths_together(published, relations))
    for s in published:
        assert not ((s.values >= 1) & (s.values <= 10) & ~s.hidden).any()


def test_the_ai_services_table_holds_under_studies_flagged_accepted() -> None:
    """``services_published`` on random studies: every hidden count of the three is protected
    under the chain, nothing of 1-10 shows, and a median shows only beside a shown count."""
    rng = np.random.default_rng(7)
    n = 600
    flagged = rng.random(n) < 0.3
    studies = pl.DataFrame(
        {
            "service": rng.choice(
                ["chest", "ecg", "fundus", "dental"], n, p=[0.5, 0.3, 0.15, 0.05]
            ),
            "month": rng.choice(["2025-03", "2025-04", "2025-05"], n),
            "studies": np.ones(n, dtype=np.int64),
            "flagged": flagged.astype(np.int64),
            "accepted": (flagged & (rng.random(n) < 0.6)).astype(np.int64),
            "hours": rng.exponential(2.0, n),
        }
    )
    table, unresolved = services_published(studies)
    assert unresolved == 0
    dims = ["service", "month"]
    finest = studies.group_by(dims).agg(pl.col(SERVICE_COUNTS).sum())
    sets = []
    for count in SERVICE_COUNTS:
        _, values = cube(finest, dims, count)
        linked = Linked(values)
        linked.hidden = table[f"{count}_suppressed"].to_numpy().reshape(values.shape)
        shown = table[count].to_numpy().reshape(values.shape)
        assert (shown[~linked.hidden] == values[~linked.hidden]).all()
        assert not ((values >= 1) & (values <= 10) & ~linked.hidden).any()
        linked.hidden_children = []
        sets.append(linked)
    assert all(w >= 9 - 1e-6 for w in widths_together(sets, [(1, 0), (2, 1)]))
    beside = table.filter(pl.col("median_hours").is_not_null())["studies"]
    assert beside.len() and beside.null_count() == 0 and (beside > 10).all()
