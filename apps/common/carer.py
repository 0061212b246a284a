"""Whose record a citizen's page shows: their own, or that of someone who made them their
family carer (``Access.proxied``), chosen the same way on every page that reads a record."""

from __future__ import annotations

import streamlit as st

from apps.common.i18n import keyed, t
from lakehouse.access import Access


def whose(layer: Access, key: str, label: str | None = None) -> str:
    """The citizen key the page reads: the signed-in citizen's, or, when they are someone's
    carer, the one chosen in a select box (widget key ``key``, per language; ``label`` asks,
    "whose record" by default)."""
    me = str(layer.principal.citizen_key)
    people = [me, *layer.proxied()]
    if len(people) == 1:
        return me
    names = {p: t("citizen.timeline.me") if p == me else layer.name(p) for p in people}
    chosen: str = st.selectbox(
        label or t("citizen.timeline.whose"),
        people,
        format_func=names.__getitem__,
        key=keyed(key),
    )
    return chosen
