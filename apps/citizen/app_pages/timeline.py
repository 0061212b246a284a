"""My timeline, or that of someone who made me their family carer (then their name says
whose it is; my own needs no name under "my timeline", nor the vault read and audit row that
decrypting it costs before the picture)."""

import streamlit as st

from apps.common import carer, views
from apps.common.i18n import t
from apps.common.layout import access

layer = access()
st.title(t("citizen.timeline.title"))
whose = carer.whose(layer, "timeline_whose")
if whose != layer.principal.citizen_key:
    name = layer.name(whose)
    if name:
        st.subheader(t("citizen.timeline.viewing", name=name))
views.timeline(layer.timeline(whose), key="timeline")
