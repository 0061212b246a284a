"""The freshness line every officials' page shows at its top: how fresh its figures are.

One short line, ``2025년 12월 31일까지의 자료 · 2026년 12월 6일 09:00 갱신``: the newest day of
data the page's gold tables cover and when they were last built (``Access.freshness``, from the
tables' Delta logs). A page passes the gold tables it reads; by default the uptake table.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from apps.common.i18n import day, moment, t
from lakehouse.access import Access
from lakehouse.access.health import UPTAKE_TABLES


def line(layer: Access, tables: Sequence[str] = UPTAKE_TABLES) -> None:
    """Show how fresh the figures from ``tables`` are, as a caption; say so when none has been
    built yet."""
    found = layer.freshness(tables)
    if found.built_at is None:
        st.caption(t("official.freshness.none"))
        return
    st.caption(
        t("official.freshness.line", until=day(found.data_until), built=moment(found.built_at))
    )
