"""Each role's flow in Chromium against the built demo city: sign in, see what the role may see,
be refused what it may not, and find every access in the audit log. Screenshots of each step go
to ``test-artifacts/screenshots`` (``make screenshots``: ``docs/screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl
import pytest
from playwright.sync_api import Dialog, Page, expect

from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, open_app, rerun
from lakehouse import accounts
from tests.apps.screenshots import shot
from tests.apps.served import app_env, every_app
from tests.lakehouse.test_access import linked_by_rows
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.security]
PASSWORD = "demo-password-2"
HOSTILE = "<img src=x onerror=window.__xss=1><script>__xss=2</script>"  # < 64 chars


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, str]:
    """A citizen with a long record whose record link stands, another, a clinic they visited,
    and a clinic they never did."""
    timeline = platform_lake.frame("gold.citizen_timeline", pl.col("institution").is_not_null())
    counts = linked_by_rows(platform_lake, timeline)
    citizen, other = counts["citizen_key"][4], counts["citizen_key"][5]
    visited = timeline.filter(pl.col("citizen_key") == citizen)["institution"][0]
    studies = platform_lake.frame("silver.imaging_studies")
    near = set(timeline.filter(pl.col("citizen_key") == citizen)["institution"].to_list())
    near |= set(studies.filter(pl.col("citizen_key") == citizen)["institution"].to_list())
    clinics = platform_lake.frame("silver.institutions")["ykiho"].sort().to_list()
    stranger = next(c for c in clinics if c not in near)
    return {"citizen": citizen, "other": other, "visited": visited, "stranger": stranger}


@pytest.fixture(scope="module")
def servers(
    platform_lake: Lake, cast: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    hashed = accounts.hash_password(PASSWORD)
    roster = (
        accounts.Account("minji", "citizen", citizen_key=cast["citizen"], password_hash=hashed),
        accounts.Account(
            "dr.park", "clinician", "박의사", institution=cast["stranger"], password_hash=hashed
        ),
        accounts.Account("official", "official", "시청 담당자", password_hash=hashed),
        accounts.Account("admin", "admin", "운영자", password_hash=hashed),
    )
    env = app_env(platform_lake, roster, tmp_path_factory.mktemp("flow_accounts"), "cd" * 32)
    with every_app(env) as servers:
        yield servers


def sign_in(page: Page, server: AppServer, account: str, flow: str) -> None:
    open_app(page, server.url)
    expect(page.get_by_label("비밀번호")).to_be_visible()
    shot(page, flow, "sign-in")
    page.get_by_label("아이디").fill(account)
    page.get_by_label("비밀번호").fill(PASSWORD)
    with rerun(page):
        page.get_by_role("button", name="로그인").click()
    assert not exception_texts(page)


def audit(lake: Lake, account: str) -> pl.DataFrame:
    return lake.frame("ops.audit_log", pl.col("account") == account)


def test_citizen_timeline_share_code_and_clinician_redeeming_it(
    page: Page, servers: dict[str, AppServer], cast: dict[str, str], platform_lake: Lake
) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    sign_in(page, servers["citizen"], "minji", "citizen")
    with rerun(page):  # from the home page's tile
        page.locator(".st-key-home_tiles").get_by_role("link", name="내 건강 타임라인").click()
    expect(page.get_by_role("heading", name="내 건강 타임라인")).to_be_visible()
    expect(page.get_by_text("합성(가상) 데이터").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, "citizen", "timeline")
    with rerun(page):
        page.get_by_text("English", exact=True).click()
    expect(page.get_by_role("heading", name="My health timeline")).to_be_visible()
    shot(page, "citizen", "timeline-english")
    with rerun(page):
        page.get_by_text("한국어", exact=True).click()
    with rerun(page):
        page.get_by_role("link", name="공유와 가족 대리").click()
    with rerun(page):
        page.get_by_role("button", name="공유 코드 만들기").click()
    banner = page.get_by_text(re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$"))
    expect(banner).to_be_visible()
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}", banner.inner_text())
    assert code is not None
    expect(page.get_by_role("img", name="공유 코드 QR 코드")).to_be_visible()
    expect(page.get_by_text(f"/patient?share={code.group(0)}")).to_be_visible()
    page.get_by_label("대리인 아이디").fill(HOSTILE)
    with rerun(page):
        page.get_by_role("button", name="대리인으로 지정").click()
    expect(page.get_by_text("시민 계정이 없습니다")).to_be_visible()  # refused, not echoed
    assert page.evaluate("window.__xss") is None and not dialogs  # never run
    shot(page, "citizen", "share")

    # The clinician of a clinic the citizen never visited: refused, then let in by the code.
    doctor = page.context.new_page()
    sign_in(doctor, servers["clinician"], "dr.park", "clinician")
    with rerun(doctor):
        doctor.get_by_role("link", name="환자 기록 조회").click()
    doctor.get_by_label("환자 가명 키").fill(cast["citizen"])
    with rerun(doctor):
        doctor.get_by_role("button", name="기록 열기").click()
    # One refusal, saying why and the ways in (a share code, or emergency access with a reason).
    expect(doctor.get_by_text("최근 우리 기관에서 진료한 환자가 아니고")).to_have_count(1)
    shot(doctor, "clinician", "refused")
    # The QR code's link, opened in another browser: sign in first, then the record opens.
    browser = page.context.browser
    assert browser is not None
    scanned = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
    try:
        linked = scanned.new_page()
        open_app(linked, servers["clinician"].url, f"patient?share={code.group(0)}")
        linked.get_by_label("아이디").fill("dr.park")
        linked.get_by_label("비밀번호").fill(PASSWORD)
        with rerun(linked):
            linked.get_by_role("button", name="로그인").click()
        expect(linked.get_by_text("열람 근거: 환자 공유")).to_be_visible()
        shot(linked, "clinician", "shared-by-link")
    finally:
        scanned.close()
    doctor.get_by_label("환자가 알려 준 공유 코드").fill(code.group(0))
    with rerun(doctor):
        doctor.get_by_role("button", name="공유 코드로 열기").click()
    expect(doctor.get_by_text("열람 근거: 환자 공유")).to_be_visible()
    expect(doctor.get_by_text("진단").first).to_be_visible()
    shot(doctor, "clinician", "shared-record")
    log = audit(platform_lake, "dr.park")
    assert set(log["outcome"].to_list()) == {"allowed", "denied"}
    assert "share" in log["purpose"].to_list()

    # Back to the citizen: the clinician's reading is in "who viewed my record".
    with rerun(page):
        page.get_by_role("link", name="내 기록 열람 내역").click()
    expect(page.get_by_text("박의사").first).to_be_attached()  # a grid cell, by display name
    shot(page, "citizen", "who-viewed")

    # Revoked at once, near the top of the sharing page: the clinician is refused.
    with rerun(page):
        page.get_by_role("link", name="공유와 가족 대리").click()
    with rerun(page):
        page.get_by_role("button", name="지금 공유 중지").click()
    open_app(doctor, servers["clinician"].url, "patient")
    doctor.get_by_label("환자 가명 키").fill(cast["citizen"])
    with rerun(doctor):
        doctor.get_by_role("button", name="기록 열기").click()
    expect(doctor.get_by_text("최근 우리 기관에서 진료한 환자가 아니고")).to_have_count(1)


def test_official_sees_suppressed_uptake_and_admin_reviews_the_log(
    page: Page, servers: dict[str, AppServer], platform_lake: Lake
) -> None:
    sign_in(page, servers["official"], "official", "official")
    expect(page.get_by_role("heading", name="사업 개요")).to_be_visible()
    shot(page, "official", "overview")
    with rerun(page):
        page.get_by_role("link", name="추이").click()
    expect(page.get_by_role("heading", name="추이")).to_be_visible()
    shot(page, "official", "trends")
    with rerun(page):
        page.get_by_role("link", name="프로그램 이용 현황").click()
    expect(page.get_by_role("heading", name="프로그램 이용 현황")).to_be_visible()
    shot(page, "official", "uptake")
    admin = page.context.new_page()
    sign_in(admin, servers["admin"], "admin", "admin")
    expect(admin.get_by_role("heading", name="접근 기록 검토")).to_be_visible()
    expect(admin.get_by_text(re.compile(r"\d+건 \(응급 열람 \d+건, 거부 \d+건\)"))).to_be_visible()
    shot(admin, "admin", "audit-log")
    assert "read:aggregate" in audit(platform_lake, "official")["action"].to_list()
    assert "read:audit_log" in audit(platform_lake, "admin")["action"].to_list()
    # The official's app refuses a citizen's account; the admin's app refuses the official's.
    # In another browser: a new tab of this one would be the admin's, signed in already.
    browser = page.context.browser
    assert browser is not None
    elsewhere = browser.new_context()
    try:
        other = elsewhere.new_page()
        open_app(other, servers["admin"].url)
        other.get_by_label("아이디").fill("official")
        other.get_by_label("비밀번호").fill(PASSWORD)
        with rerun(other):
            other.get_by_role("button", name="로그인").click()
        expect(
            other.get_by_text("이 화면은 시 담당자 계정으로 사용할 수 없습니다.")
        ).to_be_visible()
    finally:
        elsewhere.close()
