"""Open a patient's record: a patient of this institution by key, a record a patient shared
by code, or, with a stated reason, under emergency access."""

import streamlit as st

from apps.common import views
from apps.common.i18n import t
from apps.common.layout import access
from lakehouse.access import AccessDeniedError

STATE = "patient_key"
layer = access()
st.title(t("clinician.patient.title"))
left, right = st.columns(2)
with left.form("patient_open"):
    key = st.text_input(t("clinician.patient.key"), max_chars=40, key="patient_key_input")
    if st.form_submit_button(t("clinician.patient.open"), type="primary"):
        st.session_state[STATE] = key.strip()
with right.form("patient_share"):
    code = st.text_input(t("clinician.patient.code"), max_chars=12, key="patient_code")
    if st.form_submit_button(t("clinician.patient.redeem")):
        try:
            st.session_state[STATE] = layer.redeem_share(code)
        except AccessDeniedError as refused:
            st.error(f"{t('error.denied')} ({refused})")
with st.expander(t("clinician.patient.emergency")), st.form("patient_emergency"):
    reason = st.text_area(t("clinician.patient.reason"), max_chars=500, key="patient_reason")
    if st.form_submit_button(t("clinician.patient.break_glass")):
        subject = str(st.session_state.get("patient_key_input", "")).strip()
        try:
            layer.open_emergency(subject, reason)
            st.session_state[STATE] = subject
        except AccessDeniedError as refused:
            st.error(f"{t('error.denied')} ({refused})")

opened = st.session_state.get(STATE)
if isinstance(opened, str) and opened:
    subject = opened
    try:
        basis = layer.basis("read:timeline", subject)
        st.caption(t("clinician.patient.basis", basis=t(f"basis.{basis}")))
        st.text(subject)
        views.timeline(layer.timeline(subject), key="patient")
    except AccessDeniedError:
        st.error(t("error.denied"))
