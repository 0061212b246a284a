"""Every programme KPI by month with its target line (``Access.kpi_series``), and the AI
services' studies by service (``Access.service_table``), both as published: a suppressed month
is a gap in the line and is named under the chart. Each point carries its figure as text and
each target line its words (whose target it is), so nothing is told by colour alone.
"""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from apps.common.i18n import t
from apps.common.layout import access
from apps.common.theme import apply
from apps.common.views import service_name
from apps.public_health import charts, freshness
from apps.public_health import kpis as words
from lakehouse import disclosure
from lakehouse.access.programme import targets

layer = access()
with layer.view("trends"):  # one audited unit: one commit per view
    st.title(t("official.trends.title"))
    freshness.line(layer)
    series = layer.kpi_series()
    if series.is_empty():
        st.info(t("official.overview.empty"))
        st.stop()
    st.caption(t("official.trends.explain"))
    CONFIG = {"displayModeBar": False}

    def chart(kpi: str, rows: pl.DataFrame) -> None:
        """One KPI's line by month, its points labelled, its target dotted and named."""
        goal = targets().get(kpi)
        figure = charts.kpi_trend(kpi, rows)
        st.plotly_chart(apply(figure), key=f"trend_{kpi}", config=CONFIG)
        st.caption(words.target(goal, kpi))
        hidden = rows.filter(pl.col("compared").is_null())["month"].to_list()
        if hidden:
            st.caption(t("official.trends.hidden_months", months=", ".join(hidden)))

    kpis = series["kpi"].unique(maintain_order=True).to_list()
    for start in range(0, len(kpis), 2):
        for column, kpi in zip(st.columns(2), kpis[start : start + 2], strict=False):
            with column:
                chart(kpi, series.filter(pl.col("kpi") == kpi))

    services = layer.service_table().filter(
        (pl.col("service") != disclosure.TOTAL) & (pl.col("month") != disclosure.TOTAL)
    )
    st.subheader(t("official.trends.studies_by_service"))
    st.caption(t("official.overview.services_note"))
    if services.is_empty():
        st.info(t("official.overview.no_services"))
    else:
        codes = services["service"].unique().sort().to_list()
        named = services.sort("service", "month")
        figure = go.Figure()
        symbols = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "hexagon")
        for i, code in enumerate(codes):
            mine = named.filter(pl.col("service") == code)
            figure.add_scatter(
                x=mine["month"].to_list(),
                y=mine["studies"].to_list(),
                mode="lines+markers",
                name=service_name(code),
                marker_symbol=symbols[i % len(symbols)],
                line_dash=("solid", "dash", "dot", "dashdot")[i % 4],
                connectgaps=False,
            )
        figure.update_layout(title=t("official.trends.studies_by_service"), legend_title_text="")
        figure.update_xaxes(type="category", title=t("official.trends.month"))
        figure.update_yaxes(rangemode="tozero", title=t("column.studies"))
        st.plotly_chart(apply(figure), key="trend_services", config=CONFIG)
        st.caption(t("kpi.target.none"))
