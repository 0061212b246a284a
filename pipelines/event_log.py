"""Dagster's SQLite event log with one transaction per batch of asset events.

A range run of partitioned assets (``BackfillPolicy.single_run``) records one materialisation
per partition: the demo's build records thousands (a year of days and fifteen years of history
months, for every daily and monthly table). Dagster's stock SQLite storage writes each event
with a new engine, a new connection and a committed transaction, twice (the run's shard and the
cross-run index), so at city history most of the build's wall time was those commits, not data
(docs/performance.md, "Dagster's share of the build").

Dagster hands the events of one asset's partitions over as one batch when
``DAGSTER_EVENT_BATCH_SIZE`` is set (the build sets it); the stock storage then still stores
them one by one. This storage writes such a batch in one transaction per shard, with exactly
the rows, tags and asset index entries the stock ``store_event`` writes for each, so the
Dagster UI, the sensors and the data-health page (``lakehouse.access.health``) read the same
files with the stock class. Anything other than a batch of one run's asset events is stored the
stock way. Only ``gjh build`` uses it (``pipelines.instance.instance``); a deployment with its
own storage (PostgreSQL) keeps its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that stores a batch of one run's asset events in one
    transaction per shard."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        runs = {e.run_id for e in events}
        if len(runs) != 1 or not all(
            e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS for e in events
        ):
            super().store_event_batch(events)
            return
        inserts = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(runs.pop()) as conn:
            for insert in inserts:
                conn.execute(insert)
        # Mirrored in the cross-run index, as the stock store_event does for each asset event.
        with self.index_transaction() as conn:
            ids = []
            for insert in inserts:
                with db_result(conn, insert) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            for event, event_id in zip(events, ids, strict=True):
                self._store_asset_event(conn, event, event_id)
