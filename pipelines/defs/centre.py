"""The seniors' centre: its member register, and its devices' daily exports into bronze and silver.

The member register is small and cumulative (a monthly file of new members), so like the
registries every run reads every register delivery, replacing each delivery's period exactly;
it is the only centre file with registration numbers, which become citizen keys at the bronze
boundary while names and birth dates are dropped there. The devices (gait, balance, check-up,
EMG, body composition, mobility tests, foot pressure, posture) export once per open day: bronze
and silver are partitioned by day, and a partition rerun replaces exactly its window (rows,
ledger and quarantine).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from pipelines.defs import checks
from pipelines.defs.partitions import DAYS, ONE_RUN, periods
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import delivered_headers, key, spec, within
from pipelines.ingest.bronze import (
    Batch,
    Layout,
    ingest_csv,
    ingest_jsonl,
    write_batch,
    write_quarantine,
)
from pipelines.ingest.deliveries import periods as delivered_periods
from pipelines.transform.centre import (
    DEVICES,
    MEMBER_SOURCE,
    Device,
    emg_fields,
    measurements,
    members,
)

MEMBERS_BRONZE: Final = "bronze.centre_members"
MEMBERS_SILVER: Final = "silver.centre_members"
BRONZE: Final = tuple(d.table for d in DEVICES.values())
SILVER: Final = "silver.centre_measurements"
# Days per pass of a range run's silver: a pass holds its days' device rows at once (a year of
# the 300,000-citizen city's held 3.5 GiB in one frame), so a year is twelve-odd passes.
DAYS_PER_PASS: Final = 31
# The register's layout as the membership system sends it; 성명 and 생년월일 (name, birth date)
# are not in bronze.centre_members, so the bronze boundary drops them.
MEMBER_HEADERS: Final = ("회원번호", "주민등록번호", "성명", "성별", "생년월일", "가입일")
EMG_REQUIRED: Final = ("session_id", "member_no", "started_at", "channels")


def ingest_device(device: Device, root: Path, window: list[str]) -> Batch:
    """One device's exports for ``window``. Days nobody used a device still get an export
    (a header, or an empty EMG file): those are quiet days, not duplicates of each other."""
    if device.name == "emg":
        return ingest_jsonl(root, device.source, device.table, EMG_REQUIRED, window, emg_fields)
    layout = Layout(f"{device.name}_", device.table, delivered_headers(device.table))
    return ingest_csv(root, device.source, [layout], window, quiet_days=True)


@dg.multi_asset(
    name="bronze_centre",
    specs=[spec(t, "centre_bronze", DAYS) for t in BRONZE],
    partitions_def=DAYS,
    backfill_policy=ONE_RUN,
    pool="lakehouse",
)
def bronze_centre(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Each device's daily exports into bronze as delivered; malformed lines and re-sent files
    quarantined."""
    window = periods(context)
    for device in DEVICES.values():
        batch = ingest_device(device, lakehouse.sources, window)
        written = write_batch(batch, [device.table])
        context.log.info(
            f"{device.source} {window[0]}..{window[-1]}: {len(batch.ledger)} files, "
            f"{written[device.table]} rows, {written['quarantine']} quarantine records"
        )
        yield dg.MaterializeResult(
            asset_key=key(device.table),
            metadata={
                "dagster/row_count": written[device.table],
                "files": len(batch.ledger),
                "quarantined": written["quarantine"],
            },
        )


@dg.multi_asset(
    name="centre_members",
    specs=[
        spec(MEMBERS_BRONZE, "centre_members"),
        # Its foreign-key check, evaluated in this step, reads silver.citizens: written first.
        spec(MEMBERS_SILVER, "centre_members", deps=(MEMBERS_BRONZE, "silver.citizens")),
    ],
    check_specs=checks.specs((MEMBERS_BRONZE, MEMBERS_SILVER)),
    pool="lakehouse",
)
@checks.evaluated
def centre_members(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Every member-register delivery into bronze (registration numbers become citizen keys),
    folded into one row per member in silver."""
    window = delivered_periods(lakehouse.sources, MEMBER_SOURCE)
    bronze_rows = 0
    if window:
        layout = Layout("members_", MEMBERS_BRONZE, MEMBER_HEADERS)
        batch = ingest_csv(lakehouse.sources, MEMBER_SOURCE, [layout], window, quiet_days=True)
        for record in batch.quarantined:
            # A register line holds a name and a birth date, which no table may keep: the
            # record names the file, line and reason, and the line stays in the drop folder.
            record.payload = None
        bronze_rows = write_batch(batch, [MEMBERS_BRONZE])[MEMBERS_BRONZE]
    rows, quarantined = members(lake.frame(MEMBERS_BRONZE))
    if rows.height:
        delta.merge(MEMBERS_SILVER, rows)
    if window:
        write_quarantine("silver", MEMBER_SOURCE, window, quarantined)
    context.log.info(
        f"centre members: {bronze_rows} register rows, {rows.height} members, "
        f"{len(quarantined)} quarantined"
    )
    yield dg.MaterializeResult(
        asset_key=key(MEMBERS_BRONZE), metadata={"dagster/row_count": bronze_rows}
    )
    yield dg.MaterializeResult(
        asset_key=key(MEMBERS_SILVER),
        metadata={"dagster/row_count": rows.height, "quarantined": len(quarantined)},
    )


@dg.multi_asset(
    name="silver_centre",
    specs=[spec(SILVER, "centre_silver", DAYS, (*BRONZE, MEMBERS_SILVER))],
    check_specs=checks.specs((SILVER,)),
    partitions_def=DAYS,
    backfill_policy=ONE_RUN,
    pool="lakehouse",
)
@checks.evaluated
def silver_centre(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Device rows as long-form measurements with units; impossible dates, implausible values
    and unknown members quarantined."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    window = periods(context)
    known = lake.frame(MEMBERS_SILVER)["member_no"]
    values = quarantined = superseded = 0
    for first in range(0, len(window), DAYS_PER_PASS):
        # A correction is re-sent for its own day, so a pass of whole days holds every version
        # of its measurements; each pass replaces exactly its days.
        done = window[first : first + DAYS_PER_PASS]
        bronze = {
            name: lake.frame(device.table, pl.col("_period").is_in(done))
            for name, device in DEVICES.items()
        }
        result = measurements(bronze, known)
        delta.replace(SILVER, result.rows, within("measured_on", done))
        for device in DEVICES.values():
            mine = [q for q in result.quarantined if q.source == device.source]
            write_quarantine("silver", device.source, done, mine)
        values += result.rows.height
        quarantined += len(result.quarantined)
        superseded += result.superseded
    context.log.info(
        f"silver centre {window[0]}..{window[-1]}: {values} values, "
        f"{quarantined} rows quarantined, {superseded} superseded"
    )
    return dg.MaterializeResult(
        asset_key=key(SILVER),
        metadata={
            "dagster/row_count": values,
            "quarantined": quarantined,
            "superseded": superseded,
        },
    )
