"""The officials' charts (``apps/public_health/charts.py``) from hand-built frames shaped as the
access layer publishes them: the map's centre and zoom from the boundaries (no network, no
``fitbounds``), hidden cells drawn as hidden and never as 0, the pyramid, the funnel with the
measures the disclosure helper adds, and the trend with its target."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from apps.common.i18n import t
from apps.public_health import charts
from lakehouse import disclosure

TOTAL = disclosure.TOTAL
DISTRICTS = ["24010", "24020", "24030", "24040", "24050"]


def square(west: float, south: float, side: float) -> dict[str, object]:
    ring = [[west, south], [west + side, south], [west + side, south + side], [west, south + side]]
    feature = {
        "type": "Feature",
        "properties": {"code": "x", "name": "x", "name_eng": "x"},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }
    return {"type": "FeatureCollection", "features": [feature]}


def test_the_zoom_fits_the_bounds_into_the_maps_pixels() -> None:
    # A square of 360/256 degrees at the equator is 2 px wide at zoom 0 (the world is 512 px),
    # so it fills 360 px at zoom log2(180); its height binds no tighter near the equator.
    centre, zoom = charts.view(square(0.0, -0.5, 360 / 256), size=(360, 10_000))
    assert zoom == pytest.approx(math.log2(180))
    assert centre["lon"] == pytest.approx(180 / 256) and centre["lat"] == pytest.approx(
        0.203125, abs=0.01
    )
    # A tall, narrow viewport: the height binds.
    _, taller = charts.view(square(0.0, -0.5, 360 / 256), size=(10_000, 360))
    assert taller < math.log2(10_000 * 360 / (512 * 360 / 256))


@pytest.mark.parametrize("level", ["districts", "dongs"])
def test_gwangjus_boundaries_fill_the_map_and_no_more(level: charts.Level) -> None:
    geojson = charts.boundaries(level)
    west, south, east, north = charts.bounds(geojson)
    assert 126.6 < west < east < 127.1 and 35.0 < south < north < 35.3  # Gwangju
    centre, zoom = charts.view(geojson)
    assert centre["lon"] == pytest.approx((west + east) / 2)
    assert south < centre["lat"] < north
    width = 512 * 2**zoom * (east - west) / 360
    assert width <= charts.MAP_PX[0] + 1e-6
    assert 9 < zoom < 11


def rates(values: list[float | None], hidden: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "district_code": [*DISTRICTS, TOTAL],
            "rate": [*values, 20.0],
            "suppressed": [*hidden, False],
        },
        schema_overrides={"rate": pl.Float64},
    )


def test_the_district_map_is_offline_and_draws_a_suppressed_district_as_suppressed() -> None:
    frame = rates([10.0, None, 0.0, 30.0, 40.0], [False, True, False, False, False])
    figure = charts.choropleth(frame, "districts", "district_code", "rate", "per 1,000")
    layout = figure.layout.map
    assert layout.style == "white-bg"
    centre, zoom = charts.view(charts.boundaries("districts"))
    assert (layout.center.lon, layout.center.lat, layout.zoom) == (
        centre["lon"],
        centre["lat"],
        zoom,
    )
    spec = figure.to_json()
    assert "fitbounds" not in spec and "http" not in json.dumps(figure.layout.to_plotly_json())
    shown, hidden = figure.data
    # The margin is no area; the shown areas carry their values, 0 included (a real zero).
    assert list(shown.locations) == ["24010", "24030", "24040", "24050"]
    assert list(shown.z) == [10.0, 0.0, 30.0, 40.0]
    # The suppressed district is its own trace, named and described as suppressed, not 0.
    assert list(hidden.locations) == ["24020"]
    assert t("compare.suppressed") in hidden.name and "◆" in hidden.name
    assert 0 not in list(hidden.z) and hidden.showscale is False
    assert "서구" in hidden.text[0] and t("compare.suppressed") in hidden.text[0]
    assert hidden.marker.line.width > shown.marker.line.width  # a border, not colour alone
    assert "Statistics Korea (KOSTAT)" in figure.layout.annotations[0].text


def test_the_dong_map_takes_the_dong_level_frame() -> None:
    features = charts.boundaries("dongs")["features"]
    codes = [f["properties"]["code"] for f in features]
    assert len(codes) == 95
    frame = pl.DataFrame(
        {
            "district_code": [c[:5] for c in codes],
            "dong_code": codes,
            "app_users": [None if i % 7 == 0 else 20 + i for i in range(95)],
            "suppressed": [i % 7 == 0 for i in range(95)],
        }
    )
    figure = charts.choropleth(frame, "dongs", "dong_code", "app_users", "users", digits=0)
    shown, hidden = figure.data
    assert len(shown.locations) + len(hidden.locations) == 95
    assert len(hidden.locations) == 14


def by_age_sex(measure: str, values: list[int | None]) -> pl.DataFrame:
    ages = ["0-19", "20-39", "40-64", "65-74", "75+"]
    rows = [(a, s) for a in ages for s in ("M", "F")]
    frame = pl.DataFrame(rows, schema=["age_group", "sex"], orient="row")
    margins = pl.DataFrame({"age_group": [TOTAL], "sex": [TOTAL]})
    return pl.concat([frame, margins]).with_columns(
        pl.Series(measure, [*values, 999], dtype=pl.Int64),
        pl.Series("suppressed", [v is None for v in values] + [False]),
    )


def test_the_pyramid_puts_men_left_women_right_and_marks_hidden_cells() -> None:
    users = by_age_sex("app_users", [12, 30, None, 40, 55, 60, 0, 25, 18, None])
    population = by_age_sex("residents", [400, 380, 500, 520, 900, 950, 300, 330, 150, 240])
    figure = charts.pyramid(users, population, "app_users")
    men_pop, men_users, women_pop, women_users = figure.data
    assert list(men_pop.y) == ["0-19", "20-39", "40-64", "65-74", "75+"]
    assert all(x <= 0 for x in men_pop.x) and all(x >= 0 for x in women_pop.x)
    assert list(men_users.x) == [-12, 0, -55, 0, -18]
    assert list(women_users.x) == [30, 40, 60, 25, 0]
    # Each pair reads "users / residents": the hidden 20-39 men and 75+ women say so (no
    # bar), the real 0 of 65-74 men says 0.
    assert list(men_pop.text) == ["12 / 400", "◆ / 500", "55 / 900", "0 / 300", "18 / 150"]
    assert women_pop.text[4] == "◆ / 240" and men_users.text is None
    assert t("compare.suppressed") in women_pop.customdata[4]
    assert men_users.marker.color != "rgba(0,0,0,0)" and men_pop.marker.color == "rgba(0,0,0,0)"


def test_the_funnel_follows_the_programme_stages_and_hides_what_is_hidden() -> None:
    def total(measure: str, value: int | None) -> pl.DataFrame:
        return pl.DataFrame(
            {measure: [value], "suppressed": [value is None]}, schema_overrides={measure: pl.Int64}
        )

    totals = {
        "centre_users": total("centre_users", 300),
        "app_users": total("app_users", 2000),
        "linked": total("linked", None),
        "consented": total("consented", 1500),
        "ai_users": total("ai_users", 120),
    }
    stages = charts.funnel_stages(totals)
    assert stages["stage"].to_list() == list(charts.FUNNEL)
    (bars,) = charts.funnel(stages).data
    assert list(bars.y) == [t(f"compare.funnel.stage.{s}") for s in charts.FUNNEL]
    assert bars.text[0] == t("compare.funnel.share", value="2,000", share="100")
    assert bars.text[1] == t("compare.funnel.share", value="1,500", share="75")
    assert bars.text[2] == f"◆ {t('compare.suppressed')}"


def test_the_trend_draws_its_target_and_leaves_hidden_months_as_marked_gaps() -> None:
    frame = pl.DataFrame(
        {
            "month": ["2025-03", "2025-04", "2025-05"],
            "signups": [120, None, 150],
            "suppressed": [False, True, False],
        }
    )
    figure = charts.trend(frame, "month", "signups", "sign-ups", target=200)
    (line,) = figure.data
    assert list(line.y) == [120, None, 150] and line.connectgaps is False
    texts = [a.text for a in figure.layout.annotations]
    assert t("compare.trend.target", value="200") in texts and "◆" in texts
    assert figure.layout.shapes[0].y0 == 200 and figure.layout.shapes[0].line.dash == "dash"


def test_intervals_mark_districts_in_words_and_say_why_one_has_no_rate() -> None:
    frame = pl.DataFrame(
        {
            "label": ["a", "b", "c"],
            "rate": [30.0, 10.0, None],
            "lower": [25.0, 8.0, None],
            "upper": [35.0, 12.0, None],
            "mark": ["higher", "lower", None],
            "why": ["", "", "not computed"],
        }
    )
    figure = charts.intervals(frame, "label", "per 1,000", benchmark=20.0)
    points = figure.data[0]
    assert list(points.text) == [t("compare.mark.higher"), t("compare.mark.lower")]
    assert list(points.marker.symbol) == ["triangle-up", "triangle-down"]
    assert "not computed" in [a.text for a in figure.layout.annotations]
    assert figure.layout.shapes[0].x0 == 20.0


def test_one_districts_dongs_fill_the_map() -> None:
    """A map of one district's dongs is framed on them and carries only their shapes, so the
    district fills the map instead of a corner of the city's."""
    features = charts.boundaries("dongs")["features"]
    seogu = [f["properties"]["code"] for f in features if f["properties"]["code"][:5] == "24020"]
    frame = pl.DataFrame(
        {
            "district_code": ["24020"] * len(seogu),
            "dong_code": seogu,
            "rate": [30.0] * len(seogu),
            "suppressed": [False] * len(seogu),
        }
    )
    figure = charts.choropleth(frame, "dongs", "dong_code", "rate", "rate")
    drawn = figure.data[0].geojson["features"]
    assert sorted(f["properties"]["code"] for f in drawn) == sorted(seogu)
    city_zoom = charts.view(charts.boundaries("dongs"))[1]
    assert figure.layout.map.zoom > city_zoom
