"""Real-browser harness for the Streamlit apps: start an app with `streamlit run` on a free port,
drive Debian's Chromium through Playwright, wait for Streamlit's reruns to settle, and take
numbered screenshots.

The fixtures that wrap these helpers (`browser`, `page`, `start_app`) live in conftest.py; a test
module imports the helpers it calls directly::

    from tests.apps.browser import open_app, rerun, shot

    @pytest.mark.browser
    def test_login(start_app, page):
        app = start_app(APPS / "citizen" / "streamlit_app.py", {"GJH_LAKEHOUSE": str(lake)})
        open_app(page, app.url)
        shot(page, "login", "form")
        page.get_by_label("아이디").fill("kim")
        with rerun(page):
            page.get_by_role("button", name="로그인").click()
        shot(page, "login", "signed-in")

A module that drives one app from many tests can share a server with `run_app` in a
module-scoped fixture instead of `start_app`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
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
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


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


class AppStartError(RuntimeError):
    """The app's server exited or never answered its health check."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick). Another process may take it
    before the app binds it; `run_app` retries on that."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def tail(path: Path, chars: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text[-chars:] if len(text) > chars else text


@dataclass
class AppServer:
    """One `streamlit run` process. `url` ends without a slash (http://127.0.0.1:PORT)."""

    script: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return tail(self.log, chars)


# Servers that are running now: a failing browser test attaches their logs to its report.
LIVE_SERVERS: list[AppServer] = []


def _command(script: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
    ]


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether the server on ``port`` answers ``GET /_stcore/health`` with ok within
    ``timeout`` seconds."""
    try:
        url = f"http://127.0.0.1:{port}/_stcore/health"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the app's process group, give it STOP_TIMEOUT_S, then SIGKILL whatever is left in
    the group (the leader if it hung, anything the app forked) and reap the leader."""
    pgid = process.pid  # start_new_session=True: the leader's pid is the group's id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT_S)


def _start(script: Path, env: Mapping[str, str], log: Path, cwd: Path, timeout: float) -> AppServer:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            _command(script, port),
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(script=script, port=port, process=process, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppStartError(
                f"streamlit run {script} exited with code {process.returncode} before answering "
                f"on port {port}; its log ({log}) ends with:\n{server.log_tail()}"
            )
        if healthy(port):
            return server
        time.sleep(0.1)
    _stop(process)
    raise AppStartError(
        f"streamlit run {script} did not answer GET /_stcore/health with ok within "
        f"{timeout:.0f} s; its log ({log}) ends with:\n{server.log_tail()}"
    )


@contextlib.contextmanager
def run_app(
    script: Path,
    env: Mapping[str, str] | None = None,
    *,
    log_dir: Path | None = None,
    cwd: Path = ROOT,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[AppServer]:
    """Serve `script` with `streamlit run` on a free localhost port until the block exits.

    `env` goes on top of os.environ. The working directory is the repository's root (as for
    `streamlit run apps/<name>/streamlit_app.py`), so the project's `.streamlit/config.toml`
    applies; the command-line flags win over it. stdout and stderr go to `<log_dir>/<stem>.log`
    (a fresh temporary folder without `log_dir`). Returns once `/_stcore/health` answers ok;
    raises AppStartError with the log's tail if the process dies or the timeout passes. On exit
    the whole process group is terminated and reaped: nothing outlives the block.
    """
    script = script.resolve()
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gjh-app-")))
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{script.parent.name}-{script.stem}.log"
        for attempt in range(3):
            try:
                server = _start(script, env or {}, log, cwd, timeout)
                break
            except AppStartError as e:
                # The port picked by free_port() can be taken before streamlit binds it.
                if attempt == 2 or "is already in use" not in str(e):
                    raise
        LIVE_SERVERS.append(server)
        try:
            yield server
        finally:
            LIVE_SERVERS.remove(server)
            _stop(server.process)


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


# --- Screenshots -----------------------------------------------------------------------------

_shot_counters: dict[Path, int] = {}


def screenshots_dir() -> Path:
    """$GJH_SCREENSHOTS_DIR (relative to the repository's root) if set, else
    test-artifacts/screenshots (gitignored)."""
    configured = os.environ.get("GJH_SCREENSHOTS_DIR")
    return ROOT / configured if configured else ARTIFACTS / "screenshots"


def _slug(text: str) -> str:
    slug = re.sub(r"[^\w.-]+", "-", text.strip(), flags=re.UNICODE).strip("-")
    if not slug:
        raise ValueError(f"no usable file name in {text!r}")
    return slug


def shot(page: Page, flow: str, step: str, *, out_dir: Path | None = None) -> Path:
    """Save a full-page PNG of the settled app as `<dir>/<flow>/<NN>-<step>.png` and return it.

    `<dir>` is `out_dir`, else `screenshots_dir()`. NN counts this flow's shots in this test
    session, from 01; the flow's folder is emptied of PNGs at its first shot, so a refreshed flow
    holds exactly this run's steps.

    Streamlit scrolls inside `[data-testid="stMain"]`, not the document, so a plain full-page
    screenshot stops at the viewport: the viewport is grown to the content's height for the shot
    and restored afterwards (`full_page_screenshot`).
    """
    folder = (out_dir or screenshots_dir()) / _slug(flow)
    folder = folder.resolve()
    if folder not in _shot_counters:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        _shot_counters[folder] = 0
    _shot_counters[folder] += 1
    path = folder / f"{_shot_counters[folder]:02d}-{_slug(step)}.png"

    wait_idle(page)
    page.wait_for_load_state("networkidle")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    full_page_screenshot(page, path)
    return path


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
    """Screenshot, HTML and the live servers' logs of a failed test, in test-artifacts/<name>/."""
    folder = ARTIFACTS / "failures" / _slug(name)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception):
        full_page_screenshot(page, folder / "page.png", settle=False)
    with contextlib.suppress(Exception):
        (folder / "page.html").write_text(page.content(), encoding="utf-8")
    for server in LIVE_SERVERS:
        (folder / server.log.name).write_text(server.log_tail(200_000), encoding="utf-8")
    return folder
