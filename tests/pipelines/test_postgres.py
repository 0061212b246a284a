"""Dagster on PostgreSQL, as production runs it: the run, event and schedule storage of
``docs/dagster.production.yaml`` on a PostgreSQL server started here (Debian's binaries, on
127.0.0.1), and a range run (a backfill of daily partitions as one run, the assets' backfill
policy) on the multiprocess executor, each step in a process of its own. What Dagster recorded
is read back through the instance and straight from PostgreSQL's tables; what the steps wrote
is read from the Delta tables; the project's own readers of run history (``gjh build``'s
recovery, the officials' data health) work on that storage."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from deltalake import DeltaTable

from lakehouse.access import health
from lakehouse.config import environment
from pipelines import build
from pipelines.defs import centre, programme, registry
from pipelines.instance import instance as project_instance
from synth.city import generate
from synth.config import CityConfig
from tests.pipelines import postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not postgres.installed(), reason="no PostgreSQL: `make postgres`"),
]

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "docs" / "dagster.production.yaml"
WHOLE = (registry.bronze_registry, registry.silver_registry, centre.centre_members)
DAILY = (
    centre.bronze_centre,
    centre.silver_centre,
    programme.bronze_programme,
    programme.silver_programme,
)


def asset_job() -> ReconstructableJob:
    """The project's asset job as each step process of the multiprocess executor rebuilds it:
    from the module ``gjh serve``'s daemon and webserver load (``pipelines.definitions``)."""
    repository = ReconstructableRepository.for_module("pipelines.definitions", "defs", str(ROOT))
    return repository.get_reconstructable_job("__ASSET_JOB")


def _keys(assets: tuple[dg.AssetsDefinition, ...]) -> list[dg.AssetKey]:
    return [k for a in assets for k in a.keys]


@pytest.fixture(scope="module")
def server() -> Iterator[postgres.Server]:
    with postgres.server() as running:
        yield running


@pytest.fixture(scope="module")
def deployment(server: postgres.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny city's drop folder and a lakehouse, with ``DAGSTER_HOME`` holding the production
    ``dagster.yaml`` pointed at the test server; yields the lakehouse root."""
    top = tmp_path_factory.mktemp("postgres")
    sources = top / "sources"
    generate(CityConfig(citizens=150, start=date(2025, 3, 1), days=3, seed=23), sources)
    home = top / "dagster"
    home.mkdir()
    shutil.copyfile(PRODUCTION, home / "dagster.yaml")
    with environment(
        DAGSTER_HOME=str(home),
        LAKEHOUSE_URI=str(top / "lakehouse"),
        GJH_SOURCES=str(sources),
        GJH_SECRETS_DIR=str(top / "secrets"),
        **server.env,
    ):
        yield top / "lakehouse"


@pytest.fixture(scope="module")
def runs(deployment: Path) -> Iterator[tuple[dg.DagsterInstance, list[str], float]]:
    """The sources delivered whole, then the daily exports over every delivered day as one
    range run, both on the multiprocess executor; the instance, the run ids and the seconds."""
    from pipelines.definitions import defs

    [daily] = [
        s for s in build.plan(defs, Path(os.environ["GJH_SOURCES"])) if s.name == "daily exports"
    ]
    began = time.perf_counter()
    ids = []
    with dg.DagsterInstance.get() as instance:
        for keys, tags in ((_keys(WHOLE), {}), (_keys(DAILY), daily.tags())):
            result = dg.execute_job(
                asset_job(), instance, run_config=build.QUIET, tags=tags, asset_selection=keys
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
            ids.append(result.run_id)
        yield instance, ids, time.perf_counter() - began


def test_the_production_instance_stores_runs_and_events_in_postgresql(
    runs: tuple[dg.DagsterInstance, list[str], float], server: postgres.Server
) -> None:
    instance, ids, seconds = runs
    print(f"postgres-measured: the two runs took {seconds:.1f} s")
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    for run_id in ids:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    with closing(server.connect()) as db, db.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs ORDER BY id")
        assert cursor.fetchall() == [(i, "SUCCESS") for i in ids]
        cursor.execute(
            "SELECT run_id, dagster_event_type, count(*) FROM event_logs "
            "WHERE dagster_event_type IS NOT NULL GROUP BY 1, 2"
        )
        counts = {(r, t): n for r, t, n in cursor.fetchall()}
    print(f"postgres-measured: {sum(counts.values())} events in {len(ids)} runs: {counts}")
    for run_id in ids:
        # Dagster keeps a run's end under its old name in the table (a pipeline's success).
        assert counts[(run_id, "PIPELINE_SUCCESS")] == 1
        # Each step ran in a worker process of the multiprocess executor.
        assert counts[(run_id, "STEP_WORKER_STARTED")] >= 2, counts
        assert counts[(run_id, "STEP_SUCCESS")] == counts[(run_id, "STEP_WORKER_STARTED")]
    events = instance.all_logs(ids[1])
    workers = {e.dagster_event.pid for e in events if e.is_dagster_event and e.dagster_event}
    assert workers - {None, os.getpid()}, workers


def test_the_range_run_materialised_every_day_into_delta_tables(
    runs: tuple[dg.DagsterInstance, list[str], float], deployment: Path
) -> None:
    instance, ids, _ = runs
    days = ["2025-03-01", "2025-03-02", "2025-03-03"]
    for key in _keys(DAILY):
        assert sorted(instance.get_materialized_partitions(key)) == days, key
    # A city this small has three days of app events but may have no centre visit in them.
    for table in ("silver/citizens", "silver/centre_members", "silver/programme_events"):
        assert DeltaTable(str(deployment / table)).to_pyarrow_table().num_rows > 0, table
    assert DeltaTable(str(deployment / "silver/centre_measurements")).version() >= 0
    record = instance.get_run_record_by_id(ids[1])
    assert record is not None
    assert record.dagster_run.tags["dagster/asset_partition_range_start"] == days[0]
    assert record.dagster_run.tags["dagster/asset_partition_range_end"] == days[-1]


@pytest.mark.usefixtures("runs")
def test_the_projects_readers_of_run_history_work_on_postgresql() -> None:
    """``gjh``'s instance keeps the deployment's ``dagster.yaml``; a build's recovery of dead
    runs and the officials' data health read the run history from PostgreSQL."""
    with project_instance() as mine:
        assert isinstance(mine.run_storage, PostgresRunStorage)
        assert build.recover(mine) == []
    opened = health._instance()
    assert opened is not None and isinstance(opened.run_storage, PostgresRunStorage)
    found = health._runs(opened, health.SOURCES["centre"])
    assert found["run_window"] == "2025-03-01..2025-03-03"
    assert found["failed_since"] is False
    assert health._failed_checks(opened).columns == list(health.CHECK_SCHEMA)
