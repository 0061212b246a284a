"""The study viewer: the images from their DICOM pixels with the AI's overlay, the findings with
their score, threshold and location, a decision per finding, the patient beside the images, and
remote reading.

The study is read once through the access layer (audited as one read of the patient) and kept in
the session for a few minutes (``apps.clinician.viewer.study``). The images are a fragment: a
slider redraws them alone, not the findings' forms."""

import streamlit as st

from apps.clinician.viewer.context import header, patient_context
from apps.clinician.viewer.findings import findings, history
from apps.clinician.viewer.reading import remote_reading
from apps.clinician.viewer.study import FLASH, forget, opened_study
from apps.common.i18n import t
from apps.common.layout import access
from apps.common.viewer import images
from lakehouse.access import AccessDeniedError

OPENED = "study"

layer = access()
st.title(t("triage.viewer.title"))
# A link (``?study=<uid>``: the worklist's, a shared one) names the study; otherwise the one
# opened last, kept for a return to the viewer from the sidebar (which drops the link's query).
uid = st.query_params.get("study") or st.session_state.get(OPENED)
if not isinstance(uid, str) or not uid:
    st.info(t("triage.viewer.none"))
    st.stop()
st.session_state[OPENED] = uid

try:
    opened = opened_study(layer, uid)
except AccessDeniedError:
    forget()
    st.error(t("error.denied"))
    st.stop()

if flash := st.session_state.pop(FLASH, None):
    st.success(flash)
st.caption(t("triage.synthetic"))
header(opened)

rows = opened.findings.to_dicts()
top = next((f for f in rows if f["status"] == "scored"), None)
left, right = st.columns([3, 2])
with left:
    images(opened, uid, top)
with right:
    findings(layer, opened, rows)

context, past, reading = st.tabs(
    [t("triage.context.title"), t("triage.viewer.history"), t("triage.reading.title")]
)
with context:
    patient_context(opened)
with past:
    history(opened)
with reading:
    remote_reading(layer, opened, uid)
