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

from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from typing import Final

import polars as pl

from lakehouse.buckets import key_bucket_expr
from lakehouse.catalog import table as catalog_table
from lakehouse.consent import CONSENT_EVENTS, CONSENT_FIELDS, Consent, in_order, step
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
    mine = _consent_events(users, events, "event_date", *EVENT_COLUMNS)
    last: dict[str, Consent] = {}
    for key, _, state in _day_ends(mine):
        last[key] = state  # a citizen's days come in order: the last is their state now
    schema = CONSENT.polars_schema()
    folded = pl.DataFrame(
        [
            {"citizen_key": key, "state": state.state, **asdict(state)}
            for key, state in last.items()
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


def _consent_events(users: pl.DataFrame, events: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """The events that decide consent (``CONSENT_EVENTS``), with their citizen's key."""
    return (
        events.lazy()
        .filter(pl.col("event_type").is_in(list(CONSENT_EVENTS)))
        .join(users.lazy().select("app_user_id", "citizen_key"), on="app_user_id")
        .select("citizen_key", *columns)
        .collect()
    )


def _day_ends(mine: pl.DataFrame) -> Iterator[tuple[str, date, Consent]]:
    """Each citizen's state at the end of each day one of their consent events happened
    (``citizen_key``, ``event_date``, the state), citizen by citizen and day by day: the rule's
    own ``step`` over the whole city's events in one sorted pass. Folding each citizen (and
    each of their days) with ``consent`` cost a filter and a sort apiece: 90 s of a night at
    the city's 52,650 accounts (docs/performance.md). ``event_date`` is the KST day of
    ``occurred_at`` (``pipelines.transform.programme``), so the events up to the end of a day
    are those before its last in this order."""
    ordered = in_order(mine, "citizen_key")
    keys = ordered["citizen_key"].to_list()
    days = ordered["event_date"].to_list()
    now = Consent()
    for i, (key, kind, at, details) in enumerate(
        zip(
            keys,
            ordered["event_type"].to_list(),
            ordered["occurred_at"].to_list(),
            ordered["details"].to_list(),
            strict=True,
        )
    ):
        if i == 0 or key != keys[i - 1]:
            now = Consent()
        now = step(now, kind, at, details)
        if i + 1 == len(keys) or keys[i + 1] != key or days[i + 1] != days[i]:
            yield key, days[i], now


def consent_spans(users: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """When each citizen's record-link consent stood and when their records were linked, as
    ``(citizen_key, measure, _from, _to)`` spans of days (``measure`` is ``consented`` or
    ``linked``, ``_to`` exclusive, null while it still stands).

    The state at the end of a day is ``lakehouse.consent.consent`` (the access layer's own rule,
    not a copy) folded over the citizen's events up to that day (KST ``event_date``), taken on
    each day one of their consent events happened; it holds until the next such day.

    Args:
        users: ``silver.app_users`` (account id to citizen key).
        events: ``silver.programme_events``; only ``CONSENT_EVENTS`` count.
    """
    mine = _consent_events(users, events, "event_date", *EVENT_COLUMNS)
    states = pl.DataFrame(
        [
            {"citizen_key": key, "day": day, "consented": now.consented, "linked": now.linked}
            for key, day, now in _day_ends(mine)
        ],
        schema={
            "citizen_key": pl.String,
            "day": pl.Date,
            "consented": pl.Boolean,
            "linked": pl.Boolean,
        },
    )
    changes = states.sort("citizen_key", "day").with_columns(
        pl.col("day").shift(-1).over("citizen_key").alias("_to")
    )
    return pl.concat(
        changes.filter(pl.col(m)).select(
            "citizen_key", pl.lit(m).alias("measure"), pl.col("day").alias("_from"), "_to"
        )
        for m in ("consented", "linked")
    )
