"""Many people at once (issue 18, measured at the bench's city by issue 23): clinicians of the
busiest clinic and citizens with the longest timelines sign in together, in one Chromium context
each, against one served clinician app and one served citizen app, then the clinicians open
their worklist's top study together. ``gjh bench`` runs it on the lake it built (twenty of each);
the crowd benchmark (tests/benchmarks/test_crowd.py) on the built demo city.

Measured, against one person alone on the same servers in the same run (the baseline):

* time to content, p50 and p95: from the 로그인 click to the worklist's table (clinicians) or the
  timeline's chart (citizens), and from the open link to the study's images;
* each server's CPU seconds and peak resident memory while the crowd is served (and while the
  baseline was);
* errors: content that never showed or a page showing an exception (``visitors.reach``), and the
  health requests the servers left unanswered while the crowd was served.

Before the baseline one clinician and one citizen sign in unmeasured, so neither the baseline nor
the crowd pays the servers' first imports. The browser shares the machine's cores with the
servers: on two cores the crowd's figures include Chromium drawing forty pages. Everything stays
on 127.0.0.1, bounded in people (the count) and in time (``timeout_s`` per step).

The browser harness is the package's, shared with the browser tests: the apps served
(``app_server``), Chromium (``browser``), the people (``visitors``) and who they are (``roster``).
Playwright comes with the development dependencies (``make env``).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Browser, Locator

from apps.common.i18n import t
from gjh import serve
from gjh.bench import stages, visitors
from gjh.bench.app_server import AppServer, run_app, signing_in
from gjh.bench.browser import chromium
from gjh.bench.measure import Usage, run_measured
from gjh.bench.report import CROWD_STAGES, Floor, Measured
from gjh.bench.roster import crowd_roster
from lakehouse import accounts

PASSWORD: Final = "crowd-password-1"
PEOPLE: Final = 20  # of each kind: clinicians and citizens
ALONE: Final = 2  # accounts of each kind before the crowd's: a warm-up, then the baseline
TIMEOUT_S: Final = 300.0  # for each step's content to show
START_S: Final = 180.0  # for a server to answer its health check (the tests' 60 s is short on a
# loaded machine: a server still importing was seen to miss it at a load average of 40)
# The steps timed, by what each person waits for; each one's row in the bench's report.
STEPS: Final = dict(zip(("worklist", "timeline", "images"), CROWD_STAGES, strict=True))


def roster(people: int, password: str = PASSWORD) -> list[accounts.Account]:
    """The accounts a crowd of ``people`` of each kind signs in with, after the ``ALONE``
    warm-up and baseline accounts (``clinic.<n>``, ``citizen.<n>``: ``roster.crowd_roster``, on
    the lakehouse the environment names)."""
    return crowd_roster(ALONE + people, ALONE + people, password)


@contextlib.contextmanager
def served(
    env: Mapping[str, str], roster_: Sequence[accounts.Account], folder: Path
) -> Iterator[dict[str, AppServer]]:
    """The clinician app and the citizen app served on 127.0.0.1 with ``env`` (the lake's),
    signing in the accounts of ``roster_`` (saved in ``folder``), until the block exits; their
    logs go to ``folder``."""
    env = dict(env) | signing_in(roster_, folder, "c1" * 32)
    with (
        run_app(serve.script("clinician"), env, log_dir=folder, timeout=START_S) as clinician,
        run_app(serve.script("citizen"), env, log_dir=folder, timeout=START_S) as citizen,
    ):
        yield {"clinician": clinician, "citizen": citizen}


def _open_link(visitor: visitors.Visitor) -> Locator:
    return visitor.page.get_by_role("link", name=t("triage.worklist.open", "ko"))


def visit(
    browser: Browser,
    apps: Mapping[str, AppServer],
    clinicians: Sequence[str],
    citizens: Sequence[str],
    timeout_s: float = TIMEOUT_S,
) -> dict[str, list[float]]:
    """Sign these people in at once, then the clinicians open their worklist's top study at
    once; the seconds each took to reach the worklist, the images or the timeline."""
    doctors, doctor_buttons = visitors.arrive(browser, apps["clinician"], clinicians, PASSWORD)
    people, people_buttons = visitors.arrive(
        browser, apps["citizen"], citizens, PASSWORD, "timeline"
    )
    times: dict[str, list[float]] = {}
    try:
        shows = [visitors.TABLE] * len(doctors) + [visitors.CHART] * len(people)
        at = visitors.act_together([*doctor_buttons, *people_buttons], shows)
        if doctors:
            times["worklist"] = visitors.reach(doctors, at, timeout_s)
        if people:
            times["timeline"] = visitors.reach(people, at, timeout_s)
        if doctors:
            at = visitors.act_together(
                [_open_link(d) for d in doctors], [visitors.CHART] * len(doctors)
            )
            times["images"] = visitors.reach(doctors, at, timeout_s)
    finally:
        visitors.leave([*doctors, *people])
    return times


def _usage(
    apps: Mapping[str, AppServer], visit_: Callable[[], dict[str, list[float]]]
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """``visit_()`` measured: its times, each server's CPU seconds and peak memory while it ran
    (the people's arrival included), and its errors: the health requests left unanswered
    meanwhile, and content that never showed or a page showing an exception (no times then)."""
    failed: list[str] = []
    with (
        Usage(apps["clinician"].process.pid) as clinician,
        Usage(apps["citizen"].process.pid) as citizen,
        visitors.HealthWatch(list(apps.values())) as health,
    ):
        try:
            times = visit_()
        except AssertionError as error:
            times, failed = {}, [str(error)[:2000]]
    usage: dict[str, Any] = {
        name: {"cpu_s": round(u.cpu_s, 2), "peak_rss_mib": round(u.peak_rss_mib, 1)}
        for name, u in (("clinician", clinician), ("citizen", citizen))
    }
    usage |= {"health_asked": health.asked, "errors": [*health.missed, *failed]}
    return times, usage


def percentile(times: Sequence[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method: p50 is the median; one time is all of them)."""
    if len(times) == 1:
        return round(times[0], 2)
    return round(statistics.quantiles(times, n=100, method="inclusive")[q - 1], 2)


def run(
    browser: Browser,
    apps: Mapping[str, AppServer],
    people: int = PEOPLE,
    timeout_s: float = TIMEOUT_S,
) -> dict[str, Any]:
    """The warm-up, one clinician then one citizen alone (the baseline), then ``people`` of
    each at once, on the accounts of ``roster``; every figure of the run, ``errors`` listing
    what failed (``_usage``) alone or in the crowd."""
    clinic = [f"clinic.{n}" for n in range(ALONE + people)]
    citizen = [f"citizen.{n}" for n in range(ALONE + people)]
    began = time.perf_counter()
    visit(browser, apps, clinic[:1], citizen[:1], timeout_s)  # the servers' first imports
    alone_clinician, alone_clinician_usage = _usage(
        apps, lambda: visit(browser, apps, clinic[1:2], (), timeout_s)
    )
    alone_citizen, alone_citizen_usage = _usage(
        apps, lambda: visit(browser, apps, (), citizen[1:2], timeout_s)
    )
    alone = {step: times[0] for step, times in (alone_clinician | alone_citizen).items()}
    together, usage = _usage(
        apps, lambda: visit(browser, apps, clinic[ALONE:], citizen[ALONE:], timeout_s)
    )
    result: dict[str, Any] = {
        "people": {"clinicians": people, "citizens": people},
        "alone_s": {step: round(s, 2) for step, s in alone.items()},
        "alone_usage": {"clinician": alone_clinician_usage, "citizen": alone_citizen_usage},
    }
    for step, times in together.items():
        result[step] = {
            "p50_s": percentile(times, 50),
            "p95_s": percentile(times, 95),
            "max_s": round(max(times), 2),
        }
        if step in alone:
            result[step] |= {
                "p50_over_alone": round(percentile(times, 50) / alone[step], 1),
                "p95_over_alone": round(percentile(times, 95) / alone[step], 1),
            }
    result["crowd_usage"] = usage
    result["errors"] = [
        e for u in (alone_clinician_usage, alone_citizen_usage, usage) for e in u["errors"]
    ]
    result["wall_s"] = round(time.perf_counter() - began, 1)
    return result


def main(people: int, timeout_s: float) -> None:
    """The stage process: the crowd on ``LAKEHOUSE_URI``'s lake (its accounts made here),
    printing its figures as one JSON line; what failed is reported in ``errors`` (``_usage``),
    as is a failure of the unmeasured warm-up."""
    with (
        tempfile.TemporaryDirectory(prefix="gjh-crowd-") as folder,
        served(os.environ, roster(people), Path(folder)) as apps,
        chromium() as browser,
    ):
        try:
            result = run(browser, apps, people, timeout_s)
        except AssertionError as failed:  # the warm-up
            result = {"people": {"clinicians": people, "citizens": people}}
            result["errors"] = [str(failed)[:2000]]
    sys.stdout.write(json.dumps(result) + "\n")


def measured(
    ctx: stages.Context, people: int = PEOPLE, timeout_s: float = TIMEOUT_S
) -> list[Measured]:
    """The crowd on the bench's built lake as its own process, measured from outside (the
    process tree: the driver, Chromium and both servers); one row per step, its p95 judged
    against the one person alone of the same run (the row's floor)."""
    env = dict(ctx.env) | {"LAKEHOUSE_URI": str(ctx.work / "built")}
    script = f"from gjh.bench.crowd import main; main({people}, {timeout_s})"
    outside = run_measured([sys.executable, "-c", script], env=env)
    result = json.loads(outside["stdout"].strip().splitlines()[-1])
    common = {
        k: result[k] for k in ("people", "errors", "crowd_usage", "alone_usage") if k in result
    }
    rows = []
    for step, name in STEPS.items():
        figures = result.get(step)  # none when the step failed
        alone = result.get("alone_s", {}).get(step)
        floor = None
        if alone is not None:
            floor = Floor("one person alone, same servers and run", alone, outside["peak_rss_mib"])
        rows.append(
            Measured(
                stage=name,
                seconds=outside["seconds"] if figures is None else figures["p95_s"],
                wall_seconds=outside["seconds"],
                items=people,
                unit="people",
                peak_rss_mib=outside["peak_rss_mib"],
                floor=floor,
                p95_ms=None if figures is None else figures["p95_s"] * 1000,
                detail=common | {"figures": figures, "wall_s": result.get("wall_s")},
            )
        )
    return rows
