"""The citizen app's own event log (AI시민의료앱): sign-ups, consents, record links, logins, shares.

The seed article describes the app: anyone in Gwangju may sign up; registering a joint
certificate (공동인증서) links the person to their past hospital and pharmacy records through HIRA;
records can be shown to a doctor. The app's back end exports its event log once a day, after
midnight, as JSON Lines: ``programme/app_events/<YYYYMMDD>-<n>/events_<YYYYMMDD>.jsonl`` (UTF-8,
every calendar day; ``-2`` is a re-send).

Every event has ``event_id`` (UUID), ``event_type``, ``occurred_at`` (ISO 8601, +09:00) and
``app_user_id``. By type:

=========================  =============================================================
``signup``                 ``rrn``, ``name``, ``auth_method`` (the certificate check that ties
                           the account to a person: the only event with the RRN)
``consent``                ``consent_type``, ``consent_version``, ``required``
``consent_withdrawn``      ``consent_type`` (optional consents only)
``record_link_request``    ``request_id``, ``source`` (``hira``)
``record_link_completed``  ``request_id``, ``status`` (``completed``/``failed``), ``records``
                           or ``error``
``login``                  ``auth_method`` (``biometric``, ``pin``, ``certificate``)
``share_created``          ``share_id``, ``recipient``, ``items``, ``expires_at`` (30 minutes
                           for a health centre, as the Korean app deletes that view; 60 minutes
                           otherwise, like Epic's share code)
``account_deleted``        ``reason`` (``user_request``, ``moved_out``)
=========================  =============================================================

Adoption follows a Bass curve from the window start, scaled by age (smartphone ownership, digital
capability, interest: ``synth/params/programme_adoption.csv``); logins decay after sign-up to a
floor and stop at death, move-out or account deletion (``programme_parameters.csv``). Events of one
user never cross midnight, so each day is generated from its own stream alone. Only ``login`` and
``share_created`` events, which nothing refers to, carry row faults.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from synth.centre.members import epoch_day
from synth.centre.params import read_rows
from synth.centre.rowfaults import (
    FolderPlan,
    break_json_line,
    choose_rows,
    impossible_day,
    plan_folders,
)
from synth.config import CityConfig
from synth.delivery import Delivery
from synth.faults import DUPLICATE_DELIVERY, IMPOSSIBLE_DATE, MALFORMED_ROW, FaultLog
from synth.rng import stream

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SOURCE: Final = "programme"
FOLDER: Final = "programme/app_events"
LEAF_EVENTS: Final = frozenset({"login", "share_created"})
ROW_FAULTS: Final = frozenset({MALFORMED_ROW, IMPOSSIBLE_DATE, DUPLICATE_DELIVERY})
REQUIRED_CONSENTS: Final = ("terms_of_service", "privacy_collection", "sensitive_health_info")
# Optional consents and the parameter giving the share that grants each at sign-up.
OPTIONAL_CONSENTS: Final = {
    "hira_record_link": "consent_record_link",
    "emergency_sharing": "consent_emergency",
}
CONSENT_VERSION: Final = "2024.1"
SIGNUP_AUTH: Final = (
    ("joint_certificate", 0.5),
    ("financial_certificate", 0.2),
    ("simple_auth", 0.3),
)
LOGIN_AUTH: Final = (("biometric", 0.55), ("pin", 0.40), ("certificate", 0.05))
RECIPIENTS: Final = (
    ("clinic", 0.55),
    ("hospital", 0.25),
    ("health_centre", 0.15),
    ("pharmacy", 0.05),
)
SHARE_ITEMS: Final = ("problems", "medications", "dispensings", "checkups", "imaging", "results")
SHARE_MINUTES: Final = {"health_centre": 30}  # domain notes; every other recipient: 60
LINK_ERRORS: Final = ("certificate_expired", "hira_timeout")
# App use by hour (synthetic choice: morning and evening peaks). Events run 07:00-23:00 and the
# longest chain after one (a record link) ends within 20 minutes, so nothing crosses midnight.
HOURS: Final = np.arange(7, 23)
HOUR_WEIGHT: Final = np.array([2, 4, 6, 7, 6, 5, 5, 5, 5, 5, 5, 5, 6, 7, 7, 4], dtype=np.float64)
NEVER: Final = 2**31 - 1
EXPORT_HOUR: Final = 1  # the log of day D leaves at 01:00-01:30 on D+1
RESEND_HOUR: Final = 10


def _parameters() -> dict[str, float]:
    return {r["parameter"]: float(r["value"]) for r in read_rows("programme_parameters.csv")}


def adoption_chance(age: FloatArray) -> FloatArray:
    """Chance that a person of ``age`` ever signs up (``market_share`` x the age factors)."""
    share = _parameters()["market_share"]
    chance = np.zeros(len(age))
    for r in read_rows("programme_adoption.csv"):
        band = (age >= float(r["age_min"])) & (age < float(r["age_max"]) + 1)
        factor = float(r["smartphone"]) * float(r["capability"]) * float(r["interest"])
        chance = np.where(band, share * factor, chance)
    return chance


def bass_years(u: FloatArray, p: float, q: float) -> FloatArray:
    """Adoption times (years) whose distribution is the Bass curve: F(t) = u solved for t."""
    return -np.log((1 - u) / (1 + (q / p) * u)) / (p + q)


def _seconds(rng: np.random.Generator, n: int) -> IntArray:
    hour = rng.choice(HOURS, n, p=HOUR_WEIGHT / HOUR_WEIGHT.sum())
    return (hour * 3600 + rng.integers(0, 3600, n)).astype(np.int64)


def _pick(options: tuple[tuple[str, float], ...], rng: np.random.Generator, n: int) -> list[str]:
    names = [o for o, _ in options]
    return [names[i] for i in rng.choice(len(names), n, p=[p for _, p in options]).tolist()]


@dataclass(frozen=True)
class Users:
    """The app's users, in sign-up order, with their whole planned life cycle."""

    app_user_id: list[str]
    rrn: list[str]
    name: list[str]
    auth: list[str]
    signup_day: IntArray
    signup_second: IntArray
    active_to: IntArray  # logins while signup_day < day < active_to
    delete_day: IntArray  # account_deleted on this day (NEVER if not)
    moved_out: BoolArray
    consent: dict[str, BoolArray]
    withdraw_day: dict[str, IntArray]
    rate: FloatArray  # starting login rate per day
    dormant_day: IntArray


