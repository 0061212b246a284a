"""The citizen app's event log from bronze to silver: accounts and events.

* ``event_fields`` is the bronze boundary of one event: the sign-up's registration number goes to
  the column ``to_bronze`` hashes into a citizen key, the name is dropped, and the other fields
  stay as JSON in ``payload`` (scrubbed of anything shaped like a registration number).
* ``events`` types and checks the events: each row quarantined once, with the first reason, in
  this order: an id, type, time or account missing (``missing_value``); a time that is no date
  (``impossible_date``, such as 2025-05-32) or no timestamp (``malformed_row``); a day other than
  the one the log covers (``outside_period``); a type the app does not log (``unknown_code``); a
  sign-up without a registration number (``missing_value``); an account that never signed up
  (``unknown_app_user``).
* ``app_users`` are the sign-ups: app user id to citizen key. They are merged on the account id,
  since later days' events need every earlier account.

Every function here is plain Polars over bronze frames; ``pipelines.defs.programme`` runs them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.pseudonym import scrub
from lakehouse.reference import code_set
from pipelines.ingest.parse import (
    IMPOSSIBLE_DATE,
    MALFORMED_ROW,
    MISSING_VALUE,
    OUTSIDE_PERIOD,
    UNKNOWN_CODE,
    Quarantined,
    first_failure,
    rejected_rows,
)

UNKNOWN_APP_USER: Final = "unknown_app_user"
SOURCE: Final = "programme/app_events"
TABLE: Final = "bronze.app_events"
KST: Final = "Asia/Seoul"
SIGNUP: Final = "signup"
TOP: Final = ("event_id", "event_type", "occurred_at", "app_user_id")
# Direct identifiers a sign-up carries: the number becomes the citizen key, the name goes nowhere.
RRN_FIELD: Final = "rrn"
DROPPED: Final = frozenset({RRN_FIELD, "name"})
IDENTIFIER_FIELDS: Final = re.compile(r'"(?:rrn|name)"\s*:\s*("[^"]*("|$)|null)\s*,?')


@dataclass
class SilverProgramme:
    """One run's accounts and events, and the rows it quarantined."""

    users: pl.DataFrame
    events: pl.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)


def _text(value: Any) -> str | None:
    """A JSON value as bronze text: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def event_fields(event: dict[str, Any]) -> dict[str, str | None]:
    """One event -> ``bronze.app_events``' delivered headers: the four common fields, the
    registration number (hashed by the bronze boundary), and the rest as JSON without the
    number or the name."""
    rest = {k: v for k, v in event.items() if k not in TOP and k not in DROPPED}
    payload = json.dumps(rest, ensure_ascii=False, separators=(",", ":"))
    return {k: _text(event.get(k)) for k in TOP} | {
        RRN_FIELD: _text(event.get(RRN_FIELD)),
        "payload": scrub(payload),
    }


def redact(line: str) -> str:
    """A broken log line without the sign-up's name and number (a line cut short may hold part
    of either), for its quarantine record."""
    return IDENTIFIER_FIELDS.sub("", line)


def _checked(bronze: pl.DataFrame, known: pl.Series) -> pl.DataFrame:
    """Bronze events with the time parsed and the first failing check's reason and message."""
    at = pl.col("occurred_at").str.strptime(
        pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%z", strict=False
    )
    rows = bronze.with_columns(at.alias("_at")).with_columns(
        pl.col("_at").dt.convert_time_zone(KST).dt.date().alias("_day")
    )
    empty = pl.any_horizontal(pl.col(c).is_null() | (pl.col(c) == "") for c in TOP)
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (empty, MISSING_VALUE, pl.lit("event id, type, time or app user id is empty")),
        (
            pl.col("_at").is_null() & pl.col("occurred_at").str.contains(r"^\d{4}-\d{2}-\d{2}"),
            IMPOSSIBLE_DATE,
            pl.format("no such date: occurred_at={}", pl.col("occurred_at")),
        ),
        (
            pl.col("_at").is_null(),
            MALFORMED_ROW,
            pl.format("occurred_at={} is not an ISO 8601 time", pl.col("occurred_at")),
        ),
        (
            pl.col("_day").dt.strftime("%Y-%m-%d") != pl.col("_period"),
            OUTSIDE_PERIOD,
            pl.format(
                "occurred on {} (KST) but the log covers {}",
                pl.col("_day").cast(pl.Utf8),
                pl.col("_period"),
            ),
        ),
        (
            ~pl.col("event_type").is_in(sorted(code_set("app_event_types"))),
            UNKNOWN_CODE,
            pl.format("event type {} is not one the app logs", pl.col("event_type")),
        ),
        (
            (pl.col("event_type") == SIGNUP) & pl.col("citizen_key").is_null(),
            MISSING_VALUE,
            pl.lit("sign-up without a registration number"),
        ),
        (
            ~pl.col("app_user_id").is_in(known.to_list())
            & ~((pl.col("event_type") == SIGNUP) & pl.col("citizen_key").is_not_null()),
            UNKNOWN_APP_USER,
            pl.format("app user {} never signed up", pl.col("app_user_id")),
        ),
    ]
    return first_failure(rows, checks)


def events(bronze: pl.DataFrame, known: pl.Series) -> SilverProgramme:
    """Bronze events -> the sign-ups (``silver.app_users`` rows), the events
    (``silver.programme_events``) and the quarantine.

    Args:
        bronze: One run's ``bronze.app_events`` rows.
        known: App user ids that signed up before (``silver.app_users``); this batch's own
            sign-ups count too.

    An event delivered twice with other bytes (a corrected re-export) keeps the version
    delivered last.
    """
    users_spec = catalog_table("silver.app_users")
    events_spec = catalog_table("silver.programme_events")
    if not bronze.height:
        return SilverProgramme(
            pl.DataFrame(schema=users_spec.polars_schema()),
            pl.DataFrame(schema=events_spec.polars_schema()),
        )
    # Sign-ups are checked without the account check; the accounts that pass are known to the
    # batch's other events (a new user's consents come seconds after the sign-up).
    first = _checked(bronze, known)
    new = first.filter(pl.col("reason").is_null() & (pl.col("event_type") == SIGNUP))
    checked = _checked(bronze, pl.concat([known, new["app_user_id"]]))
    bad = checked.filter(pl.col("reason").is_not_null()).with_columns(
        pl.col("event_id").alias("key"),
        pl.concat_str(
            [pl.col(c).fill_null("") for c in (*TOP, "citizen_key", "payload")], separator=","
        ).alias("payload"),
    )
    good = (
        checked.filter(pl.col("reason").is_null())
        .sort("_delivered_at", "_line")
        .unique("event_id", keep="last", maintain_order=True)
    )
    users = (
        good.filter(pl.col("event_type") == SIGNUP)
        .sort("_at")
        .unique("app_user_id", keep="first", maintain_order=True)
        .select("app_user_id", "citizen_key", pl.col("_at").alias("signed_up_at"))
        .sort("app_user_id")
    )
    out = good.select(
        "event_id",
        "event_type",
        pl.col("_at").alias("occurred_at"),
        "app_user_id",
        pl.col("payload").alias("details"),
        pl.col("_day").alias("event_date"),
    ).sort("event_date", "occurred_at", "event_id")
    return SilverProgramme(
        users_spec.conform(users),
        events_spec.conform(out),
        rejected_rows(bad, SOURCE, TABLE),
    )
