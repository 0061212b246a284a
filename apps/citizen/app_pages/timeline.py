"""My timeline, or that of someone who made me their family carer."""

import streamlit as st

from apps.common import carer, views
from apps.common.i18n import t
from apps.common.layout import access

layer = access()
st.title(t("citizen.timeline.title"))
whose = carer.whose(layer, "timeline_whose")
name = layer.name(whose)
if name:
    st.subheader(t("citizen.timeline.viewing", name=name))
views.timeline(layer.timeline(whose), key="timeline")
