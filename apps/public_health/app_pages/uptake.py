"""Programme uptake by district, age group and sex, or by dong, as published: every figure is
a slice or a sum of the one suppressed table (``gold.programme_uptake_published``), read
through the access layer, so no choice of breakdown or period can undo its suppression."""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import keyed, labelled, number, t, word
from apps.common.layout import access
from apps.common.views import district, dong
from apps.public_health import freshness
from lakehouse import disclosure
from lakehouse.access import UPTAKE_DIMENSIONS, UPTAKE_MEASURES

layer = access()
with layer.view("uptake"):  # one audited unit: one commit per view
    MONTHS = layer.uptake_months()
    st.title(t("official.uptake.title"))
    freshness.line(layer)
    if not MONTHS:
        st.info(t("official.uptake.empty"))
        st.stop()
    st.caption(t("official.uptake.rule"))
    st.caption(t("official.uptake.published"))
    VIEWS = ("cube", "dong")
    a, b = st.columns(2)
    measure = a.selectbox(
        t("official.uptake.measure"),
        list(UPTAKE_MEASURES),
        format_func=lambda m: t(f"measure.{m}"),
        key=keyed("uptake_measure"),
    )
    view = b.radio(
        t("official.uptake.view"),
        VIEWS,
        format_func=lambda v: t(f"official.uptake.view_{v}"),
        horizontal=True,
        key=keyed("uptake_view"),
    )
    # One marker for every hidden cell: telling primary from complementary cells would tell which
    # hidden counts are 1-10 (lakehouse.disclosure, "Bounds, not equations").
    HIDDEN = "◆ " + t("official.uptake.suppressed")
    NAMES = {"district_code": district, "dong_code": dong}

    def label(column: str, value: str) -> str:
        if value == disclosure.TOTAL:
            return t("official.uptake.total")
        if column in NAMES:
            return NAMES[column](value)
        return word("sex", value) if column == "sex" else value

    def cell(value: object, suppressed: object) -> str:
        """The published value, or the mark of a suppressed cell."""
        if suppressed:
            return HIDDEN
        return number(float(value) if isinstance(value, int | float) else None)

    if view == "dong":
        st.caption(t("official.uptake.dong_period", first=MONTHS[0], last=MONTHS[-1]))
        dims = ["district_code", "dong_code"]
        table = layer.uptake_dongs(measure, MONTHS[0], MONTHS[-1])
    else:
        c, d = st.columns(2)
        dims = c.multiselect(
            t("official.uptake.by"),
            list(UPTAKE_DIMENSIONS),
            default=["district_code"],
            format_func=lambda d: t(f"dimension.{d}"),
            key=keyed("uptake_dims"),
        )
        first, last = d.select_slider(
            t("official.uptake.period"), MONTHS, value=(MONTHS[0], MONTHS[-1]), key="uptake_period"
        )
        table = layer.uptake(measure, dims, first, last)

    cells = [cell(value, hidden) for value, hidden in table.select(measure, "suppressed").rows()]
    shown = table.select(
        *[labelled(table, d, partial(label, d)).alias(t(f"dimension.{d}")) for d in dims],
        pl.lit(pl.Series(cells, dtype=pl.Utf8)).alias(t(f"measure.{measure}")),
    )
    st.dataframe(shown.to_arrow(), hide_index=True, key="uptake_table")
