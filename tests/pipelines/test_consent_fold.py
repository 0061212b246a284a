"""The gold job's consent fold over the whole city (``pipelines.transform.consent``) against the
access layer's fold of one citizen at a time (``lakehouse.consent.consent``): the same states,
from one sorted pass instead of a filter and a sort per citizen and per day."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from lakehouse import consent as lakehouse_consent
from lakehouse.consent import CONSENT_FIELDS, RECORD_LINK, consent
from pipelines.transform import consent as fold

KST = ZoneInfo("Asia/Seoul")
KINDS = [
    "signup",
    "consent",
    "record_link_request",
    "record_link_completed",
    "consent_withdrawn",
    "account_deleted",
    "login",  # not a consent event: the folds skip it
]


def _details(rng: random.Random, kind: str) -> str | None:
    if kind in ("consent", "consent_withdrawn"):
        kind_of = RECORD_LINK if rng.random() < 0.8 else "marketing"
        return json.dumps({"consent_type": kind_of})
    if kind == "record_link_completed":
        return json.dumps({"status": rng.choice(["completed", "completed", "failed"])})
    return None if rng.random() < 0.5 else "{}"


def _city(seed: int, citizens: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts and events of a small random city: several accounts per citizen now and then,
    events at the same instant, late-night events whose KST day is the next UTC day."""
    rng = random.Random(seed)
    users: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for c in range(citizens):
        key = f"c{c:05d}"
        accounts = [f"u{c:05d}-{a}" for a in range(1 + (rng.random() < 0.1))]
        users += [{"app_user_id": a, "citizen_key": key} for a in accounts]
        instants = [start + timedelta(hours=rng.randrange(0, 24 * 20)) for _ in range(3)]
        for n in range(rng.randrange(1, 12)):
            at = rng.choice(instants) + timedelta(minutes=rng.choice([0, 0, 7, 15 * n]))
            kind = "signup" if n == 0 else rng.choice(KINDS)
            events.append(
                {
                    "event_id": f"e{c:05d}-{n:02d}",
                    "event_type": kind,
                    "occurred_at": at,
                    "app_user_id": rng.choice(accounts),
                    "details": _details(rng, kind),
                    "event_date": at.astimezone(KST).date(),
                }
            )
    frame = pl.DataFrame(events).with_columns(pl.col("occurred_at").dt.cast_time_unit("us"))
    return pl.DataFrame(users), frame


def _of(users: pl.DataFrame, events: pl.DataFrame, key: str) -> pl.DataFrame:
    ids = users.filter(pl.col("citizen_key") == key)["app_user_id"]
    return events.filter(pl.col("app_user_id").is_in(ids.implode()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_citys_fold_is_each_citizens_fold(seed: int) -> None:
    """Every citizen's row is ``consent`` of all their events, and every state occurs."""
    users, events = _city(seed, 400)
    through = events["event_date"].max()
    assert isinstance(through, date)
    table = fold.citizen_consent(users, events, 7, through)
    assert table["citizen_key"].is_unique().all()
    assert set(table["events_version"]) == {7}
    states = set()
    for row in table.iter_rows(named=True):
        expected = consent(_of(users, events, row["citizen_key"]))
        assert {f: row[f] for f in CONSENT_FIELDS} == asdict(expected), row["citizen_key"]
        assert row["state"] == expected.state
        states.add(row["state"])
    assert states >= {"signed_up", "consented", "linked", "withdrawn", "deleted"}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_spans_are_each_days_fold(seed: int) -> None:
    """The consent and link spans are those of ``consent`` folded over each citizen's events up
    to the end of each day one of them happened (the definition, one fold per day)."""
    users, events = _city(seed, 250)
    spans = fold.consent_spans(users, events)
    expected = []
    for key in sorted(set(users["citizen_key"])):
        mine = _of(users, events, key).filter(pl.col("event_type") != "login")
        days = sorted(set(mine["event_date"].to_list()))
        states = [consent(mine.filter(pl.col("event_date") <= d)) for d in days]
        for measure in ("consented", "linked"):
            for i, (day, state) in enumerate(zip(days, states, strict=True)):
                if getattr(state, measure):
                    end = days[i + 1] if i + 1 < len(days) else None
                    expected.append((key, measure, day, end))
    got = sorted(spans.iter_rows(), key=lambda r: (r[0], r[1], r[2]))
    assert got == sorted(expected, key=lambda r: (r[0], r[1], r[2]))
    assert {m for _, m, _, _ in got} == {"consented", "linked"}


def test_the_city_is_folded_in_one_sorted_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole city's events are put in order once, however many citizens: not a filter and a
    sort per citizen (90 s of a night at the city's accounts)."""
    users, events = _city(4, 300)
    calls: list[int] = []
    ordered = lakehouse_consent.in_order

    def counted(frame: pl.DataFrame, *first: str) -> pl.DataFrame:
        calls.append(frame.height)
        return ordered(frame, *first)

    monkeypatch.setattr(fold, "in_order", counted)
    monkeypatch.setattr(
        "lakehouse.consent.in_order", lambda *_: pytest.fail("folded citizen by citizen")
    )
    through = events["event_date"].max()
    assert isinstance(through, date)
    assert fold.citizen_consent(users, events, 1, through).height == 300
    assert fold.consent_spans(users, events).height > 0
    assert len(calls) == 2  # one per call above
