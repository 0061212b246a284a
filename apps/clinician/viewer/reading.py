"""Remote reading from the viewer: the study's requests, asking a hospital to read it (on the
sending clinic's own study), and the hospital's reply (on a study sent to it)."""

import polars as pl
import streamlit as st

from apps.clinician.viewer.findings import decision_choice
from apps.clinician.viewer.study import saved
from apps.common.i18n import moments, t
from apps.common.refusals import refusal
from lakehouse.access import Access, AccessDeniedError, OpenedStudy

STATUSES = ("requested", "replied", "cancelled")


def _requests(requests: pl.DataFrame) -> None:
    st.dataframe(
        requests.select(
            moments("requested_at").alias(t("triage.reading.column.requested_at")),
            pl.col("to_institution").alias(t("triage.reading.hospital")),
            pl.col("question").alias(t("triage.reading.column.question")),
            pl.col("status")
            .replace_strict({s: t(f"triage.reading.status.{s}") for s in STATUSES})
            .alias(t("triage.reading.column.status")),
            pl.col("report").alias(t("triage.reading.column.report")),
        ).to_arrow(),
        hide_index=True,
        key="reading_table",
    )


def _ask(layer: Access, uid: str) -> None:
    hospitals = layer.reading_hospitals()
    if hospitals.is_empty():
        st.caption(t("triage.reading.no_hospital"))
        return
    with st.form("reading_ask"):
        names = dict(zip(hospitals["ykiho"].to_list(), hospitals["name"].to_list(), strict=True))
        hospital = st.selectbox(
            t("triage.reading.hospital"),
            list(names),
            format_func=names.__getitem__,
            key="reading_hospital",
        )
        question = st.text_area(
            t("triage.reading.question"), max_chars=1000, key="reading_question"
        )
        if not st.form_submit_button(t("triage.reading.send")):
            return
    if not question.strip():
        st.error(t("triage.reading.question_missing"))
        return
    try:
        layer.request_reading(uid, hospital, question)
    except AccessDeniedError as refused:
        st.error(refusal(refused))
        return
    saved(t("triage.reading.sent"))


def _reply(layer: Access, request: dict[str, str]) -> None:
    with st.form("reading_reply"):
        st.markdown(f"**{t('triage.reading.reply')}**")
        st.text(request["question"])  # another clinician's words: text, never markdown
        report = st.text_area(t("triage.reading.report"), max_chars=4000, key="reading_report")
        decision = decision_choice("reading_decision", t("triage.decide.decision"))
        if not st.form_submit_button(t("triage.reading.send_reply"), type="primary"):
            return
    if decision is None:
        st.error(t("triage.decide.choose"))
        return
    if not report.strip():
        st.error(t("triage.reading.report_missing"))
        return
    try:
        layer.reply_reading(request["request_id"], report, decision)
    except AccessDeniedError as refused:
        st.error(refusal(refused))
        return
    except ValueError:  # answered or cancelled meanwhile, by another reader or the clinic
        st.error(t("triage.reading.not_open"))
        return
    saved(t("triage.reading.replied"))


def remote_reading(layer: Access, opened: OpenedStudy, uid: str) -> None:
    """The requests so far; the form to ask (own study) or to reply (a study sent here)."""
    requests = opened.requests
    if not requests.is_empty():
        _requests(requests)
    if opened.basis == "institution":
        _ask(layer, uid)
    waiting = requests.filter(pl.col("status") == "requested")
    if opened.basis == "remote_reading" and not waiting.is_empty():
        _reply(layer, waiting.row(0, named=True))
