"""A local sign-in across reloads, in Chromium against the admin app served as ``gjh serve``
serves it (``apps/admin/serve.py``), on an empty lakehouse (what is tested is the session, not
the data): a reload and a new tab keep the person signed in and on their page; the cookie is
HttpOnly and SameSite=Strict; after sign-out neither a reload nor a copy of the cookie gets in;
a tampered cookie is refused and recorded; an idle session asks to sign in again."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, BrowserContext, Cookie, Page, expect

from apps.common.i18n import t
from apps.common.session_cookie import cookie_name
from gjh.bench.app_server import AppServer, run_app
from gjh.bench.browser import open_app, rerun, wait_idle
from lakehouse import accounts
from lakehouse.accounts import SIGN_IN_LOG
from tests.apps.served import app_script, sign_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.security]
PASSWORD = "session-reload-1"
COOKIE = cookie_name("admin")
MONITORING = t("admin.monitoring.title", "ko")


def environment(root: Path, **extra: str) -> dict[str, str]:
    """An admin account on an empty lakehouse under ``root``."""
    admin = accounts.Account(
        "admin", "admin", "운영자", password_hash=accounts.hash_password(PASSWORD)
    )
    return {
        "LAKEHOUSE_URI": str(root / "lakehouse"),
        "GJH_SECRETS_DIR": str(root / "secrets"),
        "GJH_ACCOUNTS": str(accounts.save({"admin": admin}, root / "accounts.json")),
        "GJH_SESSION_KEY": "5e" * 32,
        **extra,
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session_reload")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[AppServer]:
    with run_app(app_script("admin"), environment(root), log_dir=root / "logs") as app:
        yield app


def session_cookie(context: BrowserContext) -> Cookie | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def wait_for_cookie(context: BrowserContext, present: bool = True) -> Cookie | None:
    """The session cookie once the page's call to the app's route has set (or cleared) it."""
    deadline = time.monotonic() + 15
    while (session_cookie(context) is not None) != present:
        assert time.monotonic() < deadline, f"the session cookie was never {present=}"
        time.sleep(0.1)
    return session_cookie(context)


def holding(browser: Browser, server: AppServer, value: str) -> BrowserContext:
    """Another browser, holding ``value`` as the app's session cookie (a copy, or a forgery)."""
    context = browser.new_context()
    context.add_cookies([{"name": COOKIE, "value": value, "url": server.url}])
    return context


def reload(page: Page) -> None:
    """F5: the page loads anew and opens a new Streamlit session."""
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]')
    wait_idle(page)


def signed_in(page: Page) -> None:
    expect(page.get_by_role("button", name=t("auth.sign_out", "ko"))).to_be_visible()
    expect(page.get_by_label(t("auth.password", "ko"))).to_have_count(0)


def signed_out(page: Page) -> None:
    expect(page.get_by_label(t("auth.password", "ko"))).to_be_visible()
    expect(page.get_by_role("button", name=t("auth.sign_out", "ko"))).to_have_count(0)


def sign_in_on_monitoring(page: Page, server: AppServer) -> Cookie:
    """Sign in, go to the monitoring page, and wait for the session's cookie."""
    sign_in(page, server, "admin", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name=MONITORING).click()
    expect(page.get_by_role("heading", name=MONITORING)).to_be_visible()
    cookie = wait_for_cookie(page.context)
    assert cookie is not None
    return cookie


def test_a_reload_and_a_new_tab_keep_the_person_signed_in_on_their_page(
    page: Page, server: AppServer
) -> None:
    sign_in_on_monitoring(page, server)
    reload(page)
    assert page.url == f"{server.url}/monitoring"
    expect(page.get_by_role("heading", name=MONITORING)).to_be_visible()
    signed_in(page)
    tab = page.context.new_page()
    open_app(tab, server.url)
    signed_in(tab)


def test_the_cookie_is_httponly_and_strict_and_scripts_cannot_read_it(
    page: Page, server: AppServer
) -> None:
    cookie = sign_in_on_monitoring(page, server)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # served over http here; over https it is Secure
    assert re.fullmatch(r"[\w-]{43}\.[0-9a-f]{64}", cookie["value"])  # an id and its signature
    assert COOKIE not in page.evaluate("document.cookie")
    assert cookie["value"] not in page.content()  # the page never held it either


def test_after_sign_out_neither_a_reload_nor_a_copied_cookie_gets_in(
    browser: Browser, page: Page, server: AppServer
) -> None:
    cookie = sign_in_on_monitoring(page, server)
    copy = holding(browser, server, cookie["value"])
    try:
        elsewhere = copy.new_page()
        open_app(elsewhere, server.url)
        signed_in(elsewhere)  # the cookie alone opens the session, as in a new tab
        with rerun(page):
            page.get_by_role("button", name=t("auth.sign_out", "ko")).click()
        signed_out(page)
        wait_for_cookie(page.context, present=False)  # cleared in the browser
        reload(page)
        signed_out(page)
        reload(elsewhere)  # the copy still holds the cookie: the server no longer takes it
        signed_out(elsewhere)
        expect(elsewhere.get_by_text(t("auth.expired", "ko"))).to_have_count(0)
    finally:
        copy.close()


def test_a_tampered_cookie_is_refused_and_recorded(
    browser: Browser, page: Page, server: AppServer, root: Path
) -> None:
    cookie = sign_in_on_monitoring(page, server)
    session, signature = cookie["value"].split(".")
    forged_signature = f"{session}.{'0' * 64}"
    other_session = f"{'A' * 43}.{signature}"
    for value in (forged_signature, other_session, "admin"):
        context = holding(browser, server, value)
        try:
            tab = context.new_page()
            open_app(tab, server.url)
            signed_out(tab)
            wait_for_cookie(context, present=False)  # the page cleared it
        finally:
            context.close()
    lake = Lake(root / "lakehouse", root)
    with lake.active():  # the table and what the server's outbox still holds
        forged = SIGN_IN_LOG.scan().filter(pl.col("outcome") == "forged_session").collect()
    assert set(forged["account"]) >= {forged_signature[:64], other_session[:64], "admin"}
    reload(page)  # the real session is untouched
    signed_in(page)


def test_an_idle_session_asks_to_sign_in_again(
    page: Page, start_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    idle = start_app(app_script("admin"), environment(tmp_path, GJH_SESSION_MINUTES="0.05"))
    sign_in(page, idle, "admin", PASSWORD)
    wait_for_cookie(page.context)
    time.sleep(4)  # the limit is 3 s
    reload(page)
    expect(page.get_by_text(t("auth.expired", "ko"))).to_be_visible()
    signed_out(page)
