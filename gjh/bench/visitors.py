"""Many people using the apps at once from one Chromium, as ``gjh bench``'s crowd stage
(``gjh.bench.crowd``) and the load test (``tests/apps/test_load.py``) drive them: everyone arrives
and fills the sign-in form, everyone clicks at once, then each one's content is awaited by polling
the pages in turn, while a thread asks every server's health endpoint.

Playwright's sync API belongs to the thread that started it, so the people are not threads: they
are browser contexts driven in turn from one thread. What runs concurrently is what matters, the
servers' script runs: every click is sent before any content is awaited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from playwright.sync_api import Browser, Locator, Page

from gjh.bench.app_server import AppServer, healthy
from gjh.bench.browser import exception_texts, fill_sign_in, save_failure_artifacts

# What each person waits for (CSS, looked for in the page): the worklist's table, a chart (the
# viewer's images, the timeline), the worklist's open link (back on the worklist).
TABLE = '[data-testid="stDataFrame"]'
CHART = ".js-plotly-plot"
OPEN_LINK = ".st-key-wl_open a"
HEALTH_TIMEOUT_S = 15.0  # one health request; a hung server never answers
HEALTH_EVERY_S = 0.5
POLL_S = 0.1
ARM_S, ARM_EACH_S = 1.0, 0.2  # time to set every page's timer before the shared click


@dataclass
class Visitor:
    """One person in a browser context of their own, on one app."""

    account: str
    server: AppServer
    page: Page


def arrive(
    browser: Browser, server: AppServer, accounts: Sequence[str], password: str, path: str = ""
) -> tuple[list[Visitor], list[Locator]]:
    """A browser context per account with the app open (at ``path``, a page) and its sign-in
    form filled; the people and their sign-in buttons, not yet clicked."""
    visitors, buttons = [], []
    for account in accounts:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="ko-KR", timezone_id="Asia/Seoul"
        )
        page = context.new_page()
        visitors.append(Visitor(account, server, page))
        buttons.append(fill_sign_in(page, server, account, password, path))
    return visitors, buttons


# Run in each page: at the shared instant, click the button, then look for the content every
# LOOK_MS and keep the moment it first shows (a page's clock is the machine's).
_ACT_JS = """(el, [at, selector, lookMs]) => {
  window.__gjhSeen = null;
  setTimeout(() => {
    el.click();
    const look = setInterval(() => {
      const found = document.querySelector(selector);
      if (found && found.getClientRects().length > 0) {
        window.__gjhSeen = Date.now();
        clearInterval(look);
      }
    }, lookMs);
  }, at - Date.now());
}"""
LOOK_MS = 50


def act_together(buttons: Sequence[Locator], shows: Sequence[str]) -> float:
    """Click every button at one shared instant, then have each page note when its content
    (the CSS selector of ``shows`` at the same position) first shows.

    Each page gets a timer for the same moment of the machine's clock, which every page and
    this process share, so the servers receive all the clicks within milliseconds, as when
    people really act at once (clicking in turn would space them by Playwright's round trips),
    and each page times its own content, however long this process takes to ask. Returns the
    instant, in seconds since the epoch."""
    at = time.time() + ARM_S + ARM_EACH_S * len(buttons)
    for button, selector in zip(buttons, shows, strict=True):
        button.evaluate(_ACT_JS, [at * 1000, selector, LOOK_MS])
    time.sleep(max(0.0, at - time.time()))
    return at


def reach(visitors: Sequence[Visitor], at: float, timeout_s: float) -> list[float]:
    """Seconds from the instant ``at`` (``act_together``) until each person's content showed,
    as their page timed it.

    Raises:
        AssertionError: Someone's content did not show within ``timeout_s`` of ``at``, or an
            exception shows on a page; the message names them and where their page's
            screenshot and HTML were saved.
    """
    seen: dict[int, float] = {}
    while len(seen) < len(visitors) and time.time() < at + timeout_s:
        for i, visitor in enumerate(visitors):
            shown = None if i in seen else visitor.page.evaluate("window.__gjhSeen")
            if shown is not None:
                seen[i] = shown / 1000 - at
        time.sleep(POLL_S)
    missing = [v for i, v in enumerate(visitors) if i not in seen]
    assert not missing, f"no content within {timeout_s:.0f} s for " + "; ".join(
        f"{v.account} on {v.server.script.parent.name} (screenshot and page in "
        f"{save_failure_artifacts(v.page, f'crowd-{v.account}')})"
        for v in missing
    )
    for visitor in visitors:
        assert not exception_texts(visitor.page), (visitor.account, exception_texts(visitor.page))
    return [seen[i] for i in range(len(visitors))]


def leave(visitors: Sequence[Visitor]) -> None:
    """Close everyone's browser context."""
    for visitor in visitors:
        visitor.page.context.close()


@dataclass
class HealthWatch:
    """Asks each server's ``/_stcore/health`` every ``HEALTH_EVERY_S`` from a thread of its own
    while the ``with`` block runs; ``missed`` lists the requests not answered with ok within
    ``HEALTH_TIMEOUT_S`` (a hung server answers none)."""

    servers: Sequence[AppServer]
    asked: int = 0
    missed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _watch(self, began: float) -> None:
        while not self._stop.is_set():
            for server in self.servers:
                self.asked += 1
                if not healthy(server.port, timeout=HEALTH_TIMEOUT_S):
                    at = time.perf_counter() - began
                    self.missed.append(f"{server.script.parent.name} at {at:.0f} s")
            self._stop.wait(HEALTH_EVERY_S)

    def __enter__(self) -> HealthWatch:
        self._thread = threading.Thread(
            target=self._watch, args=(time.perf_counter(),), name="health-watch", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
