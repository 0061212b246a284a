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
        st.Page("app_pages/share.py", title=t("citizen.share.title"), icon=":material/share:"),
        st.Page("app_pages/views.py", title=t("citizen.views.title"), icon=":material/visibility:"),
    ],
)
