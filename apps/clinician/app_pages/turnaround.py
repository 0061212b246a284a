"""Turnaround and agreement per AI service over this institution's studies: the time from
acquisition to scoring to a clinician's decision, the share of AI flags clinicians accepted,
and disagreements over time."""

import streamlit as st

from apps.common import views
from apps.common.i18n import t
from apps.common.layout import access

st.title(t("triage.stats.title"))
st.caption(t("triage.stats.caption"))
st.caption(t("triage.synthetic"))
views.turnaround(access().triage_stats(), key="stats")
