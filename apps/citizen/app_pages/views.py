"""Who viewed my record: the access log, as it concerns me."""

import polars as pl
import streamlit as st

from apps.common.i18n import labelled, moments, t
from apps.common.layout import access

st.title(t("citizen.views.title"))
st.write(t("citizen.views.explain"))
rows = access().who_viewed_me()
if rows.is_empty():
    st.info(t("citizen.views.none"))
else:
    table = rows.select(
        moments("at").alias(t("column.when")),
        pl.col("account").alias(t("column.account")),
        labelled(rows, "role", lambda r: t(f"role.{r}")).alias(t("column.role")),
        pl.col("institution").alias(t("column.institution")),
        labelled(rows, "purpose", lambda p: t(f"basis.{p}")).alias(t("column.purpose")),
        pl.when(pl.col("emergency"))
        .then(pl.lit("⚠ " + t("yes")))
        .otherwise(pl.lit(t("no")))
        .alias(t("column.emergency")),
        pl.col("action").alias(t("column.action")),
    )
    st.dataframe(table.to_arrow(), hide_index=True, key="views_table")