def _unique_ids(rng: np.random.Generator, n: int) -> list[str]:
    ids = rng.integers(0, 2**63, n, dtype=np.int64)
    while len(np.unique(ids)) < n:  # astronomically rare; redrawn deterministically
        _, first = np.unique(ids, return_index=True)
        dup = np.setdiff1d(np.arange(n), first)
        ids[dup] = rng.integers(0, 2**63, len(dup), dtype=np.int64)
    return [f"{int(i):016x}" for i in ids.tolist()]


def plan_users(people: pl.DataFrame, cfg: CityConfig) -> Users:
    """Decide who signs up when, and each user's consents, engagement and end.

    Args:
        people: The population.
        cfg: The city; the Bass curve starts at ``cfg.start``.
    """
    prm = _parameters()
    start, end = epoch_day(cfg.start), epoch_day(cfg.end)
    ppl = people.sort("pid")
    birth = ppl["birth_date"].cast(pl.Int32).to_numpy().astype(np.int64)
    old_enough = ppl["birth_date"].dt.offset_by(f"{int(prm['min_age'])}y").cast(pl.Int32)
    present_to = np.minimum(ppl["present_to"].cast(pl.Int32).to_numpy(), end).astype(np.int64)
    earliest = np.maximum.reduce(
        [
            ppl["present_from"].cast(pl.Int32).to_numpy(),
            old_enough.to_numpy(),
            np.full(ppl.height, start),
        ]
    ).astype(np.int64)

    rng = stream(cfg.seed, SOURCE, "adoption")
    n = ppl.height
    potential = rng.random(n) < adoption_chance((earliest - birth) / 365.25)
    day = start + np.floor(bass_years(rng.random(n), prm["bass_p"], prm["bass_q"]) * 365.25)
    day = day.astype(np.int64)
    late = earliest + np.floor(rng.exponential(60.0, n)).astype(np.int64)
    day = np.where(day < earliest, late, day)
    fallback = earliest + np.floor(rng.random(n) * np.maximum(present_to - earliest, 0))
    user = potential & (day < present_to)
    missing = int(prm["min_users"]) - int(user.sum())
    if missing > 0:
        spare = np.flatnonzero(~user & (earliest < present_to))
        extra = spare[np.argsort(day[spare], kind="stable")[:missing]]
        user[extra] = True
        day[extra] = fallback[extra].astype(np.int64)

    idx = np.flatnonzero(user)
    idx = idx[np.lexsort((idx, day[idx]))]
    k = len(idx)
    rng = stream(cfg.seed, SOURCE, "users")
    signup = day[idx]
    consent = {c: rng.random(k) < prm[OPTIONAL_CONSENTS[c]] for c in OPTIONAL_CONSENTS}
    withdraw = {
        c: np.where(
            consent[c],
            signup + 1 + np.floor(rng.exponential(365.25 / prm["withdraw_per_year"], k)),
            NEVER,
        ).astype(np.int64)
        for c in OPTIONAL_CONSENTS
    }
    delete = signup + 1 + np.floor(rng.exponential(365.25 / prm["delete_per_year"], k))
    departure = ppl["departure"].to_numpy()[idx]
    leaving = (departure == "move_out") & (rng.random(k) < prm["delete_on_move_out"])
    leaving &= (signup < present_to[idx] - 1) & (present_to[idx] - 1 < delete)
    delete = np.where(leaving, present_to[idx] - 1, delete).astype(np.int64)
    delete = np.where(delete < present_to[idx], delete, NEVER)
    return Users(
        app_user_id=_unique_ids(rng, k),
        rrn=ppl["rrn"].gather(idx).to_list(),
        name=ppl["name"].gather(idx).to_list(),
        auth=_pick(SIGNUP_AUTH, rng, k),
        signup_day=signup,
        signup_second=np.minimum(_seconds(rng, k), 22 * 3600 + 1800),
        active_to=np.minimum(present_to[idx], delete),
        delete_day=delete,
        moved_out=leaving,
        consent=consent,
        withdraw_day=withdraw,
        rate=prm["login_rate_median"] * np.exp(rng.normal(0, prm["login_rate_sigma"], k)),
        dormant_day=signup
        + np.floor(rng.exponential(prm["dormant_mean_days"], k)).astype(np.int64),
    )


