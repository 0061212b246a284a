"""Ten people at once on the built demo city (issue 18): five clinicians of one clinic sign in
together to their worklist and then open a study together, while five citizens sign in together
to their timelines, in ten Chromium contexts against one served clinician app and one served
citizen app. Everyone must reach their content, and both servers' health endpoint must answer
all along and afterwards.

This is the load under which the clinician app once froze for good (Python callbacks inside
Polars waited for the GIL that a script thread held while it waited for Polars' pool; see the
concurrency section of docs/apps.md). The timeouts are generous: the machine may have two shared
cores, and this test asserts that the apps stay live, not how fast they are (that is
``tests/benchmarks/test_crowd.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest
from playwright.sync_api import Browser, Locator

from apps.common.i18n import t
from gjh.bench.app_server import AppServer, healthy, run_app
from gjh.bench.roster import crowd_roster
from gjh.bench.visitors import (
    CHART,
    OPEN_LINK,
    TABLE,
    HealthWatch,
    Visitor,
    act_together,
    arrive,
    leave,
    reach,
)
from tests.apps.served import app_env, app_script
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]
PASSWORD: Final = "load-password-1"
CLINICIANS: Final = 5
CITIZENS: Final = 5
CONTENT_TIMEOUT_S: Final = 300.0
ROUNDS: Final = 3  # worklist -> viewer -> worklist, everyone at once
OPEN: Final = t("triage.worklist.open", "ko")
WORKLIST: Final = t("triage.worklist.title", "ko")


@pytest.fixture(scope="module")
def apps(
    platform_lake: Lake, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    """One served clinician app and one served citizen app on the demo city."""
    with platform_lake.active():
        roster = crowd_roster(CLINICIANS, CITIZENS, PASSWORD)
    env = app_env(platform_lake, roster, tmp_path_factory.mktemp("load_accounts"), "1a" * 32)
    with (
        run_app(app_script("clinician"), env) as clinician,
        run_app(app_script("citizen"), env) as citizen,
    ):
        yield {"clinician": clinician, "citizen": citizen}


def load(clinicians: list[Visitor], citizens: list[Visitor], buttons: list[Locator]) -> None:
    """Everyone signs in at once (five worklists and five timelines computed together), then
    the clinicians go from the worklist to its top study and back, together, a few times over
    (the viewer's images, then the worklist again)."""
    at = act_together(buttons, [TABLE] * CLINICIANS + [CHART] * CITIZENS)
    reach(clinicians, at, CONTENT_TIMEOUT_S)
    reach(citizens, at, CONTENT_TIMEOUT_S)
    for _ in range(ROUNDS):
        opens = [v.page.get_by_role("link", name=OPEN, exact=True).first for v in clinicians]
        reach(clinicians, act_together(opens, [CHART] * CLINICIANS), CONTENT_TIMEOUT_S)
        back = [v.page.get_by_role("link", name=WORKLIST, exact=True).first for v in clinicians]
        reach(clinicians, act_together(back, [OPEN_LINK] * CLINICIANS), CONTENT_TIMEOUT_S)


def test_ten_people_at_once_reach_their_content_and_the_servers_stay_healthy(
    browser: Browser, apps: dict[str, AppServer]
) -> None:
    clinicians, clinic_buttons = arrive(
        browser, apps["clinician"], [f"clinic.{n}" for n in range(CLINICIANS)], PASSWORD
    )
    citizens, citizen_buttons = arrive(
        browser, apps["citizen"], [f"citizen.{n}" for n in range(CITIZENS)], PASSWORD, "timeline"
    )
    stuck = ""
    try:
        with HealthWatch(list(apps.values())) as health:
            try:
                load(clinicians, citizens, [*clinic_buttons, *citizen_buttons])
            except AssertionError as error:  # reported with the health checks below
                stuck = str(error)
    finally:
        leave([*clinicians, *citizens])
    after = {s.script.parent.name: healthy(s.port, timeout=30) for s in apps.values()}
    assert not stuck and not health.missed and all(after.values()), (
        f"content: {stuck or 'everyone reached theirs'}; health unanswered during the load "
        f"({len(health.missed)} of {health.asked}): {health.missed[:10]}; health after: {after}"
    )
