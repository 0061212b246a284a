"""The floor of the timeline page's benchmark (``test_timeline_page.py``): a bare Streamlit page
that draws the same picture from the same rows, with no sign-in, access layer, audit row or
page layout. Served with ``streamlit run`` like the apps; ``GJH_FLOOR_ROWS`` names a Parquet
file of the rows ``Access.timeline`` returned for the benchmark's citizen.

Two buttons, each rerunning the script as a sign-in does: "drawn" shows a figure built once
(Streamlit's rerun, the figure's trip to the browser and plotly.js drawing it), "built" builds
it from the rows on each press (``describe`` and ``figure``, as the app's timeline does).
Opened with ``?charts=loaded`` the page has the browser load plotly.js when it opens, as the
app's sign-in page does (``apps.common.layout.warm_charts``); without, on the first chart."""

import os

import polars as pl
import streamlit as st

from apps.common.layout import warm_charts
from apps.common.timeline import describe, figure, specimen


@st.cache_resource
def _rows() -> pl.DataFrame:
    return pl.read_parquet(os.environ["GJH_FLOOR_ROWS"])


@st.cache_resource
def _built() -> object:
    return figure(describe(_rows()))


if st.query_params.get("charts") == "loaded":
    warm_charts(specimen())
drawn = st.button("drawn", key="drawn")
built = st.button("built", key="built")
if drawn:
    st.plotly_chart(_built(), theme=None, key="chart")
elif built:
    st.plotly_chart(figure(describe(_rows())), theme=None, key="chart")
