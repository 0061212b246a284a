"""Numbered screenshots of the apps' flows, for the documentation and for looking at what a
browser test saw: each flow's steps saved as ``<flow>/<NN>-<step>.png``.

The browser harness itself (serving an app, Chromium, waiting for Streamlit's reruns) is the
package's, shared with ``gjh bench`` (``gjh.bench.app_server``, ``gjh.bench.browser``); the
fixtures that wrap it (``browser``, ``page``, ``start_app``) live in conftest.py. A test module
imports the helpers it calls directly::

    from gjh.bench.browser import open_app, rerun
    from tests.apps.screenshots import shot

    @pytest.mark.browser
    def test_login(start_app, page):
        app = start_app(APPS / "citizen" / "streamlit_app.py", {"GJH_LAKEHOUSE": str(lake)})
        open_app(page, app.url)
        shot(page, "login", "form")
        page.get_by_label("아이디").fill("kim")
        with rerun(page):
            page.get_by_role("button", name="로그인").click()
        shot(page, "login", "signed-in")

A module that drives one app from many tests can share a server with
``gjh.bench.app_server.run_app`` in a module-scoped fixture instead of ``start_app``.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

from gjh.bench.app_server import ROOT
from gjh.bench.browser import ARTIFACTS, full_page_screenshot, slug, wait_idle

_shot_counters: dict[Path, int] = {}


def screenshots_dir() -> Path:
    """$GJH_SCREENSHOTS_DIR (relative to the repository's root) if set, else
    test-artifacts/screenshots (gitignored)."""
    configured = os.environ.get("GJH_SCREENSHOTS_DIR")
    return ROOT / configured if configured else ARTIFACTS / "screenshots"


def shot(page: Page, flow: str, step: str, *, out_dir: Path | None = None) -> Path:
    """Save a full-page PNG of the settled app as `<dir>/<flow>/<NN>-<step>.png` and return it.

    `<dir>` is `out_dir`, else `screenshots_dir()`. NN counts this flow's shots in this test
    session, from 01; the flow's folder is emptied of PNGs at its first shot, so a refreshed flow
    holds exactly this run's steps.

    Streamlit scrolls inside `[data-testid="stMain"]`, not the document, so a plain full-page
    screenshot stops at the viewport: the viewport is grown to the content's height for the shot
    and restored afterwards (`full_page_screenshot`).
    """
    folder = (out_dir or screenshots_dir()) / slug(flow)
    folder = folder.resolve()
    if folder not in _shot_counters:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        _shot_counters[folder] = 0
    _shot_counters[folder] += 1
    path = folder / f"{_shot_counters[folder]:02d}-{slug(step)}.png"

    wait_idle(page)
    page.wait_for_load_state("networkidle")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    full_page_screenshot(page, path)
    return path
