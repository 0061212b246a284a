"""A range run's bookkeeping in the build: one planned event per asset, the materialisations of
its partitions stored as one batch per asset, and still every partition recorded where the UI,
the sensors and the data-health page read them (the stock SQLite storage, opened from the
home's ``dagster.yaml``)."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy
from sqlalchemy.pool import Pool

from pipelines import instance as project
from pipelines.build import range_events
from pipelines.event_log import BatchedSqliteEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
FIRST, LAST = "2025-01-01", "2025-03-31"


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult[None]:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset_check(asset=daily)
def daily_present() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


RANGE = {
    "dagster/asset_partition_range_start": FIRST,
    "dagster/asset_partition_range_end": LAST,
}
DAYS_IN_RANGE = DAYS.get_partition_keys_in_range(dg.PartitionKeyRange(FIRST, LAST))


def _range_run(recorded: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = dg.Definitions(
        assets=[daily], asset_checks=[daily_present]
    ).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=recorded,
        tags={
            "dagster/asset_partition_range_start": FIRST,
            "dagster/asset_partition_range_end": LAST,
        },
    )


@pytest.mark.integration
def test_a_range_run_records_every_partition_with_one_planned_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    recorded = project.instance()
    assert isinstance(recorded.event_log_storage, BatchedSqliteEventLogStorage)

    with range_events():
        result = _range_run(recorded)
    assert result.success
    days = DAYS.get_partition_keys_in_range(dg.PartitionKeyRange(FIRST, LAST))
    # Planned: one event naming the range (the stock setting plans one per partition).
    planned = recorded.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assert len(planned) == 1

    # Read back with Dagster's stock storage, as the UI and the data-health page open the home.
    stock = dg.DagsterInstance.from_config(str(home))
    assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
    run = stock.get_run_record_by_id(result.run_id)
    assert run is not None and run.dagster_run.tags["dagster/asset_partition_range_end"] == LAST
    key = dg.AssetKey("daily")
    assert stock.get_materialized_partitions(key) == set(days)
    latest = stock.fetch_materializations(key, limit=len(days) + 1).records
    assert len(latest) == len(days)
    assert {r.run_id for r in latest} == {result.run_id}
    assert {r.partition_key for r in latest} == set(days)
    checks = stock.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(key, "daily_present")]
    )
    assert checks[dg.AssetCheckKey(key, "daily_present")].run_id == result.run_id


def test_a_configured_storage_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home whose dagster.yaml names its storage (PostgreSQL in production) is opened as
    configured, never with the batched SQLite storage."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {tmp_path / 'elsewhere'}\n", encoding="utf-8"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert not isinstance(project.instance().event_log_storage, BatchedSqliteEventLogStorage)


CHECKS = 30


@dg.multi_asset(
    specs=[dg.AssetSpec("checked", partitions_def=DAYS)],
    check_specs=[dg.AssetCheckSpec(f"rule_{i}", asset="checked") for i in range(CHECKS)],
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def checked() -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    yield dg.MaterializeResult(asset_key="checked")
    for i in range(CHECKS):
        yield dg.AssetCheckResult(asset_key="checked", check_name=f"rule_{i}", passed=i % 2 == 0)


def _connections(storage: BatchedSqliteEventLogStorage) -> Counter[str]:
    """Count the connections ``storage`` opens, by shard (index or run), from now on."""
    opened: Counter[str] = Counter()
    connect = storage._connect

    def counted(shard: str) -> Any:
        opened["index" if shard == "index" else "run"] += 1
        return connect(shard)

    storage._connect = counted  # type: ignore[method-assign]
    return opened


@pytest.mark.integration
def test_a_run_s_planned_checks_are_stored_as_one_batch_as_the_stock_storage_stores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a run records its checks' planned evaluations: one transaction per shard for
    all of them (not two connections per check), with the rows the stock storage writes, so
    the UI and the data-health page read the same check executions."""
    job = dg.Definitions(assets=[checked]).resolve_implicit_global_asset_job_def()
    keys = [dg.AssetCheckKey(dg.AssetKey("checked"), f"rule_{i}") for i in range(CHECKS)]
    found = {}
    for name in ("batched", "stock"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / name))
        recorded = project.instance() if name == "batched" else dg.DagsterInstance.get()
        if name == "batched":
            assert isinstance(recorded.event_log_storage, BatchedSqliteEventLogStorage)
            opened = _connections(recorded.event_log_storage)
        with range_events():
            run = recorded.create_run_for_job(job_def=job, tags=RANGE)
        if name == "batched":
            assert opened["index"] <= 2 < CHECKS
        # Read back with the stock storage, as the UI and the data-health page open the home.
        stock = dg.DagsterInstance.from_config(str(tmp_path / name))
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        planned = stock.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        ).records
        rows = []
        for key in keys:
            history = stock.event_log_storage.get_asset_check_execution_history(key, limit=1000)
            for record in history:
                assert record.run_id == run.run_id
                assert record.event is not None
                rows.append((key.name, record.status.value, record.partition, record.event.message))
        found[name] = (len(planned), sorted(rows))
    assert found["batched"] == found["stock"]
    assert found["batched"][0] == CHECKS
    assert {status for _, status, _, _ in found["batched"][1]} == {"PLANNED"}
    # Dagster plans a check of a partitioned asset once per partition of a range run (and the
    # evaluation, not partitioned, adds its own row): the batch writes those rows as it does.
    assert len(found["batched"][1]) in (CHECKS, CHECKS * len(DAYS_IN_RANGE))


def test_the_storage_keeps_one_connection_per_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stock storage makes an engine and opens (then closes, checkpointing the WAL) a
    connection for every event it stores; this one opens the event log's files (the run's
    shard and the index) about once each, and commits without an fsync each."""
    opened: list[str] = []

    def connected(dbapi_connection: Any, record: Any) -> None:
        # Every new SQLite connection: which file it opened.
        [(_, _, path)] = dbapi_connection.execute("PRAGMA database_list").fetchall()
        opened.append(Path(path).name)

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    recorded = project.instance()
    sqlalchemy.event.listen(Pool, "connect", connected)
    try:
        with range_events():
            result = _range_run(recorded)
        stored = len(recorded.all_logs(result.run_id))
    finally:
        sqlalchemy.event.remove(Pool, "connect", connected)
    assert result.success
    assert stored > 20
    event_log = Counter(p for p in opened if p in {"index.db", f"{result.run_id}.db"})
    assert set(event_log) == {"index.db", f"{result.run_id}.db"}
    assert max(event_log.values()) <= 3 < stored
    storage = recorded.event_log_storage
    assert isinstance(storage, BatchedSqliteEventLogStorage)
    with storage.index_connection() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
