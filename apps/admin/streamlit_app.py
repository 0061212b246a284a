"""The admin app: the access log under review (no clinical content)."""

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
        )
    ],
)
