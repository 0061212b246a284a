"""The citizen's medicine and insight pages, run with Streamlit's AppTest on the built demo city:
cards with plain names (drugs, clinics, pharmacies: never a bare code), the day the claims run
to, every insight with its records, what to do and its source under the "not a diagnosis"
notice, in Korean first and in English, and each read in the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common.i18n import t
from lakehouse import accounts
from tests.lakehouse.insights.lake import with_duplicate
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APP = Path(__file__).resolve().parents[2] / "apps" / "citizen" / "streamlit_app.py"
PASSWORD = "demo-password-1"
BARE_CODE = re.compile(r"(?<![\d/=.])\d{8}(?![\d/])")  # a HIRA institution code on its own


@pytest.fixture(scope="module")
def lake(platform_lake: Lake) -> Lake:
    return platform_lake


@pytest.fixture(scope="module")
def alice(lake: Lake) -> str:
    with lake.active():
        return with_duplicate(lake)


@pytest.fixture(scope="module", autouse=True)
def env(lake: Lake, alice: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("accounts")
    roster = {
        "alice": accounts.Account(
            "alice", "citizen", citizen_key=alice, password_hash=accounts.hash_password(PASSWORD)
        )
    }
    with pytest.MonkeyPatch.context() as patch, lake.active():
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "cd" * 32)
        yield


def signed_in(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="sign_in_name").input("alice")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.subheader, *at.markdown, *at.caption)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # Markdown's escapes


def test_my_medicines_now_are_cards_with_names_and_the_day_counted(lake: Lake, alice: str) -> None:
    at = signed_in("medicines")
    shown = texts(at)
    assert t("citizen.medicines.title", "ko") in shown
    assert "2025년 12월 31일 기준" in shown
    assert not at.dataframe  # cards, not a wide table
    cards = [m.value for m in at.markdown if m.value.startswith("#### 💊")]
    assert cards
    register = lake.frame("silver.institutions")["name"].to_list()
    assert any(f"처방: {name}" in shown for name in register)
    assert not BARE_CODE.search(shown), BARE_CODE.search(shown)
    assert (
        "read:medicines"
        in lake.frame("ops.audit_log", pl.col("account") == "alice")["action"].to_list()
    )


def test_insights_show_records_advice_and_sources_under_the_notice(lake: Lake) -> None:
    at = signed_in("insights")
    shown = texts(at)
    assert t("citizen.insights.not_a_diagnosis", "ko") in shown
    assert "같은 성분의 약을 두 곳에서" in shown
    assert t("citizen.insights.records", "ko") in shown
    assert t("citizen.insights.advice.ask_pharmacist", "ko") in shown
    assert "근거: 건강보험심사평가원 의약품안심서비스(DUR)" in shown
    assert "일반건강검진" in shown  # the screening schedule, with its source
    assert "nhis.or.kr" in shown
    records = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert any("조제 · " in r and " ← " in r for r in records)  # pharmacy ← prescriber
    assert not BARE_CODE.search(shown), BARE_CODE.search(shown)
    for wrong in ("잘못", "위험합니다", "이상이 있습니다"):
        assert wrong not in shown.replace(t("citizen.insights.not_a_diagnosis", "ko"), "")


def test_in_english_the_cards_are_english(lake: Lake) -> None:
    at = signed_in("insights")
    at.sidebar.radio[0].set_value("en").run()
    shown = texts(at)
    assert "Health insights" in shown and "not a diagnosis" in shown
    assert "The same ingredient from two places" in shown
    assert "Ask your pharmacist" in shown
    assert "Source: HIRA Drug Utilization Review" in shown
    assert "general health check-up" in shown and "Source: NHIS national health" in shown
    at.switch_page("app_pages/medicines.py").run()
    assert not at.exception
    assert "My medicines now" in texts(at) and "Prescribed by" in texts(at)
