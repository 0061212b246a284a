"""The "make demo's build" bench stage's measure of the assets' own compute: the time inside op
bodies, plain and generator alike, by op, with Dagster's handling of what they yield left out."""

import time
from collections.abc import Iterator

import dagster as dg

from gjh.bench import overhead
from gjh.bench.report import Floor, Measured, met

PAUSE = 0.2


@dg.asset
def plain() -> dg.MaterializeResult[None]:
    time.sleep(PAUSE)
    return dg.MaterializeResult()


@dg.multi_asset(specs=[dg.AssetSpec("first"), dg.AssetSpec("second")])
def generated() -> Iterator[dg.MaterializeResult[None]]:
    time.sleep(PAUSE)
    yield dg.MaterializeResult(asset_key="first")
    time.sleep(PAUSE)
    yield dg.MaterializeResult(asset_key="second")


def test_op_bodies_are_timed_by_op() -> None:
    with overhead.op_bodies_timed() as spent:
        result = dg.materialize([plain, generated], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert spent["plain"] >= PAUSE
    assert spent["generated"] >= 2 * PAUSE
    assert set(spent) == {"plain", "generated"}


def test_the_target_is_dagsters_share_at_most_thirty_percent() -> None:
    def row(wall: float, compute: float) -> Measured:
        return Measured(
            overhead.STAGE,
            wall,
            wall,
            1,
            "rows",
            0.0,
            floor=Floor("op bodies", compute, 0.0),
        )

    assert met(row(100.0, 71.0)) is True  # Dagster's share 29 %
    assert met(row(100.0, 69.0)) is False  # 31 %
