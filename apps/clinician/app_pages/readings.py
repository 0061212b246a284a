"""Remote readings: what this clinic asked hospitals to read and their replies, and what other
clinics or patients themselves asked this hospital to read, and the replies patients asked to be
copied to this clinic. A study opens in the viewer, where the reply is written."""

import polars as pl
import streamlit as st

from apps.common.i18n import moments, t
from apps.common.layout import access

STATUSES = ("requested", "replied", "cancelled")
layer = access()
st.title(t("triage.reading.title"))
rows = layer.readings()
if rows.is_empty():
    st.info(t("triage.reading.none"))
    st.stop()
for direction, title in (
    ("received", "triage.reading.received"),
    ("sent", "triage.reading.sent_list"),
    ("copied", "triage.reading.copied"),
):
    mine = rows.filter(pl.col("direction") == direction)
    st.subheader(f"{t(title)} ({mine.height})")
    if mine.is_empty():
        st.caption(t("triage.reading.none"))
        continue
    st.dataframe(
        mine.select(
            moments("requested_at").alias(t("triage.reading.column.requested_at")),
            pl.col("counterpart")
            .fill_null(t("triage.reading.by_citizen"))
            .alias(t("triage.reading.column.counterpart")),
            pl.col("patient_key").str.slice(0, 9).alias(t("triage.column.patient")),
            pl.col("question").alias(t("triage.reading.column.question")),
            pl.col("status")
            .replace_strict({s: t(f"triage.reading.status.{s}") for s in STATUSES})
            .alias(t("triage.reading.column.status")),
            pl.col("decision")
            .replace_strict(
                {d: t(f"triage.status.{d}") for d in ("accepted", "rejected", "amended")},
                default=None,
            )
            .alias(t("triage.column.decision")),
            pl.col("report").alias(t("triage.reading.column.report")),
            moments("answered_at").alias(t("triage.column.when")),
        ).to_arrow(),
        hide_index=True,
        key=f"readings_{direction}",
    )
    open_ = mine.filter(pl.col("status") == "requested")
    if open_.height and direction != "copied":
        left, middle, right = st.columns([4, 1, 1])
        labels = {
            r: f"{p[:9]} · {c or ''}"
            for r, p, c in open_.select("request_id", "patient_key", "counterpart").iter_rows()
        }
        chosen = left.selectbox(
            t("triage.worklist.pick"),
            list(labels),
            format_func=labels.__getitem__,
            key=f"readings_pick_{direction}",
        )
        study = open_.filter(pl.col("request_id") == chosen)["study_instance_uid"][0]
        if middle.button(t("triage.worklist.open"), key=f"readings_open_{direction}"):
            st.session_state["study"] = study
            st.switch_page("app_pages/viewer.py")
        if direction == "sent" and right.button(t("triage.reading.cancel"), key="readings_cancel"):
            layer.cancel_reading(chosen)
            st.rerun()