@dataclass(frozen=True)
class Event:
    """One event before rendering: when, whose, what, and its type-specific fields."""

    second: int
    user: int
    event_type: str
    fields: dict[str, Any]


def _hex(rng: np.random.Generator, n: int) -> list[str]:
    return [f"{int(v):012x}" for v in rng.integers(0, 2**48, n).tolist()]


def _signups(users: Users, d: int, prm: dict[str, float], rng: np.random.Generator) -> list[Event]:
    """Sign-up, the consents given with it and the first record link, for users joining on ``d``."""
    lo, hi = np.searchsorted(users.signup_day, [d, d + 1])
    events: list[Event] = []
    for u in range(int(lo), int(hi)):
        t = int(users.signup_second[u])
        events.append(
            Event(
                t,
                u,
                "signup",
                {"rrn": users.rrn[u], "name": users.name[u], "auth_method": users.auth[u]},
            )
        )
        given = [(c, True) for c in REQUIRED_CONSENTS]
        given += [(c, False) for c in OPTIONAL_CONSENTS if users.consent[c][u]]
        for consent, required in given:
            t += int(rng.integers(3, 20))
            fields = {
                "consent_type": consent,
                "consent_version": CONSENT_VERSION,
                "required": required,
            }
            events.append(Event(t, u, "consent", fields))
        if users.consent["hira_record_link"][u]:
            events += _record_link(u, t + int(rng.integers(10, 240)), prm, rng)
    return events


def _record_link(u: int, t: int, prm: dict[str, float], rng: np.random.Generator) -> list[Event]:
    """A HIRA record-link request and its outcome a few minutes later."""
    request = _hex(rng, 1)[0]
    done = t + int(rng.integers(20, 600))
    if rng.random() < prm["link_failure"]:
        error = LINK_ERRORS[int(rng.integers(len(LINK_ERRORS)))]
        outcome: dict[str, Any] = {"request_id": request, "status": "failed", "error": error}
    else:
        records = int(rng.poisson(40))
        outcome = {"request_id": request, "status": "completed", "records": records}
    return [
        Event(t, u, "record_link_request", {"request_id": request, "source": "hira"}),
        Event(done, u, "record_link_completed", outcome),
    ]


