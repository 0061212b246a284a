"""The clinician's triage flow in Chromium against the built demo city: sign in, the worklist in
priority order, open the top study, the AI overlay on the image, a save with no decision chosen
refused, accept a finding, find the decision and the audit rows in the lakehouse, and be refused
a study of another institution.
Screenshots of each step go to ``test-artifacts/screenshots`` (``make screenshots``:
``docs/screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from gjh.bench.app_server import AppServer, run_app
from gjh.bench.browser import open_app, rerun
from lakehouse import accounts
from lakehouse.access import Access, Principal
from tests.apps import served
from tests.apps.screenshots import shot
from tests.apps.served import app_env, app_script
from tests.apps.triage_cast import triage_cast
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.security]
PASSWORD = "demo-password-4"


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, Any]:
    chosen: dict[str, Any] = dict(triage_cast(platform_lake))
    with platform_lake.active():
        probe = Principal("probe", "clinician", institution=chosen["clinic"])
        chosen["top"] = Access(probe).worklist()["study_instance_uid"][0]
    return chosen


@pytest.fixture(scope="module")
def clinician_app(
    platform_lake: Lake, cast: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    doctor = accounts.Account(
        "dr.choi",
        "clinician",
        "최의사",
        institution=cast["clinic"],
        password_hash=accounts.hash_password(PASSWORD),
    )
    env = app_env(platform_lake, [doctor], tmp_path_factory.mktemp("triage_accounts"), "0f" * 32)
    with run_app(app_script("clinician"), env) as server:
        yield server


def sign_in(page: Page, server: AppServer, path: str = "") -> None:
    served.sign_in(page, server, "dr.choi", PASSWORD, path)


def test_triage_from_worklist_to_decision_and_a_foreign_study_refused(
    page: Page, clinician_app: AppServer, cast: dict[str, Any], platform_lake: Lake
) -> None:
    # 1. Sign in as a clinician: the worklist is the landing page.
    sign_in(page, clinician_app)
    expect(page.get_by_role("heading", name="판독 작업 목록")).to_be_visible()
    expect(page.get_by_text("합성 데이터로 학습").first).to_be_visible()
    shot(page, "triage", "worklist")

    # 2. The worklist is ordered by priority: the table's rows (its accessible grid holds the
    # rows in view) read down from the most pressing; the study picker starts at the top one.
    rows = page.locator("[role=row]")
    expect(rows.nth(2)).to_be_attached()
    priorities = [float(r.locator("[role=gridcell]").first.inner_text()) for r in rows.all()[1:]]
    assert len(priorities) >= 2
    assert priorities == sorted(priorities, reverse=True)
    picker = page.get_by_role("combobox", name="열 검사")
    expect(picker).to_have_value(re.compile(rf"^1\. .* · {priorities[0]:.1f} · "))

    # 3. Open the top study.
    with rerun(page):
        page.get_by_role("link", name="검사 열기").click()
    expect(page.get_by_role("heading", name="영상 판독")).to_be_visible()
    expect(page.get_by_text("참고 모델: 합성 데이터로 학습 — 진료용이 아님").first).to_be_visible()

    # 4. The overlay appears: the AI's location drawn on the image (or its ECG segments).
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    expect(chart.get_by_text(re.compile("AI 위치|AI 구간")).first).to_be_visible()
    shot(page, "triage", "viewer-overlay")

    # 5. Nothing is chosen for the clinician: saving at once is refused with a message, and
    # the finding is accepted only once "accept" and a reason are chosen.
    decision = page.get_by_role("radiogroup", name="판단").first
    expect(decision.get_by_role("radio", checked=True)).to_have_count(0)
    with rerun(page):
        page.get_by_role("button", name="저장").first.click()
    expect(page.get_by_text("승인·기각·수정 중 하나를 골라야 저장됩니다")).to_be_visible()
    with rerun(page):
        decision.get_by_text("승인", exact=True).click()
    page.get_by_role("combobox", name="사유").first.click()
    page.get_by_role("option", name="판독으로 확인").click()
    with rerun(page):
        page.get_by_role("button", name="저장").first.click()
    expect(page.get_by_text("저장했습니다: 승인")).to_be_visible()
    shot(page, "triage", "accepted")

    # 6. The event and the audit rows exist.
    events = platform_lake.frame(
        "ops.triage_events", pl.col("study_instance_uid") == cast["top"]
    ).sort("at")
    assert events.select("account", "decision").rows()[-1] == ("dr.choi", "accepted")
    assert "review" in events["decision"].to_list()
    audit = platform_lake.frame("ops.audit_log", pl.col("account") == "dr.choi")
    assert {"read:worklist", "read:study", "write:triage"} <= set(audit["action"].to_list())
    assert set(audit["outcome"].to_list()) == {"allowed"}
    finding = platform_lake.frame(
        "ai.findings", pl.col("tracking_uid") == events["tracking_uid"][-1]
    )
    assert finding["verification"].to_list() == ["accepted"]

    # 7. A study of another institution, asked for by link, is refused and the attempt logged.
    # Opened in a new tab, which the session cookie has signed in already.
    stranger = page.context.new_page()
    open_app(stranger, clinician_app.url, f"viewer?study={cast['foreign']}")
    expect(stranger.get_by_text("볼 권한이 없습니다").first).to_be_visible()
    expect(stranger.locator(".js-plotly-plot")).to_have_count(0)
    shot(stranger, "triage", "foreign-refused")
    refused = platform_lake.frame(
        "ops.audit_log",
        (pl.col("account") == "dr.choi")
        & (pl.col("action") == "read:study")
        & (pl.col("outcome") == "denied"),
    )
    assert refused.height == 1
