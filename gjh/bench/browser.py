"""Debian's Chromium driven through Playwright on the served apps (``gjh.bench.app_server``), as
``gjh bench``'s crowd stage and the browser tests drive it: launched with the flags this machine
kind needs, waiting for Streamlit's reruns to settle, signing in with a local account, and what a
failed visit leaves to look at (its page's screenshot and HTML, the servers' logs).

Playwright comes with the development dependencies (``make env``); ``playwright install`` is
never run, so no browser is downloaded.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, sync_playwright

from gjh.bench.app_server import LIVE_SERVERS, ROOT, AppServer

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Measured on this machine kind (see the project's environment notes): no sandbox as root, no GPU,
# nothing that phones home, /dev/shm may be small in containers.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium launched headless by Playwright with CHROMIUM_ARGS, until the block
    exits."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


# --- Waiting for Streamlit -------------------------------------------------------------------
#
# Streamlit renders asynchronously: an interaction (click, Enter in a text input, a changed
# selectbox) sends a rerun request over the websocket, the server reruns the whole script and
# streams the new elements, and the frontend patches the DOM as they arrive. Playwright's
# `click()` returns as soon as the click is dispatched, long before any of that. Asserting right
# after it reads the previous run's page; waiting for "the status widget is gone" is racy too,
# because for the first few milliseconds after the click the app is still idle (the server has
# not answered yet), and the widget only appears for runs longer than a moment.
#
# The reliable signal is the root element's `data-test-script-state` attribute
# (`[data-testid="stApp"]`): initial -> running -> notRunning, with rerunRequested /
# stopRequested / compilationError in between. `rerun()` installs a MutationObserver that counts
# every change of that attribute (and, as a fallback, every DOM change under the app) and
# snapshots the counters *before* the interaction. It then waits until, after the interaction,
#   1. the attribute changed at least once (so a rerun happened and, since it is back at
#      notRunning, finished) and the DOM has been quiet for QUIET_MS, or
#   2. the attribute never visibly changed (React may batch running -> notRunning of a very fast
#      run into one render) but the app's DOM changed, and has been quiet for the longer
#      DOM_QUIET_MS;
# and in both cases the app is CONNECTED and notRunning. A rerun that never comes fails with a
# timeout instead of passing on stale content.

QUIET_MS = 250
DOM_QUIET_MS = 1000
RERUN_TIMEOUT_MS = 30_000

_OBSERVER_JS = """() => {
  if (window.__gjhSt) return;
  const st = window.__gjhSt = {stateChanges: 0, domChanges: 0, last: performance.now()};
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === 'data-test-script-state') {
        st.stateChanges++;
      } else if (!(r.type === 'attributes' && r.attributeName === 'data-test-connection-state')) {
        st.domChanges++;
      }
    }
    st.last = performance.now();
  }).observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true, attributeOldValue: true});
}"""

_SNAPSHOT_JS = "() => ({state: window.__gjhSt.stateChanges, dom: window.__gjhSt.domChanges})"

# Spinners (st.spinner, cached functions), loading skeletons and the running indicator.
_BUSY_SELECTOR = (
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"], '
    '[data-testid="stSpinner"], [data-testid="stSkeleton"]'
)

_SETTLED_JS = """([before, quietMs, domQuietMs, needChange, busySelector]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  for (const el of document.querySelectorAll(busySelector)) {
    if (el.getClientRects().length > 0) return false;
  }
  const st = window.__gjhSt;
  if (!st) return false;  // a full navigation dropped the observer
  const quiet = performance.now() - st.last;
  if (!needChange) return quiet >= quietMs;
  if (st.stateChanges > before.state) return quiet >= quietMs;
  return st.domChanges > before.dom && quiet >= domQuietMs;
}"""


def _install_observer(page: Page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', state="attached")
    page.evaluate(_OBSERVER_JS)


def wait_idle(page: Page, *, timeout_ms: float = RERUN_TIMEOUT_MS) -> None:
    """Wait until the app is connected, its script not running, its DOM quiet for QUIET_MS, and
    no spinner, skeleton or running indicator shows. Does not require a rerun to happen: use it
    after loading a page, and `rerun()` around interactions."""
    _install_observer(page)
    page.wait_for_function(
        _SETTLED_JS,
        arg=[None, QUIET_MS, DOM_QUIET_MS, False, _BUSY_SELECTOR],
        timeout=timeout_ms,
        polling=50,
    )


@contextlib.contextmanager
def rerun(page: Page, *, timeout_ms: float = RERUN_TIMEOUT_MS) -> Iterator[None]:
    """Wrap one interaction that makes Streamlit rerun; on exit, wait until that rerun finished
    and the page settled (see the comment above for why this is not just "wait for idle")::

        with rerun(page):
            page.get_by_role("button", name="조회").click()
        expect(page.get_by_text("결과")).to_be_visible()

    Typing into `st.text_input` does not rerun until Enter or blur: wrap the `press("Enter")` or
    the click that follows, not the `fill()`.
    Switching pages with `st.navigation`/`st.page_link` stays in the document and works here; a
    full reload (`page.goto`, `page.reload`) does not: follow it with `open_app`/`wait_idle`.
    """
    _install_observer(page)
    before = page.evaluate(_SNAPSHOT_JS)
    yield
    page.wait_for_function(
        _SETTLED_JS,
        arg=[before, QUIET_MS, DOM_QUIET_MS, True, _BUSY_SELECTOR],
        timeout=timeout_ms,
        polling=50,
    )


def open_app(page: Page, url: str, path: str = "", *, timeout_ms: float = 60_000) -> None:
    """Load the app (optionally a page path such as "admin") and wait for its first run."""
    page.goto(f"{url}/{path.lstrip('/')}" if path else url, wait_until="domcontentloaded")
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout_ms
    )
    wait_idle(page, timeout_ms=timeout_ms)


def exception_texts(page: Page) -> list[str]:
    """The texts of the exceptions the app shows (st.exception or an uncaught error)."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def slug(text: str) -> str:
    """``text`` as a file name: each run of characters other than word characters, dots and
    hyphens becomes one hyphen (a test's node id, a flow's step)."""
    name = re.sub(r"[^\w.-]+", "-", text.strip(), flags=re.UNICODE).strip("-")
    if not name:
        raise ValueError(f"no usable file name in {text!r}")
    return name


