"""The citizen app: a home page of large tiles, and the core flows it leads to (``flows``): my
lifetime health timeline, sharing it, and who has seen it."""

import streamlit as st

from apps.citizen.flows import FLOWS
from apps.common.i18n import t
from apps.common.layout import run
from apps.common.timeline import specimen

run(
    "citizen",
    "citizen",
    [
        st.Page(
            "app_pages/home.py",
            title=t("citizen.home.title"),
            icon=":material/home:",
            default=True,
        ),
        *(st.Page(flow.page, title=t(flow.title), icon=flow.icon) for flow in FLOWS),
    ],
    charts=specimen,  # the first flow, the timeline, is a chart
)
