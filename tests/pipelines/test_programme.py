"""The citizen-app pipelines on the small city: the daily event logs into bronze, then accounts
and events, through real Dagster runs into a temporary lakehouse.

Expectations come from the delivered JSON Lines files, read here with ``json`` alone, and from
faults.json.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from lakehouse.pseudonym import citizen_key
from pipelines.defs import programme, registry
from tests.conftest import City
from tests.pipelines.conftest import Lake, assert_no_identifiers

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SOURCE = "programme/app_events"
TABLES = ("bronze.app_events", "silver.app_users", "silver.programme_events")


def _days(city: City) -> tuple[str, str]:
    return city.cfg.start.isoformat(), (city.cfg.start + timedelta(city.cfg.days - 1)).isoformat()


@pytest.fixture(scope="module")
def lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Citizens, then every day of the app's logs as one range run."""
    built = Lake(tmp_path_factory.mktemp("programme") / "lakehouse", small_city.out)
    built.materialise([registry.bronze_registry, registry.silver_registry])
    built.materialise([programme.bronze_programme, programme.silver_programme], _days(small_city))
    return built


def _events(city: City, skip_faults: bool = True) -> list[dict[str, Any]]:
    """Every event delivered, minus re-sent logs and broken lines (and, with ``skip_faults``,
    every line faults.json lists)."""
    return city.json_lines(
        SOURCE,
        lambda fault: fault is None or not (skip_faults or fault["kind"] == "malformed_row"),
    )


def test_rows_reconcile_with_the_delivered_logs(lake: Lake, small_city: City) -> None:
    """Bronze holds every parsable event once; silver every event but the impossible dates;
    one account per sign-up."""
    parsable, clean = _events(small_city, skip_faults=False), _events(small_city)
    bronze = lake.frame("bronze.app_events")
    assert bronze.height == len(parsable)
    events = lake.frame("silver.programme_events")
    assert sorted(events["event_id"].to_list()) == sorted(e["event_id"] for e in clean)
    signups = [e for e in clean if e["event_type"] == "signup"]
    users = lake.frame("silver.app_users")
    assert signups and users.height == len(signups)
    expected = {e["app_user_id"]: citizen_key(e["rrn"]) for e in signups}
    assert dict(zip(users["app_user_id"], users["citizen_key"], strict=True)) == expected
    assert set(users["citizen_key"].to_list()) <= set(
        lake.frame("silver.citizens")["citizen_key"].to_list()
    )
    assert set(events["app_user_id"].to_list()) <= set(users["app_user_id"].to_list())
    ledger = lake.frame("bronze.deliveries", pl.col("source") == SOURCE)
    assert ledger.height == sum(len(doc["files"]) for _, doc in small_city.deliveries(SOURCE))
    assert ledger.filter(
        pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_quarantined")
    ).is_empty()
    # Days without events deliver an empty log: a quiet day, not an empty_file fault.
    quiet = ledger.filter(
        (pl.col("rows_declared") == 0) & ~pl.col("file").is_in(list(small_city.faulty_files()))
    )
    assert quiet.height and (quiet["status"] == "ingested").all()


def test_quarantine_equals_the_injected_faults_kind_by_kind(lake: Lake, small_city: City) -> None:
    injected = [f for f in small_city.faults["faults"] if f["source"] == "programme"]
    quarantine = lake.frame("quarantine.records", pl.col("source") == SOURCE)
    assert Counter(quarantine["reason"].to_list()) == Counter(f["kind"] for f in injected)
    rows = {(f["path"], f["line"], f["kind"]) for f in injected if f["line"] is not None}
    lines = quarantine.filter(pl.col("line").is_not_null())
    assert set(zip(lines["file"], lines["line"], lines["reason"], strict=True)) == rows
    assert (quarantine["message"].str.len_chars() > 10).all()


def test_no_registration_number_or_name_in_any_programme_table(
    lake: Lake, small_city: City
) -> None:
    """Every string value of every Parquet file (current and replaced) of the app tables, the
    ledger and the quarantine; bronze payloads hold neither field."""
    signups = [e for e in _events(small_city, skip_faults=False) if e["event_type"] == "signup"]
    assert signups
    numbers = {e["rrn"].replace("-", "") for e in signups}
    names = {e["name"] for e in signups}
    payloads = [json.loads(p) for p in lake.frame("bronze.app_events")["payload"].to_list()]
    assert not any({"rrn", "name"} & p.keys() for p in payloads)
    files = lake.parquet((*TABLES, "quarantine.records"))
    assert len(files) > len(TABLES)
    assert_no_identifiers(files, names, numbers)


SNAPSHOT = (*TABLES, "quarantine.records", "bronze.deliveries")


def test_a_partition_rerun_gives_identical_tables(lake: Lake, small_city: City) -> None:
    """Rerunning a day with a sign-up and a day with a fault replaces exactly what they wrote:
    every table, neighbouring days included, is as it was."""
    before = lake.snapshot(SNAPSHOT)
    signup_day = before["silver.programme_events"].filter(pl.col("event_type") == "signup")[
        "event_date"
    ][0]
    faulty = next(
        f["path"].split("/")[2][:8]
        for f in small_city.faults["faults"]
        if f["source"] == "programme" and f["line"] is not None
    )
    for day in (signup_day.isoformat(), f"{faulty[:4]}-{faulty[4:6]}-{faulty[6:]}"):
        lake.materialise([programme.bronze_programme, programme.silver_programme], day)
    after = lake.snapshot(SNAPSHOT)
    for name, frame in before.items():
        assert frame.equals(after[name]), name


def test_a_log_delivered_twice_counts_once(lake: Lake, small_city: City) -> None:
    resent = [
        f
        for f in small_city.faults["faults"]
        if f["source"] == "programme" and f["kind"] == "duplicate_delivery"
    ]
    assert resent
    ledger = lake.frame("bronze.deliveries")
    bronze = lake.frame("bronze.app_events")
    for fault in resent:
        original = fault["detail"].removeprefix("re-send of ")
        row = ledger.filter(pl.col("file") == fault["path"]).row(0, named=True)
        assert row["status"] == "duplicate" and row["duplicate_of"] == original
        assert bronze.filter(pl.col("_file") == fault["path"]).is_empty()
        declared = ledger.filter(pl.col("file") == original)["rows_declared"][0]
        assert bronze.filter(pl.col("_file") == original).height == declared
    assert bronze["event_id"].is_unique().all()
