"""My images, without CDs: my studies sent through the AI platform (or those of someone who
made me their family carer), drawn as the clinician's viewer draws them, each AI finding in
plain words, the DICOM files as a zip, and a reading or second opinion from a hospital of my
choice with its reply.

Every study is opened through the access layer (``Access.my_study``), whichever way it was
named: the list, a link (``?study=<uid>``) or the session. Another citizen's study is refused
there and the attempt audited; the page only shows the refusal. A study read is kept in the
session for a few minutes for the same account, so moving a slider redraws without another read.
"""

import time
from typing import Any

import streamlit as st

from apps.common import carer, views
from apps.common.i18n import NOTHING, day, keyed, moment, number, t, word
from apps.common.layout import access
from apps.common.viewer import images
from lakehouse.access import Access, AccessDeniedError, MyStudy
from lakehouse.access.my_images import export_name
from models.runtime.registry import registry

OPEN = "images_open"  # the study to show: set by the list or a link, checked by the layer
KEPT = "images_kept"
KEEP_S = 300.0  # a study read is shown from the session for at most this long
FLASH = "images_flash"
WHOSE = "images_whose_shown"  # whose list the study was chosen from


def opened(layer: Access, uid: str) -> MyStudy:
    """The study from the session if this account read it here recently, else read (and
    audited) now."""
    kept = st.session_state.get(KEPT)
    account = layer.principal.account
    if (
        kept
        and (kept["account"], kept["uid"]) == (account, uid)
        and time.monotonic() - kept["at"] < KEEP_S
    ):
        return kept["study"]  # type: ignore[no-any-return]
    study = layer.my_study(uid)
    st.session_state[KEPT] = {
        "account": account,
        "uid": uid,
        "at": time.monotonic(),
        "study": study,
    }
    return study


def reread(message: str) -> None:
    """After a write: show ``message`` on the next run, which reads the study afresh."""
    st.session_state[FLASH] = message
    st.session_state.pop(KEPT, None)
    st.rerun()


def study_what(study: dict[str, Any], services: list[str] | None) -> str:
    """What the study is, in words: its AI services' names, else its description."""
    if services:
        return ", ".join(views.service_name(s) for s in services)
    return str(study.get("study_description") or NOTHING)


def result_line(f: dict[str, Any]) -> str:
    """The score or measurement against the service's threshold, in plain words."""
    if f["score"] is not None:
        return t(
            "citizen.images.score",
            score=number(f["score"] * 100),
            threshold=number(f["threshold"] * 100),
        )
    service = registry().get(f["service"])
    flag = service.config.flag if service else "above"
    return t(
        f"citizen.images.value_{'deviation' if flag == 'deviation' else 'above'}",
        value=number(f["value"], 1),
        threshold=number(f["threshold"], 1),
        unit=word("citizen.images.unit", f["unit"] or ""),
    )


def plain(f: dict[str, Any]) -> list[str]:
    """One AI finding as a citizen reads it: what the service looks for, what the result
    means against the threshold the service uses, and whether a doctor has checked it."""
    lines = [
        t(
            "citizen.images.looks_for",
            service=views.service_name(f["service"]),
            finding=views.finding_name(f["service"], f["finding_code"]),
        )
    ]
    if f["status"] == "failed":
        return [*lines, t("citizen.images.failed")]
    lines.append(result_line(f))
    lines.append(t("citizen.images.marked" if f["positive"] else "citizen.images.not_marked"))
    verdict = f["verification"]
    lines.append(t(f"citizen.images.verified.{verdict}", when=moment(f.get("decided_at"))))
    return lines


def findings(study: MyStudy) -> None:
    """Every AI finding of the study in plain words, under the reference-model label."""
    st.subheader(t("citizen.images.findings"))
    st.warning(t("citizen.images.label"), icon=":material/science:")
    rows = study.findings.to_dicts()
    if not rows:
        st.caption(t("citizen.images.no_findings"))
    for f in rows:
        with st.container(border=True):
            for line in plain(f):
                st.markdown(line)


def download(layer: Access, study: MyStudy, uid: str) -> None:
    """The study's DICOM files as a zip, made (and audited) only when the button is pressed."""
    st.download_button(
        t("citizen.images.download"),
        data=lambda: layer.export_study(uid)[1],
        file_name=export_name(study.study),
        mime="application/zip",
        icon=":material/download:",
        on_click="ignore",
        key="images_download",
        width="stretch",
    )
    st.caption(t("citizen.images.download_help"))


