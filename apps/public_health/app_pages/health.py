"""Data health: how fresh and trustworthy each figure is. Per source its last successful run,
delivery period and row counts; the quality checks whose latest result failed; the records
quarantined by reason; each with how fresh it is. Codes are shown with their names
(``word``), and every figure is a count from the access layer (``Access.data_health``)."""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import NOTHING, labelled, moment, moments, t, word
from apps.common.layout import access
from apps.public_health import freshness

layer = access()
with layer.view("health"):  # one audited unit: one commit per view
    st.title(t("official.health.title"))
    freshness.line(layer)
    st.caption(t("official.health.intro"))
    health = layer.data_health()
    if not health.recorded:
        st.warning(t("official.health.no_runs"), icon=":material/warning:")
    COUNT = st.column_config.NumberColumn(format="localized")
    SOURCE_COUNTS = (
        "files",
        "files_rejected",
        "rows_read",
        "rows_accepted",
        "rows_quarantined",
        "silver_rows",
    )

    def named(group: str, code: str) -> str:
        """A code with its name: ``건강보험 청구자료 (claims)``."""
        return f"{word(group, code)} ({code})"

    def col(key: str) -> str:
        return t(f"official.health.column.{key}")

    def newest(rows: pl.DataFrame, column: str) -> str:
        """The newest time of a column, in words (a dash when there is none)."""
        value = rows.get_column(column).max() if rows.height else None
        return moment(value) if value is not None else NOTHING  # type: ignore[arg-type]

    def table(rows: pl.DataFrame, key: str, counts: tuple[str, ...]) -> None:
        st.dataframe(
            rows.to_arrow(),
            hide_index=True,
            key=key,
            column_config={col(c): COUNT for c in counts},
        )

    # --- per source ---------------------------------------------------------------------------
    st.subheader(t("official.health.sources"))
    sources = health.sources
    st.caption(t("official.health.sources_note", when=newest(sources, "last_run_at")))
    yes_no = {True: t("official.health.yes"), False: t("official.health.no")}
    shown = sources.select(
        labelled(sources, "source", partial(named, "health.source")).alias(col("source")),
        moments("last_run_at").alias(col("last_run_at")),
        pl.when(pl.col("last_run_at").is_null())
        .then(pl.lit(NOTHING))
        .otherwise(
            pl.col("run_window")
            .str.replace("..", " ~ ", literal=True)
            .fill_null(t("official.health.whole"))
        )
        .alias(col("run_window")),
        pl.col("failed_since").replace_strict(yes_no, default=NOTHING).alias(col("failed_since")),
        pl.when(pl.col("first_period") == pl.col("last_period"))
        .then(pl.col("first_period"))
        .otherwise(pl.concat_str("first_period", pl.lit(" ~ "), "last_period"))
        .fill_null(NOTHING)
        .alias(col("periods")),
        moments("last_delivered_at").alias(col("last_delivered_at")),
        *(pl.col(c).alias(col(c)) for c in SOURCE_COUNTS),
        moments("silver_updated").alias(col("silver_updated")),
    )
    table(shown, "health_sources", SOURCE_COUNTS)

    # --- quality checks -----------------------------------------------------------------------
    st.subheader(t("official.health.checks"))
    checks = health.checks
    if not health.recorded:
        st.info(t("official.health.checks_unknown"), icon=":material/help:")
    elif not checks.height:
        st.success(t("official.health.checks_none"), icon=":material/check_circle:")
    else:
        st.caption(t("official.health.checks_note", when=newest(checks, "evaluated_at")))
        kinds = {c: named("health.check", c) for c in checks.get_column("dqd_check").unique()}
        shown = checks.select(
            labelled(checks, "table", partial(named, "health.table")).alias(col("table")),
            pl.concat_str(
                pl.col("dqd_check").replace_strict(kinds, return_dtype=pl.Utf8),
                pl.lit(" · "),
                pl.col("check"),
            ).alias(col("check")),
            labelled(checks, "severity", partial(word, "health.severity")).alias(col("severity")),
            pl.col("violations").alias(col("violations")),
            pl.col("rows").alias(col("rows")),
            pl.format("{} / {}", pl.col("share_pct").round(2), pl.col("threshold_pct")).alias(
                col("share")
            ),
            moments("evaluated_at").alias(col("evaluated_at")),
        )
        table(shown, "health_checks", ("violations", "rows"))

    # --- quarantine ---------------------------------------------------------------------------
    st.subheader(t("official.health.quarantine"))
    quarantine = health.quarantine
    if not quarantine.height:
        st.success(t("official.health.quarantine_none"), icon=":material/check_circle:")
    else:
        period = quarantine.get_column("last_period").max()
        st.caption(t("official.health.quarantine_note", period=period or NOTHING))
        shown = quarantine.select(
            labelled(quarantine, "source", partial(named, "health.source")).alias(col("source")),
            labelled(quarantine, "stage", partial(word, "health.stage")).alias(col("stage")),
            labelled(quarantine, "reason", partial(named, "health.reason")).alias(col("reason")),
            pl.col("records").alias(col("records")),
            pl.col("rows").alias(col("quarantined_rows")),
            pl.col("last_period").alias(col("last_period")),
        )
        table(shown, "health_quarantine", ("records", "quarantined_rows"))
