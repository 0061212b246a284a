"""The apps as served, in Chromium: the log holds what an operator needs, not a flood, and the
viewer's image controls redraw the image alone.

Serving the pages that format tables (the worklist, the viewer, the citizen's timeline and "who
viewed my record", uptake, the access log) writes no "missing ScriptRunContext" warning. That
warning is Streamlit's when a thread outside the script run calls it: a Python callback that
a page hands to Polars (``map_elements``) runs on Polars' worker threads and reads the session's
language there, dozens of times a millisecond. The pages format with Polars expressions, or in
Python after the frame is collected, instead.

The viewer's images are a fragment: turning an image control reruns the fragment, so what the
server sends back holds the image's controls and chart and none of the findings panel beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from playwright.sync_api import Page, WebSocket, expect

from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, rerun
from lakehouse import accounts
from lakehouse.access import Access, Principal
from tests.apps import served
from tests.apps.served import app_env, every_app
from tests.apps.triage_cast import triage_cast
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PASSWORD = "demo-password-5"
FLOOD = "missing ScriptRunContext"
FINDINGS = "AI 소견"  # the findings panel's heading (triage.viewer.findings)
OVERLAY = "AI 표시 보기"  # the overlay's toggle (triage.viewer.overlay)
OPACITY = "AI 표시 불투명도"  # the overlay's opacity (triage.viewer.opacity)
NOTE = "메모(선택)"  # a decision form's note (triage.decide.note)


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, Any]:
    """The busiest clinic, and a patient of it with a citizen account whose study the clinic
    has opened, so that their "who viewed my record" has rows to format; a scored chest
    radiograph (one image, with the overlay's controls) and the clinic that sent it."""
    chosen: dict[str, Any] = dict(triage_cast(platform_lake))
    studies = platform_lake.frame(
        "silver.imaging_studies",
        (pl.col("institution") == chosen["clinic"]) & pl.col("citizen_key").is_not_null(),
    ).sort("study_instance_uid")
    study = studies.row(0, named=True)
    with platform_lake.active():
        Access(Principal("dr.seen", "clinician", institution=chosen["clinic"])).open_study(
            study["study_instance_uid"]
        )
    chosen["citizen"] = study["citizen_key"]
    chest = platform_lake.frame(
        "ai.findings", (pl.col("service") == "chest") & (pl.col("status") == "scored")
    ).sort("study_instance_uid")
    first = chest.row(0, named=True)
    chosen["chest"], chosen["chest_clinic"] = first["study_instance_uid"], first["institution"]
    return chosen


@pytest.fixture(scope="module")
def servers(
    platform_lake: Lake, cast: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    hashed = accounts.hash_password(PASSWORD)
    roster = (
        accounts.Account("minsu", "citizen", citizen_key=cast["citizen"], password_hash=hashed),
        accounts.Account(
            "dr.han", "clinician", "한의사", institution=cast["clinic"], password_hash=hashed
        ),
        accounts.Account(
            "dr.oh", "clinician", "오의사", institution=cast["chest_clinic"], password_hash=hashed
        ),
        accounts.Account("official", "official", "시청 담당자", password_hash=hashed),
        accounts.Account("admin", "admin", "운영자", password_hash=hashed),
    )
    env = app_env(platform_lake, roster, tmp_path_factory.mktemp("serving"), "5a" * 32)
    with every_app(env, log_dir=tmp_path_factory.mktemp("serving_logs")) as servers:
        yield servers


def sign_in(page: Page, server: AppServer, account: str, path: str = "") -> None:
    served.sign_in(page, server, account, PASSWORD, path)


def visit(page: Page, link: str) -> None:
    with rerun(page):
        page.get_by_role("link", name=link).click()
    assert not exception_texts(page)


def english(page: Page) -> None:
    with rerun(page):
        page.get_by_text("English", exact=True).click()


def test_serving_the_table_pages_writes_no_missing_script_run_context_warning(
    page: Page, servers: dict[str, AppServer]
) -> None:
    # The clinician: the worklist (landing), then the top study in the viewer, in both languages.
    sign_in(page, servers["clinician"], "dr.han")
    expect(page.get_by_role("heading", name="판독 작업 목록")).to_be_visible()
    with rerun(page):
        page.get_by_role("link", name="검사 열기").click()
    expect(page.get_by_role("heading", name="영상 판독")).to_be_visible()
    expect(page.get_by_text("진단").first).to_be_visible()  # the patient context's tables
    english(page)
    visit(page, "Worklist")

    # The citizen: the timeline (landing) and who viewed the record (the clinic, above).
    citizen = page.context.new_page()
    sign_in(citizen, servers["citizen"], "minsu", path="timeline")
    expect(citizen.get_by_role("heading", name="내 건강 타임라인")).to_be_visible()
    visit(citizen, "내 기록 열람 내역")
    expect(citizen.get_by_text("dr.seen").first).to_be_attached()  # a grid cell (canvas table)
    english(citizen)

    # The official's overview (landing) and uptake, and the admin's access log (landing).
    official = page.context.new_page()
    sign_in(official, servers["official"], "official")
    expect(official.get_by_role("heading", name="사업 개요")).to_be_visible()
    visit(official, "프로그램 이용 현황")
    expect(official.get_by_role("heading", name="프로그램 이용 현황")).to_be_visible()
    admin = page.context.new_page()
    sign_in(admin, servers["admin"], "admin")
    expect(admin.get_by_role("heading", name="접근 기록 검토")).to_be_visible()
    english(admin)

    logs = {name: server.log.read_text(encoding="utf-8") for name, server in servers.items()}
    flooded = {name: log.count(FLOOD) for name, log in logs.items() if FLOOD in log}
    assert not flooded, f"lines with {FLOOD!r} in the apps' logs: {flooded}"


def test_an_image_control_redraws_the_image_and_not_the_findings(
    page: Page, servers: dict[str, AppServer], cast: dict[str, Any]
) -> None:
    received: list[bytes] = []

    def listen(socket: WebSocket) -> None:
        socket.on(
            "framereceived",
            lambda payload: received.append(
                payload if isinstance(payload, bytes) else payload.encode()
            ),
        )

    page.on("websocket", listen)
    sign_in(page, servers["clinician"], "dr.oh", f"viewer?study={cast['chest']}")
    expect(page.get_by_role("heading", name="영상 판독")).to_be_visible()
    expect(page.get_by_role("heading", name=FINDINGS)).to_be_visible()
    before = len(received)
    with rerun(page):
        page.get_by_text(OVERLAY).click()  # the overlay off
    assert not exception_texts(page)
    sent = b"".join(received[before:])
    # The fragment came back (its controls; the chart itself may come as a reference to a
    # message the browser already holds, Streamlit's cache of large messages).
    assert OVERLAY.encode() in sent and OPACITY.encode() in sent
    assert FINDINGS.encode() not in sent  # the findings panel was not run again
    assert NOTE.encode() not in sent  # nor its decision forms
    expect(page.get_by_role("heading", name=FINDINGS)).to_be_visible()
