"""The adverse drug event signals page (``apps/public_health/app_pages/signals.py``) on a lakehouse
holding a published ``gold.ade_signals``: under AppTest, the forest plot, the table with names
(no bare code, no count of 1-10), the method and its limits, Korean first and English; the read
is the access layer's, official only and audited; in Chromium at a phone's 390 px, the plot
renders and nothing overflows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, expect
from streamlit.testing.v1 import AppTest

from apps.common.i18n import t
from gjh.bench.app_server import AppServer, run_app
from lakehouse import accounts, delta
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.omop.signals import signals
from pipelines.transform.signals import TABLE, prespecified, publish
from tests.apps.screenshots import shot
from tests.apps.served import app_env, app_script, sign_in
from tests.apps.signed import signed_in
from tests.lakehouse.omop.signal_frames import SETTINGS, Omop
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]
PASSWORD = "demo-password-22"
KNOWN, NEGATIVE = prespecified()
# Persons with the drug first and with the event first, per district: the city has a signal,
# one district's 4 is hidden (and a complement with it).
SEQUENCES = {"24010": (40, 12), "24020": (4, 12), "24030": (30, 11)}


def _published() -> pl.DataFrame:
    omop = Omop()
    for district, (drug_first, event_first) in SEQUENCES.items():
        for pair, scale in ((KNOWN, 1), (NEGATIVE, 0)):
            drug, event = pair
            for i in range(drug_first if scale else 15):
                pid = omop.person(district)
                omop.drug(pid, 200 + 3 * i, drug)
                omop.event(pid, 230 + 3 * i, event)
            for i in range(event_first if scale else 15):
                pid = omop.person(district)
                omop.event(pid, 200 + 3 * i, event)
                omop.drug(pid, 230 + 3 * i, drug)
    return publish(signals(*omop.frames(), SETTINGS, prespecified()), SETTINGS)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    folder = tmp_path_factory.mktemp("signals_page")
    lake = Lake(folder / "lakehouse", folder / "sources")
    lake.sources.mkdir(parents=True)
    with lake.active():
        delta.replace(TABLE, _published(), "scope IS NOT NULL")
    roster = [
        accounts.Account(
            "kim", "official", "시청 담당자", password_hash=accounts.hash_password(PASSWORD)
        )
    ]
    env = app_env(lake, roster, folder, "ef" * 32)
    with pytest.MonkeyPatch.context() as patch, lake.active():
        for name, value in env.items():
            patch.setenv(name, value)
        yield lake


def _page(language: str = "ko") -> AppTest:
    at = signed_in("public_health", "kim", PASSWORD, language)  # type: ignore[arg-type]
    at.switch_page("app_pages/signals.py")
    return at.run()


def test_the_page_shows_the_forest_plot_the_pairs_and_the_method(lake: Lake) -> None:
    at = _page()
    assert not at.exception, at.exception
    assert at.title[0].value == t("signals.title", "ko")
    headers = [h.value for h in at.subheader]
    assert headers == [
        t("signals.forest.title", "ko"),
        t("signals.table.title", "ko"),
        t("signals.method.title", "ko"),
    ]
    assert len(at.get("plotly_chart")) == 1
    table = pl.from_pandas(at.dataframe[0].value)
    drugs = table[t("signals.column.drug", "ko")].to_list()
    assert all("아목시실린" in d for d in drugs)  # named, never the bare code
    assert not any(KNOWN[0] == d for d in drugs)
    marks = table[t("signals.column.mark", "ko")].to_list()
    assert t("signals.mark.signal", "ko") in marks
    for column in ("signals.column.drug_first", "signals.column.event_first"):
        counts = table[t(column, "ko")].drop_nulls()
        assert not counts.is_between(1, 10).any()
    text = " ".join(m.value for m in at.markdown)
    for key in ("signals.method.limits", "signals.method.trend"):
        assert t(key, "ko").split(":")[0] in text
    assert t("signals.synthetic", "ko") in [i.value for i in at.info]
    log = lake.frame("ops.audit_log", pl.col("account") == "kim")
    assert "ade signals city" in log["detail"].to_list()


def test_a_district_with_a_hidden_count_says_so(lake: Lake) -> None:
    at = _page()
    at.selectbox(key="signals_scope.ko").set_value("24020").run()
    assert not at.exception, at.exception
    table = pl.from_pandas(at.dataframe[0].value)
    assert t("signals.mark.hidden", "ko") in table[t("signals.column.mark", "ko")].to_list()


def test_the_page_in_english(lake: Lake) -> None:
    at = _page("en")
    assert not at.exception, at.exception
    assert at.title[0].value == t("signals.title", "en")
    assert t("signals.column.adjusted_sr", "en") in pl.from_pandas(at.dataframe[0].value).columns


@pytest.mark.security
@pytest.mark.parametrize(
    "principal",
    [
        Principal("minji", "citizen", citizen_key="C" + "0" * 32, origin="citizen"),
        Principal("dr.park", "clinician", institution="12345678", origin="clinician"),
    ],
    ids=["citizen", "clinician"],
)
def test_signals_are_refused_to_citizens_and_clinicians_and_audited(
    principal: Principal, lake: Lake
) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        Access(principal).ade_signals()
    assert refused.value.code == "role"
    log = lake.frame("ops.audit_log", pl.col("account") == principal.account)
    assert log.filter(pl.col("outcome") == "denied")["action"].to_list() == ["read:aggregate"]


@pytest.mark.browser
@pytest.mark.slow
def test_on_a_phone_the_plot_renders_and_nothing_overflows(
    lake: Lake, browser: Browser, tmp_path: Path
) -> None:
    import os

    env = {k: os.environ[k] for k in ("LAKEHOUSE_URI", "GJH_SECRETS_DIR", "GJH_ACCOUNTS")}
    env["GJH_SESSION_KEY"] = os.environ["GJH_SESSION_KEY"]
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="ko-KR"
    )
    try:
        page = context.new_page()
        server: AppServer
        with run_app(app_script("official"), env, log_dir=tmp_path) as server:
            sign_in(page, server, "kim", PASSWORD, "signals")
            expect(page.get_by_role("heading", name=t("signals.title", "ko"))).to_be_visible()
            plot = page.locator(".js-plotly-plot").first
            expect(plot).to_be_visible()
            expect(plot.locator(".scatterlayer .point").first).to_be_attached()
            page.get_by_role(
                "heading", name=t("signals.method.title", "ko")
            ).scroll_into_view_if_needed()
            width = page.evaluate(
                "() => Math.max(document.documentElement.scrollWidth,"
                " document.querySelector('[data-testid=\"stMain\"]').scrollWidth)"
            )
            assert width <= 391
            page.evaluate("() => window.scrollTo(0, 0)")
            shot(page, "signals", "phone-ko")
    finally:
        context.close()