def _logins(
    users: Users, day: date, d: int, prm: dict[str, float], rng: np.random.Generator
) -> list[Event]:
    """Logins of the active users on ``d``, and the shares and record refreshes they start."""
    n = int(np.searchsorted(users.signup_day, d))  # signed up before today
    age = d - users.signup_day[:n]
    decay = prm["engagement_floor"] + (1 - prm["engagement_floor"]) * np.exp(
        -age / prm["engagement_tau_days"]
    )
    dormant = np.where(d >= users.dormant_day[:n], prm["dormant_factor"], 1.0)
    rate = np.where(d < users.active_to[:n], users.rate[:n] * decay * dormant, 0.0)
    count = np.minimum(rng.poisson(rate), 6)
    who = np.repeat(np.arange(n), count)
    seconds = _seconds(rng, len(who))
    methods = _pick(LOGIN_AUTH, rng, len(who))
    share = rng.random(len(who)) < prm["share_per_login"]
    refresh = rng.random(len(who)) < prm["refresh_per_login"]
    events: list[Event] = []
    for i, (u, t) in enumerate(zip(who.tolist(), seconds.tolist(), strict=True)):
        events.append(Event(t, u, "login", {"auth_method": methods[i]}))
        if share[i]:
            events.append(_share(u, t + int(rng.integers(30, 600)), day, rng))
        linked = (
            users.consent["hira_record_link"][u] and d < users.withdraw_day["hira_record_link"][u]
        )
        if refresh[i] and linked:
            events += _record_link(u, t + int(rng.integers(10, 120)), prm, rng)
    return events


def _share(u: int, t: int, day: date, rng: np.random.Generator) -> Event:
    """A time-limited share of chosen record items with one recipient."""
    recipient = _pick(RECIPIENTS, rng, 1)[0]
    chosen = rng.random(len(SHARE_ITEMS)) < 0.5
    chosen[int(rng.integers(len(SHARE_ITEMS)))] = True
    expires = datetime.combine(day, time()) + timedelta(
        seconds=t, minutes=SHARE_MINUTES.get(recipient, 60)
    )
    fields = {
        "share_id": _hex(rng, 1)[0],
        "recipient": recipient,
        "items": [item for item, keep in zip(SHARE_ITEMS, chosen.tolist(), strict=True) if keep],
        "expires_at": expires.isoformat() + "+09:00",
    }
    return Event(t, u, "share_created", fields)


def _endings(users: Users, d: int, rng: np.random.Generator) -> list[Event]:
    """Optional consents withdrawn and accounts deleted on ``d``."""
    n = int(np.searchsorted(users.signup_day, d))
    events: list[Event] = []
    for consent in OPTIONAL_CONSENTS:
        for u in np.flatnonzero((users.withdraw_day[consent][:n] == d) & (d < users.active_to[:n])):
            t = int(_seconds(rng, 1)[0])
            events.append(Event(t, int(u), "consent_withdrawn", {"consent_type": consent}))
    for u in np.flatnonzero(users.delete_day[:n] == d):
        reason = "moved_out" if users.moved_out[u] else "user_request"
        events.append(
            Event(int(_seconds(rng, 1)[0]), int(u), "account_deleted", {"reason": reason})
        )
    return events


def day_events(users: Users, day: date, seed: int, prm: dict[str, float]) -> list[Event]:
    """All events of one day, in time order (ties keep generation order)."""
    rng = stream(seed, SOURCE, "day", day.isoformat())
    d = epoch_day(day)
    events = (
        _signups(users, d, prm, rng) + _logins(users, day, d, prm, rng) + _endings(users, d, rng)
    )
    return sorted(events, key=lambda e: e.second)


def _stamp(day: date, second: int, dom: int | None = None) -> str:
    return (
        f"{day.year:04d}-{day.month:02d}-{dom or day.day:02d}"
        f"T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+09:00"
    )


def _record(event: Event, users: Users, day: date, event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event.event_type,
        "occurred_at": _stamp(day, event.second),
        "app_user_id": users.app_user_id[event.user],
        **event.fields,
    }


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(n)]


Fault = tuple[str, int, str, str]  # kind, line, key, detail


