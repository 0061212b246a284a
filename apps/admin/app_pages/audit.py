"""Review the access log: every person-level access and refusal, emergency accesses first
in the eye (highlighted), filterable by account and period."""

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from apps.common.i18n import labelled, moments, number, t
from apps.common.layout import access

st.title(t("admin.audit.title"))
st.caption(t("admin.audit.explain"))
a, b, c = st.columns(3)
days = a.number_input(t("admin.audit.days"), 1, 731, 30, key="audit_days")
account = b.text_input(t("admin.audit.account"), max_chars=64, key="audit_account").strip()
emergency_only = c.toggle(t("admin.audit.emergency_only"), key="audit_emergency")
rows = access().audit_log(
    datetime.now(UTC) - timedelta(days=int(days)),
    account=account or None,
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
else:
    table = rows.select(
        pl.when(pl.col("emergency")).then(pl.lit("⚠")).otherwise(pl.lit("")).alias("!"),
        moments("at").alias(t("column.when")),
        pl.col("account").alias(t("column.account")),
        labelled(rows, "role", lambda r: t(f"role.{r}")).alias(t("column.role")),
        pl.col("institution").alias(t("column.institution")),
        pl.col("subject_key").alias(t("column.subject")),
        pl.col("action").alias(t("column.action")),
        labelled(rows, "purpose", lambda p: t(f"basis.{p}")).alias(t("column.purpose")),
        labelled(rows, "outcome", lambda o: t(f"outcome.{o}")).alias(t("column.outcome")),
        pl.col("rows").alias(t("column.rows")),
        pl.col("detail").alias(t("column.detail_reason")),
        pl.col("origin").alias(t("column.origin")),
    )
    st.dataframe(
        table.to_arrow()
        .to_pandas()
        .style.apply(
            lambda r: ["background-color: #fff3cd; font-weight: 600" if r["!"] else "" for _ in r],
            axis=1,
        ),
        hide_index=True,
        key="audit_table",
    )
