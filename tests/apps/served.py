"""The apps served for the browser tests on a copy of the built demo city: the environment that
points an app at it with the test's own accounts, every app at once, and signing in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from playwright.sync_api import Page

from gjh import serve
from gjh.bench.app_server import AppServer, run_app, signing_in
from gjh.bench.browser import exception_texts, fill_sign_in, rerun
from lakehouse import accounts
from tests.pipelines.conftest import Lake

# Each app's server by the role it serves: the public-health app is the officials'.
APPS = {
    "citizen": "citizen",
    "clinician": "clinician",
    "official": "public_health",
    "admin": "admin",
}


def app_env(
    lake: Lake, roster: Iterable[accounts.Account], folder: Path, session_key: str
) -> dict[str, str]:
    """The environment of an app served on ``lake``, signing in the accounts of ``roster``
    (saved in ``folder``), with its own session key."""
    return {
        "LAKEHOUSE_URI": str(lake.root),
        "GJH_SECRETS_DIR": str(lake.root.parent / "secrets"),
    } | signing_in(roster, folder, session_key)


def app_script(role: str) -> Path:
    """What serves the app of ``role``, as ``gjh serve`` runs it: its ``serve.py`` (the router
    with the route that sets the session cookie)."""
    return serve.script(APPS[role])


@contextlib.contextmanager
def every_app(env: dict[str, str], log_dir: Path | None = None) -> Iterator[dict[str, AppServer]]:
    """Every app served with ``env`` until the block exits, by the role it serves; their logs
    go to ``log_dir`` (see ``run_app``)."""
    with contextlib.ExitStack() as stack:
        yield {
            role: stack.enter_context(run_app(app_script(role), env, log_dir=log_dir))
            for role in APPS
        }


def sign_in(page: Page, server: AppServer, account: str, password: str, path: str = "") -> None:
    """Open the app (at ``path``, a page and its query) and sign in with a local account."""
    button = fill_sign_in(page, server, account, password, path)
    with rerun(page):
        button.click()
    assert not exception_texts(page)
