"""The public-health app for city officials: the programme against its targets, its trends,
its uptake, districts compared, data health and the OMOP tables' data quality; aggregates only."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "public_health",
    "official",
    [
        st.Page(
            "app_pages/overview.py",
            title=t("official.overview.title"),
            icon=":material/dashboard:",
            default=True,
        ),
        st.Page(
            "app_pages/trends.py", title=t("official.trends.title"), icon=":material/show_chart:"
        ),
        st.Page(
            "app_pages/uptake.py", title=t("official.uptake.title"), icon=":material/bar_chart:"
        ),
        st.Page("app_pages/compare.py", title=t("compare.title"), icon=":material/compare:"),
        st.Page(
            "app_pages/health.py", title=t("official.health.title"), icon=":material/fact_check:"
        ),
        st.Page("app_pages/quality.py", title=t("dq.title"), icon=":material/rule:"),
        st.Page("app_pages/signals.py", title=t("signals.title"), icon=":material/medication:"),
    ],
)
