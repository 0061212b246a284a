"""The citizen app: my lifetime health timeline, sharing it, and who has seen it."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "citizen",
    "citizen",
    [
        st.Page(
            "app_pages/timeline.py",
            title=t("citizen.timeline.title"),
            icon=":material/timeline:",
            default=True,
        ),
        st.Page("app_pages/images.py", title=t("citizen.images.title"), icon=":material/image:"),
        st.Page(
            "app_pages/measurements.py",
            title=t("citizen.measurements.title"),
            icon=":material/monitor_heart:",
        ),
        st.Page(
            "app_pages/summary.py", title=t("citizen.summary.title"), icon=":material/emergency:"
        ),
        st.Page("app_pages/export.py", title=t("citizen.export.title"), icon=":material/download:"),
        st.Page(
            "app_pages/medicines.py",
            title=t("citizen.medicines.title"),
            icon=":material/medication:",
        ),
        st.Page(
            "app_pages/insights.py", title=t("citizen.insights.title"), icon=":material/lightbulb:"
        ),
        st.Page("app_pages/share.py", title=t("citizen.share.title"), icon=":material/share:"),
        st.Page("app_pages/views.py", title=t("citizen.views.title"), icon=":material/visibility:"),
    ],
)
