"""Gold: what each citizen has agreed to, folded once per build instead of on every read.

The access layer decides what a citizen (their carer, what they share) sees of the national
extracts from their consent state, the fold ``lakehouse.consent.consent`` over their
``silver.programme_events``. Folding every daily partition of those events on each read grows
with the city and with every day of events, so the gold job folds them here, with that same
function (one rule, never a copy), into ``gold.citizen_consent``, partitioned by key bucket like
the timeline. Each row records what the build folded (``events_version``, ``events_through``):
the reader folds the events that arrived since on top (``lakehouse.queries.consent``), so a
withdrawal counts at once, not at the next build.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Final

import polars as pl

from lakehouse.buckets import key_bucket_expr
from lakehouse.catalog import table as catalog_table
from lakehouse.consent import CONSENT_EVENTS, CONSENT_FIELDS, consent
from lakehouse.queries import EVENT_COLUMNS

CONSENT: Final = catalog_table("gold.citizen_consent")


def citizen_consent(
    users: pl.DataFrame, events: pl.DataFrame, version: int, through: date
) -> pl.DataFrame:
    """``gold.citizen_consent`` rows: one per citizen with an app account, sorted by citizen.

    Args:
        users: ``silver.app_users`` (account id to citizen key).
        events: ``silver.programme_events`` at ``version``; only ``CONSENT_EVENTS`` count.
        version: The version of ``silver.programme_events`` that ``events`` are.
        through: The newest ``event_date`` among them.
    """
    mine = (
        events.lazy()
        .filter(pl.col("event_type").is_in(list(CONSENT_EVENTS)))
        .join(users.lazy().select("app_user_id", "citizen_key"), on="app_user_id")
        .select("citizen_key", *EVENT_COLUMNS)
        .collect()
    )
    schema = CONSENT.polars_schema()
    folded = pl.DataFrame(
        [
            {"citizen_key": key, "state": state.state, **asdict(state)}
            for (key,), of_one in mine.partition_by("citizen_key", as_dict=True).items()
            for state in (consent(of_one),)
        ],
        schema={name: schema[name] for name in ("citizen_key", "state", *CONSENT_FIELDS)},
    )
    return (
        folded.with_columns(
            pl.lit(version, pl.Int64).alias("events_version"),
            pl.lit(through, pl.Date).alias("events_through"),
            key_bucket_expr().alias("key_bucket"),
        )
        .sort("citizen_key")
        .select(CONSENT.names)
    )
