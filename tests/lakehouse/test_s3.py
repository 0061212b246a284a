"""The lakehouse on real S3-compatible object storage: Debian's radosgw (``tests.lakehouse.
s3server``), with ``LAKEHOUSE_URI=s3://bucket/prefix`` and the ``AWS_*`` settings a deployment
sets, nothing else (no ``AWS_S3_ALLOW_UNSAFE_RENAME``: delta-rs commits with a conditional put,
``If-None-Match: *``, and radosgw refuses the second put of a commit file).

A tiny city is built into the bucket by ``pipelines.build`` (as ``gjh build`` does), read back
through S3, and a citizen's timeline is read through the access layer (audited, its outbox on
local disk); several processes append to one table at once and every row lands.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.synchronize
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse import audit, config, delta
from lakehouse import read as lake
from lakehouse.access import Access, Principal
from lakehouse.access.gate import NATIONAL_KINDS
from lakehouse.catalog import table as catalog_table
from lakehouse.config import environment
from pipelines import build
from synth.city import generate
from synth.config import CityConfig
from tests.lakehouse import s3server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.s3,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(not s3server.installed(), reason="no Ceph radosgw: `make s3`"),
    pytest.mark.skipif(
        importlib.util.find_spec("duckdb_extension_httpfs") is None,
        reason="DuckDB reads S3 through httpfs: the duckdb-extension-httpfs wheel is missing",
    ),
]

BUCKET = "lake"
LAYERS = ("bronze", "silver", "gold")
RACE = "quarantine.records"  # an append ledger of the catalogue, partitioned by stage
WRITERS = 4
APPENDS = 3
REPLACES = 2
ROW = ["citizen_key", "event_date", "kind", "code", "institution", "source_ref"]  # a timeline row


@pytest.fixture(scope="module")
def server() -> Iterator[s3server.Server]:
    with s3server.server() as running:
        print(f"s3-measured: Ceph served S3 after {running.started_s:.1f} s")
        running.create_bucket(BUCKET)
        yield running


@pytest.fixture(scope="module")
def deployment(server: s3server.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny city's drop folder and local folders for what never goes to the bucket (the keys,
    Dagster's home, the access log's outbox), with the lakehouse in ``s3://lake/lakehouse``;
    yields the local folder."""
    top = tmp_path_factory.mktemp("s3")
    generate(CityConfig(citizens=150, start=date(2025, 3, 1), days=3, seed=23), top / "sources")
    with environment(
        GJH_SOURCES=str(top / "sources"),
        GJH_SECRETS_DIR=str(top / "secrets"),
        DAGSTER_HOME=str(top / "dagster"),
        **server.env(BUCKET),
    ):
        yield top


@pytest.fixture(scope="module")
def built(deployment: Path) -> float:
    """The city built into the bucket, stage by stage as ``gjh build`` runs them (each with its
    quality checks), up to gold: the OMOP stage's data-quality run makes thousands of DuckDB
    scans, each of which lists the table's log and reads its files through S3 (it outlived
    the tests' 15 minutes on this shared machine). The seconds it took."""
    from pipelines.definitions import defs

    began = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        for stage in build.plan(defs, deployment / "sources"):
            if stage.name == "omop":
                continue
            result = build.run_stage(defs, stage, instance)
            assert result.success, (
                stage.name,
                [e.message for e in result.all_events if e.is_failure],
            )
    seconds = time.perf_counter() - began
    print(f"s3-measured: the tiny city built up to gold into radosgw in {seconds:.1f} s")
    return seconds


def _objects(server: s3server.Server, under: str) -> list[str]:
    found = server.filesystem().get_file_info(pafs.FileSelector(under, recursive=True))
    return [f.path for f in found if f.type == pafs.FileType.File]


def test_the_pipelines_write_every_layer_into_the_bucket(
    server: s3server.Server, built: float
) -> None:
    assert config.is_remote(config.lakehouse_uri())
    assert delta.uri("silver.citizens") == f"s3://{BUCKET}/lakehouse/silver/citizens"
    for layer in LAYERS:
        keys = _objects(server, f"{BUCKET}/lakehouse/{layer}")
        commits = [k for k in keys if "/_delta_log/" in k and k.endswith(".json")]
        data = [k for k in keys if k.endswith(".parquet")]
        assert commits and data, layer
    citizens = lake.frame("silver.citizens")
    assert citizens.height == 150
    assert lake.frame("bronze.resident_register").height >= 150
    timeline = lake.frame("gold.citizen_timeline")
    assert timeline.height > 0
    assert set(timeline["citizen_key"].unique()) <= set(citizens["citizen_key"])
    # DuckDB reads the same tables through S3 (the quality checks and the officials' counts).
    with lake.connect(["silver.citizens", "gold.citizen_timeline"]) as con:
        assert con.sql("SELECT count(*) FROM silver.citizens").fetchone() == (150,)
        row = con.sql("SELECT count(*) FROM gold.citizen_timeline").fetchone()
        assert row == (timeline.height,)
    # Nothing of the lakehouse went to local disk.
    assert not Path("s3:").exists()


