"""English mode is English: every page of the four apps, rendered in Chromium on the small built
city and signed in with the role it serves, shows no Hangul once the data values are set aside;
in Korean the same words are Korean.

How data values are told apart. What a page shows comes from two places: the project (the
catalogue's words, formats of dates, sexes, districts, codes' names) and the records as delivered
(people's names, clinics' names, diagnoses and drugs as the code lists name them, study
descriptions from DICOM headers, the accounts' display names). The test does not look at the
page to decide which is which: before it looks, it reads the values of the second kind from the
lake it built (the vault's names of the people shown, the delivered names the timeline rows of
the people shown keep: ``name``, ``institution_name``, ``prescriber_name``; every institution's
name, the imaging studies' header texts) and from the roster it wrote, and removes each of
those exact strings, longest first, from the page's text. Whatever Hangul is left was written
by the project. Two parts of a page are left out of the text, by design: the language switch,
which names each language in its own words ("한국어"), and an AI model's card
(``models/<service>/card.md``, shown folded in the viewer), the model's own bilingual document
whose Korean not-for-clinical-use statement is kept whole in either language.

The text is the app's whole DOM text (``textContent``): headings, captions, the sidebar,
chart labels (SVG) and the table cells the data grid mirrors into its accessible DOM table for
the rows in view, so the checks also look at the cells that must be words (sex, districts,
dates, the missing clinic).

The timeline keeps structured fields (codes, roles, doses, amounts, values and units) and its
words come from the catalogue, so nothing of it is set aside whole any more: a word such as
주진단, 처방전 or a centre measure's Korean name left on an English page fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from apps.common.i18n import Lang, t
from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, rerun, wait_idle
from lakehouse import accounts, identity
from lakehouse.access import Access, Principal
from tests.apps.screenshots import shot
from tests.apps.served import app_env, every_app, sign_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
PASSWORD = "demo-password-3"
HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
SWITCH = '[data-testid="stSidebar"] [data-testid="stRadio"]'
REASON = "Unconscious on arrival, record needed for treatment"
# The timeline's columns that keep names as delivered (the code lists', the register's, the
# DICOM header's); every other word of the timeline is the project's.
DELIVERED = ("name", "institution_name", "prescriber_name")


@dataclass(frozen=True)
class Cast:
    """Who signs in, and what the pages open."""

    citizen: str  # citizen key of the citizen who signs in (and whom an ER doctor opened)
    patient: str  # citizen key of a patient of the clinician's institution
    study: str  # a study of the clinician's institution with an AI finding
    institution: str


@pytest.fixture(scope="module")
def cast(built_small: Lake) -> Cast:
    findings = built_small.frame("ai.findings", pl.col("citizen_key").is_not_null())
    first = findings.sort("study_instance_uid").row(0, named=True)
    timeline = built_small.frame("gold.citizen_timeline", pl.col("kind") == "measurement")
    citizen = timeline.group_by("citizen_key").len().sort("len", "citizen_key")["citizen_key"][-1]
    return Cast(citizen, first["citizen_key"], first["study_instance_uid"], first["institution"])


@pytest.fixture(scope="module")
def servers(
    built_small: Lake, cast: Cast, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    """Every app on the small city, an account per role, and an emergency access to the
    citizen's record (so the citizen's and the admin's pages have an entry with a reason)."""
    hashed = accounts.hash_password(PASSWORD)
    roster = (
        accounts.Account("minji", "citizen", citizen_key=cast.citizen, password_hash=hashed),
        accounts.Account(
            "dr.lee", "clinician", "이의사", institution=cast.institution, password_hash=hashed
        ),
        accounts.Account("official", "official", "시청 담당자", password_hash=hashed),
        accounts.Account("admin", "admin", "운영자", password_hash=hashed),
    )
    folder = tmp_path_factory.mktemp("english_accounts")
    env = app_env(built_small, roster, folder, "ef" * 32)
    with built_small.active():
        doctor = Access(Principal("dr.er", "clinician", institution="99999999", origin="test"))
        doctor.open_emergency(cast.citizen, REASON)
        doctor.timeline(cast.citizen)
    with every_app(env) as served:
        yield served


