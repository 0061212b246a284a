"""The officials' comparison page (``apps/public_health/app_pages/compare.py``) on the built small
city: with Streamlit's AppTest, rates from the published tables only, the age-standardised
comparison under a named standard population (and WHO's on the switch), the offline map and the
pyramid, no count of 1-10 anywhere it shows, every read audited; in Chromium, the downloads made
only when pressed (the map as PNG, a table as CSV with no count of 1-10), each audited."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Page
from streamlit.testing.v1 import AppTest

from apps.common.i18n import t
from apps.public_health import charts
from gjh.bench.app_server import AppServer
from lakehouse import accounts
from lakehouse.access.exports import small_counts
from tests.apps.served import app_env, app_script, sign_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APP = Path(__file__).resolve().parents[2] / "apps/public_health/streamlit_app.py"
PASSWORD = "demo-password-1"


@pytest.fixture(scope="module")
def environ(built_small: Lake, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The app's environment on the small city, with an official's account."""
    roster = (
        accounts.Account(
            "official", "official", "시청 담당자", password_hash=accounts.hash_password(PASSWORD)
        ),
    )
    folder = tmp_path_factory.mktemp("compare_accounts")
    return app_env(built_small, roster, folder, "cd" * 32)


@pytest.fixture(scope="module")
def env(environ: dict[str, str], built_small: Lake) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch, built_small.active():
        for name, value in environ.items():
            patch.setenv(name, value)
        yield


def compare_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    at.text_input(key="sign_in_name").input("official")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    at.switch_page("app_pages/compare.py")
    return at.run()


def tables(at: AppTest) -> list[pl.DataFrame]:
    return [pl.from_pandas(frame.value) for frame in at.dataframe]


@pytest.mark.usefixtures("env")
def test_the_compare_page_shows_rates_standardised_rates_map_and_pyramid(
    built_small: Lake,
) -> None:
    at = compare_page()
    assert not at.exception, at.exception
    assert at.title[0].value == t("compare.title", "ko")
    headers = [h.value for h in at.subheader]
    assert headers == [
        t(k, "ko")
        for k in (
            "compare.crude.title",
            "compare.dsr.title",
            "compare.map.title",
            "compare.area.title",
        )
    ]
    # The standard population is named, with its source.
    korea = t("compare.standard.korea_2024", "ko")
    assert any(korea in c.value and "행정안전부" in c.value for c in at.caption)
    rates, dsr = tables(at)
    district = t("dimension.district_code", "ko")
    # Five districts and the city's total, by name.
    assert set(rates[district]) >= {"동구", "서구", "남구", "북구", "광산구", "전체"}
    assert dsr[district].to_list()[0] == "전체"  # the city first: the benchmark
    # Nothing shown is a count of 1-10 (rates are not counts); no "None" on a Korean screen.
    for table in (rates, dsr):
        counts = table.select(t("measure.app_users", "ko"), t("measure.residents", "ko"))
        as_numbers = counts.select(pl.all().str.replace_all(",", "").cast(pl.Int64, strict=False))
        assert not small_counts(as_numbers)
        assert "None" not in table.to_pandas().to_string()
    # A suppressed count gives no rate, and is flagged in words.
    flag = t("compare.suppressed", "ko")
    hidden = rates.filter(pl.col(flag) != "")
    assert set(hidden[t("compare.column.rate", "ko")]) <= {"–"}
    # Each district without a standardised rate says why.
    for row in dsr.iter_rows(named=True):
        if row[t("compare.column.rate", "ko")] == "–":
            assert row[t("compare.column.status", "ko")]
    # The map: offline, its view computed from the boundaries, attributed to KOSTAT.
    (dsr_chart, district_map, dong_map, funnel, pyramid) = at.get("plotly_chart")
    assert '"type":"scatter"' in dsr_chart.proto.spec.replace(" ", "")
    figure = district_map.proto.spec
    assert '"white-bg"' in figure and "fitbounds" not in figure
    centre, zoom = charts.view(charts.boundaries("districts"))
    assert f'"zoom":{zoom}' in figure.replace(" ", "")
    assert f'"lon":{centre["lon"]}' in figure.replace(" ", "")
    assert "Statistics Korea (KOSTAT)" in figure
    # The dongs' map, offline too; the funnel's five steps, in order.
    assert '"white-bg"' in dong_map.proto.spec and "fitbounds" not in dong_map.proto.spec
    steps = [t(f"compare.funnel.stage.{m}", "ko") for m in charts.FUNNEL]
    assert json.loads(funnel.proto.spec)["data"][0]["y"] == steps
    # The pyramid has users and residents for both sexes.
    assert pyramid.proto.spec.replace(" ", "").count('"type":"bar"') == 4
    # Every table read went through the access layer, audited as an aggregate read.
    reads = built_small.frame(
        "ops.audit_log", (pl.col("account") == "official") & (pl.col("action") == "read:aggregate")
    )
    details = {d.split(" 20")[0] for d in reads["detail"]}  # without the period
    assert details >= {
        f"{m} by {dims}"
        for m in ("app_users", "residents")
        for dims in ("district_code", "district_code,age_group", "district_code,age_group,sex")
    }


