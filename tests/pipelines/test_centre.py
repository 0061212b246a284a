"""The seniors' centre pipelines on the small city: the member register and the four devices'
daily exports, through real Dagster runs into a temporary lakehouse.

The expectations are read from the delivered files themselves (not through the pipelines' own
parsers) and from faults.json, so a row lost or invented anywhere shows up as a count mismatch.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.pseudonym import citizen_key
from pipelines.defs import centre, registry
from tests.conftest import City
from tests.pipelines.conftest import Lake, assert_no_identifiers

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DEVICES = ("gait", "balance", "checkup", "emg", "body", "mobility", "foot", "posture")
TABLES = (
    "bronze.centre_members",
    "silver.centre_members",
    *(f"bronze.centre_{d}" for d in DEVICES),
    "silver.centre_measurements",
)
RANGES = Path(__file__).parents[2] / "lakehouse/reference/codes/centre_ranges.csv"


def _days(city: City) -> tuple[str, str]:
    return city.cfg.start.isoformat(), (city.cfg.start + timedelta(city.cfg.days - 1)).isoformat()


@pytest.fixture(scope="module")
def lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Citizens, the member register, then every day of the devices' exports as one range run."""
    built = Lake(tmp_path_factory.mktemp("centre") / "lakehouse", small_city.out)
    built.materialise([registry.bronze_registry, registry.silver_registry])
    built.materialise([centre.centre_members])
    built.materialise([centre.bronze_centre, centre.silver_centre], _days(small_city))
    return built


def _faults(city: City, device: str) -> list[dict]:
    return [f for f in city.faults["faults"] if f["path"].startswith(f"centre/{device}/")]


def _emg_sessions(city: City) -> pl.DataFrame:
    """Every well-formed EMG session delivered, read straight from the JSON Lines files, minus
    re-sent files and the lines faults.json lists."""
    sessions = city.json_lines("centre/emg", lambda fault: fault is None)
    return pl.DataFrame(
        {
            "session_id": [s["session_id"] for s in sessions],
            "values": [1 + 3 * len(s["channels"]) for s in sessions],
        }
    )


def _clean(city: City, device: str) -> pl.DataFrame:
    """The device's rows that should reach silver, as delivered text."""
    return city.table(f"centre/{device}", f"{device}_")


def test_bronze_rows_reconcile_with_the_delivered_files(lake: Lake, small_city: City) -> None:
    """Bronze keeps every parsable row once (impossible dates and implausible values too: silver
    judges those); only malformed lines and re-sent files stay out."""
    for device in DEVICES:
        faults = Counter(f["kind"] for f in _faults(small_city, device))
        kept_faults = faults["impossible_date"] + faults["out_of_range_value"]
        clean = (
            _emg_sessions(small_city).height
            if device == "emg"
            else _clean(small_city, device).height
        )
        assert clean > 0, device
        assert lake.frame(f"bronze.centre_{device}").height == clean + kept_faults, device
    ledger = lake.frame("bronze.deliveries", pl.col("source").str.starts_with("centre/"))
    assert ledger.filter(
        pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_quarantined")
    ).is_empty()
    delivered = {
        f"{folder.relative_to(small_city.out).as_posix()}/{f['name']}"
        for d in (*DEVICES, "members")
        for folder, doc in small_city.deliveries(f"centre/{d}")
        for f in doc["files"]
    }
    assert set(ledger["file"].to_list()) == delivered
    # Days nobody used a device are quiet (a header or an empty file), not faults.
    quiet = ledger.filter(
        (pl.col("rows_declared") == 0) & ~pl.col("file").is_in(list(small_city.faulty_files()))
    )
    assert quiet.height and (quiet["status"] == "ingested").all()


def test_silver_measurements_reconcile_with_the_delivered_values(
    lake: Lake, small_city: City
) -> None:
    """One silver row per delivered value of every clean row (empty cells were not measured)."""
    ranges = pl.read_csv(RANGES, comment_prefix="#")
    silver = lake.frame("silver.centre_measurements")
    for device in DEVICES:
        mine = silver.filter(pl.col("device") == device)
        if device == "emg":
            expected = _emg_sessions(small_city)
            ids, values = set(expected["session_id"]), int(expected["values"].sum())
        else:
            rows = _clean(small_city, device)
            measured = ranges.filter(pl.col("device") == device)["column"].to_list()
            ids = set(rows[rows.columns[0]].to_list())
            values = int(
                rows.select(pl.col(measured).fill_null("").ne("").sum()).sum_horizontal()[0]
            )
        assert set(mine["measurement_id"].to_list()) == ids, device
        assert mine.height == values, device
    assert silver["unit"].null_count() == 0
    units = dict(zip(ranges["device"] + ":" + ranges["column"], ranges["unit"], strict=True))
    assert set(silver["unit"].to_list()) <= set(units.values())


