"""The officials' charts, built from tables as the access layer publishes them.

Every builder takes plain frames shaped like ``Access.uptake``'s (the dimension columns, the
measure, ``suppressed``; margins hold ``disclosure.TOTAL``) or derived from them
(``lakehouse.stats``: ``rate``, ``lower``, ``upper``), and returns a plotly figure; the page
themes it (``apps.common.theme.apply``) and shows it. Rules every chart keeps:

* **A hidden cell is drawn as hidden**, never as 0 or left out silently: a suppressed area of
  the map is a grey area with a thick border and its own legend entry, a suppressed bar or stage
  carries the "◆" mark in words.
* **Never colour alone**: men and women are the pyramid's two sides, users and residents are
  solid and outlined bars, benchmark marks are symbols with words (▲ ▼ ●), the target is a
  labelled dashed line.
* **Maps work offline**: ``px.choropleth_map`` on the KOSTAT boundaries in
  ``lakehouse/reference/gwangju/`` with ``map_style="white-bg"`` (no tiles) and a centre and
  zoom computed from the boundaries (``view``). ``fitbounds="geojson"`` would fetch a world map
  from a CDN, and ``fitbounds="locations"`` exports blank.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import polars as pl

from apps.common.i18n import lang, number, t, word
from apps.common.theme import GRID, PALETTE, TEXT
from apps.public_health import kpis as words
from lakehouse import disclosure
from lakehouse.access.programme import targets

GWANGJU: Final = Path(__file__).resolve().parents[2] / "lakehouse/reference/gwangju"
Level = Literal["districts", "dongs"]
# The map is sized for a phone first: the boundaries fit this many pixels (MapLibre draws the
# world 512 px wide at zoom 0).
MAP_PX: Final = (340, 400)
WORLD_PX: Final = 512
FUNNEL: Final = ("app_users", "consented", "linked", "ai_users", "centre_users")
HIDDEN_FILL: Final = "#eaeef2"
MARK: Final = "◆"


@cache
def boundaries(level: Level) -> dict[str, Any]:
    """The districts' or the 95 dongs' boundaries (GeoJSON; each feature's ``properties``
    holds ``code``, ``name`` and ``name_eng``)."""
    return dict(json.loads((GWANGJU / f"{level}.geojson").read_text(encoding="utf-8")))


@cache
def attribution() -> str:
    """Who the boundaries must be credited to, as ``SOURCE.md`` states it."""
    text = (GWANGJU / "SOURCE.md").read_text(encoding="utf-8")
    found = re.search(r'Attribution: "([^"]+)"', text)
    if found is None:
        raise ValueError("lakehouse/reference/gwangju/SOURCE.md states no attribution")
    return found.group(1)


def _points(geometry: Mapping[str, Any]) -> list[list[float]]:
    rings = geometry["coordinates"]
    polygons = [rings] if geometry["type"] == "Polygon" else rings
    return [point for polygon in polygons for ring in polygon for point in ring]


def bounds(geojson: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """The boundaries' extent: west, south, east, north (degrees)."""
    points = np.array([p for f in geojson["features"] for p in _points(f["geometry"])])
    west, south = points.min(axis=0)
    east, north = points.max(axis=0)
    return float(west), float(south), float(east), float(north)


def _mercator(latitude: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))


def view(
    geojson: Mapping[str, Any], size: tuple[int, int] = MAP_PX
) -> tuple[dict[str, float], float]:
    """The centre and zoom that fit the boundaries into ``size`` pixels (width, height) of a
    Web Mercator map: the zoom at which both the longitude and the projected latitude span fit,
    whichever is tighter. No tile server or CDN is asked."""
    west, south, east, north = bounds(geojson)
    width, height = size
    across = math.log2(width * 360 / (WORLD_PX * (east - west)))
    up = math.log2(height * 2 * math.pi / (WORLD_PX * (_mercator(north) - _mercator(south))))
    centre_y = (_mercator(north) + _mercator(south)) / 2
    centre = {
        "lon": (west + east) / 2,
        "lat": math.degrees(2 * math.atan(math.exp(centre_y)) - 0.5 * math.pi),
    }
    return centre, min(across, up)


