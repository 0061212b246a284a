"""The clinician app: the AI worklist, the study viewer with decisions and remote reading, a
patient's record (own institution, share code or emergency access), remote readings, and
turnaround and agreement per AI service."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "clinician",
    "clinician",
    [
        st.Page(
            "app_pages/worklist.py",
            title=t("triage.worklist.title"),
            icon=":material/format_list_numbered:",
            default=True,
        ),
        st.Page("app_pages/viewer.py", title=t("triage.viewer.title"), icon=":material/radiology:"),
        st.Page(
            "app_pages/readings.py",
            title=t("triage.reading.title"),
            icon=":material/forward_to_inbox:",
        ),
        st.Page(
            "app_pages/patient.py",
            title=t("clinician.patient.title"),
            icon=":material/stethoscope:",
        ),
        st.Page(
            "app_pages/turnaround.py", title=t("triage.stats.title"), icon=":material/monitoring:"
        ),
    ],
)
