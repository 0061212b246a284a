"""Who viewed my record: the access log, as it concerns me."""

import polars as pl
import streamlit as st

from apps.common.i18n import moment, t
from apps.common.layout import access

st.title(t("citizen.views.title"))
st.write(t("citizen.views.explain"))
rows = access().who_viewed_me()
if rows.is_empty():
    st.info(t("citizen.views.none"))
else:
    table = rows.select(
        pl.col("at").map_elements(moment, return_dtype=pl.Utf8).alias(t("column.when")),
        pl.col("account").alias(t("column.account")),
        pl.col("role")
        .map_elements(lambda r: t(f"role.{r}"), return_dtype=pl.Utf8)
        .alias(t("column.role")),
        pl.col("institution").alias(t("column.institution")),
        pl.col("purpose")
        .map_elements(lambda p: t(f"basis.{p}"), return_dtype=pl.Utf8)
        .alias(t("column.purpose")),
        pl.when(pl.col("emergency"))
        .then(pl.lit("⚠ " + t("yes")))
        .otherwise(pl.lit(t("no")))
        .alias(t("column.emergency")),
        pl.col("action").alias(t("column.action")),
    )
    st.dataframe(table, hide_index=True, key="views_table")