def test_a_citizens_timeline_is_read_through_the_access_layer_and_audited(
    built: float, deployment: Path
) -> None:
    """The citizen app's read: the access layer decides, reads the gold table in the bucket and
    audits the read; the audit row waits in the outbox on local disk, then lands in the
    bucket's access log."""
    timeline = lake.frame("gold.citizen_timeline")
    # The national extracts' rows show a citizen only once their record link stands (none here):
    # the citizens with the most rows of the programme's own are read.
    own = timeline.filter(~pl.col("kind").is_in(NATIONAL_KINDS) & pl.col("partner").is_null())
    busiest = own.group_by("citizen_key").len().sort("len", "citizen_key", descending=True)
    read = {}
    for key in busiest["citizen_key"].head(3):
        me = Access(Principal("s3-citizen", "citizen", citizen_key=key, origin="test"))
        read[key] = me.timeline(key)
        # What the basis shows of the citizen's own rows in the bucket, and nothing else.
        assert set(read[key]["citizen_key"]) <= {key}
        shown = (
            read[key].select(ROW).join(timeline.select(ROW), on=ROW, how="anti", nulls_equal=True)
        )
        assert shown.is_empty()
    assert all(rows.height for rows in read.values()) and read
    assert config.outbox_dir() == deployment / "outbox"
    assert list(config.outbox_dir().glob("audit-*.sqlite"))
    audit.flush()
    logged = lake.frame(audit.AUDIT).filter(pl.col("action") == "read:timeline")
    assert dict(zip(logged["subject_key"], logged["rows"], strict=True)) == {
        key: rows.height for key, rows in read.items()
    }
    assert _objects_exist(audit.AUDIT)


def _objects_exist(name: str) -> bool:
    return delta.exists(name) and delta.uri(name).startswith(f"s3://{BUCKET}/")


def _records(period: str, keys: list[str]) -> pl.DataFrame:
    """Quarantine records of one period, one per key (the catalogue's schema)."""
    row = {"stage": "bronze", "source": "claims", "table": "bronze.claims_t200", "line": 2}
    rows = [
        {**row, "period": period, "delivery_id": period, "file": k, "record_key": k, "rows": 1,
         "reason": "malformed_row", "message": "a concurrent writer's row"}
        for k in keys
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=catalog_table(RACE).polars_schema())


def _writer(n: int, start: multiprocessing.synchronize.Barrier) -> None:
    """One writer process: appends, then replaces of its own period, all into one table (the
    same files: the table's one partition), through ``lakehouse.delta`` as the pipelines do."""
    start.wait()
    for i in range(APPENDS):
        delta.append(RACE, _records(f"a{n}", [f"a{n}-{i}"]))
    for i in range(REPLACES):
        delta.replace(RACE, _records(f"r{n}", [f"r{n}-{i}-x", f"r{n}-{i}-y"]), f"period = 'r{n}'")


@pytest.mark.usefixtures("deployment")
def test_concurrent_writer_processes_all_land() -> None:
    """Four processes append and replace rows of one table at once, on the store's conditional
    put alone (no lock, no ``AWS_S3_ALLOW_UNSAFE_RENAME``): every commit lands as a version of
    its own and every row is there; each replace left exactly its last rows."""
    assert "AWS_S3_ALLOW_UNSAFE_RENAME" not in (config.storage_options() or {})
    seeded = delta.append(RACE, _records("seed", ["seed"])).version  # the build wrote it before
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(WRITERS)
    writers = [spawn.Process(target=_writer, args=(n, start)) for n in range(WRITERS)]
    began = time.perf_counter()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=600)
    print(f"s3-measured: {WRITERS} writers' {WRITERS * (APPENDS + REPLACES)} commits took "
          f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    assert [w.exitcode for w in writers] == [0] * WRITERS
    rows = lake.frame(RACE, pl.col("message") == "a concurrent writer's row")
    expected = {"seed"} | {
        *(f"a{n}-{i}" for n in range(WRITERS) for i in range(APPENDS)),
        *(f"r{n}-{REPLACES - 1}-{s}" for n in range(WRITERS) for s in "xy"),
    }
    assert sorted(rows["record_key"]) == sorted(expected)
    commits = WRITERS * (APPENDS + REPLACES)
    assert delta.open_table(RACE).version() == seeded + commits


@pytest.mark.usefixtures("deployment")
def test_the_store_refuses_a_second_put_of_a_commit_file(server: s3server.Server) -> None:
    """What delta-rs relies on instead of a lock: a conditional put (``If-None-Match: *``) of a
    commit file that exists is refused (412) and leaves it as it was; of a new version, it is
    written. A handle opened before another writer's commit still commits as the next version."""
    where = f"s3://{BUCKET}/race/stale"
    options = config.storage_options()
    write_deltalake(where, pa.table({"writer": ["seed"]}), storage_options=options)
    first = DeltaTable(where, storage_options=options)
    second = DeltaTable(where, storage_options=options)
    write_deltalake(first, pa.table({"writer": ["first"]}), mode="append")
    write_deltalake(second, pa.table({"writer": ["second"]}), mode="append")
    table = DeltaTable(where, storage_options=options)
    assert table.version() == 2
    assert sorted(table.to_pyarrow_table()["writer"].to_pylist()) == ["first", "second", "seed"]
    log = f"{BUCKET}/race/stale/_delta_log"
    with server.filesystem().open_input_stream(f"{log}/{1:020d}.json") as stream:
        commit = stream.read()
    assert server.put_if_absent(f"{log}/{1:020d}.json", b"{}") == 412
    with server.filesystem().open_input_stream(f"{log}/{1:020d}.json") as stream:
        assert stream.read() == commit
    assert server.put_if_absent(f"{BUCKET}/race/other/{0:020d}.json", b"{}") == 200