@pytest.mark.usefixtures("env")
def test_choosing_a_district_changes_its_dongs_funnel_and_pyramid(built_small: Lake) -> None:
    """The city first; a district chosen shows its own dongs (and no other district's), its
    own funnel and pyramid, from the published tables."""
    at = compare_page()
    city = [c.proto.spec for c in at.get("plotly_chart")]
    chosen = "24020"  # 서구
    at.selectbox(key="compare_area.ko").set_value(chosen).run()
    assert not at.exception, at.exception
    charts_now = at.get("plotly_chart")
    dong_map = charts_now[2]
    dongs = {
        f["properties"]["code"]
        for f in charts.boundaries("dongs")["features"]
        if str(f["properties"]["code"]).startswith(chosen)
    }
    drawn = {
        str(code)
        for trace in json.loads(dong_map.proto.spec)["data"]
        for code in trace.get("locations") or []
    }
    assert drawn and drawn <= dongs  # its own dongs only
    changed = [charts_now[i].proto.spec != city[i] for i in (2, 3, 4)]
    assert all(changed)


@pytest.mark.usefixtures("env")
def test_the_switch_standardises_to_whos_world_population() -> None:
    at = compare_page()
    at.radio(key="compare_standard.ko").set_value("who_2000_2025").run()
    assert not at.exception, at.exception
    who = t("compare.standard.who_2000_2025", "ko")
    assert any(who in c.value and "WHO" in c.value for c in at.caption)


def exports(lake: Lake) -> list[str]:
    log = lake.frame("ops.audit_log", pl.col("action") == "export:aggregate")
    return log.sort("at")["detail"].to_list()


@pytest.mark.browser
def test_downloads_are_made_when_pressed_and_audited(
    page: Page, start_app: Callable[..., AppServer], environ: dict[str, str], built_small: Lake
) -> None:
    server = start_app(app_script("official"), environ)
    sign_in(page, server, "official", PASSWORD, "compare")
    assert exports(built_small) == []  # nothing is made until asked
    # The map as PNG: kaleido draws it in Chromium, offline, on the click.
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name=t("compare.export.png", "ko")).nth(1).click()
    png = Path(download.value.path()).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and download.value.suggested_filename.endswith(
        ".png"
    )
    # The rates table as CSV: UTF-8 with a BOM, named areas, no count of 1-10.
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=t("compare.export.csv", "ko")).first.click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith("\ufeff".encode())
    table = pl.read_csv(io.BytesIO(data[3:]), infer_schema=False)
    assert "동구" in table[t("dimension.district_code", "ko")].to_list()
    counts = table.select(t("measure.app_users", "ko"), t("measure.residents", "ko"))
    assert not small_counts(counts.cast(pl.Int64))
    assert exports(built_small) == ["png district_map", "csv rates"]
