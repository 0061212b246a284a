"""The linked set's audit and repair on hand-computed lines and random cubes with children.

The oracle is a plain linear program per hidden cell, written here from the cells' meaning
(a dense matrix over the finest unknowns), not the module's reduced one.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from lakehouse.disclosure import suppress
from lakehouse.disclosure_audit import Linked, publish

pytestmark = pytest.mark.security


def with_margins(inner: np.ndarray) -> np.ndarray:
    full = inner.astype(np.int64)
    for axis in range(full.ndim):
        full = np.concatenate([full, full.sum(axis=axis, keepdims=True)], axis=axis)
    return full


def widths(linked: Linked) -> list[float]:
    """``max - min`` of every hidden cell (cube and children) given everything shown."""
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
        values.append(linked.values[index])
        hidden.append(linked.hidden[index])
    links = []
    at = n_x
    for parent, k in enumerate(kids):
        for j in range(len(k)):
            row = np.zeros(n)
            row[at + j] = 1
            rows.append(row)
            values.append(k[j])
            hidden.append(linked.hidden_children[parent][j])
        whole = rows[int(np.ravel_multi_index(linked.whole(parent), linked.values.shape))]
        link = -whole.copy()
        link[at : at + len(k)] = 1
        links.append(link)
        at += len(k)
    a = np.array(rows)
    shown = [i for i, h in enumerate(hidden) if not h]
    secret = [i for i, h in enumerate(hidden) if h]
    a_eq = np.array([a[i] for i in shown] + links)
    b_eq = np.array([values[i] for i in shown] + [0.0] * len(links))
    a_ub, b_ub = -a[secret], -np.ones(len(secret))
    found = []
    for i in secret:
        low = scipy.optimize.linprog(a[i], a_ub, b_ub, a_eq, b_eq, method="highs")
        high = scipy.optimize.linprog(-a[i], a_ub, b_ub, a_eq, b_eq, method="highs")
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
