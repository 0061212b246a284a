"""Fixtures for the apps' real-browser tests (helpers in gjh/bench/app_server.py and
gjh/bench/browser.py, shared with ``gjh bench``; screenshots in tests/apps/screenshots.py).

- `browser` (session): Debian's Chromium (/usr/bin/chromium) launched by Playwright; fails, never
  skips, when Chromium is missing (`make browser` installs it).
- `page` (function): a fresh context (1280x900, ko-KR, Asia/Seoul, light scheme) and page; when
  the test fails its screenshot, HTML and the running apps' logs go to test-artifacts/failures/.
- `start_app` (function): `start_app(script, env=None) -> AppServer` serves a Streamlit script on
  a free port until the test ends (`.url`, `.port`, `.log`).
- `built_small` (session): the small city built end to end (``pipelines.build``; a copy of
  the session's ``small_build``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gjh.bench.app_server import LIVE_SERVERS, AppServer, run_app
from gjh.bench.browser import CHROMIUM, chromium, save_failure_artifacts
from tests.pipelines.conftest import Lake

# Streamlit's first render of a page with charts can take a few seconds on a loaded CI machine.
expect.set_options(timeout=15_000)

_failed = pytest.StashKey[bool]()


@pytest.fixture(autouse=True, scope="module")
def _earlier_garbage_collected() -> None:
    """Collect what earlier test modules left (Dagster's SQLite connections) before an app
    script runs in its own thread. Otherwise the collector may run inside the script's
    compile (Streamlit's ``ast.parse``), where a finaliser that fails in the wrong thread
    prints a traceback, which parses its line again: CPython 3.11.7 then raises "AST
    constructor recursion depth mismatch" (fixed in 3.11.8), and the page fails (seen twice in
    ``test_measurements_page.py``)."""
    gc.collect()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.failed:
        item.stash[_failed] = True
        if report.when == "call":
            for server in LIVE_SERVERS:
                report.sections.append(
                    (f"streamlit log {server.script.name} ({server.log})", server.log_tail())
                )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium and "
            "fonts-noto-cjk; never `playwright install`)",
            pytrace=False,
        )
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(
    browser: Browser, start_app: Callable[..., AppServer], request: pytest.FixtureRequest
) -> Iterator[Page]:
    # Depends on start_app so that the test's servers stop after the page (their logs are saved
    # with a failure's artifacts).
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        color_scheme="light",
    )
    page = context.new_page()
    try:
        yield page
        if request.node.stash.get(_failed, False):
            folder = save_failure_artifacts(page, request.node.nodeid)
            print(f"browser test failed: screenshot, HTML and app logs in {folder}")
    finally:
        context.close()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., AppServer]]:
    """`start_app(script, env=None)`: serve `script` until the test ends. For one server shared
    by a module's tests, use `gjh.bench.app_server.run_app` in a module-scoped fixture."""
    with ExitStack() as stack:

        def start(script: Path, env: Mapping[str, str] | None = None) -> AppServer:
            return stack.enter_context(run_app(script, env, log_dir=tmp_path / "app-logs"))

        yield start


@pytest.fixture(scope="session")
def built_small(small_build: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city built end to end by ``pipelines.build`` (a copy of the session's
    ``small_build``), as ``gjh build`` does: the cheapest lake on which every page of every
    app has something to show (timelines, studies with AI findings, uptake, the access log).
    The apps' modules share this copy; a module that writes to its ledgers owns it for the run."""
    return small_build.copy(tmp_path_factory.mktemp("built_small"))