def ask(layer: Access, study: MyStudy, uid: str) -> None:
    """Ask a hospital that reads remotely for a reading or a second opinion, with a question,
    optionally copying the reply to the clinic that took the images."""
    st.subheader(t("citizen.images.ask_title"))
    st.caption(t("citizen.images.ask_explain"))
    hospitals = layer.reading_hospitals()
    names = {
        code: name
        for code, name in hospitals.select("ykiho", "name").iter_rows()
        if code != study.study["institution"]
    }
    if not names:
        st.caption(t("citizen.images.no_hospital"))
        return
    with st.form("images_ask"):
        hospital = st.selectbox(
            t("citizen.images.hospital"),
            list(names),
            format_func=names.__getitem__,
            key="images_hospital",
        )
        kind = st.radio(
            t("citizen.images.kind_pick"),
            ("second_opinion", "reading"),
            format_func=lambda k: t(f"citizen.images.kind.{k}"),
            key=keyed("images_kind"),
        )
        question = st.text_area(t("citizen.images.question"), max_chars=1000, key="images_q")
        copy = st.checkbox(
            t("citizen.images.copy", clinic=study.study["institution_name"] or NOTHING),
            key="images_copy",
        )
        if not st.form_submit_button(t("citizen.images.send"), type="primary"):
            return
    if not question.strip():
        st.error(t("citizen.images.question_missing"))
        return
    try:
        layer.ask_second_opinion(uid, str(hospital), question, str(kind), copy_to_clinic=copy)
    except ValueError:
        st.error(t("citizen.images.invalid"))
        return
    reread(t("citizen.images.sent"))


def requests(layer: Access, study: MyStudy) -> None:
    """The readings and opinions asked on this study, newest first, each reply in plain
    words; an unanswered request of mine can be withdrawn."""
    rows = study.requests.to_dicts()
    if not rows:
        return
    st.subheader(t("citizen.images.requests"))
    for r in rows:
        hospital = r["hospital_name"] or NOTHING
        with st.container(border=True):
            line = (
                moment(r["requested_at"]),
                hospital,
                t(f"citizen.images.kind.{r['kind'] or 'reading'}"),
                t(f"citizen.images.status.{r['status']}"),
            )
            st.markdown(f"**{' · '.join(line)}**")
            st.caption(t("citizen.images.asked"))
            st.text(r["question"])  # the asker's words: text, never markdown
            if r["copy_to"]:
                st.caption(t("citizen.images.clinic_copied"))
            if r["status"] == "replied":
                st.markdown(
                    t("citizen.images.reply", hospital=hospital, when=moment(r["answered_at"]))
                )
                st.text(r["report"])  # a reader's words: text, never markdown
                if r["decision"]:
                    st.markdown(t(f"citizen.images.reply_decision.{r['decision']}"))
                st.caption(t("citizen.images.reply_note"))
            mine = r["basis"] == "citizen_consent" and r["status"] == "requested"
            cancel = f"images_cancel_{r['request_id']}"
            if mine and st.button(t("citizen.images.cancel"), key=cancel):
                layer.cancel_second_opinion(r["request_id"])
                reread(t("triage.reading.cancelled"))


def study_list(layer: Access, whose: str) -> str | None:
    """The citizen's studies to choose from; returns the study to open: one named by a link
    (then forgotten from the address), the one chosen here, or the newest."""
    rows = layer.my_studies(whose)
    if st.session_state.get(WHOSE, whose) != whose:  # another person's list: their newest
        st.session_state.pop(OPEN, None)
    st.session_state[WHOSE] = whose
    linked = st.query_params.get("study")
    if linked:
        st.session_state[OPEN] = linked
        del st.query_params["study"]
    if rows.is_empty():
        st.info(t("citizen.images.none"))
        return st.session_state.get(OPEN)  # a link is still checked (and refused) by the layer
    labels: dict[str, str] = {}
    for r in rows.iter_rows(named=True):
        parts = [
            day(r["study_date"]),
            study_what(r, r["services"]),
            r["institution_name"] or NOTHING,
        ]
        if r["positive"]:
            parts.append(t("citizen.images.flagged"))
        if r["reading"] == "replied":
            parts.append(t("citizen.images.answered"))
        labels[r["study_instance_uid"]] = " · ".join(parts)
    uids = list(labels)
    chosen = st.session_state.setdefault(OPEN, uids[0])

    def pick() -> None:
        st.session_state[OPEN] = st.session_state[keyed("images_pick")]

    st.selectbox(
        t("citizen.images.pick"),
        uids,
        index=uids.index(chosen) if chosen in uids else None,
        format_func=labels.__getitem__,
        key=keyed("images_pick"),
        on_change=pick,
    )
    return str(st.session_state[OPEN])


def page() -> None:
    layer = access()
    st.title(t("citizen.images.title"))
    st.caption(t("citizen.images.explain"))
    whose = carer.whose(layer, "images_whose")
    uid = study_list(layer, whose)
    if not uid:
        return
    try:
        study = opened(layer, uid)
    except AccessDeniedError:
        st.session_state.pop(OPEN, None)
        st.error(t("error.denied"))
        return
    if flash := st.session_state.pop(FLASH, None):
        st.success(flash)
    s = study.study
    services = study.findings["service"].unique(maintain_order=True).to_list()
    st.subheader(
        t(
            "citizen.images.header",
            day=day(s["study_date"]),
            where=s["institution_name"] or NOTHING,
            what=study_what(s, services),
        )
    )
    st.caption(t("citizen.images.count", count=number(len(study.datasets))))
    top = next((f for f in study.findings.to_dicts() if f["status"] == "scored"), None)
    images(study, uid, top)
    findings(study)
    download(layer, study, uid)
    requests(layer, study)
    ask(layer, study, uid)


page()
