"""The citizen app (AI시민의료앱): its daily event log into bronze, then accounts and events.

The app's back end exports one JSON Lines log per day. Bronze keeps each event as delivered, except
that a sign-up's registration number becomes a citizen key and its name is dropped. Silver types
the events (partitioned by day: a rerun replaces exactly its window) and keeps the accounts
(``silver.app_users``), merged on the account id because every later day's events need them.
"""

from collections.abc import Iterator
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from pipelines.defs import checks
from pipelines.defs.partitions import DAYS, ONE_RUN, periods
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import key, spec, within
from pipelines.ingest.bronze import ingest_jsonl, write_batch, write_quarantine
from pipelines.transform.programme import SOURCE, TABLE, TOP, event_fields, events, redact

USERS: Final = "silver.app_users"
EVENTS: Final = "silver.programme_events"
SILVER: Final = (USERS, EVENTS)


@dg.multi_asset(
    name="bronze_programme",
    specs=[spec(TABLE, "programme_bronze", DAYS)],
    partitions_def=DAYS,
    backfill_policy=ONE_RUN,
    pool="lakehouse",
)
def bronze_programme(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """The app's daily event logs into bronze; registration numbers become citizen keys, names
    are dropped, broken lines and re-sent logs are quarantined."""
    window = periods(context)
    batch = ingest_jsonl(lakehouse.sources, SOURCE, TABLE, TOP, window, event_fields)
    for record in batch.quarantined:
        if record.payload is not None:
            record.payload = redact(record.payload)
    written = write_batch(batch, [TABLE])
    context.log.info(
        f"{SOURCE} {window[0]}..{window[-1]}: {len(batch.ledger)} files, {written[TABLE]} "
        f"events, {written['quarantine']} quarantine records"
    )
    return dg.MaterializeResult(
        asset_key=key(TABLE),
        metadata={
            "dagster/row_count": written[TABLE],
            "files": len(batch.ledger),
            "quarantined": written["quarantine"],
        },
    )


@dg.multi_asset(
    name="silver_programme",
    specs=[
        spec(USERS, "programme_silver", DAYS, (TABLE,)),
        spec(EVENTS, "programme_silver", DAYS, (TABLE,)),
    ],
    check_specs=checks.specs(SILVER),
    partitions_def=DAYS,
    backfill_policy=ONE_RUN,
    pool="lakehouse",
)
@checks.evaluated
def silver_programme(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Sign-ups merged into the accounts; events typed, their window replaced; impossible
    dates and events of unknown accounts quarantined."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    window = periods(context)
    bronze = lake.frame(TABLE, pl.col("_period").is_in(window))
    known = lake.frame(USERS)["app_user_id"]
    result = events(bronze, known)
    if result.users.height:
        delta.merge(USERS, result.users)
    delta.replace(EVENTS, result.events, within("event_date", window))
    write_quarantine("silver", SOURCE, window, result.quarantined)
    context.log.info(
        f"silver programme {window[0]}..{window[-1]}: {result.users.height} sign-ups, "
        f"{result.events.height} events, {len(result.quarantined)} quarantined"
    )
    yield dg.MaterializeResult(
        asset_key=key(USERS), metadata={"dagster/row_count": result.users.height}
    )
    yield dg.MaterializeResult(
        asset_key=key(EVENTS),
        metadata={
            "dagster/row_count": result.events.height,
            "quarantined": len(result.quarantined),
        },
    )
