"""The citizen's timeline page in Chromium at a phone's viewport (issue 19: "under 1 s from
sign-in to a drawn timeline"), on the built demo city (``platform_lake``), against the bare floor
measured in the same run.

Measured, ``RUNS`` times each after one unmeasured warm-up (the servers' first imports), each
time in a fresh browser context (390 x 844, device scale 3, ko-KR), from the click to the moment
the chart's traces are in the page (``DRAWN``), timed by the page itself (``tests.apps.crowd``):

* the app: the citizen app (``serve.py``) opened at its timeline page (``/timeline``), the
  sign-in form filled, then 로그인 pressed: sign-in, the session, the access layer's consent
  lookup, read and audit row, the page's layout, the figure built and drawn;
* the floor (``timeline_floor.py``): a bare Streamlit page whose button draws a figure built
  once from the same rows ("drawn": Streamlit's rerun, the figure's trip and plotly.js), and
  the same page building it from the rows on each press ("built": ``describe`` and ``figure``).

Where the time goes, in this process (``RUNS`` each, wall time): ``accounts.sign_in``, the access
layer's basis (the consent lookup), its read (``_timeline_rows``) and its audit row,
``Access.timeline`` whole, ``describe``, ``figure`` and the figure's JSON (what Streamlit sends).

The citizen is the linked citizen with the longest timeline (the most rows to draw). What the
browser draws is recorded with the times (``figure_drawn``: traces, and items, each one SVG node
in the plot and another in the range slider), since it decides most of the floor's time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import polars as pl
import pytest
from playwright.sync_api import Browser, BrowserContext, ViewportSize

from apps.common.timeline import describe, figure
from lakehouse import accounts
from lakehouse.access import Access, Principal
from tests.apps import crowd
from tests.apps.browser import AppServer, chromium, open_app, run_app
from tests.apps.served import app_env, app_script, fill_sign_in
from tests.benchmarks.conftest import record
from tests.conftest import environment
from tests.lakehouse.test_access import linked_by_rows
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
PASSWORD: Final = "timeline-page-1"
RUNS: Final = 12
TARGET_S: Final = 1.0
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
DRAWN: Final = ".js-plotly-plot .cartesianlayer .trace"  # a trace drawn in the chart
FLOOR: Final = Path(__file__).with_name("timeline_floor.py")
TIMEOUT_S: Final = 120.0


@pytest.fixture(scope="module")
def citizen(platform_lake: Lake) -> str:
    timeline = platform_lake.frame("gold.citizen_timeline")
    return str(linked_by_rows(platform_lake, timeline)["citizen_key"][0])


@pytest.fixture(scope="module")
def env(
    platform_lake: Lake, citizen: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The apps' environment, with ``RUNS + 1`` accounts of the citizen (a session each) and
    the rows of their timeline for the floor."""
    hashed = accounts.hash_password(PASSWORD)
    roster = [
        accounts.Account(f"phone.{n}", "citizen", citizen_key=citizen, password_hash=hashed)
        for n in range(RUNS + 1)
    ]
    folder = tmp_path_factory.mktemp("timeline_page")
    served = app_env(platform_lake, roster, folder, "7e" * 32)
    with platform_lake.active(), environment(**served):
        rows = Access(Principal("phone.0", "citizen", citizen_key=citizen)).timeline(citizen)
    rows.write_parquet(folder / "rows.parquet")
    return {**served, "GJH_FLOOR_ROWS": str(folder / "rows.parquet")}


