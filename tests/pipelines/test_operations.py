"""Running the pipelines: reruns change nothing, a killed run leaves no partial data, the sensor
launches what arrives, the definitions load, and the instance configuration is what we run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse.catalog import TABLES
from pipelines.build import build, plan
from pipelines.definitions import JOBS, defs
from pipelines.defs.resources import Imaging, Lakehouse
from pipelines.defs.sensors import drop_folder_sensor, run_requests
from pipelines.instance import PROJECT_CONFIG
from tests.conftest import City
from tests.pipelines.conftest import Lake, resend

GJH = str(Path(sys.executable).with_name("gjh"))
SNAPSHOT = Path(__file__).with_name("asset_graph.txt")


# What an imaging pass records about when it ran (its drop id and clock), which two builds of the
# same files cannot share; masked so the rest of each row is compared.
RUN_CLOCK = {
    "silver.imaging_instances": ("drop_id", "indexed_at"),
    "silver.imaging_routing": ("decided_at",),
    "ai.findings": ("scored_at",),
    # The version of silver.programme_events the fold read: a rerun writes new versions.
    "gold.citizen_consent": ("events_version",),
    # Hours from a study's arrival to its scoring: the imaging pass's own clock, again.
    "gold.ai_services_published": ("median_hours",),
    # When the OMOP data-quality report ran (its checks and counts are compared).
    "gold.omop_dq_results": ("run_id", "run_at"),
    # When the AI derived an image feature: ai.findings' scored_at, the scoring pass's clock.
    "omop.image_feature": ("alg_datetime",),
}
DROP_ID = {"bronze.deliveries": "delivery_id", "quarantine.records": "delivery_id"}


def _without_run_clock(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    if name in RUN_CLOCK:
        frame = frame.drop(RUN_CLOCK[name])
    if name in DROP_ID:
        column = DROP_ID[name]
        imaging = pl.col("source") == "imaging"
        frame = frame.with_columns(
            pl.when(imaging).then(None).otherwise(pl.col(column)).alias(column)
        )
    return frame


def snapshot(lake: Lake) -> dict[str, pl.DataFrame]:
    """Every built table, rows sorted; the vault by its keys only (Fernet ciphertexts differ on
    every encryption by design), imaging rows without their pass's clock (``RUN_CLOCK``)."""
    out = {}
    with lake.active():
        from lakehouse import delta, read

        for name in TABLES:
            if not delta.exists(name):
                continue
            frame = read.frame(name)
            if name == "vault.identities":
                frame = frame.select("citizen_key")
            frame = _without_run_clock(name, frame)
            out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def assert_same_tables(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name, frame in a.items():
        assert frame.equals(b[name]), f"{name} differs"


@pytest.fixture(scope="module")
def built_small(small_build: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city built by ``pipelines.build`` (this module's copy of the session's build:
    its rerun writes into it)."""
    return small_build.copy(tmp_path_factory.mktemp("built_small"))


@pytest.mark.slow
@pytest.mark.integration
def test_rerunning_the_build_and_a_partition_gives_identical_tables(
    built_small: Lake, small_city: City
) -> None:
    before = snapshot(built_small)
    assert {"silver.claims", "silver.citizens", "quarantine.records"} <= before.keys()
    with built_small.active():
        build(small_city.out, dg.DagsterInstance.ephemeral(), progress=lambda _: None)
        rerun = defs.resolve_job_def("claims_job").execute_in_process(
            partition_key="2025-04", instance=dg.DagsterInstance.ephemeral()
        )
    assert rerun.success
    assert_same_tables(before, snapshot(built_small))


@pytest.mark.slow
@pytest.mark.integration
def test_a_file_delivered_twice_counts_once(built_small: Lake, small_city: City) -> None:
    ledger = built_small.frame("bronze.deliveries")
    duplicates = ledger.filter(pl.col("status") == "duplicate")
    assert duplicates.height >= 1
    originals = ledger.filter(pl.col("file").is_in(duplicates["duplicate_of"].to_list()))
    assert (originals["status"] == "ingested").all()
    bronze = built_small.frame("bronze.claims_t200")
    assert not bronze["_file"].is_in(duplicates["file"].to_list()).any()
    assert bronze.select("_delivery_id", "citizen_key", "SPEC_ID_SNO").is_unique().all()


@pytest.mark.slow
@pytest.mark.integration
def test_a_build_killed_mid_write_leaves_no_partial_data_and_the_rerun_completes(
    built_small: Lake, small_city: City, tmp_path: Path
) -> None:
    """A real ``gjh build`` process, recording its runs in a real instance, is killed while the
    monthly stage writes; the next build recovers the dead run's pool slot and completes."""
    lake = Lake(tmp_path / "lakehouse", small_city.out)
    env = os.environ | {
        "LAKEHOUSE_URI": str(lake.root),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    command = [GJH, "build", "--sources", str(small_city.out)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    # Kill it the moment the first monthly table has data files on disk: mid-stage, with other
    # tables of the same run not yet written.
    target = lake.root / "bronze" / "claims_t300"
    deadline = time.monotonic() + 300
    while not any(target.rglob("*.parquet")):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    # What is committed is readable and whole; the monthly stage did not finish.
    partial = snapshot(lake)
    assert "silver.citizens" in partial
    assert "silver.claims" not in partial
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "recovered run" in done.stdout
    assert_same_tables(snapshot(lake), snapshot(built_small))


@pytest.mark.integration
def test_the_sensor_launches_new_deliveries_once(small_city: City, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(small_city.out, sources)
    resource = Lakehouse(lakehouse_uri=str(tmp_path / "lake"), sources_dir=str(sources))
    sensor = drop_folder_sensor(JOBS)
    with dg.build_sensor_context(resources={"lakehouse": resource}) as context:
        first = sensor(context)
    assert isinstance(first, dg.SensorResult)
    requested = {(r.job_name, r.partition_key) for r in first.run_requests or []}
    assert ("registry_job", None) in requested
    assert {("claims_job", m) for m in ("2025-03", "2025-04", "2025-05")} <= requested
    with dg.build_sensor_context(resources={"lakehouse": resource}, cursor=first.cursor) as ctx:
        again = sensor(ctx)
    assert isinstance(again, dg.SensorResult) and not again.run_requests
    # A resent April arrives: exactly one run, for April.
    resend(sources / "claims" / "202504", "202504-resend-2")
    with dg.build_sensor_context(resources={"lakehouse": resource}, cursor=first.cursor) as ctx:
        third = sensor(ctx)
    assert isinstance(third, dg.SensorResult)
    assert [(r.job_name, r.partition_key) for r in third.run_requests or []] == [
        ("claims_job", "2025-04")
    ]


def test_deliveries_of_a_source_without_a_job_wait_for_it(small_city: City) -> None:
    requests, seen = run_requests(small_city.out, set(), {"claims_job"})
    assert {r.job_name for r in requests} == {"claims_job"}
    assert all(d.startswith(("claims/", "pharmacy/")) for d in seen)


def tick(
    lake: Lake, sensor: str, instance: dg.DagsterInstance, cursor: str | None = None
) -> list[str]:
    """The run keys one tick of ``sensor`` requests, evaluated as the daemon's code server
    evaluates it (``evaluate_tick``, on the project's Definitions and a real instance)."""
    resources = lake.resources | {
        # The studies the build left waiting for their quiet period are owed a routing pass (the
        # build says so): that is work, not a re-ingestion; a quiet period longer than the test
        # keeps it out of what this test counts.
        "imaging": Imaging(quiet_period_s=10**9, settle_s=0, workers=1),
    }
    with (
        lake.active(),
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=resources
        ) as context,
    ):
        data = defs.resolve_sensor_def(sensor).evaluate_tick(context)
    return [r.run_key or "" for r in data.run_requests or []]


@pytest.mark.slow
@pytest.mark.integration
def test_a_served_build_queues_nothing_until_a_delivery_arrives(
    built_small: Lake, small_city: City, tmp_path: Path
) -> None:
    # The built lakehouse, its drop folder copied with the files' times (the imaging ledger
    # knows a file by its path and modification time), so new deliveries can be added.
    served = Lake(built_small.root, tmp_path / "sources")
    shutil.copytree(small_city.out, served.sources)
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    # gjh serve's first ticks after gjh build: every delivery is in the ledger, nothing runs.
    for sensor in ("drop_folder", "imaging_drop"):
        assert tick(served, sensor, instance) == [], sensor
    # A resent month launches exactly its own run; a new DICOM file, one imaging pass.
    resend(served.sources / "claims" / "202504", "202504-resend-9")
    [claims] = tick(served, "drop_folder", instance)
    assert claims.startswith("claims_job:2025-04:")
    dicom = next((served.sources / "imaging").rglob("*.dcm"))
    shutil.copy2(dicom, dicom.with_name("arrived-later.dcm"))
    [imaging] = tick(served, "imaging_drop", instance)
    assert imaging.startswith("imaging:files:")


def _graph_lines() -> list[str]:
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        part = node.partitions_def
        grain = "-" if part is None else type(part).__name__.replace("PartitionsDefinition", "")
        deps = ",".join(sorted(p.to_user_string() for p in node.parent_keys)) or "-"
        lines.append(f"{key.to_user_string()} | {node.group_name} | {grain} | {deps}")
    return lines


def test_the_definitions_load_and_the_asset_graph_matches_its_snapshot() -> None:
    """The graph is reviewed as a text file: a change to it shows in the diff. Regenerate with
    GJH_UPDATE_SNAPSHOTS=1."""
    lines = _graph_lines()
    if os.environ.get("GJH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8").splitlines() == lines
    # One asset per catalogue table, except the shared ledgers every ingestion writes.
    keys = {line.split(" | ")[0].replace("/", ".") for line in lines}
    shared = {"bronze.deliveries", "quarantine.records"}
    assert keys <= set(TABLES) - shared
    # Every job resolves against the assets.
    for job in JOBS:
        assert defs.resolve_job_def(job.name).name == job.name


def test_the_build_plan_covers_every_asset_once(small_city: City) -> None:
    stages = plan(defs, small_city.out)
    keys = [k for s in stages for k in s.keys]
    assert len(keys) == len(set(keys)) == len(defs.resolve_asset_graph().materializable_asset_keys)
    months = next(s for s in stages if s.name == "monthly extracts")
    assert months.partitions == ("2025-03", "2025-05")


def test_the_instance_configuration_limits_lakehouse_writes(tmp_path: Path) -> None:
    shutil.copyfile(PROJECT_CONFIG, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert instance.get_settings("telemetry") == {"enabled": False}
    pools = {
        str(node.key.to_user_string()): node.pools
        for node in defs.resolve_asset_graph().asset_nodes
        if node.is_materializable
    }
    assert all(p == {"lakehouse"} for p in pools.values()), pools


@pytest.mark.slow
@pytest.mark.integration
def test_gjh_catalog_reports_every_table_with_its_rows(built_small: Lake) -> None:
    env = os.environ | {"LAKEHOUSE_URI": str(built_small.root)}
    out = subprocess.run(
        [GJH, "catalog", "--json"], env=env, capture_output=True, text=True, check=True
    )
    doc = json.loads(out.stdout)
    assert [d["table"] for d in doc] == list(TABLES)
    claims = next(d for d in doc if d["table"] == "silver.claims")
    assert claims["rows"] == built_small.frame("silver.claims").height
    assert claims["version"] >= 0 and claims["uri"].endswith("/silver/claims")
    text = subprocess.run([GJH, "catalog"], env=env, capture_output=True, text=True, check=True)
    assert f"{claims['rows']:,}" in text.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_gjh_serve_serves_the_asset_graph_and_stops_cleanly(tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"DAGSTER_HOME": str(tmp_path / "dagster")}
    process = subprocess.Popen(
        [GJH, "serve", "--dagster-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Serving." in line or len(lines) > 200:
                break
        assert any(f"http://127.0.0.1:{port}" in line for line in lines), lines
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=query,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            nodes = json.loads(response.read())["data"]["assetNodes"]
        assert ["silver", "claims"] in [n["assetKey"]["path"] for n in nodes]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    with socket.socket() as s:  # nothing is left listening
        assert s.connect_ex(("127.0.0.1", port)) != 0
