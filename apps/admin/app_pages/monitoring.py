"""AI model monitoring, city-wide: per service, the turnaround from acquisition to scoring to
decision, the share of AI flags clinicians accepted and disagreements over time (aggregates,
no clinical content about anyone)."""

import streamlit as st

from apps.common import views
from apps.common.i18n import t
from apps.common.layout import access

st.title(t("admin.monitoring.title"))
st.caption(t("triage.stats.city_caption"))
st.caption(t("triage.synthetic"))
views.turnaround(access().triage_stats(), key="monitoring")
