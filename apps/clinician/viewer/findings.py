"""The study's findings beside the images: each with its service, score or value against the
threshold, where the AI located it, its verification and its model card, and a form to decide on
it; and the history of the decisions taken on the study."""

from typing import Any

import polars as pl
import streamlit as st

from apps.clinician.viewer.study import saved
from apps.common import render, views
from apps.common.i18n import moments, number, t
from apps.common.refusals import refusal
from apps.common.viewer import location
from lakehouse.access import Access, AccessDeniedError, OpenedStudy
from lakehouse.triage import DECIDED, policy
from models.runtime.registry import card


def reasons() -> list[tuple[str, str]]:
    """Every (decision, reason) a clinician may choose, in the triage policy's order."""
    return [(d, r) for d in DECIDED for r in policy().reasons[d]]


def _where(where: dict[str, Any], instances: pl.DataFrame) -> list[str]:
    """Where the AI located the finding: a box on a numbered instance (and on a numbered frame
    of a multi-frame one), or ECG segments."""
    if where.get("type") == "box":
        x0, y0, x1, y1 = where["box"]
        number_of = instances.filter(pl.col("sop_instance_uid") == where.get("sop_instance_uid"))[
            "instance_number"
        ]
        frame = where.get("frame")
        return [
            t(
                "triage.viewer.box" if frame is None else "frames.viewer.box",
                instance=number_of[0] if number_of.len() else "?",
                x0=round(x0),
                y0=round(y0),
                x1=round(x1),
                y1=round(y1),
                frame=frame,
            )
        ]
    if where.get("type") == "segments":
        spans = render.merged(where["seconds"])
        lines = [
            t(
                "triage.viewer.segments",
                count=len(spans),
                list=", ".join(f"{clock(a)}–{clock(b)}" for a, b in spans),
            )
        ]
        if "windows" in where:  # the recording and its worst windows (any lead set)
            lines.append(
                t(
                    "ecg.viewer.recording",
                    leads=", ".join(where.get("leads", [])),
                    duration=clock(where.get("duration_s", 0.0)),
                    windows=number(where.get("windows_scored", 0)),
                )
            )
            lines += [
                t(
                    "ecg.viewer.window",
                    start=clock(w["start"]),
                    end=clock(w["end"]),
                    score=number(w["score"] * 100),
                )
                for w in where["windows"]
            ]
        return lines
    return []


def clock(seconds: float) -> str:
    """Seconds from a recording's start as a reader reads them: ``7.5 s`` within a minute,
    ``12:05`` or ``3:12:05`` (h:mm:ss) on a Holter's hours."""
    if seconds < 60:
        return t("ecg.viewer.seconds", value=f"{seconds:.1f}")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def finding_text(f: dict[str, Any], instances: pl.DataFrame) -> list[str]:
    """The finding as lines of markdown: service and finding, the result against its
    threshold (or why scoring failed), where, and its verification."""
    what = views.finding_name(f["service"], f["finding_code"])
    lines = [f"**{views.service_name(f['service'])}** · {what}"]
    if f["status"] == "failed":
        return [*lines, t("triage.viewer.failed", reason=f["reason"] or "–")]
    flag = t("triage.viewer.positive") if f["positive"] else t("triage.viewer.negative")
    if f["score"] is not None:
        lines.append(
            t(
                "triage.viewer.score_line",
                score=number(f["score"] * 100),
                threshold=number(f["threshold"] * 100),
                flag=flag,
            )
        )
    else:
        lines.append(
            t(
                "triage.viewer.value_line",
                value=number(f["value"], 1),
                unit=f["unit"] or "",
                threshold=number(f["threshold"], 1),
                flag=flag,
            )
        )
    lines += _where(location(f), instances)
    verdict = f["verification"]
    state = t(f"triage.status.{verdict}") if verdict != "unverified" else "–"
    by = f" ({f['decided_by']})" if f.get("decided_by") else ""
    lines.append(f"{t('triage.column.verification')}: {state}{by}")
    return lines


def model_card(f: dict[str, Any]) -> None:
    """The finding's model card, folded away, when its service has one."""
    text = card(f["service"])
    if text is not None:
        with st.expander(t("triage.viewer.card")):
            st.markdown(text)


