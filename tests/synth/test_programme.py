"""The citizen app's event log: adoption, identity, engagement, files and faults."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from synth.config import CityConfig
from synth.faults import FaultLog
from tests.synth.helpers import (
    RRN_PATTERN,
    check_manifest,
    duplicate_pairs,
    make_people,
    manifests,
    recorded,
    rel,
)

START = date(2025, 1, 1)
DAYS = 365
REQUIRED = {"terms_of_service", "privacy_collection", "sensitive_health_info"}
COMMON = {"event_id", "event_type", "occurred_at", "app_user_id"}
FIELDS = {
    "signup": {"rrn", "name", "auth_method"},
    "consent": {"consent_type", "consent_version", "required"},
    "consent_withdrawn": {"consent_type"},
    "record_link_request": {"request_id", "source"},
    "record_link_completed": {"request_id", "status"},
    "login": {"auth_method"},
    "share_created": {"share_id", "recipient", "items", "expires_at"},
    "account_deleted": {"reason"},
}


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return make_people(6000, START, DAYS, seed=21)[0]


def run_programme(people: pl.DataFrame, out: Path, faults_on: bool, workers: int = 1):
    from synth.programme import write_programme_events

    cfg = CityConfig(
        citizens=6000, start=START, days=DAYS, seed=5, inject_faults=faults_on, workers=workers
    )
    faults = FaultLog(faults_on)
    return cfg, faults, write_programme_events(people, cfg, out, faults)


@pytest.fixture(scope="module")
def clean(population, tmp_path_factory):
    out = tmp_path_factory.mktemp("programme_clean")
    return (out, *run_programme(population, out, False))


@pytest.fixture(scope="module")
def with_faults(population, tmp_path_factory):
    out = tmp_path_factory.mktemp("programme_faults")
    return (out, *run_programme(population, out, True))


def parse_log(text: str, day: date) -> tuple[list[dict[str, Any]], set[tuple[int, str]]]:
    """Parse one day's log strictly: good events, and (line, kind) for every bad line."""
    good, bad = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            bad.add((number, "malformed_row"))
            continue
        try:
            at = datetime.fromisoformat(event["occurred_at"])
        except ValueError:
            bad.add((number, "impossible_date"))
            continue
        assert event["occurred_at"].endswith("+09:00")
        assert at.date() == day  # a day's log holds that day's events (KST)
        event["_at"] = at
        good.append(event)
    return good, bad


def read_log(out: Path) -> tuple[list[dict[str, Any]], set[tuple[str, int, str]]]:
    """Every good event of the original deliveries, in order, and every bad line anywhere."""
    events, bad = [], set()
    for folder, manifest in manifests(out, "programme/app_events"):
        (text,) = check_manifest(folder, manifest)
        assert manifest["files"][0]["encoding"] == "utf-8"
        day = datetime.strptime(folder.name[:8], "%Y%m%d").date()
        good, broken = parse_log(text, day)
        path = rel(folder / manifest["files"][0]["name"], out)
        bad |= {(path, line, kind) for line, kind in broken}
        if folder.name.endswith("-1"):
            events += good
    return events, bad


@pytest.fixture(scope="module")
def log(clean):
    events, bad = read_log(clean[0])
    assert bad == set()
    return events


def test_every_event_has_its_documented_fields(log):
    from lakehouse.reference import code_set

    counts = Counter(e["event_type"] for e in log)
    assert set(counts) <= code_set("app_event_types")
    assert {"signup", "consent", "record_link_request", "record_link_completed", "login"} <= set(
        counts
    )
    for e in log:
        assert COMMON | FIELDS[e["event_type"]] <= set(e) - {"_at"}
    ids = [e["event_id"] for e in log]
    assert len(ids) == len(set(ids))


def test_identity_only_at_sign_up(clean, log):
    import re

    users = [e["app_user_id"] for e in log if e["event_type"] == "signup"]
    assert len(users) == len(set(users)) == clean[3]["app_users"]
    known: set[str] = set()
    for e in log:
        if e["event_type"] == "signup":
            known.add(e["app_user_id"])
        else:
            assert e["app_user_id"] in known  # every later event follows its user's sign-up
            assert not re.search(RRN_PATTERN, json.dumps(e, default=str, ensure_ascii=False))


def test_sign_ups_are_residents_14_plus_and_stop_at_departure(population, log):
    person = {r["rrn"]: r for r in population.iter_rows(named=True)}
    owner = {}
    for e in log:
        if e["event_type"] == "signup":
            p = person[e["rrn"]]
            assert p["name"] == e["name"]
            day = e["_at"].date()
            assert p["present_from"] <= day < p["present_to"]
            assert (day - p["birth_date"]).days / 365.25 >= 14
            owner[e["app_user_id"]] = p
        else:
            assert e["_at"].date() < owner[e["app_user_id"]]["present_to"]
    deleted = {e["app_user_id"]: e["_at"] for e in log if e["event_type"] == "account_deleted"}
    for e in log:
        if e["event_type"] == "account_deleted" and e["reason"] == "moved_out":
            p = owner[e["app_user_id"]]
            assert p["departure"] == "move_out"
            assert e["_at"].date() == p["present_to"] - timedelta(days=1)
    assert all(e["_at"] <= deleted.get(e["app_user_id"], e["_at"]) for e in log)


def test_uptake_is_highest_in_middle_age_and_lowest_among_the_oldest(population):
    from synth.programme import adoption_chance

    chance = adoption_chance(np.array([10.0, 16.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0]))
    assert chance[0] == 0  # under 14
    assert chance[2] == chance[3] == chance.max()
    assert chance[7] == chance.min(where=chance > 0, initial=1)
    assert chance[7] < chance[2] / 4


