"""The "My measurements" page and its access-layer read, on a hand-built lakehouse (real Delta
tables): a senior's centre measurements over time against the published reference ranges for
their age and sex, the fall-risk notice naming the measurements that drove it, each read
audited, and another citizen's measurements refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, expect
from streamlit.testing.v1 import AppTest

from apps.common.i18n import t
from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, open_app, rerun
from lakehouse import accounts, delta
from lakehouse import read as lake
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.pseudonym import citizen_key
from tests.apps.screenshots import shot
from tests.apps.served import app_env, app_script
from tests.apps.test_platform import PASSWORD, sign_in, texts
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]
APP = Path(__file__).resolve().parents[2] / "apps" / "citizen" / "streamlit_app.py"
NOW = datetime.now(UTC)


def _keys() -> dict[str, str]:
    return {
        "senior": citizen_key("4001012000001"),  # born January 1940, a woman
        "other": citizen_key("4505051000002"),
    }


def _citizens(keys: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "citizen_key": [keys["senior"], keys["other"]],
            "sex": ["F", "M"],
            "birth_year": [NOW.year - 80, NOW.year - 70],
            "birth_month": [1, 5],
            "district_code": ["24030", "24040"],
            "dong_code": ["2403001", "2404001"],
            "resident_from": [date(2010, 1, 1), date(2010, 1, 1)],
            "arrival": ["baseline", "baseline"],
            "resident_to": [None, None],
            "departure": [None, None],
            "died_on": [None, None],
        },
        schema_overrides={"resident_to": pl.Date, "departure": pl.Utf8, "died_on": pl.Date},
    )


def _measurements() -> pl.DataFrame:
    """The senior: a slow Timed Up and Go lately, gait speed fine, grip over time, a balance
    score (no published norm); the other citizen: one check-up."""
    rows = [
        ("BG1000001", "mobility", "tug_s", None, 10.5, "s", 200),
        ("BG1000001", "mobility", "tug_s", None, 13.4, "s", 20),
        ("BG1000001", "mobility", "chair_stand_30s_n", None, 8, "stands", 20),
        ("BG1000001", "gait", "speed_m_s", None, 1.08, "m/s", 20),
        ("BG1000001", "checkup", "grip_right_kg", None, 19.5, "kg", 300),
        ("BG1000001", "checkup", "grip_right_kg", None, 17.2, "kg", 30),
        ("BG1000001", "balance", "balance_score", "eyes_open", 71, "points", 30),
        ("BG1000001", "balance", "balance_score", "eyes_closed", 55, "points", 30),
        ("BG1000001", "body", "smi_kg_m2", None, 5.4, "kg/m2", 30),
        ("BG1000002", "checkup", "systolic_mmhg", None, 151, "mmHg", 10),
    ]
    at = [NOW - timedelta(days=r[6]) for r in rows]
    return pl.DataFrame(
        {
            "measurement_id": [f"X{i:04d}" for i in range(len(rows))],
            "member_no": [r[0] for r in rows],
            "device": [r[1] for r in rows],
            "measured_at": at,
            "measure": [r[2] for r in rows],
            "context": [r[3] for r in rows],
            "value": [float(r[4]) for r in rows],
            "unit": [r[5] for r in rows],
            "measured_on": [a.date() for a in at],
        },
        schema_overrides={"context": pl.Utf8},
    )


@pytest.fixture(scope="module")
def centre_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lake, dict[str, str]]]:
    root = tmp_path_factory.mktemp("measurements")
    built = Lake(root / "lakehouse", root / "sources")
    folder = root / "accounts"
    folder.mkdir()
    keys = _keys()
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        "grandma": accounts.Account(
            "grandma", "citizen", citizen_key=keys["senior"], password_hash=hashed
        ),
        "newcomer": accounts.Account(
            "newcomer", "citizen", citizen_key=citizen_key("9001011000003"), password_hash=hashed
        ),
    }
    with pytest.MonkeyPatch.context() as patch, built.active():
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "cd" * 32)
        delta.append("silver.citizens", _citizens(keys))
        members = pl.DataFrame(
            {
                "member_no": ["BG1000001", "BG1000002"],
                "citizen_key": [keys["senior"], keys["other"]],
                "joined_on": [date(2020, 1, 1), date(2021, 1, 1)],
            }
        )
        delta.append("silver.centre_members", members)
        delta.append("silver.centre_measurements", _measurements())
        yield built, keys


def _citizen(key: str) -> Access:
    return Access(Principal("grandma", "citizen", citizen_key=key, origin="test"))


def test_a_citizen_reads_their_own_measurements_with_age_and_sex_audited(
    centre_lake: tuple[Lake, dict[str, str]],
) -> None:
    _, keys = centre_lake
    measured = _citizen(keys["senior"]).centre_measurements(keys["senior"])
    assert measured.rows.height == 9 and set(measured.rows["device"]) >= {"mobility", "body"}
    assert (measured.sex, measured.age) == ("F", 80)
    assert measured.rows["measured_at"].is_sorted()
    log = lake.frame("ops.audit_log", pl.col("action") == "read:measurements")
    row = log.filter(pl.col("outcome") == "allowed").row(-1, named=True)
    assert (row["subject_key"], row["purpose"], row["rows"]) == (keys["senior"], "self", 9)


@pytest.mark.security
def test_another_citizens_measurements_are_refused_and_the_refusal_audited(
    centre_lake: tuple[Lake, dict[str, str]],
) -> None:
    _, keys = centre_lake
    with pytest.raises(AccessDeniedError):
        _citizen(keys["senior"]).centre_measurements(keys["other"])
    refused = lake.frame(
        "ops.audit_log",
        (pl.col("action") == "read:measurements") & (pl.col("outcome") != "allowed"),
    )
    assert keys["other"] in refused["subject_key"].to_list()


def _page(account: str) -> AppTest:
    at = sign_in(AppTest.from_file(str(APP), default_timeout=60), account)
    assert not at.exception, at.exception
    at.switch_page("app_pages/measurements.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_page_shows_the_fall_risk_notice_with_its_drivers_and_sources(
    centre_lake: tuple[Lake, dict[str, str]],
) -> None:
    at = _page("grandma")
    shown = texts(at)
    assert t("citizen.measurements.title", "ko") in shown
    assert "80세 여성" in shown  # the reference ranges are those of her age and sex
    (warning,) = [w for w in at.warning if "넘어짐" in w.value]
    assert "2개" in warning.value  # the slow TUG and the below-average chair stand for 80-84
    assert "일어나 걸어가기 검사(TUG): 13.4 초" in shown
    assert "12 초 미만" in shown and "STEADI" in shown  # the cut-off and its source
    assert "30초 의자에서 일어서기: 8 회" in shown and "9 회 이상" in shown
    assert "진단이 아닙니다" in shown and "센터 직원" in shown
    # Gait speed at 1.08 m/s is above AWGS's 1.0 m/s: not a driver.
    assert "보행 속도" not in warning.value
    # The mobility tests are shown first, each measure with its reference range and a chart.
    assert at.radio(key="measurements_device.ko").value == "mobility"
    assert "최근 13.4 초" in shown and "⚠ 참고 범위 밖: 넘어짐 위험 범위" in shown
    assert len(at.get("plotly_chart")) == 2


def test_each_device_kind_is_drawn_against_its_band_or_says_it_has_none(
    centre_lake: tuple[Lake, dict[str, str]],
) -> None:
    at = _page("grandma")
    at.radio(key="measurements_device.ko").set_value("checkup").run()
    shown = texts(at)
    # Grip 17.2 kg for a woman: under AWGS's 18 kg, told in words and symbol, not colour only.
    assert "최근 17.2 kg" in shown and "⚠ 참고 범위 밖: 약한 악력 범위" in shown
    assert "18 kg 이상" in shown and "AWGS 2019" in shown
    at.radio(key="measurements_device.ko").set_value("balance").run()
    shown = texts(at)
    assert t("citizen.measurements.no_norm", "ko") in shown  # the device's own score
    at.radio(key="measurements_device.ko").set_value("body").run()
    assert "낮은 근육량 범위" in texts(at)  # SMI 5.4 under AWGS's 5.7 kg/m2 for women
    assert not at.exception


def test_in_english_the_page_has_no_korean(centre_lake: tuple[Lake, dict[str, str]]) -> None:
    """Names of measures, bands, units, sources and the notice all follow the language."""
    at = sign_in(AppTest.from_file(str(APP), default_timeout=60), "grandma")
    at.radio[0].set_value("en").run()  # the language switch
    at.switch_page("app_pages/measurements.py")
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert t("citizen.measurements.falls.title", "en") in shown
    assert "Timed Up and Go (TUG): 13.4 s" in shown and "below 12 s" in shown
    assert "your age (80) and sex (woman)" in shown
    korean = [line for line in shown.splitlines() if re.search("[가-힣]", line)]
    assert not korean, korean


def test_a_citizen_with_no_measurements_is_told_so(
    centre_lake: tuple[Lake, dict[str, str]],
) -> None:
    at = _page("newcomer")
    assert t("citizen.measurements.empty", "ko") in texts(at)
    assert not at.get("plotly_chart")


@pytest.mark.browser
def test_the_page_in_chromium_at_a_phones_width(
    centre_lake: tuple[Lake, dict[str, str]],
    start_app: Callable[..., AppServer],
    browser: Browser,
    tmp_path: Path,
) -> None:
    """Signed in on a 390 px wide screen, the senior reaches the page from the menu and reads
    the fall-risk notice and a chart with its reference band; screenshots of each step."""
    built, keys = centre_lake
    roster = [
        accounts.Account(
            "grandma",
            "citizen",
            citizen_key=keys["senior"],
            password_hash=accounts.hash_password(PASSWORD),
        )
    ]
    server = start_app(app_script("citizen"), app_env(built, roster, tmp_path, "ef" * 32))
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="ko-KR", timezone_id="Asia/Seoul"
    )
    page = context.new_page()
    try:
        open_app(page, server.url)
        page.get_by_label("아이디").fill("grandma")
        page.get_by_label("비밀번호").fill(PASSWORD)
        with rerun(page):
            page.get_by_role("button", name="로그인").click()
        open_app(page, server.url, "measurements")
        expect(page.get_by_text("넘어짐(낙상) 위험 알림")).to_be_visible()
        expect(page.get_by_text("일어나 걸어가기 검사(TUG): 13.4 초").first).to_be_visible()
        assert not exception_texts(page)
        shot(page, "measurements", "fall-risk-and-mobility")
        with rerun(page):
            page.get_by_text("기초 검진(혈압·악력·신체계측)").click()
        expect(page.get_by_text("⚠ 참고 범위 밖: 약한 악력 범위").first).to_be_visible()
        assert page.locator(".js-plotly-plot").count() >= 1
        shot(page, "measurements", "check-up-grip")
    finally:
        context.close()