def test_quarantine_equals_the_injected_faults_kind_by_kind(lake: Lake, small_city: City) -> None:
    injected = [f for f in small_city.faults["faults"] if f["source"] == "centre"]
    quarantine = lake.frame("quarantine.records", pl.col("source").str.starts_with("centre/"))
    assert Counter(quarantine["reason"].to_list()) == Counter(f["kind"] for f in injected)
    rows = {(f["path"], f["line"], f["kind"]) for f in injected if f["line"] is not None}
    lines = quarantine.filter(pl.col("line").is_not_null())
    assert set(zip(lines["file"], lines["line"], lines["reason"], strict=True)) == rows
    assert (quarantine["message"].str.len_chars() > 10).all()
    # Per delivered file: bronze rows = rows measured in silver + rows quarantined in silver.
    for device in DEVICES:
        bronze = lake.frame(f"bronze.centre_{device}").group_by("_file").len("bronze")
        silver_ids = (
            lake.frame("silver.centre_measurements", pl.col("device") == device)
            .select("measurement_id")
            .unique()
        )
        ids = lake.frame(f"bronze.centre_{device}").select(
            "_file", pl.col(lake.frame(f"bronze.centre_{device}").columns[0]).alias("id")
        )
        measured = (
            ids.join(silver_ids, left_on="id", right_on="measurement_id")
            .group_by("_file")
            .len("measured")
        )
        rejected = (
            quarantine.filter(
                (pl.col("stage") == "silver") & (pl.col("table").str.ends_with(device))
            )
            .group_by(pl.col("file").alias("_file"))
            .len("rejected")
        )
        account = (
            bronze.join(measured, on="_file", how="left")
            .join(rejected, on="_file", how="left")
            .fill_null(0)
        )
        assert (account["bronze"] == account["measured"] + account["rejected"]).all(), device


def test_members_become_citizen_keys_and_nothing_more(lake: Lake, small_city: City) -> None:
    delivered = []
    skip = small_city.faulty_files()
    for folder, doc in small_city.deliveries("centre/members"):
        for f in doc["files"]:
            if f"{folder.relative_to(small_city.out).as_posix()}/{f['name']}" in skip:
                continue
            text = (folder / f["name"]).read_bytes().decode(f["encoding"])
            delivered.append(pl.read_csv(text.encode(), infer_schema=False))
    register = pl.concat(delivered)
    bronze = lake.frame("bronze.centre_members")
    silver = lake.frame("silver.centre_members")
    assert bronze.height == register.height
    assert "성명" not in bronze.columns and "생년월일" not in bronze.columns
    expected = {
        m: citizen_key(r)
        for m, r in zip(register["회원번호"], register["주민등록번호"], strict=True)
    }
    assert dict(zip(silver["member_no"], silver["citizen_key"], strict=True)) == expected
    citizens = set(lake.frame("silver.citizens")["citizen_key"].to_list())
    assert set(silver["citizen_key"].to_list()) <= citizens
    # Every measured member is registered: nothing waits as unknown_member after a full build.
    measured = set(lake.frame("silver.centre_measurements")["member_no"].to_list())
    assert measured <= set(silver["member_no"].to_list())


def test_no_registration_number_or_name_in_any_centre_table(lake: Lake, small_city: City) -> None:
    """Every string value of every Parquet file (current and replaced) of the centre tables,
    the ledger and the quarantine."""
    names: set[str] = set()
    numbers: set[str] = set()
    for folder, doc in small_city.deliveries("centre/members"):
        for f in doc["files"]:
            text = (folder / f["name"]).read_bytes().decode(f["encoding"])
            frame = pl.read_csv(text.encode(), infer_schema=False)
            names |= set(frame["성명"].to_list())
            numbers |= {n.replace("-", "") for n in frame["주민등록번호"].to_list()}
    assert names and numbers
    files = lake.parquet((*TABLES, "quarantine.records"))
    assert len(files) > len(TABLES)
    assert_no_identifiers(files, names, numbers)


