"""Data quality of the OMOP tables, in the data-health section: the latest run of OHDSI's Data
Quality Dashboard checks (``Access.data_quality``), summarised by Kahn category and level, then
each failed check with its failing rows and why (an expected failure's explanation, or that the
cause is to be found), then the checks not applied and why. Counts and names only; every code
is shown with its name, and pass or fail is said in words, never by colour alone."""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import NOTHING, day, labelled, moment, number, t, word
from apps.common.layout import access

# Failed checks shown one by one (the rest are in the table below them).
SHOWN: int = 30

layer = access()
with layer.view("quality"):  # one audited unit: one commit per view
    st.title(t("dq.title"))
    report = layer.data_quality()
    if report.run_at is None:
        st.caption(t("dq.intro"))
        st.info(t("dq.none"), icon=":material/help:")
        st.stop()
    st.caption(t("dq.run_line", when=moment(report.run_at), release=day(report.source_release)))
    st.caption(t("dq.intro"))

    def named(group: str, code: str) -> str:
        """A code with its name: ``진단 (condition_occurrence)``."""
        return f"{word(group, code)} ({code})"

    def col(key: str) -> str:
        return t(f"dq.column.{key}")

    totals = report.summary.select(pl.exclude("category", "level").sum()).row(0, named=True)
    st.markdown(
        "**"
        + t(
            "dq.totals",
            run=number(totals["run"]),
            passed=number(totals["passed"]),
            failed=number(totals["failed"]),
            fatal=number(totals["failed_fatal"]),
            na=number(totals["not_applicable"]),
        )
        + "**"
    )
    if totals["failed_fatal"]:
        st.error(t("dq.fatal_warning"), icon=":material/error:")

    # --- by Kahn category and level -----------------------------------------------------------
    st.subheader(t("dq.summary"))
    st.caption(t("dq.summary_note"))
    summary = report.summary
    counts = ("run", "passed", "failed", "not_applicable")
    st.dataframe(
        summary.select(
            labelled(summary, "category", partial(word, "dq.category")).alias(col("category")),
            labelled(summary, "level", partial(word, "dq.level")).alias(col("level")),
            *(pl.col(c).alias(col(c)) for c in counts),
        ).to_arrow(),
        hide_index=True,
        key="dq_summary",
        column_config={col(c): st.column_config.NumberColumn(format="localized") for c in counts},
    )

    # --- failed checks ----------------------------------------------------------------------
    st.subheader(t("dq.failures"))
    failures = report.failures
    if not failures.height:
        st.success(t("dq.failures_none"), icon=":material/check_circle:")
    for f in failures.head(SHOWN).iter_rows(named=True):
        where = named("dq.table", f["cdm_table"])
        target = f["cdm_field"] or ""
        if f["concept_id"] is not None:
            target = f"{target} = {f['concept_id']}"
        why = t(f"dq.explanation.{f['explanation']}") if f["explanation"] else t("dq.unexplained")
        with st.container(border=True, key=f"dq_failure_{f['check_name']}_{target}"):
            st.markdown(
                f"**{named('dq.check', f['check_name'])}** · {word('dq.severity', f['severity'])}"
            )
            st.markdown(where + (f" · {col('field')}: `{target}`" if target else ""))
            st.markdown(
                f"{col('failing')}: {number(f['rows_failing'])} / {number(f['rows_checked'])} · "
                f"{col('share')}: {number(f['pct_failing'], 2)} / {number(f['threshold_pct'], 0)}"
            )
            st.markdown(f"{col('explanation')}: {why}")
    if failures.height > SHOWN:
        st.dataframe(
            failures.select(
                labelled(failures, "check_name", partial(named, "dq.check")).alias(col("check")),
                labelled(failures, "cdm_table", partial(named, "dq.table")).alias(col("table")),
                pl.col("cdm_field").fill_null(NOTHING).alias(col("field")),
                pl.col("rows_failing").alias(col("failing")),
                pl.col("rows_checked").alias(col("checked")),
            ).to_arrow(),
            hide_index=True,
            key="dq_failures",
        )

    # --- not applicable -----------------------------------------------------------------------
    skipped = report.not_applicable
    not_applied = int(skipped.get_column("checks").sum())
    with st.expander(f"{t('dq.not_applicable')} ({number(not_applied)})"):
        st.dataframe(
            skipped.select(
                labelled(skipped, "check_name", partial(named, "dq.check")).alias(col("check")),
                labelled(skipped, "not_applicable_reason", partial(word, "dq.reason")).alias(
                    col("reason")
                ),
                pl.col("checks").alias(col("checks")),
            ).to_arrow(),
            hide_index=True,
            key="dq_not_applicable",
        )
