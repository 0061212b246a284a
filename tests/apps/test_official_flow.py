"""Issue 20's Chromium flow for a city official, against the apps served on the demo city: sign in;
the KPI cards show their targets (the city's, and a deployment's own marked as such); the map
renders with no tile server (every request the page makes stays on this machine); choosing a
district changes its figures; a CSV export holds no count of 1-10; and the routes to
person-level data (the citizens' and the clinicians' apps) refuse the official's account, each
refusal in the access log. Screenshots go to ``<screenshots>/official-flow`` (``make
screenshots``: docs/screenshots/official-flow).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlsplit

import polars as pl
import pytest
from playwright.sync_api import Page, Request, expect

from apps.common.i18n import t
from gjh.bench.app_server import AppServer
from gjh.bench.browser import exception_texts, open_app, rerun
from lakehouse import accounts
from tests.apps.screenshots import shot
from tests.apps.served import app_env, every_app, sign_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration, pytest.mark.security]
PASSWORD = "official-flow-1"
FLOW = "official-flow"
SMALL = range(1, 11)


def ko(key: str, **values: object) -> str:
    return t(key, "ko", **values)


@pytest.fixture(scope="module")
def servers(
    platform_lake: Lake, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    hashed = accounts.hash_password(PASSWORD)
    roster = (accounts.Account("official", "official", "시청 담당자", password_hash=hashed),)
    env = app_env(platform_lake, roster, tmp_path_factory.mktemp("official_flow"), "ef" * 32)
    with every_app(env) as servers:
        yield servers


def plot_text(page: Page, key: str) -> str:
    """The words and figures drawn in the chart of ``key`` (its SVG text)."""
    chart = page.locator(f".st-key-{key} .js-plotly-plot")
    expect(chart).to_be_visible()
    return chart.inner_text()


def test_an_official_reads_the_programme_against_its_targets_by_district(
    page: Page, servers: dict[str, AppServer], platform_lake: Lake
) -> None:
    requests: list[str] = []

    def remember(request: Request) -> None:
        requests.append(request.url)

    page.on("request", remember)
    # 1. Sign in as an official: the overview of KPI cards.
    sign_in(page, servers["official"], "official", PASSWORD)
    expect(page.get_by_role("heading", name=ko("official.overview.title"))).to_be_visible()
    # 2. The cards show their targets: the city's (with its source) and the deployment's own.
    city = ko("kpi.target.source", target=ko("kpi.unit.institutions", value="100"))
    expect(page.get_by_text(city, exact=True).first).to_be_visible()
    first_round = ko("kpi.target.source", target=ko("kpi.unit.institutions", value="15"))
    expect(page.get_by_text(first_round, exact=True).first).to_be_visible()
    share = ko("kpi.unit.share", value="10.0%")
    expect(page.get_by_text(ko("kpi.target.deployment", target=share)).first).to_be_visible()
    shot(page, FLOW, "overview-targets")
    # 3. The map renders, offline.
    with rerun(page):
        page.get_by_role("link", name=ko("compare.title")).click()
    expect(page.get_by_role("heading", name=ko("compare.title"))).to_be_visible()
    district_map = page.locator(".st-key-compare_map .js-plotly-plot")
    expect(district_map).to_be_visible()
    expect(district_map.locator("canvas").first).to_be_visible()
    district_map.scroll_into_view_if_needed()
    shot(page, FLOW, "district-map")
    # 4. Choosing a district changes its figures: its dongs, its funnel, its pyramid.
    before = {k: plot_text(page, k) for k in ("compare_funnel", "compare_pyramid")}
    area = page.locator(".st-key-compare_area-ko")
    area.scroll_into_view_if_needed()
    area.get_by_role("combobox").click()
    with rerun(page):
        page.get_by_role("option", name="서구", exact=True).click()
    expect(page.get_by_text(ko("compare.dongs.title", area="서구"))).to_be_visible()
    after = {k: plot_text(page, k) for k in ("compare_funnel", "compare_pyramid")}
    assert all(after[k] != before[k] for k in before), (before, after)
    page.locator(".st-key-compare_dong_map").scroll_into_view_if_needed()
    shot(page, FLOW, "district-chosen")
    # 5. A CSV export holds no count of 1-10, and is audited.
    button = page.locator(".st-key-export_rates_csv button")
    button.scroll_into_view_if_needed()
    with page.expect_download() as download:
        button.click()
    saved = download.value.path()
    content = saved.read_bytes().decode("utf-8-sig")
    table = pl.read_csv(io.StringIO(content), infer_schema=False)
    counts = [c for c in (ko("measure.app_users"), ko("measure.residents")) if c in table.columns]
    assert counts, table.columns
    for column in counts:
        values = table[column].str.replace_all(",", "").cast(pl.Int64, strict=False)
        assert not values.is_in(list(SMALL)).any(), (column, table)
    exports = platform_lake.frame(
        "ops.audit_log",
        (pl.col("account") == "official") & (pl.col("action") == "export:aggregate"),
    )
    assert exports.height >= 1 and set(exports["outcome"]) == {"allowed"}
    # Every request the pages made stayed on this machine: no tile server, no CDN.
    hosts = {urlsplit(u).hostname for u in requests if urlsplit(u).scheme in ("http", "https")}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts
    assert not exception_texts(page)


def test_the_routes_to_person_level_data_refuse_an_official_in_the_access_log(
    page: Page, servers: dict[str, AppServer], platform_lake: Lake
) -> None:
    # 6. The citizens' and the clinicians' apps refuse the official's account, and say why.
    for app in ("citizen", "clinician"):
        open_app(page, servers[app].url)
        page.get_by_label("아이디").fill("official")
        page.get_by_label("비밀번호").fill(PASSWORD)
        with rerun(page):
            page.get_by_role("button", name="로그인").click()
        expect(page.get_by_text(ko("auth.wrong_app", role=ko("role.official")))).to_be_visible()
        shot(page, FLOW, f"refused-at-{app}")
    refused = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "official") & (pl.col("action") == "open:app")
    )
    assert set(refused["outcome"]) == {"denied"} and set(refused["refusal"]) == {"role"}
    assert {
        app for app in ("citizen", "clinician") if refused["detail"].str.contains(app).any()
    } == {
        "citizen",
        "clinician",
    }
    # Nothing person-level was read by the official, by any route.
    reads = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "official") & pl.col("subject_key").is_not_null()
    )
    assert reads.filter(pl.col("outcome") == "allowed").is_empty()
