"""Adverse drug event signals for officials and researchers: the forest plot of adjusted sequence
ratios of one area (the city or a district), the pairs in a table, and the method and its limits.

Everything comes from ``Access.ade_signals``: the published ``gold.ade_signals``, small counts
already hidden, one audited read per view.
"""

from __future__ import annotations

import streamlit as st

from apps.common.i18n import keyed, t
from apps.common.layout import access
from apps.common.theme import apply
from apps.common.views import district
from apps.public_health.signals_view import forest, shown_pairs, table
from lakehouse.omop.signals import CITY, DEFAULTS

# Gwangju's five districts (gold.ade_signals' scope pattern; their names from the boundaries).
DISTRICTS = ("24010", "24020", "24030", "24040", "24050")

layer = access()
with layer.view("signals"):  # one audited unit: one commit per view
    st.title(t("signals.title"))
    st.caption(t("signals.intro"))
    st.info(t("signals.synthetic"), icon=":material/science:")
    scope = st.selectbox(
        t("signals.scope"),
        [CITY, *DISTRICTS],
        format_func=lambda s: t("signals.city") if s == CITY else district(s),
        key=keyed("signals_scope"),
    )
    only = st.toggle(t("signals.prespecified_only"), key="signals_prespecified")
    rows = layer.ade_signals(scope, prespecified_only=only)
    if not rows.height:
        st.info(t("signals.empty"))
    else:
        st.subheader(t("signals.forest.title"))
        st.caption(t("signals.forest.explain"))
        plotted = shown_pairs(rows)
        if plotted.height:
            st.plotly_chart(apply(forest(plotted)), key="signals_forest")
        else:
            st.caption(t("signals.forest.none"))
        st.subheader(t("signals.table.title"))
        st.dataframe(table(rows).to_arrow(), hide_index=True, key="signals_table")

    st.subheader(t("signals.method.title"))
    st.markdown(t("signals.method.ssa", window=DEFAULTS.window_days, washout=DEFAULTS.washout_days))
    st.markdown(t("signals.method.trend"))
    st.markdown(t("signals.method.prr", risk=DEFAULTS.risk_days))
    st.markdown(t("signals.method.limits"))
    st.caption(t("signals.method.papers"))
