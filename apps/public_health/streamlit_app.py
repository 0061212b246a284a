"""The public-health app for city officials: programme uptake and data health, aggregates only."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "public_health",
    "official",
    [
        st.Page(
            "app_pages/uptake.py",
            title=t("official.uptake.title"),
            icon=":material/bar_chart:",
            default=True,
        ),
        st.Page(
            "app_pages/health.py", title=t("official.health.title"), icon=":material/fact_check:"
        ),
        st.Page("app_pages/compare.py", title=t("compare.title"), icon=":material/compare:"),
    ],
)
