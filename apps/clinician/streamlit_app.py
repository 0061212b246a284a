"""The clinician app: a patient's record through the access layer (own institution, share
code, or emergency access). The AI worklist and viewer build on this frame."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import run

run(
    "clinician",
    "clinician",
    [
        st.Page(
            "app_pages/patient.py",
            title=t("clinician.patient.title"),
            icon=":material/stethoscope:",
            default=True,
        )
    ],
)