def area_names(level: Level) -> dict[str, str]:
    """Each district's or dong's name by its code, in the session's language."""
    key = "name" if lang() == "ko" else "name_eng"
    return {f["properties"]["code"]: f["properties"][key] for f in boundaries(level)["features"]}


def _inner(frame: pl.DataFrame, dims: Sequence[str]) -> pl.DataFrame:
    """The finest cells only: no margin (``TOTAL``) rows."""
    return frame.filter(*(pl.col(d) != disclosure.TOTAL for d in dims)) if dims else frame


def hidden(frame: pl.DataFrame, value: str) -> pl.Expr:
    """Whether a row's value is not shown: suppressed, or no value (a rate without residents)."""
    flag = pl.col("suppressed") if "suppressed" in frame.columns else pl.lit(False)
    return flag | pl.col(value).is_null()


def choropleth(
    frame: pl.DataFrame, level: Level, code: str, value: str, value_label: str, digits: int = 1
) -> go.Figure:
    """A map of the districts or the dongs coloured by ``value``, offline.

    Args:
        frame: One row per area (margin rows are ignored): the area's code in ``code``
            (``district_code`` or ``dong_code``), ``value`` (null where hidden) and
            ``suppressed``.
        level: ``districts`` or ``dongs``: which boundaries.
        code: The column holding the areas' codes (KOSTAT codes, as the boundaries).
        value: The column coloured.
        value_label: The value's name (the colour bar's title, the hover text).
        digits: Decimals shown on hover.
    """
    geojson, names = boundaries(level), area_names(level)
    rows = _inner(frame, [code]).with_columns(
        pl.col(code).replace_strict(names, default=pl.col(code)).alias("_name")
    )
    shown = rows.filter(~hidden(rows, value))
    # Framed on the areas drawn (one district's dongs fill the map, not a corner of the city)
    # and carrying only their shapes.
    drawn = set(rows[code].to_list())
    features = [f for f in geojson["features"] if f["properties"]["code"] in drawn]
    if features:
        geojson = {**geojson, "features": features}
    centre, zoom = view(geojson)
    top = shown[value].max()
    # The scale starts at 0 (the lightest blue), so a 0 never reads as a middle value.
    ceiling = float(top) if isinstance(top, int | float) and top > 0 else 1.0
    figure = px.choropleth_map(
        shown,
        geojson=geojson,
        featureidkey="properties.code",
        locations=code,
        color=value,
        hover_name="_name",
        hover_data={code: False, value: f":,.{digits}f"},
        labels={value: value_label},
        # Blues without its near-white end, so a shown 0 is not taken for the hidden grey.
        color_continuous_scale=px.colors.sequential.Blues[2:],
        range_color=(0, ceiling),
        map_style="white-bg",
        center=centre,
        zoom=zoom,
        opacity=0.9,
    )
    figure.update_traces(marker_line_width=1, marker_line_color=TEXT)
    suppressed = rows.filter(hidden(rows, value))
    if suppressed.height:
        label = f"{MARK} {t('compare.suppressed')}"
        figure.add_trace(
            go.Choroplethmap(
                geojson=geojson,
                featureidkey="properties.code",
                locations=suppressed[code].to_list(),
                # One flat colour: z only selects it, no value is drawn.
                z=[1] * suppressed.height,
                colorscale=[[0, HIDDEN_FILL], [1, HIDDEN_FILL]],
                showscale=False,
                marker={"line": {"width": 3, "color": TEXT}},
                text=[f"{n}: {label}" for n in suppressed["_name"]],
                hovertemplate="%{text}<extra></extra>",
                name=label,
                showlegend=True,
            )
        )
    figure.update_layout(
        height=MAP_PX[1] + 160,
        margin={"l": 0, "r": 0, "t": 10, "b": 10},
        # The colour bar and the legend below the map, which keeps a phone's whole width.
        coloraxis_colorbar={
            "title": {"text": value_label, "side": "top"},
            "orientation": "h",
            "y": 0,
            "yanchor": "top",
            "len": 0.9,
            "thickness": 14,
        },
        legend={"orientation": "h", "y": -0.22, "yanchor": "top"},
        annotations=[
            {
                "text": t("compare.map.source", source=attribution()),
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1,
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        ],
    )
    return figure


def _age_order(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.col("age_group").str.extract(r"^([0-9]+)").cast(pl.Int64))


def _ticks(largest: float) -> tuple[list[float], list[str]]:
    """Symmetric ticks for a pyramid, labelled with magnitudes (both sides count people)."""
    if largest <= 0:
        return [0.0], ["0"]
    step = 10 ** math.floor(math.log10(largest))
    step *= next(m for m in (1, 2, 5, 10) if largest / (step * m) <= 4)
    values = [k * step for k in range(-4, 5) if abs(k * step) <= largest * 1.05]
    return values, [number(abs(v)) for v in values]


def pyramid(users: pl.DataFrame, population: pl.DataFrame, measure: str) -> go.Figure:
    """Users against the population by age group and sex: men to the left, women to the
    right; residents as outlined bars, users as solid bars inside them, each pair labelled
    "users / residents" with a hidden count as "◆ suppressed".

    Args:
        users: ``Access.uptake(measure, ["age_group", "sex"], ...)``.
        population: ``Access.uptake("residents", ["age_group", "sex"], ...)``.
        measure: The users' count column.
    """
    dims = ["age_group", "sex"]
    cells = _age_order(
        _inner(users, dims)
        .rename({"suppressed": "_u"})
        .join(
            _inner(population, dims).rename({"suppressed": "_p"}),
            on=dims,
            how="full",
            coalesce=True,
        )
    )
    figure = go.Figure()
    largest = 0.0
    label = f"{MARK} {t('compare.suppressed')}"
    for sex, side, colour in (("M", -1, PALETTE[0]), ("F", 1, PALETTE[1])):
        rows = cells.filter(pl.col("sex") == sex)
        counts = {
            column: [
                None if h or v is None else v for v, h in zip(rows[column], rows[flag], strict=True)
            ]
            for column, flag in (("residents", "_p"), (measure, "_u"))
        }
        # One label per bar, at the residents' end: "users / residents" (the legend says so),
        # since a user bar too short for its text would hide it; the hover says it in words.
        both, hover = (
            [
                " / ".join(mark if v is None else number(v) for v in pair)
                for pair in zip(counts[measure], counts["residents"], strict=True)
            ]
            for mark in (MARK, label)
        )
        largest = max([largest, *(v for v in counts["residents"] if v is not None)])
        for column, name, marker, text in (
            (
                "residents",
                "compare.pyramid.population",
                {"color": "rgba(0,0,0,0)", "line": {"color": colour, "width": 2}},
                both,
            ),
            (
                measure,
                "compare.pyramid.users",
                {"color": colour, "pattern": {"shape": "" if sex == "M" else "/"}},
                None,
            ),
        ):
            figure.add_trace(
                go.Bar(
                    y=rows["age_group"].to_list(),
                    x=[side * (v or 0) for v in counts[column]],
                    orientation="h",
                    name=t(name, sex=word("sex", sex)),
                    marker=marker,
                    text=text,
                    textposition="outside",
                    cliponaxis=False,
                    customdata=hover,
                    hovertemplate="%{y}: %{customdata}<extra>%{fullData.name}</extra>",
                )
            )
    ticks, texts = _ticks(largest)
    figure.update_layout(
        barmode="overlay",
        bargap=0.15,
        xaxis={
            "tickvals": ticks,
            "ticktext": texts,
            "title": {"text": t("compare.pyramid.axis")},
            "range": [-1.9 * max(largest, 1), 1.9 * max(largest, 1)],  # room for the labels
        },
        yaxis={"title": {"text": t("dimension.age_group")}},
        legend={"orientation": "h", "y": -0.2},
        annotations=[
            {
                "text": word("sex", s),
                "xref": "paper",
                "yref": "paper",
                "x": x,
                "y": 1.05,
                "showarrow": False,
            }
            for s, x in (("M", 0.02), ("F", 0.98))
        ],
    )
    return figure


def funnel_stages(totals: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The funnel's stages from published tables: for each measure of ``FUNNEL`` present in
    ``totals`` (``Access.uptake(measure, [], ...)``, or a table whose dimensions are filtered
    to one row), its value and ``suppressed``, in the funnel's order."""
    rows = []
    for measure in (m for m in FUNNEL if m in totals):
        frame = totals[measure]
        if frame.height != 1:
            raise ValueError(f"{measure}: expected one row (the total), got {frame.height}")
        row = frame.row(0, named=True)
        rows.append((measure, row[measure], bool(row["suppressed"]) or row[measure] is None))
    return pl.DataFrame(
        rows, schema={"stage": pl.Utf8, "value": pl.Int64, "suppressed": pl.Boolean}, orient="row"
    )


def funnel(stages: pl.DataFrame) -> go.Figure:
    """registered -> consented -> records linked -> used an AI service -> used the centre, each
    stage with its count and its share of the registered; a hidden stage reads "◆ suppressed"
    and has no bar.

    Args:
        stages: ``funnel_stages``'s frame: ``stage`` (a measure of ``FUNNEL``), ``value``,
            ``suppressed``.
    """
    names = [t(f"compare.funnel.stage.{s}") for s in stages["stage"]]
    hide = [bool(h) for h in stages["suppressed"]]
    values = [None if h else v for v, h in zip(stages["value"], hide, strict=True)]
    first = values[0] if values else None
    label = f"{MARK} {t('compare.suppressed')}"

    def text(v: int | None) -> str:
        if v is None:
            return label
        if not first:
            return number(v)
        return t("compare.funnel.share", value=number(v), share=number(100 * v / first))

    figure = go.Figure(
        go.Funnel(
            y=names,
            x=[v if v is not None else 0 for v in values],
            text=[text(v) for v in values],
            textinfo="text",
            textposition="outside",
            marker={"color": [GRID if v is None else PALETTE[0] for v in values]},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(yaxis={"autorange": "reversed"}, showlegend=False)
    return figure


def trend(
    frame: pl.DataFrame, x: str, value: str, value_label: str, target: float | None = None
) -> go.Figure:
    """A measure over time with its target as a labelled dashed line; a hidden period is a gap
    in the line, marked "◆" at the top of the plot with its name on hover.

    Args:
        frame: One row per period: ``x`` (e.g. ``month``), ``value`` (null where hidden) and
            ``suppressed``.
        x: The period column.
        value: The measure column.
        value_label: The measure's name (the axis title and the line's legend entry).
        target: The target, drawn as a horizontal line, if there is one.
    """
    rows = frame.sort(x).with_columns(
        pl.when(~hidden(frame, value)).then(pl.col(value)).alias("_shown")
    )
    figure = go.Figure(
        go.Scatter(
            x=rows[x].to_list(),
            y=rows["_shown"].to_list(),
            mode="lines+markers",
            name=value_label,
            connectgaps=False,
            line={"color": PALETTE[0], "width": 3},
        )
    )
    if target is not None:
        figure.add_hline(
            y=target,
            line={"dash": "dash", "color": PALETTE[1], "width": 2},
            annotation_text=t("compare.trend.target", value=number(target)),
            annotation_position="top left",
        )
    for period in rows.filter(pl.col("_shown").is_null())[x].to_list():
        figure.add_annotation(
            x=period,
            y=1,
            yref="paper",
            text=MARK,
            showarrow=False,
            hovertext=t("compare.suppressed"),
        )
    figure.update_layout(
        yaxis={"title": {"text": value_label}, "rangemode": "tozero"}, showlegend=False
    )
    return figure


def intervals(
    frame: pl.DataFrame, label: str, value_label: str, benchmark: float | None
) -> go.Figure:
    """Rates with their 95% intervals, one row per area, the benchmark (the city's rate) as a
    labelled line and each area's mark as a symbol with its word: ▲ higher, ▼ lower,
    ● similar. An area without a rate says why instead.

    Args:
        frame: ``label`` (the area's name), ``rate``, ``lower``, ``upper``, ``mark``
            (``lakehouse.stats.benchmark``: higher, lower, similar or null) and ``why`` (the
            words shown where there is no rate).
        label: The column naming each area.
        value_label: The rate's name (axis title).
        benchmark: The city's rate.
    """
    symbols = {"higher": "triangle-up", "lower": "triangle-down", "similar": "circle"}
    shown = frame.filter(pl.col("rate").is_not_null())
    marks = shown["mark"].to_list()
    figure = go.Figure(
        go.Scatter(
            x=shown["rate"].to_list(),
            y=shown[label].to_list(),
            mode="markers+text",
            marker={
                "size": 16,
                "color": TEXT,
                "symbol": [symbols.get(m or "", "circle-open") for m in marks],
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (shown["upper"] - shown["rate"]).to_list(),
                "arrayminus": (shown["rate"] - shown["lower"]).to_list(),
                "thickness": 2,
                "width": 8,
                "color": PALETTE[0],
            },
            text=[t(f"compare.mark.{m}") if m else "" for m in marks],
            textposition="top center",
            customdata=list(zip(shown["lower"].to_list(), shown["upper"].to_list(), strict=True)),
            hovertemplate=(
                "%{y}: %{x:,.1f} (%{customdata[0]:,.1f}–%{customdata[1]:,.1f})<extra></extra>"
            ),
            showlegend=False,
        )
    )
    missing = frame.filter(pl.col("rate").is_null())
    for name, why in missing.select(label, "why").rows():
        figure.add_trace(
            go.Scatter(x=[None], y=[name], mode="markers", showlegend=False, hoverinfo="skip")
        )
        figure.add_annotation(x=0, xref="paper", y=name, text=why, showarrow=False, xanchor="left")
    if benchmark is not None:
        figure.add_vline(
            x=benchmark,
            line={"dash": "dash", "color": PALETTE[1], "width": 2},
            annotation_text=t("compare.dsr.city", value=number(benchmark, 1)),
            annotation_position="top",
        )
    figure.update_layout(
        xaxis={"title": {"text": value_label}, "rangemode": "tozero"},
        yaxis={
            "autorange": "reversed",
            "categoryorder": "array",
            "categoryarray": frame[label].to_list(),
        },
        height=120 + 60 * frame.height,
    )
    return figure


def kpi_trend(kpi: str, rows: pl.DataFrame) -> go.Figure:
    """One programme KPI's line by month (the trends page): its points labelled with their
    figures (a hidden month "◆ suppressed", a gap in the line), its target dotted and named
    (whose target it is: † marks a deployment's own setting).

    Args:
        kpi: The KPI (``Access.kpi_series``'s ``kpi``).
        rows: Its rows of ``Access.kpi_series``: ``month`` and ``compared`` (what its target is
            set against; null where hidden).
    """
    goal = targets().get(kpi)
    labels = [
        words.compared(kpi, v) if v is not None else words.hidden()
        for v in rows["compared"].to_list()
    ]
    figure = px.line(
        rows.with_columns(pl.Series("label", labels)),
        x="month",
        y="compared",
        markers=True,
        text="label",
        title=words.name(kpi),
        labels={"month": t("official.trends.month"), "compared": words.name(kpi)},
    )
    figure.update_traces(textposition="top center", connectgaps=False)
    if goal is not None:
        figure.add_hline(
            y=goal.value,
            line_dash="dot",
            annotation_text=t(
                "official.trends.target_line",
                target=words.amount(goal.value, goal.unit) + ("" if goal.sourced else " †"),
            ),
            annotation_position="top left",
        )
    if goal is not None and goal.unit == "share":
        figure.update_yaxes(tickformat=".1%")
    figure.update_yaxes(rangemode="tozero")
    figure.update_xaxes(type="category")
    return figure
