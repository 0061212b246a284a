"""The study viewer: the images from their DICOM pixels with the AI's overlay, the findings with
their score, threshold and location, a decision per finding, the patient beside the images, and
remote reading.

The study is read once through the access layer (audited as one read of the patient) and kept in
the session for a few minutes, so turning a slider redraws without another read; a decision
or a new study reads it afresh."""

import json
import time
from typing import Any

import polars as pl
import streamlit as st

from apps.clinician import render
from apps.common import views
from apps.common.i18n import day, moment, moments, number, t
from apps.common.layout import access
from lakehouse.access import AccessDeniedError, OpenedStudy
from lakehouse.triage import DECIDED, policy
from models.runtime.registry import card, registry

OPENED = "study"
KEPT = "viewer_study"
KEEP_S = 300.0  # a study read is shown from the session for at most this long
FLASH = "viewer_flash"
ZOOM = {"scrollZoom": True}  # zoom with the wheel as well as by dragging a box

layer = access()
st.title(t("triage.viewer.title"))
# A link (``?study=<uid>``) names the study; otherwise the one opened from the worklist.
uid = st.query_params.get("study") or st.session_state.get(OPENED)
if not isinstance(uid, str) or not uid:
    st.info(t("triage.viewer.none"))
    st.stop()


def opened_study(uid: str) -> OpenedStudy:
    """The study from the session if read here recently, else read (and audited) now."""
    kept = st.session_state.get(KEPT)
    if kept and kept["uid"] == uid and time.monotonic() - kept["at"] < KEEP_S:
        return kept["study"]  # type: ignore[no-any-return]
    study = layer.open_study(uid)
    layer.start_review(uid)
    st.session_state[KEPT] = {"uid": uid, "at": time.monotonic(), "study": study}
    return study


def forget() -> None:
    st.session_state.pop(KEPT, None)


try:
    opened = opened_study(uid)
except AccessDeniedError:
    forget()
    st.error(t("error.denied"))
    st.stop()

if flash := st.session_state.pop(FLASH, None):
    st.success(flash)
