"""Who viewed my record: the access log, as it concerns me, each access's basis in words
(``basis.*``: my carer, a clinician of an institution that treated me, a share code I gave, my
standing consent, an emergency access) and each institution by its name."""

from functools import partial

import polars as pl
import streamlit as st

from apps.common.i18n import labelled, moments, t, word
from apps.common.layout import access
from apps.common.views import account_name

st.title(t("citizen.views.title"))
st.write(t("citizen.views.explain"))
rows = access().who_viewed_me()
if rows.is_empty():
    st.info(t("citizen.views.none"))
else:
    table = rows.select(
        moments("at").alias(t("column.when")),
        labelled(rows, "account", account_name).alias(t("column.account")),
        labelled(rows, "role", partial(word, "role")).alias(t("column.role")),
        pl.when(pl.col("institution_name").is_not_null())
        .then(pl.format("{} ({})", "institution_name", "institution"))
        .otherwise(pl.col("institution").fill_null("–"))
        .alias(t("column.institution")),
        labelled(rows, "purpose", lambda p: t(f"basis.{p}")).alias(t("column.purpose")),
        pl.when(pl.col("emergency"))
        .then(pl.lit("⚠ " + t("yes")))
        .otherwise(pl.lit(t("no")))
        .alias(t("column.emergency")),
        labelled(rows, "action", partial(word, "action")).alias(t("column.action")),
    )
    st.dataframe(table.to_arrow(), hide_index=True, key="views_table")
