"""The programme at a glance (the officials' first page): one card per KPI with its value, its
target and whose target it is, the change since the previous month and how fresh it is; the AI
reading services' month as published; the monthly report to download.

Everything comes from the access layer's published figures (``Access.kpis``,
``Access.service_table``); cards stack on a phone, and a change is told by its sign and words,
never by colour alone.
"""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import keyed, lang, t
from apps.common.layout import access
from apps.common.views import service_name
from apps.public_health import freshness
from apps.public_health import kpis as words
from apps.public_health.report import report
from lakehouse import disclosure
from lakehouse.access.programme import AI_KPIS, ROUND, UPTAKE_KPIS, Kpi
from lakehouse.catalog.gold import SERVICE_COUNTS

layer = access()
with layer.view("overview"):  # one audited unit: one commit per view
    MONTHS = layer.uptake_months()
    st.title(t("official.overview.title"))
    freshness.line(layer)
    if not MONTHS:
        st.info(t("official.overview.empty"))
        st.stop()
    month = st.selectbox(t("official.overview.month"), MONTHS[::-1], key="overview_month")
    cards = layer.kpis(month)

    def card(kpi: Kpi) -> None:
        """One KPI's card: the figure with its change as the metric's delta (signed, its arrow set
        from the sign, in grey), then its share, target, progress and freshness in words."""
        change = kpi.change
        with st.container(border=True):
            st.metric(
                words.name(kpi.kpi),
                words.value(kpi),
                delta=None if change is None else words.signed(change, words.unit(kpi.kpi)),
                delta_color="off",
                delta_arrow="off" if not change else ("up" if change > 0 else "down"),
                delta_description=None if change is None else t("kpi.since"),
                help=words.quote(kpi.target),
            )
            lines = [
                words.share(kpi),
                words.target(kpi.target, kpi.kpi),
                words.progress(kpi),
                words.change(kpi) if change is None else None,
                words.fresh(kpi.freshness),
            ]
            for line in filter(None, lines):
                st.caption(line)

    def row(group: list[Kpi], across: int = 3) -> None:
        """Cards side by side on a wide screen, at most ``across`` to a row so that a figure is
        never cut (Streamlit stacks columns on a phone)."""
        for start in range(0, len(group), across):
            part = group[start : start + across]
            for column, kpi in zip(st.columns(across), part, strict=False):
                with column:
                    card(kpi)

    by_key = {k.kpi: k for k in cards}
    st.subheader(t("official.overview.citizens"))
    row([by_key[k] for k in UPTAKE_KPIS])
    st.subheader(t("official.overview.institutions"))
    row([by_key["institutions"], *(k for k in cards if k.kpi.startswith(ROUND))])
    st.subheader(t("official.overview.services"))
    row([by_key[k] for k in AI_KPIS])

    services = layer.service_table().filter(
        (pl.col("month") == month) & (pl.col("service") != disclosure.TOTAL)
    )
    st.caption(t("official.overview.services_note"))
    if services.is_empty():
        st.info(t("official.overview.no_services"))
    else:
        hidden = words.hidden()
        shown = services.sort("service").select(
            pl.Series(
                t("column.service"), [service_name(s) for s in services.sort("service")["service"]]
            ),
            *(
                pl.when(pl.col(f"{c}_suppressed"))
                .then(pl.lit(hidden))
                .otherwise(pl.col(c).cast(pl.Int64).cast(pl.Utf8))
                .alias(t(f"column.{c}"))
                for c in SERVICE_COUNTS
            ),
            pl.col("median_hours")
            .round(1)
            .cast(pl.Utf8)
            .fill_null("–")
            .alias(t("column.median_hours")),
        )
        # Every service in view, none behind the table's own scroll: rows of a set height, the
        # header and the border.
        st.dataframe(
            shown.to_arrow(),
            hide_index=True,
            row_height=35,
            height=35 * (shown.height + 1) + 3,
            key="overview_services",
        )

    st.download_button(
        t("official.overview.report"),
        # Made when pressed, on Streamlit's thread: in this session's language, audited then.
        data=partial(report, layer, month, lang()),
        file_name=f"programme-report-{month}.html",
        mime="text/html",
        key=keyed("overview_report"),
        icon=":material/download:",
    )
