"""Forty people at once (issue 18): twenty clinicians of one clinic and twenty citizens sign in
together, in forty Chromium contexts against one served clinician app and one served citizen app
on the built demo city, then the twenty clinicians open their worklist's top study together.

Measured, against one person alone on the same servers in the same run (the baseline):

* time to content, p50 and p95: from the 로그인 click to the worklist's table (clinicians) or the
  timeline's chart (citizens), and from the open button to the study's images;
* each server's CPU seconds and peak resident memory while the crowd is served (and while the
  baseline was);
* the health requests the servers left unanswered while the crowd was served (none expected).

Before the baseline one clinician and one citizen sign in unmeasured, so neither the baseline nor
the crowd pays the servers' first imports. The browser shares the machine's cores with the
servers: on two cores the crowd's figures include Chromium drawing forty pages.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, Locator

from apps.common.i18n import t
from gjh.bench.measure import Usage
from tests.apps import crowd
from tests.apps.browser import AppServer, chromium, run_app
from tests.apps.served import app_env, app_script
from tests.benchmarks.conftest import record
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
PASSWORD: Final = "crowd-password-1"
CROWD: Final = 20  # of each: clinicians and citizens
ALONE: Final = 2  # accounts of each kind before the crowd's: a warm-up, then the baseline
TIMEOUT_S: Final = 900.0


@pytest.fixture(scope="module")
def apps(
    platform_lake: Lake, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    roster = crowd.crowd_roster(platform_lake, ALONE + CROWD, ALONE + CROWD, PASSWORD)
    env = app_env(platform_lake, roster, tmp_path_factory.mktemp("crowd_accounts"), "c1" * 32)
    logs = tmp_path_factory.mktemp("crowd_logs")
    with (
        run_app(app_script("clinician"), env, log_dir=logs) as clinician,
        run_app(app_script("citizen"), env, log_dir=logs) as citizen,
    ):
        yield {"clinician": clinician, "citizen": citizen}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _open_button(visitor: crowd.Visitor) -> Locator:
    return visitor.page.get_by_role("button", name=t("triage.worklist.open", "ko"))


def _visit(
    browser: Browser, apps: dict[str, AppServer], clinicians: Sequence[str], citizens: Sequence[str]
) -> dict[str, list[float]]:
    """Sign these people in at once, then the clinicians open their worklist's top study at
    once; the seconds each took to reach the worklist, the images or the timeline."""
    doctors, doctor_buttons = crowd.arrive(browser, apps["clinician"], clinicians, PASSWORD)
    people, people_buttons = crowd.arrive(browser, apps["citizen"], citizens, PASSWORD, "timeline")
    times: dict[str, list[float]] = {}
    try:
        shows = [crowd.TABLE] * len(doctors) + [crowd.CHART] * len(people)
        at = crowd.act_together([*doctor_buttons, *people_buttons], shows)
        if doctors:
            times["worklist"] = crowd.reach(doctors, at, TIMEOUT_S)
        if people:
            times["timeline"] = crowd.reach(people, at, TIMEOUT_S)
        if doctors:
            at = crowd.act_together(
                [_open_button(d) for d in doctors], [crowd.CHART] * len(doctors)
            )
            times["images"] = crowd.reach(doctors, at, TIMEOUT_S)
    finally:
        crowd.leave([*doctors, *people])
    return times


def _served(
    apps: dict[str, AppServer], visit: Callable[[], dict[str, list[float]]]
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``visit()`` measured: its times, each server's CPU seconds and peak memory while it ran
    (the people's arrival included), and the health requests left unanswered meanwhile."""
    with (
        Usage(apps["clinician"].process.pid) as clinician,
        Usage(apps["citizen"].process.pid) as citizen,
        crowd.HealthWatch(list(apps.values())) as health,
    ):
        times = visit()
    usage = {
        name: {"cpu_s": round(u.cpu_s, 2), "peak_rss_mib": round(u.peak_rss_mib, 1)}
        for name, u in (("clinician", clinician), ("citizen", citizen))
    }
    return times, {**usage, "health_asked": health.asked, "health_missed": health.missed}


def _p(times: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method: p50 is the median)."""
    return round(statistics.quantiles(times, n=100, method="inclusive")[q - 1], 2)


def test_forty_people_at_once_against_one_alone(
    browser: Browser, apps: dict[str, AppServer]
) -> None:
    clinic = [f"clinic.{n}" for n in range(ALONE + CROWD)]
    citizen = [f"citizen.{n}" for n in range(ALONE + CROWD)]
    began = time.perf_counter()
    _visit(browser, apps, clinic[:1], citizen[:1])  # warm-up: the servers' first imports
    alone_clinician, alone_clinician_usage = _served(
        apps, lambda: _visit(browser, apps, clinic[1:2], ())
    )
    alone_citizen, alone_citizen_usage = _served(
        apps, lambda: _visit(browser, apps, (), citizen[1:2])
    )
    alone = {step: times[0] for step, times in (alone_clinician | alone_citizen).items()}
    together, usage = _served(apps, lambda: _visit(browser, apps, clinic[ALONE:], citizen[ALONE:]))
    result: dict[str, Any] = {
        "people": {"clinicians": CROWD, "citizens": CROWD},
        "alone_s": {step: round(s, 2) for step, s in alone.items()},
        "alone_usage": {"clinician": alone_clinician_usage, "citizen": alone_citizen_usage},
    }
    for step, times in together.items():
        result[step] = {
            "p50_s": _p(times, 50),
            "p95_s": _p(times, 95),
            "max_s": round(max(times), 2),
            "p50_over_alone": round(_p(times, 50) / alone[step], 1),
            "p95_over_alone": round(_p(times, 95) / alone[step], 1),
        }
    result["crowd_usage"] = usage
    result["wall_s"] = round(time.perf_counter() - began, 1)
    record("crowd", result)
    assert not usage["health_missed"], usage["health_missed"]
