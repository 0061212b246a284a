"""The admin app: the access log under review and the AI models' monitoring (no clinical
content)."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "admin",
    "admin",
    [
        st.Page(
            "app_pages/audit.py",
            title=t("admin.audit.title"),
            icon=":material/shield:",
            default=True,
        ),
        st.Page(
            "app_pages/monitoring.py",
            title=t("admin.monitoring.title"),
            icon=":material/monitoring:",
        ),
    ],
)