def day_lines(
    users: Users, day: date, seed: int, prm: dict[str, float], counts: dict[str, int]
) -> tuple[list[str], list[Fault]]:
    """Render one day's log with its planned row faults (``counts``: kind -> number)."""
    events = day_events(users, day, seed, prm)
    ids = stream(seed, SOURCE, "ids", day.isoformat())
    records = [
        _record(e, users, day, i) for e, i in zip(events, _uuids(ids, len(events)), strict=True)
    ]
    leaves = [i for i, e in enumerate(events) if e.event_type in LEAF_EVENTS]
    rng = stream(seed, SOURCE, "faults", day.isoformat())
    rows = choose_rows(FolderPlan(False, tuple(counts.items())), len(leaves), rng)
    y, m, dom = impossible_day(day)
    extra_after: dict[int, list[dict[str, Any]]] = {}
    for src in rows.extra_source.tolist():
        copy = dict(records[leaves[src]])
        copy["event_id"] = _uuids(ids, 1)[0]
        copy["occurred_at"] = f"{y:04d}-{m:02d}-{dom:02d}" + copy["occurred_at"][10:]
        extra_after.setdefault(leaves[src], []).append(copy)
    broken = {leaves[r] for r in rows.malformed.tolist()}
    lines: list[str] = []
    faults: list[Fault] = []
    for i, record in enumerate(records):
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if i in broken:
            line, what = break_json_line(line, rng)
            faults.append((MALFORMED_ROW, len(lines) + 1, record["event_id"], what))
        lines.append(line)
        for copy in extra_after.get(i, []):
            lines.append(json.dumps(copy, ensure_ascii=False, separators=(",", ":")))
            detail = f"occurred_at={copy['occurred_at']}"
            faults.append((IMPOSSIBLE_DATE, len(lines), copy["event_id"], detail))
    return lines, faults


def _deliver(out: Path, stamp: str, at: datetime, name: str, lines: list[str]) -> str:
    # The day's log: the stamp is YYYYMMDD-n.
    period = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    meta = {"system": "AI시민의료앱 event log"}
    with Delivery(out, FOLDER, stamp, at, "utf-8", meta, period=period) as dl:
        dl.jsonl(name).write_lines(lines)
        return dl.relpath(name)


def write_programme_events(
    people: pl.DataFrame, cfg: CityConfig, out: Path, faults: FaultLog
) -> dict[str, int]:
    """Write the citizen app's daily event-log deliveries for the whole window.

    Args:
        people: The population; sign-ups carry their RRN and name.
        cfg: The city. Output does not depend on ``cfg.workers`` (one process; the log is small).
        out: The output root.
        faults: Where injected faults are recorded; ``faults.enabled`` switches injection on.

    Returns:
        Summary counts: users, events (lines written), sign-ups and delivery folders.
    """
    prm = _parameters()
    users = plan_users(people, cfg)
    days = [cfg.start + timedelta(i) for i in range(cfg.days)]
    stamps = [f"{d:%Y%m%d}" for d in days]
    leaves = [
        sum(e.event_type in LEAF_EVENTS for e in day_events(users, d, cfg.seed, prm)) for d in days
    ]
    plans = plan_folders(stamps, leaves, ROW_FAULTS, cfg.seed, SOURCE, faults.enabled)
    summary = {"app_users": len(users.app_user_id), "app_events": 0, "app_deliveries": 0}
    for day, stamp, plan in zip(days, stamps, plans, strict=True):
        lines, found = day_lines(users, day, cfg.seed, prm, dict(plan.counts))
        rng = stream(cfg.seed, SOURCE, "delivered", stamp)
        at = datetime.combine(day + timedelta(1), time(EXPORT_HOUR))
        at += timedelta(seconds=int(rng.integers(1800)))
        name = f"events_{stamp}.jsonl"
        path = _deliver(out, f"{stamp}-1", at, name, lines)
        for kind, line, key, detail in found:
            faults.add(kind, SOURCE, path, line, key, detail)
        summary["app_events"] += len(lines)
        summary["app_deliveries"] += 1
        if plan.duplicate:
            again = datetime.combine(day + timedelta(1), time(RESEND_HOUR))
            again += timedelta(seconds=int(rng.integers(7200)))
            copy = _deliver(out, f"{stamp}-2", again, name, lines)
            faults.add(DUPLICATE_DELIVERY, SOURCE, copy, None, None, f"re-send of {path}")
            summary["app_deliveries"] += 1
    summary["app_signups"] = int(np.sum(users.signup_day < epoch_day(cfg.end)))
    return summary
