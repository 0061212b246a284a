"""The officials' data-quality page (``apps/public_health/app_pages/quality.py``) and
``Access.data_quality`` on a lakehouse whose omop tables the test writes (two expected failures:
diagnoses and drugs with concept 0, no mapping shipped; one unexpected: a birth year of 1700),
checked by ``lakehouse.omop.dq``: with Streamlit's AppTest in Korean and English, the summary by
Kahn category and level, each failure with its explanation, the checks not applied with their
reasons, counts only and audited; refused to citizens and clinicians; before any run it says so.
In Chromium at a phone's width (390 px), the failures and their explanations read without
overflowing the page, and in English on the switch."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from apps.common.i18n import Lang, t
from gjh.bench.app_server import AppServer
from gjh.bench.browser import rerun, wait_idle
from lakehouse import accounts
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.access.health import FAILURE_COLUMNS
from lakehouse.config import environment
from lakehouse.omop import dq
from tests.apps.screenshots import shot
from tests.apps.served import app_env, app_script, sign_in
from tests.apps.signed import signed_in
from tests.apps.test_phone import phone  # noqa: F401 (the phone's browser context, 390 px)
from tests.lakehouse.omop.test_dq import clean, write
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]
PASSWORD = "demo-password-9"
RUN_AT = datetime(2025, 6, 30, 0, 30, tzinfo=UTC)
KCD = "standardconceptrecordcompleteness_condition_occurrence_condition_concept_id"


def _roster() -> list[accounts.Account]:
    return [
        accounts.Account(
            "kim", "official", "김주무관", password_hash=accounts.hash_password(PASSWORD)
        )
    ]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Hand-built omop tables with concept 0 for every diagnosis and drug and a birth year of
    1700, checked once (a recorded run)."""
    folder = tmp_path_factory.mktemp("data_quality")
    lake = Lake(folder / "lakehouse", folder / "sources")
    with lake.active():
        rows = clean()
        for r in rows["condition_occurrence"]:
            r["condition_concept_id"] = 0
        rows["drug_exposure"][0]["drug_concept_id"] = 0
        rows["person"][1]["year_of_birth"] = 1700
        write(rows)
        dq.run(date(2025, 6, 30), RUN_AT)
    return lake


@pytest.fixture(scope="module")
def environ(checked: Lake, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return app_env(checked, _roster(), tmp_path_factory.mktemp("dq_accounts"), "9a" * 32)


@pytest.fixture
def env(environ: dict[str, str]) -> Iterator[None]:
    with environment(**environ):
        yield


def _official() -> Access:
    return Access(Principal("kim", "official", origin="public_health"))


@pytest.mark.usefixtures("env")
def test_the_report_is_the_latest_run_in_counts_and_codes(checked: Lake) -> None:
    report = _official().data_quality()
    assert report.run_at == RUN_AT and report.source_release == date(2025, 6, 1)
    recorded = checked.frame("gold.omop_dq_results")
    assert report.summary.equals(dq.summary(recorded))
    failures = {(r["check_name"], r["cdm_table"]): r for r in report.failures.iter_rows(named=True)}
    condition = failures["standardConceptRecordCompleteness", "condition_occurrence"]
    assert condition["explanation"] == "kcd_not_mapped"
    assert (condition["rows_failing"], condition["rows_checked"]) == (3, 3)
    unexpected = failures["plausibleValueLow", "person"]
    assert unexpected["explanation"] is None  # no reason given: a cause to look for
    assert report.failures.columns == list(FAILURE_COLUMNS)
    reasons = set(report.not_applicable["not_applicable_reason"])
    assert {"not_held", "empty_field", "superseded", "era_not_built"} <= reasons
    assert report.not_applicable["checks"].sum() == recorded["passed"].null_count()
    # Nothing about any person: no person id reaches the reader.
    shown = json.dumps([f.to_dicts() for f in (report.failures, report.not_applicable)])
    assert '"person_id": 1' not in shown and "1700" not in shown
    log = checked.frame("ops.audit_log", pl.col("account") == "kim")
    assert ("read:data_quality", "monitoring", "allowed") in log.select(
        "action", "purpose", "outcome"
    ).rows()


@pytest.mark.security
@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "principal",
    [
        Principal("minji", "citizen", citizen_key="C" + "0" * 32, origin="citizen"),
        Principal("dr.park", "clinician", institution="12345678", origin="clinician"),
    ],
    ids=["citizen", "clinician"],
)
def test_the_report_is_refused_to_citizens_and_clinicians(principal: Principal) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        Access(principal).data_quality()
    assert refused.value.code == "role"


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_page_shows_the_summary_failures_and_why(language: Lang) -> None:
    at = signed_in("public_health", "kim", PASSWORD)
    at.switch_page("app_pages/quality.py").run()
    if language == "en":
        at.radio[0].set_value("en").run()
    assert not at.exception, at.exception
    assert at.title[0].value == t("dq.title", language)
    assert at.caption[0].value == t(
        "dq.run_line",
        language,
        when="2025년 6월 30일 09:30" if language == "ko" else "30 Jun 2025 09:30",
        release="2025년 6월 1일" if language == "ko" else "1 Jun 2025",
    )
    summary, skipped = (d.value for d in at.dataframe)
    category = t("dq.column.category", language)
    assert set(summary[category]) == {
        t(f"dq.category.{c}", language) for c in ("Conformance", "Completeness", "Plausibility")
    }
    assert len(summary) == 9
    # Each failure with its check named, the counts and why; the unexpected one says so.
    text = "\n".join(m.value for m in at.markdown)
    assert t("dq.explanation.kcd_not_mapped", language) in text
    assert t("dq.explanation.drug_not_mapped", language) in text
    assert t("dq.unexplained", language) in text
    named = f"{t('dq.check.standardConceptRecordCompleteness', language)}"
    assert f"**{named} (standardConceptRecordCompleteness)**" in text
    assert f"{t('dq.table.condition_occurrence', language)} (condition_occurrence)" in text
    assert "3 / 3" in text  # the failing rows of the three diagnoses
    assert t("dq.totals", language).split("{")[0] in text
    # The checks not applied, each reason named in the page's language, never a bare code.
    reasons = set(skipped[t("dq.column.reason", language)])
    assert t("dq.reason.not_held", language) in reasons
    assert all(not r.isidentifier() or " " in r for r in reasons)
    assert not at.error  # no fatal check failed


