"""Dagster's SQLite event log with one transaction per batch of asset events and one engine per
database file.

A range run of partitioned assets (``BackfillPolicy.single_run``) records one materialisation per
partition: the demo's build records thousands (a year of days and fifteen years of history months,
for every daily and monthly table). Dagster's stock SQLite storage writes each event with a new
engine, a new connection and a committed transaction, twice (the run's shard and the cross-run
index), so at city history most of the build's wall time was those commits, not data
(docs/performance.md, "Dagster's share of the build").

Dagster hands the events of one asset's partitions over as one batch when
``DAGSTER_EVENT_BATCH_SIZE`` is set (the build sets it), and a run's planned events (its assets'
planned materialisations and its checks' planned evaluations) as another; the stock storage then
still stores them one by one. This storage writes such a batch in one transaction per shard, with
exactly the rows, tags, asset index entries and check execution rows the stock ``store_event``
writes for each, so the Dagster UI, the sensors and the data-health page
(``lakehouse.access.health``) read the same files with the stock class. Anything other than a batch
of one run's asset events and planned check evaluations is stored the stock way.

It also keeps one SQLAlchemy engine per database file, with its connection open, instead of creating
an engine and opening and closing a connection for every event (and a WAL checkpoint at every
close), and commits with ``synchronous=NORMAL`` (``_engine`` says why that is safe). Only ``gjh
build`` uses it (``pipelines.instance.instance``); a deployment with its own storage (PostgreSQL)
keeps its own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as db
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

PLANNED_CHECK = DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
BATCHED = {*ASSET_EVENTS, PLANNED_CHECK}


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that stores a batch of one run's asset events (and planned check
    evaluations) in one transaction per shard, with one engine per database file."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: dict[str, Engine] = {}
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, made (and its database created) on first use.

        Its pool keeps one connection open (the stock storage's ``NullPool`` closes it after
        every transaction, and SQLite checkpoints and removes a WAL file when its last
        connection closes: measured here about 20 ms a commit against about 1 ms with the
        connection kept, docs/performance.md). Commits are ``synchronous=NORMAL``, which in
        WAL mode cannot corrupt the database; a power cut may lose the last commits of a build
        (a run then shows as started, and ``pipelines.build.recover`` fails it at the next
        build). A second connection opens only while one is in use (``has_table``).
        """
        engine = self._engines.get(shard)
        if engine is None:
            engine = db.create_engine(
                create_db_conn_string(self._base_dir, shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            db.event.listen(engine, "connect", _normal_sync)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """The stock ``_connect`` (one lock, the database created on first use, a transaction
        per connection), with the shard's engine kept rather than made and disposed of."""
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def has_table(self, table_name: str) -> bool:
        """The stock check (asked before every asset event's tags and every check event is
        stored) on the index's kept engine, remembered once a table exists. Like the stock one,
        it takes no lock: it is asked while a transaction holds it."""
        if table_name in self._tables:
            return True
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables.add(table_name)
        return found

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        runs = {e.run_id for e in events}
        if len(runs) != 1 or not all(
            e.is_dagster_event and e.dagster_event_type in BATCHED for e in events
        ):
            super().store_event_batch(events)
            return
        inserts = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(runs.pop()) as conn:
            for insert in inserts:
                conn.execute(insert)
        # Mirrored in the cross-run index, as the stock store_event does for each event.
        with self.index_transaction() as conn:
            ids = []
            for insert in inserts:
                with db_result(conn, insert) as result:
                    ids.append(result.inserted_primary_key[0])
            assets = [
                (e, i)
                for e, i in zip(events, ids, strict=True)
                if e.dagster_event_type != PLANNED_CHECK
            ]
            if assets:
                self._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])
            for event, event_id in zip(events, ids, strict=True):
                if event.dagster_event_type == PLANNED_CHECK:
                    self._plan_check(conn, event, event_id)
                else:
                    self._store_asset_event(conn, event, event_id)

    def _plan_check(self, conn: Connection, event: EventLogEntry, event_id: int) -> None:
        """The planned check's execution rows, as the stock storage's
        ``_store_asset_check_evaluation_planned`` writes them (one per partition, or one)."""
        planned = event.get_dagster_event().asset_check_planned_data
        subset = planned.partitions_subset
        keys: Sequence[str | None] = list(subset.get_partition_keys()) if subset else [None]
        # As the stock _event_insert_timestamp: UTC without a zone (what PostgreSQL needs).
        inserted = datetime.fromtimestamp(event.timestamp, UTC).replace(tzinfo=None)
        # A check of a partitioned asset is planned once per partition of a range run (the
        # build's history: about 40,000 rows at the demo's size), each row holding the same
        # event: serialised once here, not once a row.
        serialized = serialize_value(event)
        conn.execute(
            AssetCheckExecutionsTable.insert().values(
                [
                    {
                        "asset_key": planned.asset_key.to_string(),
                        "check_name": planned.check_name,
                        "partition": key,
                        "run_id": event.run_id,
                        "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                        "evaluation_event": serialized,
                        "evaluation_event_timestamp": inserted,
                        "evaluation_event_storage_id": event_id,
                    }
                    for key in keys
                ]
            )
        )


def _normal_sync(connection: Any, record: Any) -> None:
    """WAL commits without an fsync each (SQLite syncs at checkpoints): see ``_engine``."""
    del record
    connection.execute("PRAGMA synchronous=NORMAL")