study, findings = opened.study, opened.findings
st.caption(t("triage.synthetic"))
age = study["patient_age_months"]
# Names and descriptions come from the clinics' DICOM headers: shown as text, never as markdown.
st.text(
    t(
        "triage.viewer.patient",
        patient=study["patient_key"][:9],
        age=number(age // 12 if age is not None else None),
        sex=study["patient_sex"] or "–",
        institution=study["institution_name"] or study["institution"] or "–",
    )
)
st.text(
    t(
        "triage.viewer.study",
        modality=study["modalities"],
        description=study["study_description"] or "–",
        acquired=moment(study["study_datetime"]),
    )
    + " · "
    + t("clinician.patient.basis", basis=t(f"basis.{opened.basis}"))
)


def window_name(window: render.Window) -> str:
    """A window preset as readers call it, with its centre and width."""
    base, _, extra = window.name.partition("_")
    known = window.name if window.name != "header" and not extra.isdigit() else base
    name = t(f"triage.window.{known}") + (f" {extra}" if extra.isdigit() else "")
    return f"{name} (L {window.centre:g} / W {window.width:g})"


def location(finding: dict[str, Any]) -> dict[str, Any]:
    return json.loads(finding["location"]) if finding["location"] else {}


def box_of(finding: dict[str, Any], sop: str) -> tuple[float, float, float, float] | None:
    where = location(finding)
    if where.get("type") == "box" and where.get("sop_instance_uid") == sop:
        x0, y0, x1, y1 = where["box"]
        return (x0, y0, x1, y1)
    return None


def heat(finding: dict[str, Any] | None, ds: Any) -> Any:
    """The finding's heatmap on this instance's pixels, if it was located here."""
    if finding is None or finding["tracking_uid"] not in opened.heatmaps:
        return None
    if finding["sop_instance_uid"] != str(ds.SOPInstanceUID):
        return None
    service = registry().get(finding["service"])
    spec = service.config.image if service else None
    if spec is None:
        return None
    return render.heat_on_source(opened.heatmaps[finding["tracking_uid"]], ds, spec)


rows = findings.to_dicts()
top = next((f for f in rows if f["status"] == "scored"), None)
images, panel = st.columns([3, 2])

with images:
    datasets = opened.datasets
    instances = opened.instances
    waveforms = [ds for ds in datasets if "WaveformSequence" in ds]
    modalities = set(instances["modality"].drop_nulls().to_list())
    try:
        if waveforms:
            where = location(top) if top else {}
            segments = where.get("seconds", []) if where.get("type") == "segments" else []
            st.plotly_chart(
                render.ecg_figure(waveforms[0], segments, t("triage.viewer.ai_segment")),
                key="viewer_ecg",
                config=ZOOM,
            )
        elif modalities == {"MG"}:
            show = st.toggle(t("triage.viewer.overlay"), value=True, key="viewer_overlay")
            opacity = st.slider(t("triage.viewer.opacity"), 0.0, 1.0, 0.45, key="viewer_opacity")
            by_view = render.mammography_views(datasets)
            pictures, boxes = {}, {}
            for view, ds in by_view.items():
                image = render.windowed(ds)
                pictures[view] = render.blend(image, heat(top, ds) if show else None, opacity)
                found = box_of(top, str(ds.SOPInstanceUID)) if top and show else None
                if found:
                    boxes[view] = found
            st.plotly_chart(
                render.mammography_figure(
                    pictures, boxes, t("triage.viewer.ai_box"), missing=t("triage.viewer.missing")
                ),
                key="viewer_mg",
                config=ZOOM,
            )
        else:
            series = instances["series_instance_uid"].unique(maintain_order=True).to_list()
            located = top["sop_instance_uid"] if top else None
            sops = instances["sop_instance_uid"].to_list()
            first = (
                instances["series_instance_uid"][sops.index(located)]
                if located in sops
                else series[0]
            )
            chosen_series = (
                st.selectbox(
                    t("triage.viewer.series"),
                    series,
                    index=series.index(first),
                    format_func=lambda s: str(
                        instances.filter(pl.col("series_instance_uid") == s)["series_description"][
                            0
                        ]
                        or s[-12:]
                    ),
                    key=f"viewer_series_{uid}",
                )
                if len(series) > 1
                else series[0]
            )
            members = [
                i
                for i, s in enumerate(instances["series_instance_uid"].to_list())
                if s == chosen_series
            ]
            start = (
                members.index(sops.index(located))
                if located in sops and sops.index(located) in members
                else 0
            )
            position = (
                st.slider(
                    t("triage.viewer.slice"), 1, len(members), start + 1, key=f"viewer_slice_{uid}"
                )
                if len(members) > 1
                else 1
            )
            ds = datasets[members[position - 1]]
            frames = render.frame_count(ds)
            frame = (
                st.slider(t("triage.viewer.frame"), 1, frames, 1, key=f"viewer_frame_{uid}") - 1
                if frames > 1
                else 0
            )
            presets = render.windows(ds, frame)
            a, b, c = st.columns(3)
            window = (
                a.selectbox(
                    t("triage.viewer.window"),
                    presets,
                    format_func=window_name,
                    key=f"viewer_window_{uid}",
                )
                if presets
                else None
            )
            show = b.toggle(t("triage.viewer.overlay"), value=True, key="viewer_overlay")
            opacity = c.slider(t("triage.viewer.opacity"), 0.0, 1.0, 0.45, key="viewer_opacity")
            image = render.windowed(ds, frame, window)
            picture = render.blend(image, heat(top, ds) if show else None, opacity)
            box = box_of(top, str(ds.SOPInstanceUID)) if top and show else None
            st.plotly_chart(
                render.image_figure(picture, box, t("triage.viewer.ai_box")),
                key="viewer_image",
                config=ZOOM,
            )
    except Exception as error:  # a damaged original must not take the findings away
        st.warning(t("triage.viewer.no_pixels", error=type(error).__name__))


def finding_text(f: dict[str, Any]) -> list[str]:
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
    where = location(f)
    if where.get("type") == "box":
        x0, y0, x1, y1 = where["box"]
        number_of = opened.instances.filter(
            pl.col("sop_instance_uid") == where.get("sop_instance_uid")
        )["instance_number"]
        lines.append(
            t(
                "triage.viewer.box",
                instance=number_of[0] if number_of.len() else "?",
                x0=round(x0),
                y0=round(y0),
                x1=round(x1),
                y1=round(y1),
            )
        )
    elif where.get("type") == "segments":
        spans = render.merged(where["seconds"])
        lines.append(
            t(
                "triage.viewer.segments",
                count=len(spans),
                list=", ".join(f"{a:.1f}–{b:.1f} s" for a, b in spans),
            )
        )
    verdict = f["verification"]
    state = t(f"triage.status.{verdict}") if verdict != "unverified" else "–"
    by = f" ({f['decided_by']})" if f.get("decided_by") else ""
    lines.append(f"{t('triage.column.verification')}: {state}{by}")
    return lines


choices = [(d, r) for d in DECIDED for r in policy().reasons[d]]
with panel:
    st.subheader(t("triage.viewer.findings"))
    st.warning(t("triage.synthetic"), icon=":material/science:")
    for f in rows:
        with st.container(border=True):
            for line in finding_text(f):
                st.markdown(line)
            model_card = card(f["service"])
            if model_card is not None:
                with st.expander(t("triage.viewer.card")):
                    st.markdown(model_card)
            with st.form(f"decide_{f['tracking_uid']}"):
                pick = st.selectbox(
                    t("triage.decide.reason"),
                    choices,
                    format_func=lambda c: (
                        f"{t(f'triage.status.{c[0]}')} — {t(f'triage.reason.{c[1]}')}"
                    ),
                    key=f"decide_reason_{f['tracking_uid']}",
                )
                note = st.text_area(
                    t("triage.decide.note"), max_chars=1000, key=f"decide_note_{f['tracking_uid']}"
                )
                amended = (
                    st.number_input(
                        t("triage.decide.amended_value", unit=f["unit"]),
                        value=None,
                        key=f"decide_value_{f['tracking_uid']}",
                    )
                    if f["unit"]
                    else None
                )
                reissue = st.checkbox(
                    t("triage.decide.reissue"),
                    disabled=not f["sr_uri"],
                    key=f"decide_sr_{f['tracking_uid']}",
                )
                if st.form_submit_button(t("triage.decide.submit"), type="primary"):
                    decision, reason = pick
                    try:
                        layer.decide(
                            f["tracking_uid"],
                            decision,
                            reason,
                            note,
                            amended if decision == "amended" else None,
                            reissue=reissue,
                        )
                    except (ValueError, AccessDeniedError) as refused:
                        st.error(f"{t('error.invalid')} ({refused})")
                    else:
                        message = t("triage.decide.saved", decision=t(f"triage.status.{decision}"))
                        if reissue:
                            message += " " + t("triage.decide.reissued")
                        st.session_state[FLASH] = message
                        forget()
                        st.rerun()

context, history, reading = st.tabs(
    [t("triage.context.title"), t("triage.viewer.history"), t("triage.reading.title")]
)
with context:
    ctx = opened.context
    if study["citizen_key"] is None:
        st.info(t("triage.context.pseudonymous"))
    date = pl.col("event_date").map_elements(day, return_dtype=pl.Utf8).alias(t("column.date"))
    title = pl.col("title").alias(t("column.title"))
    panels = (
        ("triage.context.diagnoses", ctx.diagnoses, [date, pl.col("code").alias("KCD"), title]),
        (
            "triage.context.prescriptions",
            ctx.prescriptions,
            [date, title, pl.col("detail").alias(t("column.detail"))],
        ),
    )
    for column, (heading, rows_of, shown) in zip(st.columns(2), panels, strict=True):
        column.markdown(f"**{t(heading)}**")
        if rows_of.is_empty():
            column.caption(t("triage.context.none"))
        else:
            column.dataframe(rows_of.select(shown), hide_index=True, key=f"ctx_{heading}")
    st.markdown(f"**{t('triage.context.priors')}**")
    if ctx.priors.is_empty():
        st.caption(t("triage.context.none"))
    else:
        st.dataframe(
            ctx.priors.select(
                moments("study_datetime").alias(t("triage.column.acquired")),
                pl.col("modalities").alias(t("triage.worklist.modalities")),
                pl.col("study_description").alias(t("column.title")),
                pl.col("findings").alias(t("triage.viewer.findings")),
                (pl.col("score") * 100).round().alias(t("triage.column.score")),
            ),
            hide_index=True,
            key="ctx_priors",
        )

with history:
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
    else:
        st.dataframe(
            opened.events.sort("at", descending=True).select(
                moments("at").alias(t("triage.column.when")),
                pl.col("account").alias(t("triage.column.who")),
                pl.col("decision")
                .replace_strict(
                    {s: t(f"triage.status.{s}") for s in DECIDED}
                    | {"review": t("triage.status.in_review")}
                )
                .alias(t("triage.column.decision")),
                pl.col("reason_code")
                .replace_strict({r: t(f"triage.reason.{r}") for _, r in choices}, default=None)
                .alias(t("triage.column.reason")),
                pl.col("note").alias(t("triage.column.note")),
                pl.col("service").alias(t("triage.column.service")),
            ),
            hide_index=True,
            key="history_table",
        )

with reading:
    requests = opened.requests
    if not requests.is_empty():
        st.dataframe(
            requests.select(
                moments("requested_at").alias(t("triage.reading.column.requested_at")),
                pl.col("to_institution").alias(t("triage.reading.hospital")),
                pl.col("question").alias(t("triage.reading.column.question")),
                pl.col("status")
                .replace_strict(
                    {
                        s: t(f"triage.reading.status.{s}")
                        for s in ("requested", "replied", "cancelled")
                    }
                )
                .alias(t("triage.reading.column.status")),
                pl.col("report").alias(t("triage.reading.column.report")),
            ),
            hide_index=True,
            key="reading_table",
        )
    if opened.basis == "institution":
        hospitals = layer.reading_hospitals()
        if hospitals.is_empty():
            st.caption(t("triage.reading.no_hospital"))
        else:
            with st.form("reading_ask"):
                names = dict(
                    zip(hospitals["ykiho"].to_list(), hospitals["name"].to_list(), strict=True)
                )
                hospital = st.selectbox(
                    t("triage.reading.hospital"),
                    list(names),
                    format_func=names.__getitem__,
                    key="reading_hospital",
                )
                question = st.text_area(
                    t("triage.reading.question"), max_chars=1000, key="reading_question"
                )
                if st.form_submit_button(t("triage.reading.send")):
                    try:
                        layer.request_reading(uid, hospital, question)
                    except (ValueError, AccessDeniedError) as refused:
                        st.error(f"{t('error.invalid')} ({refused})")
                    else:
                        st.session_state[FLASH] = t("triage.reading.sent")
                        forget()
                        st.rerun()
    waiting = requests.filter(pl.col("status") == "requested")
    if opened.basis == "remote_reading" and not waiting.is_empty():
        request = waiting.row(0, named=True)
        with st.form("reading_reply"):
            st.markdown(f"**{t('triage.reading.reply')}**")
            st.text(request["question"])  # another clinician's words: text, never markdown
            report = st.text_area(t("triage.reading.report"), max_chars=4000, key="reading_report")
            decision = st.radio(
                t("triage.decide.decision"),
                list(DECIDED),
                format_func=lambda d: t(f"triage.status.{d}"),
                horizontal=True,
                key="reading_decision",
            )
            if st.form_submit_button(t("triage.reading.send_reply"), type="primary"):
                try:
                    layer.reply_reading(request["request_id"], report, decision)
                except (ValueError, AccessDeniedError) as refused:
                    st.error(f"{t('error.invalid')} ({refused})")
                else:
                    st.session_state[FLASH] = t("triage.reading.replied")
                    forget()
                    st.rerun()