def data_values(lake: Lake, cast: Cast) -> list[str]:
    """The record's own strings the pages may show (see the module's docstring), longest
    first."""
    shown = [cast.citizen, cast.patient]
    timeline = lake.frame("gold.citizen_timeline", pl.col("citizen_key").is_in(shown))
    vault = lake.frame("vault.identities", pl.col("citizen_key").is_in(shown))
    studies = lake.frame("silver.imaging_studies")
    values = {
        *(v for c in DELIVERED for v in timeline[c].drop_nulls().to_list()),
        *(identity.decrypt(token) for token in vault["name_enc"].to_list()),
        *lake.frame("silver.institutions")["name"].drop_nulls().to_list(),
        *studies["institution_name"].drop_nulls().to_list(),
        *studies["study_description"].drop_nulls().to_list(),
        "이의사",
        "시청 담당자",
        "운영자",
    }
    return sorted((v for v in values if HANGUL.search(v)), key=len, reverse=True)


def page_text(page: Page, language: Lang) -> str:
    """The app's DOM text without the language switch and the model cards."""
    wait_idle(page)
    return str(
        page.evaluate(
            """([chooser, card]) => {
              const app = document.querySelector('[data-testid="stApp"]').cloneNode(true);
              app.querySelectorAll(chooser).forEach((e) => e.remove());
              app.querySelectorAll('style, script').forEach((e) => e.remove());
              app.querySelectorAll('td, th').forEach((e) => e.append(' | '));
              app.querySelectorAll('[data-testid="stExpander"]').forEach((e) => {
                const summary = e.querySelector('summary');
                if (summary && summary.textContent.includes(card)) e.remove();
              });
              return app.textContent;
            }""",
            [SWITCH, t("triage.viewer.card", language)],
        )
    )


def project_hangul(text: str, values: list[str]) -> list[str]:
    """The Hangul left once the data values are removed: each run of it, with a little
    context, once."""
    for value in values:
        text = text.replace(value, "\u2420")
    runs = re.finditer(f"{HANGUL.pattern}(?:[\\s\\d(),.·]*{HANGUL.pattern})*", text)
    return sorted({text[max(0, m.start() - 12) : m.end() + 12] for m in runs})


def choose(page: Page, language: Lang) -> None:
    """Switch the session's language in the sidebar."""
    if language == "en":
        with rerun(page):
            page.get_by_text("English", exact=True).click()


def visit(page: Page, title_key: str, language: Lang) -> None:
    """Open one of the signed-in app's pages from the sidebar (the session stays)."""
    with rerun(page):
        page.get_by_role("link", name=t(title_key, language)).first.click()
    expect(page.get_by_role("heading", name=t(title_key, language)).first).to_be_visible()
    assert not exception_texts(page)


def drawn(page: Page) -> None:
    """Wait until the page's table has drawn: the data grid mirrors the cells in view into the
    DOM (its accessible table) once it has drawn them, which it does when in view."""
    grid = page.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()
    grid.hover()
    expect(grid.locator("[role=gridcell]").first).to_be_attached()