@pytest.fixture(scope="module")
def apps(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    logs = tmp_path_factory.mktemp("timeline_page_logs")
    with (
        run_app(app_script("citizen"), env, log_dir=logs) as app,
        run_app(FLOOR, env, log_dir=logs) as floor,
    ):
        yield {"app": app, "floor": floor}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _phone(browser: Browser) -> BrowserContext:
    return browser.new_context(
        viewport=PHONE, device_scale_factor=3, locale="ko-KR", timezone_id="Asia/Seoul"
    )


def _signed_in(browser: Browser, app: AppServer, account: str) -> float:
    """Seconds from pressing 로그인 on the timeline page to its chart drawn."""
    context = _phone(browser)
    try:
        page = context.new_page()
        button = fill_sign_in(page, app, account, PASSWORD, "timeline")
        at = crowd.act_together([button], [DRAWN])
        return crowd.reach([crowd.Visitor(account, app, page)], at, TIMEOUT_S)[0]
    finally:
        context.close()


def _floor(browser: Browser, floor: AppServer, which: str) -> float:
    """Seconds from pressing the floor page's button (``drawn`` or ``built``) to its chart."""
    context = _phone(browser)
    try:
        page = context.new_page()
        open_app(page, floor.url)
        at = crowd.act_together([page.get_by_role("button", name=which)], [DRAWN])
        return crowd.reach([crowd.Visitor(which, floor, page)], at, TIMEOUT_S)[0]
    finally:
        context.close()


def _timed(step: Callable[[], object]) -> float:
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def _summary(times: list[float]) -> dict[str, float]:
    """p50 and p95 (inclusive method: p50 is the median) and the maximum, in seconds."""
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50_s": round(cuts[49], 3), "p95_s": round(cuts[94], 3), "max_s": round(max(times), 3)}


def _profile(platform_lake: Lake, env: dict[str, str], citizen: str) -> dict[str, Any]:
    """Each step of the page's work on this process, ``RUNS`` times each after a warm-up."""
    layer = Access(Principal("phone.0", "citizen", citizen_key=citizen, origin="bench"))
    with platform_lake.active(), environment(**env):
        # Read with the lake active: outside it the layer finds no rows, and the figure's steps
        # were timed on an empty picture.
        rows = layer.timeline(citizen)
    assert rows.height > 0
    events = describe(rows)
    built = figure(events)
    steps: dict[str, Callable[[], object]] = {
        "accounts.sign_in": lambda: accounts.sign_in("phone.0", PASSWORD, "bench"),
        "access.basis (consent lookup)": lambda: layer.basis("read:timeline", citizen),
        "access._timeline_rows (read, cut)": lambda: layer._timeline_rows(citizen, "self"),
        "access._audit (one row)": lambda: layer._audit(
            "read:timeline", "self", subject=citizen, rows=rows.height
        ),
        "Access.timeline (all three)": lambda: layer.timeline(citizen),
        "timeline.describe": lambda: describe(rows),
        "timeline.figure": lambda: figure(events),
        "figure to JSON": built.to_json,
    }
    with platform_lake.active(), environment(**env):
        for step in steps.values():
            step()
        return {
            name: {"p50_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1)}
            for name, step in steps.items()
            for ms in [[_timed(step) * 1000 for _ in range(RUNS)]]
        }


def test_sign_in_to_a_drawn_timeline_at_the_phone_viewport(
    browser: Browser,
    apps: dict[str, AppServer],
    platform_lake: Lake,
    env: dict[str, str],
    citizen: str,
) -> None:
    _signed_in(browser, apps["app"], "phone.0")  # warm-up: the servers' first imports
    _floor(browser, apps["floor"], "drawn")
    _floor(browser, apps["floor"], "built")
    app = [_signed_in(browser, apps["app"], f"phone.{n}") for n in range(1, RUNS + 1)]
    drawn = [_floor(browser, apps["floor"], "drawn") for _ in range(RUNS)]
    built = [_floor(browser, apps["floor"], "built") for _ in range(RUNS)]
    rows = pl.read_parquet(env["GJH_FLOOR_ROWS"])
    drawn_figure = figure(describe(rows))
    result: dict[str, Any] = {
        "citizen_rows": rows.height,
        "figure_drawn": {
            "traces": len(drawn_figure.data),
            "items": sum(len(trace.y) for trace in drawn_figure.data),
        },
        "runs": RUNS,
        "sign_in_to_drawn_timeline": _summary(app),
        "floor_drawn": _summary(drawn),
        "floor_built": _summary(built),
        "target_s": TARGET_S,
        "profile_in_process": _profile(platform_lake, env, citizen),
    }
    with Path("/proc/loadavg").open(encoding="ascii") as load:
        result["load_average"] = load.read().split()[:3]
    record("timeline_page", result)
    # Only what can fail here is asserted: every sign-in reached a drawn chart (``reach``), and
    # the app is never faster than its own floor. The 1 s target is reported, not asserted: the
    # machine is shared and its load decides most of a browser's time (docs/benchmarks.md).
    assert statistics.median(app) >= statistics.median(drawn)