def full_page_screenshot(page: Page, path: Path, *, settle: bool = True) -> None:
    """Screenshot the whole app, grown past the viewport: Streamlit scrolls inside its main
    container, which Playwright's `full_page` alone does not capture (it stops at 900 px)."""
    viewport = page.viewport_size
    height = int(
        page.evaluate(
            """() => Math.max(document.documentElement.scrollHeight,
                ...['stMain', 'stAppViewContainer', 'stSidebarContent'].map((id) => {
                  const el = document.querySelector(`[data-testid="${id}"]`);
                  return el ? el.scrollHeight : 0;
                }))"""
        )
    )
    grow = viewport is not None and height > viewport["height"]
    try:
        if viewport is not None and grow:
            page.set_viewport_size({"width": viewport["width"], "height": min(height, 16_000)})
            if settle:  # charts re-lay themselves out for the new size
                wait_idle(page)
        page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    finally:
        if viewport is not None and grow:
            page.set_viewport_size(viewport)


def save_failure_artifacts(page: Page, name: str) -> Path:
    """Screenshot, HTML and the live servers' logs of a failed visit (a browser test's, a crowd's
    person's), in test-artifacts/failures/<name>/."""
    folder = ARTIFACTS / "failures" / slug(name)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception):
        full_page_screenshot(page, folder / "page.png", settle=False)
    with contextlib.suppress(Exception):
        (folder / "page.html").write_text(page.content(), encoding="utf-8")
    for server in LIVE_SERVERS:
        (folder / server.log.name).write_text(server.log_tail(200_000), encoding="utf-8")
    return folder


def fill_sign_in(
    page: Page, server: AppServer, account: str, password: str, path: str = ""
) -> Locator:
    """Open the app (at ``path``, a page and its query) and fill its sign-in form with a local
    account; returns the sign-in button, not yet clicked (many people can then click at once)."""
    open_app(page, server.url, path)
    page.get_by_label("아이디").fill(account)
    page.get_by_label("비밀번호").fill(password)
    return page.get_by_role("button", name="로그인")
