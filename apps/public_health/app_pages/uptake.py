"""Programme uptake by district, age group and sex, as it may be published: the access layer
suppresses and complements small cells before anything reaches this page."""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import keyed, labelled, number, t, word
from apps.common.layout import access
from apps.common.views import district
from apps.public_health import freshness
from lakehouse import disclosure
from lakehouse.access import UPTAKE_DIMENSIONS, UPTAKE_MEASURES

layer = access()
MONTHS = layer.uptake_months()
st.title(t("official.uptake.title"))
freshness.line(layer)
if not MONTHS:
    st.info(t("official.uptake.empty"))
    st.stop()
st.caption(t("official.uptake.rule"))
a, b, c = st.columns(3)
measure = a.selectbox(
    t("official.uptake.measure"),
    list(UPTAKE_MEASURES),
    format_func=lambda m: t(f"measure.{m}"),
    key=keyed("uptake_measure"),
)
dims = b.multiselect(
    t("official.uptake.by"),
    list(UPTAKE_DIMENSIONS),
    default=["district_code"],
    format_func=lambda d: t(f"dimension.{d}"),
    key=keyed("uptake_dims"),
)
first, last = c.select_slider(
    t("official.uptake.period"), MONTHS, value=(MONTHS[0], MONTHS[-1]), key="uptake_period"
)
table = layer.uptake(measure, dims, first, last)
# One marker for every hidden cell: telling primary from complementary cells would tell which
# hidden counts are 1-10 (lakehouse.disclosure, "Bounds, not equations").
HIDDEN = "◆ " + t("official.uptake.suppressed")


def label(column: str, value: str) -> str:
    if value == disclosure.TOTAL:
        return t("official.uptake.total")
    if column == "district_code":
        return district(value)
    return word("sex", value) if column == "sex" else value


def cell(value: object, suppressed: object) -> str:
    """The published value, or the mark of a suppressed cell."""
    if suppressed:
        return HIDDEN
    return number(float(value) if isinstance(value, int | float) else None)


cells = [cell(value, hidden) for value, hidden in table.select(measure, "suppressed").rows()]
shown = table.select(
    *[labelled(table, d, partial(label, d)).alias(t(f"dimension.{d}")) for d in dims],
    pl.lit(pl.Series(cells, dtype=pl.Utf8)).alias(t(f"measure.{measure}")),
)
st.dataframe(shown.to_arrow(), hide_index=True, key="uptake_table")
