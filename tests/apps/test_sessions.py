"""The server's record of local sessions (``apps/common/sessions.py``) and the route that sets
and clears their cookie (``apps/common/session_cookie.py``), through Starlette's test client: a
session ends by idling, by age and by sign-out, a ticket opens one cookie once, and the cookie
is set only for the app's own origin, HttpOnly and SameSite=Strict. In Chromium:
test_session_reload.py."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2, which is not installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from apps.common import session_cookie
from apps.common.sessions import (
    MAX_AGE_S,
    STORE,
    TICKET_S,
    Ended,
    Record,
    Store,
    session_of,
    token,
)

pytestmark = pytest.mark.security
ORIGIN = "http://testserver"  # the test client's host
NAME = session_cookie.cookie_name("citizen")


def test_a_session_is_seen_until_it_idles_or_ages_and_then_is_gone() -> None:
    store = Store()
    session = store.open("minji", now=0.0, max_age_s=100.0)
    assert store.touch(session, 5.0, idle_s=10.0, max_age_s=100.0) == Record("minji", 0.0, 5.0)
    assert store.touch(session, 14.0, idle_s=10.0, max_age_s=100.0) == Record("minji", 0.0, 14.0)
    assert store.touch(session, 25.0, idle_s=10.0, max_age_s=100.0) is Ended.IDLE
    assert store.touch(session, 26.0, idle_s=10.0, max_age_s=100.0) is Ended.GONE  # removed
    busy = store.open("minji", now=0.0, max_age_s=100.0)
    for now in range(10, 100, 10):
        assert isinstance(store.touch(busy, now, idle_s=15.0, max_age_s=100.0), Record)
    assert store.touch(busy, 101.0, idle_s=15.0, max_age_s=100.0) is Ended.OLD
    assert store.touch("made-up", 1.0, idle_s=10.0, max_age_s=100.0) is Ended.GONE


def test_signing_out_ends_the_session_for_every_copy_and_old_ones_are_dropped() -> None:
    store = Store()
    mine, theirs = store.open("a", 0.0, 100.0), store.open("b", 0.0, 100.0)
    store.close(mine)
    assert store.touch(mine, 1.0, 10.0, 100.0) is Ended.GONE and not store.holds(mine)
    assert store.holds(theirs)
    store.open("c", 200.0, 100.0)  # a sign-in drops the sessions past the maximum age
    assert not store.holds(theirs)


def test_a_ticket_is_redeemed_once_and_only_while_fresh() -> None:
    store = Store()
    ticket = store.ticket("value", now=0.0)
    assert store.redeem(ticket, TICKET_S) == "value"
    assert store.redeem(ticket, TICKET_S) is None
    stale = store.ticket("value", now=0.0)
    assert store.redeem(stale, TICKET_S + 1) is None
    assert store.redeem("made-up", 0.0) is None


def test_many_sessions_at_once_keep_their_own_records() -> None:
    store = Store()
    seen: dict[str, list[str]] = {}

    def person(i: int) -> None:
        session = store.open(f"p{i}", 0.0, 1e9)
        found = [store.touch(session, float(n), 1e9, 1e9) for n in range(200)]
        seen[session] = [r.account for r in found if isinstance(r, Record)]

    threads = [threading.Thread(target=person, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(accounts) == 200 and len(set(accounts)) == 1 for accounts in seen.values())
    assert {accounts[0] for accounts in seen.values()} == {f"p{i}" for i in range(16)}


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GJH_SESSION_KEY", "7a" * 32)


def test_only_a_token_the_key_signed_for_the_app_names_a_session() -> None:
    signed = token("citizen", "some-id")
    assert session_of("citizen", signed) == "some-id"
    session, signature = signed.split(".")
    for forged in (
        f"other-id.{signature}",
        f"{session}.{'0' * 64}",
        f"{session}.{signature}.x",
        "some-id",
        "",
        f"{session}.서명",
        None,
        {"account": "minji"},
    ):
        assert session_of("citizen", forged) is None, forged
    assert session_of("clinician", signed) is None  # another app's cookie


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(Starlette(routes=session_cookie.routes("citizen"))) as test_client:
        yield test_client


def post(client: TestClient, ticket: str, origin: str = ORIGIN) -> tuple[int, str]:
    response = client.post(session_cookie.url(), content=ticket, headers={"Origin": origin})
    return response.status_code, response.headers.get("set-cookie", "")


def test_a_ticket_sets_an_httponly_strict_cookie_once(client: TestClient) -> None:
    session = STORE.open("minji", time.time(), MAX_AGE_S)
    status, cookie = post(client, STORE.ticket(f"{session}.signature", time.time()))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert status == 204
    assert attributes[0] == f"{NAME}={session}.signature".lower()
    assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # served over http here
    assert f"max-age={MAX_AGE_S}" in attributes
    ticket = STORE.ticket("value", time.time())
    assert post(client, ticket)[0] == 204
    assert post(client, ticket) == (403, "")  # used


def test_over_https_the_cookie_is_secure(client: TestClient) -> None:
    _, cookie = post(client, STORE.ticket("value", time.time()), origin="https://testserver")
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


@pytest.mark.parametrize("origin", ["", "http://elsewhere.example", "null", "http://testserver.x"])
def test_another_origin_sets_nothing(client: TestClient, origin: str) -> None:
    ticket = STORE.ticket("value", time.time())
    assert post(client, ticket, origin) == (403, "")
    assert post(client, "made-up") == (403, "")
    assert post(client, ticket)[0] == 204  # the refused request did not use the ticket up


def test_the_cookie_is_cleared_unless_it_still_opens_a_session(client: TestClient) -> None:
    live = STORE.open("minji", time.time(), MAX_AGE_S)
    client.cookies.set(NAME, f"{live}.{'0' * 64}")  # a live id under a made-up signature
    cleared = client.delete(session_cookie.url(), headers={"Origin": ORIGIN})
    assert "max-age=0" in cleared.headers["set-cookie"].lower()
    client.cookies.set(NAME, token("citizen", live))
    kept = client.delete(session_cookie.url(), headers={"Origin": ORIGIN})
    assert kept.status_code == 204 and "set-cookie" not in kept.headers
    STORE.close(live)
    cleared = client.delete(session_cookie.url(), headers={"Origin": ORIGIN})
    assert cleared.status_code == 204
    assert cleared.headers["set-cookie"].lower().startswith(f'{NAME}=""; ')
    assert "max-age=0" in cleared.headers["set-cookie"].lower()
    elsewhere = client.delete(session_cookie.url(), headers={"Origin": "http://elsewhere.example"})
    assert elsewhere.status_code == 403
