"""The attacker's linear program against everything the officials' app shows.

A small city is built to gold by the real pipelines. Then every query the app allows is asked
through the access layer, as an official: every measure, every subset of the dimensions, every
range of months, and the dong view. Each shown number is written as a linear function of the
finest unknowns, from what the query *means* (not from how the access layer answers it):

* ``x[month, district, age group, sex] >= 0`` per measure (a stock's months are separate
  unknowns; a flow's period is the sum of its months);
* ``y[dong] >= 0`` for the dong view's period, with the structural equation that a district's
  dongs add up to its cells of that period (dong within district: a hierarchy).

Every shown number is an equation (checked against the true counts first: the published numbers
are right), every hidden one is at least 1 (zeros show). Each hidden number is then bounded by
two linear programs (HiGHS). It is protected when ``max - min >= high - low`` (9: it cannot be
pinned down to within the suppression range 1-10), the criterion of ``lakehouse.disclosure_audit``
and docs/disclosure.md; a hidden run of months (a flow's answer summed over two or more months,
short of the whole period) also when its least value is above 10 (it cannot be a small count).
The same attack against the method before (each query suppressed on its own, kept here as
``per_query``) must break it: that is the issue's finding, reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.optimize
import scipy.sparse as sp

from lakehouse import disclosure
from lakehouse.access import (
    UPTAKE_DIMENSIONS,
    UPTAKE_MEASURES,
    Access,
    AccessDeniedError,
    Principal,
)
from pipelines.defs import gold
from pipelines.defs.checks import checks_for
from tests.conftest import City
from tests.pipelines.conftest import Lake
from tests.pipelines.test_gold import _build_silver, _imaging_silver

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.slow]
LOW, HIGH = 1, 10
CUBE = ("month", "district_code", "age_group", "sex")
Query = Callable[[str, list[str], str, str], pl.DataFrame]


@pytest.fixture(scope="module")
def city(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    lake = Lake(tmp_path_factory.mktemp("attack") / "lakehouse", small_city.out)
    _build_silver(lake, small_city)
    _imaging_silver(lake)  # one citizen with a scored study: an ai_users count of 1
    assert lake.materialise([*gold.GOLD_ASSETS, *checks_for(gold.GOLD_ASSETS)]).success
    with lake.active():
        yield lake


@pytest.fixture(scope="module")
def official(city: Lake) -> Access:
    return Access(Principal("official", "official", "시청 담당자", origin="test"))


@pytest.fixture(scope="module")
def truth(city: Lake) -> pl.DataFrame:
    """The true finest counts (the daily table, read by the test, never by an official)."""
    daily = city.frame("gold.programme_uptake_daily")
    return daily.with_columns(pl.col("day").dt.strftime("%Y-%m").alias("month"))


def per_query(daily: pl.DataFrame) -> Query:
    """The method before: each query's answer computed from the raw daily counts and suppressed
    on its own by ``disclosure.protect`` (lakehouse/access/aggregates.py at c36c48c)."""

    def uptake(measure: str, dims: list[str], first: str, last: str) -> pl.DataFrame:
        rows = daily.filter(pl.col("month").is_between(pl.lit(first), pl.lit(last)))
        if UPTAKE_MEASURES[measure] == "last":
            rows = rows.filter(pl.col("day") == pl.col("day").max())
        cells = (
            rows.group_by(dims).agg(pl.col(measure).sum().cast(pl.Int64))
            if dims
            else rows.select(pl.col(measure).sum().cast(pl.Int64))
        )
        protected = disclosure.protect(cells, dims, measure, LOW, HIGH)
        return protected.with_columns(
            (pl.col(disclosure.STATUS) != disclosure.SHOWN).alias("suppressed")
        ).drop(disclosure.STATUS)

    return uptake


class Attack:
    """The finest unknowns of one measure and everything shown about them."""

    def __init__(self, truth: pl.DataFrame, measure: str) -> None:
        self.measure = measure
        self.months = truth["month"].unique().sort().to_list()
        self.levels = {d: truth[d].unique().sort().to_list() for d in UPTAKE_DIMENSIONS}
        self.dongs = (
            truth.select("district_code", "dong_code").unique().sort("district_code", "dong_code")
        ).rows()
        shape = [len(self.months), *(len(self.levels[d]) for d in UPTAKE_DIMENSIONS)]
        self.shape = tuple(shape)
        self.n_x = int(np.prod(shape))
        self.n = self.n_x + len(self.dongs)
        # The true unknowns, to check every shown number against.
        stock = UPTAKE_MEASURES[measure] == "last"
        ends = truth.group_by("month").agg(pl.col("day").max())
        rows = truth.join(ends, on=["month", "day"]) if stock else truth
        true = np.zeros(self.n)
        for m, d, a, s, v in rows.group_by(CUBE).agg(pl.col(measure).sum()).iter_rows():
            true[self._x(m, {"district_code": d, "age_group": a, "sex": s})] = v
        last = rows.filter(pl.col("month") == self.months[-1]) if stock else rows
        for d, g, v in (
            last.group_by("district_code", "dong_code").agg(pl.col(measure).sum()).iter_rows()
        ):
            true[self.n_x + self.dongs.index((d, g))] = v
        self.true = true
        self.equations: dict[bytes, tuple[np.ndarray, float]] = {}
        # Hidden numbers, and whether each is a run of months (an answer the access layer sums,
        # not a published cell): a run that cannot be small (at least HIGH + 1) may be known.
        self.hidden: dict[bytes, tuple[np.ndarray, str, bool]] = {}
        # A district's dongs add up to its cells of the dong view's period.
        self.links = []
        period = [self.months[-1]] if stock else self.months
        for d in self.levels["district_code"]:
            row = -self.expression(period, {"district_code": d})
            for i, (dd, _) in enumerate(self.dongs):
                row[self.n_x + i] = 1.0 if dd == d else 0.0
            self.links.append(row)

    def _x(self, month: str, cell: dict[str, str]) -> int:
        index = [self.months.index(month)] + [
            self.levels[d].index(cell[d]) for d in UPTAKE_DIMENSIONS
        ]
        return int(np.ravel_multi_index(index, self.shape))

    def expression(self, months: list[str], cell: dict[str, str]) -> np.ndarray:
        """The sum of ``x`` over these months and the cell's values (a missing or ``TOTAL``
        dimension: all its values)."""
        row = np.zeros(self.n)
        choose = [np.isin(self.months, months)] + [
            np.array(
                [cell.get(d, disclosure.TOTAL) in (disclosure.TOTAL, v) for v in self.levels[d]]
            )
            for d in UPTAKE_DIMENSIONS
        ]
        mask = choose[0]
        for axis in choose[1:]:
            mask = np.multiply.outer(mask, axis)
        row[: self.n_x] = mask.ravel()
        return row

    def dong(self, district: str, dong: str) -> np.ndarray:
        row = np.zeros(self.n)
        row[self.n_x + self.dongs.index((district, dong))] = 1.0
        return row

    def saw(self, row: np.ndarray, value: Any, hidden: bool, what: str, run: bool = False) -> None:
        key = row.tobytes()
        if hidden:
            self.hidden.setdefault(key, (row, what, run))
            return
        assert row @ self.true == value, f"{what}: shows {value}, the count is {row @ self.true}"
        self.equations[key] = (row, float(value))

    def weak(self) -> list[tuple[str, float, float]]:
        """The hidden numbers the shown ones pin down to an interval narrower than the
        suppression range: ``(what, min, max)``."""
        # A number hidden by one query and shown by another is simply known.
        weak = [
            (what, self.equations[k][1], self.equations[k][1])
            for k, (_, what, _run) in self.hidden.items()
            if k in self.equations
        ]
        hidden = [h for k, h in self.hidden.items() if k not in self.equations]
        if not hidden:
            return weak
        shown = list(self.equations.values())
        a_eq = sp.csr_matrix(np.array([r for r, _ in shown] + self.links))
        b_eq = np.array([v for _, v in shown] + [0.0] * len(self.links))
        a_ub = sp.csr_matrix(-np.array([r for r, _, _ in hidden]))
        b_ub = -np.ones(len(hidden))
        # Any two feasible solutions bound a cell's interval from inside: cells whose values
        # already spread by the range need no programs of their own.
        low = np.full(len(hidden), np.inf)
        high = np.full(len(hidden), -np.inf)
        for i, (row, what, run) in enumerate(hidden):
            least = -np.inf
            for sign in (1.0, -1.0):
                if high[i] - low[i] >= HIGH - LOW or least > HIGH + 1e-6:
                    break
                found = scipy.optimize.linprog(
                    sign * row, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs"
                )
                if found.status == 3:
                    high[i] = np.inf
                    continue
                assert found.status == 0, found.message
                if sign > 0 and run:
                    least = found.fun
                values = -(a_ub @ found.x)
                np.minimum(low, values, out=low)
                np.maximum(high, values, out=high)
            if high[i] - low[i] < HIGH - LOW - 1e-6 and least <= HIGH + 1e-6:
                weak.append((what, float(low[i]), float(high[i])))
        return weak


def ranges(months: list[str]) -> Iterator[tuple[str, str]]:
    for i, first in enumerate(months):
        for last in months[i:]:
            yield first, last


def subsets() -> Iterator[list[str]]:
    for k in range(len(UPTAKE_DIMENSIONS) + 1):
        for dims in combinations(UPTAKE_DIMENSIONS, k):
            yield list(dims)


def attack(truth: pl.DataFrame, measure: str, uptake: Query, dongs: Query | None) -> Attack:
    """Ask every query of one measure and collect what it shows."""
    found = Attack(truth, measure)
    for first, last in ranges(found.months):
        inside = [m for m in found.months if first <= m <= last]
        period = inside[-1:] if UPTAKE_MEASURES[measure] == "last" else inside
        run = 1 < len(period) < len(found.months)
        for dims in subsets():
            table = uptake(measure, dims, first, last)
            for row in table.iter_rows(named=True):
                cell = {d: row[d] for d in dims}
                found.saw(
                    found.expression(period, cell),
                    row[measure],
                    row["suppressed"],
                    f"{measure} {first}..{last} {cell}",
                    run,
                )
    if dongs is not None:
        whole = [found.months[-1]] if UPTAKE_MEASURES[measure] == "last" else found.months
        table = dongs(measure, [], found.months[0], found.months[-1])
        for row in table.iter_rows(named=True):
            district, dong = row["district_code"], row["dong_code"]
            expression = (
                found.expression(whole, {"district_code": district})
                if dong == disclosure.TOTAL
                else found.dong(district, dong)
            )
            found.saw(expression, row[measure], row["suppressed"], f"{measure} {district}/{dong}")
    return found


@pytest.mark.parametrize("measure", list(UPTAKE_MEASURES))
def test_no_hidden_cell_can_be_pinned_down_from_everything_the_app_shows(
    official: Access, truth: pl.DataFrame, measure: str
) -> None:
    def dongs(measure: str, dims: list[str], first: str, last: str) -> pl.DataFrame:
        return official.uptake_dongs(measure, first, last)

    found = attack(truth, measure, official.uptake, dongs)
    assert found.equations  # the app shows something of every measure
    assert found.weak() == []


def test_the_attack_breaks_suppression_query_by_query(truth: pl.DataFrame) -> None:
    """The method before: each answer protected on its own. Combined, the answers pin hidden
    counts down (issue 20), so the test above fails on it."""
    before = per_query(truth)
    weak = [w for m in UPTAKE_MEASURES for w in attack(truth, m, before, None).weak()]
    assert weak, "the per-query method should have been broken by the attack"


def test_a_range_of_months_is_the_sum_of_the_published_months(official: Access) -> None:
    months = official.uptake_months()
    assert len(months) >= 2
    whole = official.uptake("signups", ["district_code"], months[0], months[-1])
    part = official.uptake("signups", ["district_code"], months[0], months[-2])
    each = [official.uptake("signups", ["district_code"], m, m) for m in months[:-1]]
    for i, row in enumerate(part.iter_rows(named=True)):
        shown = [t.row(i, named=True) for t in each]
        assert row["suppressed"] == any(s["suppressed"] for s in shown)
        if not row["suppressed"]:
            assert row["signups"] == sum(s["signups"] for s in shown)
    assert whole["district_code"].to_list() == part["district_code"].to_list()
    # A stock's range is its last month.
    stock = official.uptake("residents", ["sex"], months[0], months[-2])
    assert stock.equals(official.uptake("residents", ["sex"], months[-2], months[-2]))


def test_the_dong_view_is_the_whole_period_only(official: Access) -> None:
    months = official.uptake_months()
    table = official.uptake_dongs("residents", months[0], months[-1])
    assert table.columns == ["district_code", "dong_code", "residents", "suppressed"]
    assert table.row(-1)[:2] == (disclosure.TOTAL, disclosure.TOTAL)
    shown = table.filter(~pl.col("suppressed"))["residents"]
    assert not shown.is_between(LOW, HIGH).any()
    with pytest.raises(ValueError, match="whole period"):
        official.uptake_dongs("residents", months[0], months[-2])


def test_officials_read_nothing_but_the_published_table(
    city: Lake, official: Access, truth: pl.DataFrame
) -> None:
    """With the raw daily table gone, every official view still answers (it never read it);
    anyone else is refused, and the refusal is in the access log."""
    daily = city.root / "gold" / "programme_uptake_daily"
    aside = daily.with_name("programme_uptake_daily.aside")
    daily.rename(aside)
    try:
        months = official.uptake_months()
        assert months == truth["month"].unique().sort().to_list()
        assert official.uptake("consented", ["district_code", "sex"], months[0], months[-1]).height
        assert official.uptake_dongs("signups", months[0], months[-1]).height
    finally:
        aside.rename(daily)
    admin = Access(Principal("admin", "admin", "운영자", origin="test"))
    with pytest.raises(AccessDeniedError):
        admin.uptake_dongs("signups", months[0], months[-1])
    log = city.frame("ops.audit_log", pl.col("account") == "admin")
    assert (log["outcome"] == "denied").any()