def test_uptake_by_age_in_the_log(population, log):
    ages = population.with_columns(
        ((pl.lit(START) - pl.col("birth_date")).dt.total_days() / 365.25).alias("age")
    )
    signed = {e["rrn"] for e in log if e["event_type"] == "signup"}
    ages = ages.with_columns(pl.col("rrn").is_in(list(signed)).alias("user"))
    middle = ages.filter(pl.col("age").is_between(30, 60))["user"].mean()
    oldest = ages.filter(pl.col("age") >= 75)["user"].mean()
    assert middle > 3 * oldest


def test_adoption_follows_the_bass_curve(clean, log):
    from synth.programme import bass_years

    u = np.linspace(0.01, 0.99, 50)
    t = bass_years(u, 0.1, 0.38)
    f = (1 - np.exp(-0.48 * t)) / (1 + 3.8 * np.exp(-0.48 * t))
    assert np.allclose(f, u)
    assert np.all(np.diff(t) > 0)
    # Share of the year's sign-ups made by mid-year: F(0.5) / F(1) = 0.47 for p = 0.1, q = 0.38.
    days = np.array([(e["_at"].date() - START).days for e in log if e["event_type"] == "signup"])
    assert len(days) >= 100
    assert 0.35 < np.mean(days < DAYS / 2) < 0.6


def test_logins_decay_after_sign_up(log):
    signup = {e["app_user_id"]: e["_at"].date() for e in log if e["event_type"] == "signup"}
    early: Counter[str] = Counter()
    late: Counter[str] = Counter()
    for e in log:
        if e["event_type"] == "login":
            age = (e["_at"].date() - signup[e["app_user_id"]]).days
            if 1 <= age <= 14:
                early[e["app_user_id"]] += 1
            elif 120 <= age <= 133:
                late[e["app_user_id"]] += 1
    # Users who signed up early enough to be observed in both fortnights.
    both = [u for u, d in signup.items() if (d - START).days <= DAYS - 134]
    assert len(both) >= 30
    assert sum(early[u] for u in both) > 3 * sum(late[u] for u in both)


def test_consents_record_links_and_shares_are_consistent(log):
    consents = defaultdict(set)
    given = defaultdict(set)
    requests = {}
    for e in log:
        kind, user = e["event_type"], e["app_user_id"]
        if kind == "consent":
            consents[user].add(e["consent_type"])
            given[user].add(e["consent_type"])
            assert e["required"] == (e["consent_type"] in REQUIRED)
        elif kind == "consent_withdrawn":
            assert e["consent_type"] in consents[user]
            consents[user].discard(e["consent_type"])
        elif kind == "record_link_request":
            assert "hira_record_link" in consents[user]
            requests[e["request_id"]] = e["_at"]
        elif kind == "record_link_completed":
            assert e["_at"] >= requests.pop(e["request_id"])
            assert e["status"] in {"completed", "failed"}
            assert ("records" in e) == (e["status"] == "completed")
        elif kind == "share_created":
            minutes = 30 if e["recipient"] == "health_centre" else 60
            expires = datetime.fromisoformat(e["expires_at"])
            assert expires - e["_at"] == timedelta(minutes=minutes)
            assert e["items"]
    assert not requests  # every request has its outcome, the same day
    signed = {e["app_user_id"] for e in log if e["event_type"] == "signup"}
    assert all(given[user] >= REQUIRED for user in signed)


def test_every_day_is_delivered_and_faults_off_means_nothing_broken(clean):
    out, cfg, faults, summary = clean
    folders = sorted(f.name for f in (out / "programme" / "app_events").iterdir())
    assert folders == [f"{cfg.start + timedelta(i):%Y%m%d}-1" for i in range(cfg.days)]
    assert faults.faults == []
    assert summary["app_deliveries"] == cfg.days


def test_recorded_faults_match_the_files_exactly(with_faults):
    out, _, faults, _ = with_faults
    _, bad = read_log(out)
    found = bad | duplicate_pairs(out, "programme/app_events")
    assert all("-1/" in path for path, line, _ in found if line is not None)
    assert found == recorded(faults, "programme/")
    assert {kind for *_, kind in found} == {
        "malformed_row",
        "impossible_date",
        "duplicate_delivery",
    }
    events = {}
    for folder, manifest in manifests(out, "programme/app_events"):
        text = (folder / manifest["files"][0]["name"]).read_text(encoding="utf-8")
        events[rel(folder / manifest["files"][0]["name"], out)] = text.splitlines()
    for fault in faults.faults:
        assert fault.source == "programme"
        if fault.kind == "impossible_date":
            extra = json.loads(events[fault.path][fault.line - 1])
            assert extra["event_id"] == fault.key
            assert extra["event_type"] in {"login", "share_created"}  # nothing refers to them


@pytest.mark.slow
def test_output_is_byte_identical_and_independent_of_workers(population, tmp_path):
    run_programme(population, tmp_path / "a", True, workers=1)
    run_programme(population, tmp_path / "b", True, workers=3)
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert a == b
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_tiny_city_still_gets_a_handful_of_users(tmp_path):
    from synth.programme import write_programme_events

    people = make_people(200, START, 30, seed=8)[0]
    cfg = CityConfig(citizens=200, start=START, days=30, seed=1)
    summary = write_programme_events(people, cfg, tmp_path, FaultLog(False))
    assert summary["app_users"] >= 5