SNAPSHOT = (*TABLES, "quarantine.records", "bronze.deliveries")


def test_a_partition_rerun_gives_identical_tables(lake: Lake, small_city: City) -> None:
    """Rerunning a day with faults (and the register) replaces exactly what it wrote before:
    every table, neighbouring days included, is as it was."""
    before = lake.snapshot(SNAPSHOT)
    day = next(
        f["path"].split("/")[2][:8]
        for f in small_city.faults["faults"]
        if f["source"] == "centre" and f["kind"] == "out_of_range_value"
    )
    partition = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    lake.materialise([centre.centre_members])
    lake.materialise([centre.bronze_centre, centre.silver_centre], partition)
    after = lake.snapshot(SNAPSHOT)
    for name, frame in before.items():
        assert frame.equals(after[name]), name


def test_a_file_delivered_twice_counts_once(lake: Lake, small_city: City) -> None:
    resent = [
        f
        for f in small_city.faults["faults"]
        if f["source"] == "centre" and f["kind"] == "duplicate_delivery"
    ]
    assert resent
    ledger = lake.frame("bronze.deliveries")
    for fault in resent:
        original = fault["detail"].removeprefix("re-send of ")
        row = ledger.filter(pl.col("file") == fault["path"]).row(0, named=True)
        assert row["status"] == "duplicate" and row["duplicate_of"] == original
        device = fault["path"].split("/")[1]
        table = lake.frame(f"bronze.centre_{device}")
        assert table.filter(pl.col("_file") == fault["path"]).is_empty()
        declared = ledger.filter(pl.col("file") == original)["rows_declared"][0]
        assert table.filter(pl.col("_file") == original).height == declared


NEW_KINDS = {
    # device: a measure silver must hold, with the unit the range file gives its column
    "body": ("smi_kg_m2", "kg/m2"),
    "mobility": ("tug_s", "s"),
    "foot": ("arch_index_left", "ratio"),
    "posture": ("head_forward_cm", "cm"),
}


def test_the_new_device_kinds_reach_silver_and_quarantine_bad_rows_with_a_reason(
    lake: Lake, small_city: City
) -> None:
    """Body composition, mobility tests, foot pressure and posture: their values arrive in long
    form with units, and each of their bad rows is quarantined at its file and line with a
    reason that names what was wrong (the column and the range for an implausible value)."""
    silver = lake.frame("silver.centre_measurements")
    quarantine = lake.frame("quarantine.records", pl.col("source").str.starts_with("centre/"))
    for device, (measure, unit) in NEW_KINDS.items():
        mine = silver.filter((pl.col("device") == device) & (pl.col("measure") == measure))
        assert mine.height and (mine["unit"] == unit).all(), device
        injected = [f for f in _faults(small_city, device) if f["line"] is not None]
        assert injected, device
        bad = quarantine.filter(pl.col("source") == f"centre/{device}")
        for fault in injected:
            row = bad.filter((pl.col("file") == fault["path"]) & (pl.col("line") == fault["line"]))
            assert row["reason"].to_list() == [fault["kind"]], fault
            if fault["kind"] == "out_of_range_value":
                column = fault["detail"].split("=")[0]
                assert column in row["message"][0] and "plausible range" in row["message"][0]


def test_a_range_in_passes_of_days_equals_one_pass(
    lake: Lake, small_city: City, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long range's silver is built a few days at a time (``DAYS_PER_PASS``: memory bounded
    by a pass, not the range); the tables are the same as one pass over every day."""
    monkeypatch.setattr(centre, "DAYS_PER_PASS", 2)
    assert small_city.cfg.days > 2  # several passes
    passes = Lake(tmp_path / "lakehouse", small_city.out)
    passes.materialise([registry.bronze_registry, registry.silver_registry])
    passes.materialise([centre.centre_members])
    passes.materialise([centre.bronze_centre, centre.silver_centre], _days(small_city))
    names = ("silver.centre_measurements", "quarantine.records")
    whole, parts = lake.snapshot(names), passes.snapshot(names)
    for name in names:
        assert whole[name].height > 0, name
        assert whole[name].equals(parts[name]), name