def decision_choice(key: str, label: str) -> str | None:
    """Accept, reject or amend, with nothing chosen until the clinician chooses: a preset
    choice would let one click confirm the AI unread."""
    choice: str | None = st.radio(
        label,
        DECIDED,
        index=None,
        format_func=lambda d: t(f"triage.status.{d}"),
        horizontal=True,
        key=key,
    )
    return choice


@st.fragment
def decision_form(layer: Access, f: dict[str, Any]) -> None:
    """Accept, reject or amend the finding, then a reason of that decision and a note,
    optionally re-issuing its DICOM SR with the verification. Nothing is preselected, and saving
    before both are chosen is refused with a message. A fragment: choosing the decision offers
    its reasons without redrawing the images."""
    uid = f["tracking_uid"]
    decision = decision_choice(f"decide_decision_{uid}", t("triage.decide.decision"))
    with st.form(f"decide_{uid}"):
        reason = st.selectbox(
            t("triage.decide.reason"),
            policy().reasons[decision] if decision else (),
            index=None,
            format_func=lambda r: t(f"triage.reason.{r}"),
            placeholder=t("triage.decide.reason_pick" if decision else "triage.decide.first"),
            disabled=decision is None,
            key=f"decide_reason_{uid}_{decision}",  # another decision: its own reasons, unchosen
        )
        note = st.text_area(t("triage.decide.note"), max_chars=1000, key=f"decide_note_{uid}")
        amended = (
            st.number_input(
                t("triage.decide.amended_value", unit=f["unit"]),
                value=None,
                key=f"decide_value_{uid}",
            )
            if f["unit"] and decision == "amended"
            else None
        )
        reissue = st.checkbox(
            t("triage.decide.reissue"), disabled=not f["sr_uri"], key=f"decide_sr_{uid}"
        )
        if not st.form_submit_button(t("triage.decide.submit"), type="primary"):
            return
    if decision is None or reason is None:
        st.error(t("triage.decide.choose" if decision is None else "triage.decide.choose_reason"))
        return
    try:
        layer.decide(uid, decision, reason, note, amended, reissue=reissue)
    except AccessDeniedError as refused:
        st.error(refusal(refused))
        return
    message = t("triage.decide.saved", decision=t(f"triage.status.{decision}"))
    if reissue:
        message += " " + t("triage.decide.reissued")
    saved(message)


def findings(layer: Access, opened: OpenedStudy, rows: list[dict[str, Any]]) -> None:
    """Every finding of the study, each in its own box with its decision form."""
    st.subheader(t("triage.viewer.findings"))
    st.warning(t("triage.synthetic"), icon=":material/science:")
    for f in rows:
        with st.container(border=True):
            for line in finding_text(f, opened.instances):
                st.markdown(line)
            model_card(f)
            decision_form(layer, f)


def history(opened: OpenedStudy) -> None:
    """The decisions on the study, newest first, with a warning when clinicians disagree."""
    decided = opened.events.filter(pl.col("decision") != "review")
    says = decided.group_by("account").agg(pl.col("decision").last())
    if says["decision"].n_unique() > 1:
        st.warning(
            t(
                "triage.viewer.conflict",
                decisions=", ".join(f"{a}: {t(f'triage.status.{d}')}" for a, d in says.iter_rows()),
            )
        )
    if opened.events.is_empty():
        st.caption(t("triage.viewer.no_history"))
        return
    st.dataframe(
        opened.events.sort("at", descending=True)
        .select(
            moments("at").alias(t("triage.column.when")),
            pl.col("account").alias(t("triage.column.who")),
            pl.col("decision")
            .replace_strict(
                {s: t(f"triage.status.{s}") for s in DECIDED}
                | {"review": t("triage.status.in_review")}
            )
            .alias(t("triage.column.decision")),
            pl.col("reason_code")
            .replace_strict({r: t(f"triage.reason.{r}") for _, r in reasons()}, default=None)
            .alias(t("triage.column.reason")),
            pl.col("note").alias(t("triage.column.note")),
            pl.col("service").alias(t("triage.column.service")),
        )
        .to_arrow(),
        hide_index=True,
        key="history_table",
    )
