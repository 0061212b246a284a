"""My timeline, or that of someone who made me their family carer."""

import streamlit as st

from apps.common import views
from apps.common.i18n import keyed, t
from apps.common.layout import access

layer = access()
me = str(layer.principal.citizen_key)
people = [me, *layer.proxied()]
st.title(t("citizen.timeline.title"))
whose = me
if len(people) > 1:
    names = {key: t("citizen.timeline.me") if key == me else layer.name(key) for key in people}
    whose = st.selectbox(
        t("citizen.timeline.whose"),
        people,
        format_func=names.__getitem__,
        key=keyed("timeline_whose"),
    )
name = layer.name(whose)
if name:
    st.subheader(t("citizen.timeline.viewing", name=name))
views.timeline(layer.timeline(whose), key="timeline")
