"""A range run's bookkeeping in the build: one planned event per asset, the materialisations of
its partitions stored as one batch per asset, and still every partition recorded where the UI,
the sensors and the data-health page read them (the stock SQLite storage, opened from the
home's ``dagster.yaml``)."""

from pathlib import Path

import dagster as dg
import pytest

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