def add_breakdown(page: Page, dimension: str, language: Lang) -> None:
    """Add a dimension to the uptake table's breakdown (a multiselect)."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=t("official.uptake.by", language))
    box.locator("input").click()
    with rerun(page):
        page.get_by_role("option", name=t(f"dimension.{dimension}", language)).click()
    page.keyboard.press("Escape")


def every_page(page: Page, servers: dict[str, AppServer], cast: Cast, language: Lang) -> dict:
    """Sign in to each app, switch to ``language``, open each of its pages; the page text of
    each, by app and page."""
    texts: dict[str, str] = {}

    def look(name: str) -> None:
        texts[name] = page_text(page, language)
        if language == "en":  # what an English reader sees, kept in docs/screenshots/english
            shot(page, "english", name.replace("/", "-"))

    sign_in(page, servers["citizen"], "minji", PASSWORD)
    choose(page, language)
    look("citizen/home")
    visit(page, "citizen.timeline.title", language)
    drawn(page)
    look("citizen/timeline")
    visit(page, "citizen.share.title", language)
    expect(page.get_by_text(REASON)).to_be_visible()
    look("citizen/share")
    visit(page, "citizen.views.title", language)
    look("citizen/views")

    sign_in(page, servers["clinician"], "dr.lee", PASSWORD, f"viewer?study={cast.study}")
    choose(page, language)
    expect(page.get_by_role("heading", name=t("triage.viewer.title", language))).to_be_visible()
    look("clinician/viewer")
    for tab in ("triage.viewer.history", "triage.reading.title"):
        with rerun(page):
            page.get_by_role("tab", name=t(tab, language)).click()
        look(f"clinician/viewer/{tab}")
    visit(page, "triage.worklist.title", language)
    look("clinician/worklist")
    visit(page, "triage.reading.title", language)
    look("clinician/readings")
    visit(page, "clinician.patient.title", language)
    page.get_by_label(t("clinician.patient.key", language)).fill(cast.patient)
    with rerun(page):
        page.get_by_role("button", name=t("clinician.patient.open", language)).click()
    look("clinician/patient")
    visit(page, "triage.stats.title", language)
    look("clinician/turnaround")

    sign_in(page, servers["official"], "official", PASSWORD)
    choose(page, language)
    drawn(page)
    look("official/overview")
    visit(page, "official.trends.title", language)
    look("official/trends")
    visit(page, "official.uptake.title", language)
    drawn(page)
    look("official/uptake")  # by district, the city's total last
    add_breakdown(page, "sex", language)
    add_breakdown(page, "age_group", language)
    drawn(page)
    look("official/uptake/by-sex-and-age")

    sign_in(page, servers["admin"], "admin", PASSWORD)
    choose(page, language)
    drawn(page)
    look("admin/audit")
    visit(page, "admin.monitoring.title", language)
    look("admin/monitoring")
    return texts


def test_every_page_in_english_shows_no_hangul_but_the_data(
    page: Page, servers: dict[str, AppServer], cast: Cast, built_small: Lake
) -> None:
    values = data_values(built_small, cast)
    texts = every_page(page, servers, cast, "en")
    left = {name: found for name, text in texts.items() if (found := project_hangul(text, values))}
    assert not left, left
    # The words that were Korean in English mode: dates, districts and the total, sexes, the
    # missing clinic.
    assert re.search(r"(?<!\d)\d{1,2} [A-Z][a-z]{2} 20\d\d", texts["citizen/timeline"])
    by_district, by_sex = texts["official/uptake"], texts["official/uptake/by-sex-and-age"]
    total = t("official.uptake.total", "en")
    assert all(name in by_district for name in ("Dong-gu", "Gwangsan-gu", total)), by_district
    assert "Female" in by_sex and "Male" in by_sex
    assert re.search(r" · (Female|Male|Other) · ", texts["clinician/viewer"])  # the patient line
    assert "None" not in texts["citizen/timeline"] + texts["admin/audit"]


def test_every_page_in_korean_shows_korean_words(
    page: Page, servers: dict[str, AppServer], cast: Cast
) -> None:
    texts = every_page(page, servers, cast, "ko")
    by_district, by_sex = texts["official/uptake"], texts["official/uptake/by-sex-and-age"]
    total = t("official.uptake.total", "ko")
    assert all(name in by_district for name in ("동구", "광산구", total)), by_district
    assert "여" in by_sex and "남" in by_sex and not re.search(r"\d[FM]\b", by_sex)
    assert re.search(r" · (여|남|기타) · ", texts["clinician/viewer"])  # the patient line
    assert re.search(r"20\d\d년 \d{1,2}월 \d{1,2}일", texts["citizen/timeline"])
    assert t("action.read:timeline", "ko") in texts["admin/audit"]
    assert "None" not in texts["citizen/timeline"] + texts["admin/audit"]
