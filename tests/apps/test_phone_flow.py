"""Issue 19's Chromium flow at a phone's viewport (390 x 844, device scale 3, ko-KR, Asia/Seoul),
in large text, against every app served on the platform lake: a senior citizen signs in; zooms
the timeline to one month and opens an item; reads an imaging study's finding in plain words
under the reference-model label; sees a medication insight with its records and source;
downloads the IPS (a FHIR Bundle of type document); makes a share code with its QR code; a
clinician of a clinic the citizen never visited redeems it by the QR code's link in another
browser; the citizen sees that reading under "who viewed my record", revokes, and the clinician
is refused.

Each core flow is at most ``MAX_TAPS`` taps from the home page (the tile, then the page's
actions), counted by ``Taps``; each step's access is in the audit log. Screenshots go to
``<screenshots>/phone-flow`` (``make screenshots``: docs/screenshots/phone-flow).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from urllib.parse import urlsplit

import polars as pl
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from apps.common.i18n import t
from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, open_app, rerun
from lakehouse import accounts
from lakehouse.access import Access, Principal
from lakehouse.accounts import SIGN_IN_LOG
from tests.apps.screenshots import shot
from tests.apps.served import app_env, every_app, sign_in
from tests.lakehouse.test_access import consent_states
from tests.pipelines.conftest import Lake

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.security,
]
PASSWORD = "demo-password-9"
PHONE: ViewportSize = {"width": 390, "height": 844}
SENIOR_AGE = 65
MAX_TAPS = 3
MEDICINE_RULES = ("combination", "same_ingredient", "same_class")
SIDEBAR = '[data-testid="stSidebar"]'
TILES = ".st-key-home_tiles"
FLOW = "phone-flow"
CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}")

# The centre of the part drawn inside the plot area of the first item of the timeline's
# picture seen there after a zoom (plotly keeps the items outside the range in the page,
# clipped; a medicine's bar may run in from before the range).
_ITEM_IN_VIEW_JS = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  const inView = (el) => {
    const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
    const r = el.getBoundingClientRect();
    const left = Math.max(r.left, area.left + 2), right = Math.min(r.right, area.right - 2);
    const y = r.top + r.height / 2;
    return r.height > 0 && left < right && y > area.top && y < area.bottom
      ? {x: (left + right) / 2, y} : null;
  };
  for (const el of plot.querySelectorAll('.scatterlayer .point, .barlayer .point')) {
    if (!inView(el)) continue;
    el.scrollIntoView({block: 'center'});  // on the screen, where a finger can tap it
    return inView(el);
  }
  return null;
}"""


def ko(key: str, **values: object) -> str:
    return t(key, "ko", **values)


@pytest.fixture(scope="module")
def senior(platform_lake: Lake) -> str:
    """A citizen aged 65 or more whose record link stands, with an imaging study of their own
    and a medication insight, as the access layer itself reports them (the richest record
    first)."""
    with platform_lake.active():
        linked = consent_states(platform_lake).filter(pl.col("state") == "linked")["citizen_key"]
        born_by = date.today().year - SENIOR_AGE
        old = platform_lake.frame("silver.citizens", pl.col("birth_year") <= born_by)
        imaged = platform_lake.frame("silver.imaging_studies")["citizen_key"].drop_nulls()
        ranked = (
            platform_lake.frame("gold.citizen_timeline")
            .filter(
                pl.col("citizen_key").is_in(linked.implode())
                & pl.col("citizen_key").is_in(old["citizen_key"].implode())
                & pl.col("citizen_key").is_in(imaged.implode())
            )
            .group_by("citizen_key")
            .len()
            .sort("len", "citizen_key", descending=[True, False])
        )
        for key in ranked["citizen_key"].to_list():
            layer = Access(Principal("phone-flow-cast", "citizen", citizen_key=key, origin="test"))
            if layer.my_studies(key).is_empty():
                continue
            if any(i.rule in MEDICINE_RULES for i in layer.insights(key).items):
                return str(key)
    pytest.fail("the demo city has no linked senior with a study and a medication insight")


@pytest.fixture(scope="module")
def stranger(platform_lake: Lake, senior: str) -> str:
    """A clinic the senior never visited, nor had images taken at."""
    mine = pl.col("citizen_key") == senior
    near = set(platform_lake.frame("gold.citizen_timeline", mine)["institution"].drop_nulls())
    near |= set(platform_lake.frame("silver.imaging_studies", mine)["institution"].drop_nulls())
    clinics = platform_lake.frame("silver.institutions")["ykiho"].sort().to_list()
    return next(c for c in clinics if c not in near)