def test_the_page_follows_data_health_in_the_officials_menu() -> None:
    router = (
        Path(__file__).resolve().parents[2] / "apps/public_health/streamlit_app.py"
    ).read_text(encoding="utf-8")
    assert router.index('"app_pages/health.py"') < router.index('"app_pages/quality.py"')


def test_before_any_run_the_page_says_so(tmp_path: Path) -> None:
    roster = _roster()
    with environment(
        LAKEHOUSE_URI=str(tmp_path / "lakehouse"),
        GJH_SECRETS_DIR=str(tmp_path / "secrets"),
        GJH_ACCOUNTS=str(accounts.save({a.name: a for a in roster}, tmp_path / "a.json")),
        GJH_SESSION_KEY="78" * 32,
    ):
        at = signed_in("public_health", "kim", PASSWORD)
        at.switch_page("app_pages/quality.py").run()
        assert not at.exception, at.exception
        assert [i.value for i in at.info] == [t("dq.none", "ko")]


_WIDTH_JS = """() => ({
  width: Math.max(document.documentElement.scrollWidth,
                  document.querySelector('[data-testid="stMain"]').scrollWidth),
  viewport: window.innerWidth,
})"""


@pytest.mark.browser
@pytest.mark.slow
def test_on_a_phone_the_failures_and_their_reasons_read_in_korean_then_english(
    phone: Page,  # noqa: F811 (the fixture imported above)
    start_app: Callable[..., AppServer],
    environ: dict[str, str],
) -> None:
    page = phone
    server = start_app(app_script("official"), environ)
    sign_in(page, server, "kim", PASSWORD, "quality")
    expect(page.get_by_role("heading", name=t("dq.title", "ko")).first).to_be_visible()
    for key in ("dq.explanation.kcd_not_mapped", "dq.explanation.drug_not_mapped"):
        expect(page.get_by_text(t(key, "ko"), exact=False).first).to_be_visible()
    expect(page.get_by_text(t("dq.unexplained", "ko"), exact=False).first).to_be_visible()
    seen = page.evaluate(_WIDTH_JS)
    assert seen["width"] <= seen["viewport"], seen  # nothing overflows a phone's width
    shot(page, "data_quality", "phone-ko")
    # The language switch, from the menu, as on every page.
    page.get_by_role("button", name=t("layout.menu", "ko")).click()
    with rerun(page):
        page.get_by_text("English", exact=True).click()
    # Choosing the page in the menu closes it (as on every page of a phone).
    with rerun(page):
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "link", name=t("dq.title", "en")
        ).click()
    wait_idle(page)
    expect(page.get_by_role("heading", name=t("dq.title", "en")).first).to_be_visible()
    expect(page.get_by_text(t("dq.explanation.kcd_not_mapped", "en")).first).to_be_attached()
    seen = page.evaluate(_WIDTH_JS)
    assert seen["width"] <= seen["viewport"], seen
    shot(page, "data_quality", "phone-en")
