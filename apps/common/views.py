"""Views more than one app shows: a person's timeline (the citizen's own, a clinician's
patient). Data is shown through Streamlit's table and chart widgets, which render text as text,
never as HTML: a name or a note holding markup is displayed, not run."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Final

import plotly.express as px
import polars as pl
import streamlit as st

from apps.common.i18n import day, lang, number, t
from apps.common.theme import apply

DISTRICTS: Final = (
    Path(__file__).resolve().parents[2] / "lakehouse/reference/gwangju/districts.geojson"
)


@cache
def _districts() -> dict[str, dict[str, str]]:
    features = json.loads(DISTRICTS.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["code"]: f["properties"] for f in features}


def district(code: str) -> str:
    """A district's name from the reference boundaries, in the session's language."""
    found = _districts().get(code)
    if found is None:
        return code
    return str(found["name"] if lang() == "ko" else found["name_eng"])


KINDS = ("visit", "admission", "diagnosis", "prescription", "dispensing", "measurement")


def timeline(rows: pl.DataFrame, key: str) -> None:
    """A timeline: kind filter, events per year, and the events, newest first."""
    if rows.is_empty():
        st.info(t("citizen.timeline.empty"))
        return
    present = [k for k in KINDS if k in set(rows["kind"].to_list())]
    chosen = st.multiselect(
        t("citizen.timeline.kinds"),
        present,
        default=present,
        format_func=lambda k: t(f"kind.{k}"),
        key=f"{key}_kinds",
    )
    shown = rows.filter(pl.col("kind").is_in(chosen))
    st.caption(t("citizen.timeline.count", count=number(shown.height)))
    if shown.is_empty():
        return
    per_year = (
        shown.with_columns(pl.col("event_date").dt.year().alias("year"))
        .group_by("year", "kind")
        .len()
        .sort("year", "kind")
        .with_columns(pl.col("kind").replace_strict({k: t(f"kind.{k}") for k in KINDS}))
    )
    figure = px.bar(
        per_year.to_pandas(),
        x="year",
        y="len",
        color="kind",
        pattern_shape="kind",  # not by colour alone
        labels={"year": "", "len": t("column.rows"), "kind": t("column.kind")},
        title=t("citizen.timeline.chart"),
    )
    st.plotly_chart(apply(figure), key=f"{key}_chart")
    table = shown.select(
        pl.col("event_date").map_elements(day, return_dtype=pl.Utf8).alias(t("column.date")),
        pl.col("kind").replace_strict({k: t(f"kind.{k}") for k in KINDS}).alias(t("column.kind")),
        pl.col("title").alias(t("column.title")),
        pl.col("detail").alias(t("column.detail")),
        pl.col("institution").alias(t("column.institution")),
    )
    st.dataframe(table, hide_index=True, key=f"{key}_table")
