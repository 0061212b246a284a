"""Export everything: my whole record in one zip, as a FHIR Bundle and as CSV files.

The zip is made when the button is pressed (a callable), so the export is audited when it
happens, with the rows and files it held, and never on a mere view of the page."""

import streamlit as st

from apps.common.i18n import t
from apps.common.layout import access

layer = access()
me = str(layer.principal.citizen_key)
st.title(t("citizen.export.title"))
st.write(t("citizen.export.explain"))
st.caption(t("citizen.export.contents"))
st.caption(t("citizen.summary.ai_label"))
st.download_button(
    t("citizen.export.download"),
    data=lambda: layer.export_all(me),
    file_name="my-health-record.zip",
    mime="application/zip",
    on_click="ignore",
    type="primary",
    icon=":material/download:",
    key="export_download",
)
