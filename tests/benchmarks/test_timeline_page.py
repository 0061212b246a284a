"""The citizen's timeline page in Chromium at a phone's viewport (issue 19: "under 1 s from
sign-in to a drawn timeline"), on the built demo city (``platform_lake``), against the bare floor
measured in the same run.

Measured, ``RUNS`` times each after one unmeasured warm-up (the servers' first imports), each
time in a fresh browser context (390 x 844, device scale 3, ko-KR), from the click to the moment
the chart's traces are in the page (``DRAWN``), timed by the page itself (``gjh.bench.visitors``),
one of each in turn so that all meet the same load:

* the app: the citizen app (``serve.py``) opened at its timeline page (``/timeline``), the
  sign-in form filled, then 로그인 pressed once the page has loaded plotly.js behind the form
  (``warm_charts``; a person takes longer than that to type an ID and a password): sign-in,
  the session, the access layer's consent lookup, read and audit row, the page's layout, the
  figure built and drawn;
* the floor (``timeline_floor.py``): a bare Streamlit page whose button draws a figure built
  once from the same rows ("drawn": Streamlit's rerun, the figure's trip and plotly.js drawing
  it), with plotly.js loaded when the page opened as the app's sign-in page does; the same with
  plotly.js loaded only on the click ("cold": the floor as first measured, whose difference
  from "drawn" is fetching and running plotly.js); and the page building the figure from the
  rows on each press ("built": ``describe`` and ``figure``). Opening the floor page (Streamlit's
  boot: the page, its scripts, the socket and its first run) is timed too, though no click
  waits for it.

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
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from apps.common.layout import WARM_KEY
from apps.common.timeline import describe, figure
from gjh.bench import visitors
from gjh.bench.app_server import AppServer, run_app
from gjh.bench.browser import chromium, fill_sign_in, open_app
from lakehouse import accounts
from lakehouse.access import Access, Principal
from lakehouse.config import environment
from tests.apps.served import app_env, app_script
from tests.benchmarks.conftest import record
from tests.lakehouse.test_access import linked_by_rows
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
PASSWORD: Final = "timeline-page-1"
RUNS: Final = 12
TARGET_S: Final = 1.0
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
# A trace drawn in the chart (not in the one drawn out of sight to load plotly.js, WARMED).
WARMED: Final = f".st-key-{WARM_KEY} .js-plotly-plot .cartesianlayer .trace"
DRAWN: Final = f".js-plotly-plot:not(.st-key-{WARM_KEY} *) .cartesianlayer .trace"
# The floor's measurements: its button, and the page's query (plotly.js loaded on opening).
FLOORS: Final = {
    "drawn": ("drawn", "?charts=loaded"),
    "cold": ("drawn", ""),
    "built": ("built", "?charts=loaded"),
}
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


def _warmed(page: Page) -> None:
    """Wait until the page has loaded plotly.js and drawn its specimen out of sight
    (``warm_charts``)."""
    page.wait_for_selector(WARMED, state="attached", timeout=TIMEOUT_S * 1000)


def _signed_in(browser: Browser, app: AppServer, account: str) -> float:
    """Seconds from pressing 로그인 on the timeline page to its chart drawn."""
    context = _phone(browser)
    try:
        page = context.new_page()
        button = fill_sign_in(page, app, account, PASSWORD, "timeline")
        _warmed(page)
        at = visitors.act_together([button], [DRAWN])
        return visitors.reach([visitors.Visitor(account, app, page)], at, TIMEOUT_S)[0]
    finally:
        context.close()


def _floor(browser: Browser, floor: AppServer, which: str) -> tuple[float, float]:
    """Seconds to open the floor page (``open_app``: Streamlit's boot to its first run shown),
    and from pressing its button (``FLOORS``) to its chart."""
    button, query = FLOORS[which]
    context = _phone(browser)
    try:
        page = context.new_page()
        began = time.perf_counter()
        open_app(page, floor.url, query)
        opened = time.perf_counter() - began
        if query:
            _warmed(page)
        at = visitors.act_together([page.get_by_role("button", name=button)], [DRAWN])
        return opened, visitors.reach([visitors.Visitor(which, floor, page)], at, TIMEOUT_S)[0]
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
    with Path("/proc/loadavg").open(encoding="ascii") as load:
        load_at_start = load.read().split()[:3]
    _signed_in(browser, apps["app"], "phone.0")  # warm-up: the servers' first imports
    for which in FLOORS:
        _floor(browser, apps["floor"], which)
    app: list[float] = []
    floors: dict[str, list[float]] = {which: [] for which in FLOORS}
    opened: list[float] = []
    for n in range(1, RUNS + 1):  # one of each in turn: all meet the same load
        app.append(_signed_in(browser, apps["app"], f"phone.{n}"))
        for which in FLOORS:
            page_open, drawn = _floor(browser, apps["floor"], which)
            floors[which].append(drawn)
            opened.append(page_open)
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
        **{f"floor_{which}": _summary(times) for which, times in floors.items()},
        "floor_page_open": _summary(opened),
        "target_s": TARGET_S,
        "profile_in_process": _profile(platform_lake, env, citizen),
    }
    with Path("/proc/loadavg").open(encoding="ascii") as load:
        result["load_average"] = {"start": load_at_start, "end": load.read().split()[:3]}
    record("timeline_page", result)
    # Only what can fail here is asserted: every sign-in reached a drawn chart (``reach``), and
    # the app is never faster than its own floor. The 1 s target is reported, not asserted: the
    # machine is shared and its load decides most of a browser's time (docs/benchmarks.md).
    assert statistics.median(app) >= statistics.median(floors["drawn"])
