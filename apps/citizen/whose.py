"""Whose record a citizen's page shows: their own, or that of someone who made them a carer."""

from __future__ import annotations

import streamlit as st

from apps.common.i18n import keyed, t
from lakehouse.access import Access


def whose(layer: Access, key: str) -> str:
    """The citizen key the page shows: the signed-in citizen's own, or, when people made them
    their family carer, the one chosen (by name) in a box keyed ``<key>_whose``."""
    me = str(layer.principal.citizen_key)
    people = [me, *layer.proxied()]
    if len(people) == 1:
        return me
    names = {k: t("citizen.timeline.me") if k == me else layer.name(k) for k in people}
    chosen: str = st.selectbox(
        t("citizen.timeline.whose"),
        people,
        format_func=names.__getitem__,
        key=keyed(f"{key}_whose"),
    )
    return chosen
