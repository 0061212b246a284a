"""Review the access log: every person-level access and refusal, emergency accesses first
in the eye (highlighted), filterable by account and period.

Actions show as words in the session's language and accounts by the name the account file
gives them; the codes and IDs as logged are in the Action column's help and in the CSV export.
An emergency access's stated reason sits right after its action, where the eye already is; in
that place a refusal shows why, named from its code (``refusal``) in the session's language,
while the log's English sentence (``detail``) stays in the export for the reviewer."""

from datetime import UTC, datetime, timedelta
from functools import partial

import polars as pl
import streamlit as st

from apps.common import views
from apps.common.i18n import NOTHING, labelled, moments, number, t, word
from apps.common.layout import access
from lakehouse import accounts

st.title(t("admin.audit.title"))
st.caption(t("admin.audit.explain"))
a, b, c = st.columns(3)
days = a.number_input(t("admin.audit.days"), 1, 731, 30, key="audit_days")
typed = b.text_input(t("admin.audit.account"), max_chars=64, key="audit_account").strip()
emergency_only = c.toggle(t("admin.audit.emergency_only"), key="audit_emergency")
# The accounts are shown by name, so a name typed here finds its account too.
by_name = {a.display_name: a.name for a in accounts.load().values() if a.display_name}
rows = access().audit_log(
    datetime.now(UTC) - timedelta(days=int(days)),
    account=by_name.get(typed, typed) or None,
    emergency_only=emergency_only,
)
st.write(
    t(
        "admin.audit.summary",
        count=number(rows.height),
        emergency=number(int(rows["emergency"].sum())),
        denied=number(int((rows["outcome"] == "denied").sum())),
    )
)
if rows.is_empty():
    st.info(t("admin.audit.none"))
    st.stop()

action = partial(word, "action")
# A refusal's code, "denied" for one logged before codes were kept.
rows = rows.with_columns(
    pl.when(pl.col("outcome") == "denied")
    .then(pl.col("refusal").fill_null("denied"))
    .alias("refusal")
)
table = rows.select(
    pl.when(pl.col("emergency")).then(pl.lit("⚠")).otherwise(pl.lit("")).alias("!"),
    moments("at").alias(t("column.when")),
    labelled(rows, "account", views.account_name).alias(t("column.account")),
    labelled(rows, "role", partial(word, "role")).alias(t("column.role")),
    labelled(rows, "action", action).alias(t("column.action")),
    pl.when(pl.col("outcome") == "denied")
    .then(labelled(rows, "refusal", partial(word, "refused")))
    .otherwise(pl.col("detail").fill_null(""))
    .alias(t("column.detail_reason")),
    labelled(rows, "outcome", lambda o: t(f"outcome.{o}")).alias(t("column.outcome")),
    labelled(rows, "purpose", lambda p: t(f"basis.{p}")).alias(t("column.purpose")),
    pl.col("subject_key").fill_null(NOTHING).alias(t("column.subject")),
    pl.col("institution").fill_null(NOTHING).alias(t("column.institution")),
    pl.col("rows").alias(t("column.rows")),
    pl.col("origin").alias(t("column.origin")),
)
codes = sorted(rows["action"].unique().to_list())
glossary = "\n".join(f"- {action(code)} → `{code}`" for code in codes)
st.dataframe(
    table.to_arrow()
    .to_pandas()
    .style.apply(
        lambda r: ["background-color: #fff3cd; font-weight: 600" if r["!"] else "" for _ in r],
        axis=1,
    ),
    hide_index=True,
    key="audit_table",
    column_config={
        t("column.action"): st.column_config.TextColumn(
            help=f"{t('admin.audit.action_help')}\n\n{glossary}"
        ),
        t("column.account"): st.column_config.TextColumn(help=t("admin.audit.account_help")),
        t("column.detail_reason"): st.column_config.TextColumn(width="large"),
    },
)
st.download_button(
    t("admin.audit.export"),
    rows.write_csv(),
    file_name="audit_log.csv",
    mime="text/csv",
    icon=":material/download:",
    key="audit_export",
)
