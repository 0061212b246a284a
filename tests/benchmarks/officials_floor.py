"""The floor of the officials' pages benchmark (``test_officials_pages.py``): a bare Streamlit
page that draws the trends page's KPI charts (``charts.kpi_trend``, themed, two to a row)
from the same rows, with no sign-in, access layer, audit row or page layout. Served with
``streamlit run`` like the apps; ``GJH_FLOOR_SERIES`` names a Parquet file of the rows
``Access.kpi_series`` returned. Its one button, "drawn", reruns the script as a link to a page
does and draws the charts (Streamlit's rerun, the figures' trip and plotly.js); "clear" reruns
it with none, so the next press draws them anew on a page that has drawn them before (as the
app's page has: plotly.js is loaded once per page)."""

import os

import polars as pl
import streamlit as st

from apps.common.theme import apply
from apps.public_health import charts


@st.cache_resource
def _series() -> pl.DataFrame:
    return pl.read_parquet(os.environ["GJH_FLOOR_SERIES"])


st.set_page_config(layout="wide")
drawn = st.button("drawn", key="drawn")
st.button("clear", key="clear")
if drawn:
    series = _series()
    kpis = series["kpi"].unique(maintain_order=True).to_list()
    for start in range(0, len(kpis), 2):
        for column, kpi in zip(st.columns(2), kpis[start : start + 2], strict=False):
            figure = apply(charts.kpi_trend(kpi, series.filter(pl.col("kpi") == kpi)))
            column.plotly_chart(figure, key=f"floor_{kpi}", config={"displayModeBar": False})
