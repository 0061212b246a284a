"""What a 75-year-old meets on a phone (issue 19, part 8): the citizen app in Chromium at a
phone's viewport (390 x 844, device scale 3) on the small built city, in normal and in large
text.

- The menu control has a visible label and an accessible name in the session's language (it was
  an unlabelled "»" holding the menu, the language and large text).
- Choosing a page in the menu closes it (it stayed open over the page).
- Large text makes the page title larger (it made it smaller), the sidebar's labels wrap (they
  were cut off), and the table and the chart text grow with it; chart text is never under
  ``CHART_PX`` (it was 12.8 px).
- Nothing overflows the page's width, in either mode.

The screenshots go to ``<screenshots>/phone`` (``make screenshots``: docs/screenshots/phone).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from apps.citizen.flows import FLOWS
from apps.common.i18n import t
from apps.common.theme import CHART_PX
from gjh.bench.app_server import AppServer, run_app
from gjh.bench.browser import rerun
from lakehouse import accounts
from tests.apps.screenshots import shot
from tests.apps.served import app_env, app_script, sign_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
PASSWORD = "demo-password-6"
PHONE: ViewportSize = {"width": 390, "height": 844}
SIDEBAR = '[data-testid="stSidebar"]'
TILES = ".st-key-home_tiles"

# What the page measures: the title's size, the smallest chart text, the table's zoom (its
# canvas is drawn in pixels), how wide the page's content is against the viewport, and the
# sidebar labels cut off (wider than their box).
_MEASURE_JS = """() => {
  const title = document.querySelector('[data-testid="stMain"] h1');
  const chart = [...document.querySelectorAll('.js-plotly-plot text')]
    .filter((el) => el.textContent.trim() && el.getClientRects().length > 0)
    .map((el) => parseFloat(getComputedStyle(el).fontSize));
  const main = document.querySelector('[data-testid="stMain"]');
  const table = document.querySelector('[data-testid="stDataFrame"]');
  const labels = [...document.querySelectorAll(
      '[data-testid="stSidebarNavLink"] span, [data-testid="stSidebar"] label p')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent);
  return {
    title: title ? parseFloat(getComputedStyle(title).fontSize) : null,
    chart: chart.length ? Math.min(...chart) : null,
    table: table ? parseFloat(getComputedStyle(table).zoom) : null,
    width: Math.max(document.documentElement.scrollWidth, main.scrollWidth),
    viewport: window.innerWidth,
    cut: labels,
  };
}"""


@pytest.fixture(scope="module")
def citizen_app(built_small: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The citizen app on the small city, signing in the citizen with the longest timeline."""
    timeline = built_small.frame("gold.citizen_timeline")
    citizen = timeline.group_by("citizen_key").len().sort("len", "citizen_key")["citizen_key"][-1]
    roster = [
        accounts.Account(
            "halmeoni",
            "citizen",
            citizen_key=citizen,
            password_hash=accounts.hash_password(PASSWORD),
        )
    ]
    folder = tmp_path_factory.mktemp("phone_accounts")
    env = app_env(built_small, roster, folder, "cd" * 32)
    with run_app(app_script("citizen"), env, log_dir=folder / "logs") as server:
        yield server


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=3,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        color_scheme="light",
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def measure(page: Page) -> dict:
    return page.evaluate(_MEASURE_JS)


def collapsed(page: Page) -> str | None:
    return page.locator(SIDEBAR).get_attribute("data-collapsed")


def open_menu(page: Page) -> None:
    """Open the menu by its labelled button, as a phone user would."""
    menu = page.get_by_role("button", name=t("layout.menu", "ko"))
    expect(menu).to_be_visible()
    expect(menu).to_contain_text(t("layout.menu", "ko"))  # a visible label, not only a name
    menu.click()
    expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")


def choose(page: Page, title_key: str) -> None:
    """Choose a page in the open menu."""
    with rerun(page):
        page.locator(SIDEBAR).get_by_role("link", name=t(title_key, "ko")).click()


def tap_tile(page: Page, title_key: str) -> None:
    """Tap a tile of the home page, and see its page."""
    with rerun(page):
        page.locator(TILES).get_by_role("link", name=t(title_key, "ko")).click()
    expect(page.get_by_role("heading", name=t(title_key, "ko")).first).to_be_visible()


def fits(seen: dict) -> None:
    assert seen["width"] <= seen["viewport"], seen  # no horizontal overflow of the page body


def test_a_senior_on_a_phone_finds_the_menu_and_reads_large_text(
    citizen_app: AppServer, phone: Page
) -> None:
    page = phone
    sign_in(page, citizen_app, "halmeoni", PASSWORD)
    expect(page.get_by_role("link", name=t("citizen.timeline.title", "ko")).first).to_be_visible()
    shot(page, "phone", "home")
    fits(measure(page))

    # Normal text: one tap from home to the timeline; chart text at least CHART_PX.
    tap_tile(page, "citizen.timeline.title")
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    normal = measure(page)
    fits(normal)
    assert normal["chart"] is not None and normal["chart"] >= CHART_PX[False], normal
    shot(page, "phone", "timeline")

    # The menu: labelled, opens, and closes once a page is chosen.
    open_menu(page)
    shot(page, "phone", "menu")
    with rerun(page):
        page.locator(SIDEBAR).get_by_text(t("layout.large_text", "ko"), exact=True).click()
    assert not measure(page)["cut"]  # the sidebar's labels wrap, none cut off
    shot(page, "phone", "menu-large-text")
    choose(page, "citizen.share.title")
    expect(page.get_by_role("heading", name=t("citizen.share.title", "ko"))).to_be_visible()
    assert collapsed(page) == "true"  # the menu closed over the chosen page
    fits(measure(page))
    shot(page, "phone", "share-large-text")

    # Large text: the title larger than in normal text, the chart text too, nothing overflows.
    open_menu(page)
    choose(page, "citizen.timeline.title")
    assert collapsed(page) == "true"
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    large = measure(page)
    fits(large)
    assert large["title"] > normal["title"], (normal, large)
    assert large["chart"] >= CHART_PX[True] > CHART_PX[False], large
    assert normal["table"] == 1 and large["table"] > 1, (normal, large)  # the table grows too
    shot(page, "phone", "timeline-large-text")

    open_menu(page)
    choose(page, "citizen.views.title")
    fits(measure(page))
    shot(page, "phone", "views-large-text")


def test_the_home_page_leads_to_each_core_flow_in_one_tap(
    citizen_app: AppServer, phone: Page
) -> None:
    """Each tile opens its page, and the way back home is the menu's first entry."""
    page = phone
    sign_in(page, citizen_app, "halmeoni", PASSWORD)
    for title in (flow.title for flow in FLOWS):
        tap_tile(page, title)
        fits(measure(page))
        open_menu(page)
        choose(page, "citizen.home.title")
        assert collapsed(page) == "true"
        expect(page.locator(TILES)).to_be_visible()