@pytest.fixture(scope="module")
def servers(
    platform_lake: Lake, senior: str, stranger: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    hashed = accounts.hash_password(PASSWORD)
    roster = (
        accounts.Account("halmeoni", "citizen", citizen_key=senior, password_hash=hashed),
        accounts.Account(
            "dr.choi", "clinician", "최의사", institution=stranger, password_hash=hashed
        ),
    )
    folder = tmp_path_factory.mktemp("phone_flow_accounts")
    env = app_env(platform_lake, roster, folder, "9f" * 32)
    with every_app(env, log_dir=folder / "logs") as served:
        yield served


def phone_context(browser: Browser) -> BrowserContext:
    return browser.new_context(
        viewport=PHONE,
        device_scale_factor=3,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        color_scheme="light",
        accept_downloads=True,
    )


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = phone_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


class Taps:
    """The taps of one flow from the home page: the tile, then the page's own controls."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.count = 0

    def tile(self, title_key: str) -> None:
        self.tap(self.page.locator(TILES).get_by_role("link", name=ko(title_key)))
        expect(self.page.get_by_role("heading", name=ko(title_key)).first).to_be_visible()

    def tap(self, target: Locator, *, reruns: bool = True) -> None:
        self.count += 1
        if reruns:
            with rerun(self.page):
                target.click()
        else:
            target.click()

    def at(self, x: float, y: float) -> None:
        """A tap on the page at ``x``, ``y`` (an item of a chart); the app reruns."""
        self.count += 1
        self.page.mouse.move(x, y)  # plotly takes a click on the item it hovers
        self.page.wait_for_selector(".js-plotly-plot .hoverlayer .hovertext")
        with rerun(self.page):
            self.page.mouse.click(x, y)


def home(page: Page) -> Taps:
    """Back to the home page by the menu's first entry (opening the menu unless it is open); a
    new flow's taps start there."""
    if page.locator(SIDEBAR).get_attribute("data-collapsed") != "false":
        page.get_by_role("button", name=ko("layout.menu")).click()
        expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")
    with rerun(page):
        page.locator(SIDEBAR).get_by_role("link", name=ko("citizen.home.title")).click()
    expect(page.locator(TILES)).to_be_visible()
    return Taps(page)


def large_text(page: Page) -> None:
    """Large text on, from the menu (left open)."""
    page.get_by_role("button", name=ko("layout.menu")).click()
    expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")
    with rerun(page):
        page.locator(SIDEBAR).get_by_text(ko("layout.large_text"), exact=True).click()


def audited(lake: Lake, account: str) -> pl.DataFrame:
    return lake.frame("ops.audit_log", pl.col("account") == account)


def actions(lake: Lake, account: str, outcome: str = "allowed") -> set[str]:
    return set(audited(lake, account).filter(pl.col("outcome") == outcome)["action"].to_list())


def test_a_senior_citizen_on_a_phone_through_every_core_flow(
    phone: Page,
    browser: Browser,
    servers: dict[str, AppServer],
    senior: str,
    platform_lake: Lake,
) -> None:
    page = phone
    # 1. Sign in; large text from the menu.
    open_app(page, servers["citizen"].url)
    shot(page, FLOW, "sign-in")
    sign_in(page, servers["citizen"], "halmeoni", PASSWORD)
    expect(page.locator(TILES)).to_be_visible()
    large_text(page)
    taps = home(page)
    shot(page, FLOW, "home-large-text")
    with platform_lake.active():  # the table and what the server's outbox still holds
        signed = SIGN_IN_LOG.scan().filter(pl.col("account") == "halmeoni").collect()
    assert signed["outcome"].to_list() == ["ok"]
    assert "read:name" in actions(platform_lake, "halmeoni")  # the home page's greeting

    # 2. The timeline: the tile, the one-month zoom, an item of the picture.
    taps.tile("citizen.timeline.title")
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    month = chart.locator(".rangeselector .button", has_text=ko("timeline.zoom.month"))
    month.evaluate("el => el.scrollIntoView({block: 'center'})")  # not under the page's header
    taps.tap(month, reruns=False)  # a zoom in the browser: Streamlit does not rerun
    x_range = page.evaluate(
        "() => document.querySelector('.js-plotly-plot')._fullLayout.xaxis.range"
    )
    span = date.fromisoformat(str(x_range[1])[:10]) - date.fromisoformat(str(x_range[0])[:10])
    assert 27 <= span.days <= 31, x_range
    shot(page, FLOW, "timeline-one-month")
    item = page.evaluate(_ITEM_IN_VIEW_JS)
    assert item is not None, "nothing drawn in the last month of the timeline"
    taps.at(item["x"], item["y"])
    details = page.get_by_text(f"{ko('column.institution')}: ")
    expect(details.first).to_be_visible()
    assert taps.count <= MAX_TAPS
    assert not exception_texts(page)
    shot(page, FLOW, "timeline-item")
    assert "read:timeline" in actions(platform_lake, "halmeoni")

    # 3. An imaging study: its finding in plain words, under the reference-model label.
    taps = home(page)
    taps.tile("citizen.images.title")
    expect(page.get_by_text(ko("citizen.images.label"))).to_be_visible()
    expect(page.get_by_text(ko("citizen.images.findings"), exact=True)).to_be_visible()
    expect(page.get_by_text("AI가 ‘").first).to_be_visible()  # what the model looks for
    assert taps.count <= MAX_TAPS
    shot(page, FLOW, "imaging-finding")
    assert {"read:my_images", "read:my_study"} <= actions(platform_lake, "halmeoni")

    # 4. A medication insight, with the records it comes from and its source.
    taps = home(page)
    taps.tile("citizen.insights.title")
    expect(page.get_by_text(ko("citizen.insights.medicines"))).to_be_visible()
    expect(page.get_by_text(ko("citizen.insights.records")).first).to_be_visible()
    expect(page.get_by_text(ko("citizen.insights.source", source="")).first).to_be_visible()
    assert taps.count <= MAX_TAPS
    shot(page, FLOW, "medication-insight")
    assert "read:insights" in actions(platform_lake, "halmeoni")

    # 5. The IPS download: a FHIR Bundle of type document.
    taps = home(page)
    taps.tile("citizen.summary.title")
    with page.expect_download() as downloading:
        taps.tap(page.get_by_role("button", name=ko("citizen.summary.download")), reruns=False)
    ips = json.loads(downloading.value.path().read_text(encoding="utf-8"))
    assert ips["resourceType"] == "Bundle" and ips["type"] == "document"
    assert ips["entry"][0]["resource"]["resourceType"] == "Composition"
    assert taps.count <= MAX_TAPS
    shot(page, FLOW, "ips-download")
    assert {"read:summary", "export:ips"} <= actions(platform_lake, "halmeoni")

    # 6. A share code with its QR code and link.
    taps = home(page)
    taps.tile("citizen.share.title")
    taps.tap(page.get_by_role("button", name=ko("citizen.share.create")))
    banner = page.get_by_text(CODE)
    expect(banner.first).to_be_visible()
    expect(page.get_by_role("img", name=ko("access.share.qr_alt"))).to_be_visible()
    link = page.get_by_text(re.compile(r"/patient\?share=")).inner_text().strip()
    assert taps.count <= MAX_TAPS
    shot(page, FLOW, "share-code-qr")
    assert "share:create" in actions(platform_lake, "halmeoni")

    # 7. The clinician of a clinic the citizen never visited opens the QR code's link in
    # another browser, signs in, and the record opens, shared.
    scanned = phone_context(browser)
    try:
        doctor = scanned.new_page()
        where = urlsplit(link)
        sign_in(doctor, servers["clinician"], "dr.choi", PASSWORD, f"{where.path}?{where.query}")
        basis = ko("clinician.patient.basis", basis=ko("basis.share"))
        expect(doctor.get_by_text(basis)).to_be_visible()
        shot(doctor, FLOW, "clinician-shared-by-link")
        log = audited(platform_lake, "dr.choi").filter(pl.col("outcome") == "allowed")
        assert "share:redeem" in log["action"].to_list()
        assert "share" in log.filter(pl.col("subject_key") == senior)["purpose"].to_list()

        # 8. The citizen sees that reading under "who viewed my record".
        taps = home(page)
        taps.tile("citizen.views.title")
        expect(page.get_by_text("최의사").first).to_be_attached()  # a grid cell, by name
        assert taps.count <= MAX_TAPS
        shot(page, FLOW, "who-viewed")
        assert "read:access_history" in actions(platform_lake, "halmeoni")

        # 9. Revoked from the sharing page; the clinician is refused.
        taps = home(page)
        taps.tile("citizen.share.title")
        taps.tap(page.get_by_role("button", name=ko("access.share.revoke_now")))
        expect(page.get_by_text(CODE)).to_have_count(0)
        assert taps.count <= MAX_TAPS
        shot(page, FLOW, "revoked")
        assert "grant:revoke" in actions(platform_lake, "halmeoni")
        refused_before = audited(platform_lake, "dr.choi").filter(pl.col("outcome") == "denied")
        open_app(doctor, servers["clinician"].url, "patient")
        doctor.get_by_label(ko("clinician.patient.key")).fill(senior)
        with rerun(doctor):
            doctor.get_by_role("button", name=ko("clinician.patient.open")).click()
        expect(doctor.get_by_text("최근 우리 기관에서 진료한 환자가 아니고")).to_have_count(1)
        shot(doctor, FLOW, "clinician-refused")
        refused = audited(platform_lake, "dr.choi").filter(pl.col("outcome") == "denied")
        assert refused.height > refused_before.height
        assert senior in refused["subject_key"].to_list()
    finally:
        scanned.close()
