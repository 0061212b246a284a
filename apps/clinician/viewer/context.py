"""The patient beside the images: who and what the study is, and the patient's context (recent
diagnoses and prescriptions, prior studies with their AI findings)."""

import polars as pl
import streamlit as st

from apps.common import views
from apps.common.i18n import NOTHING, days, moment, moments, number, t, word
from apps.common.timeline import describe
from lakehouse.access import OpenedStudy


def header(opened: OpenedStudy) -> None:
    """The patient and the study in two lines, with the basis the clinician sees it on."""
    study = opened.study
    age = study["patient_age_months"]
    # Names and descriptions come from the clinics' DICOM headers: shown as text, never markdown.
    st.text(
        t(
            "triage.viewer.patient",
            patient=study["patient_key"][:9],
            age=number(age // 12 if age is not None else None),
            sex=word("sex", study["patient_sex"]) if study["patient_sex"] else NOTHING,
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


def prior_findings(priors: pl.DataFrame) -> list[str]:
    """Each prior study's AI findings named in the session's language (service · finding), as
    the findings beside the images are; named here, after the read, never inside Polars."""
    return [
        ", ".join(
            f"{views.service_name(s)} · {views.finding_name(s, c)}"
            for s, c in zip(services or [], codes or [], strict=True)
        )
        for services, codes in priors.select("services", "finding_codes").iter_rows()
    ]


def patient_context(opened: OpenedStudy) -> None:
    """Diagnoses and prescriptions side by side, then the prior studies."""
    ctx = opened.context
    if opened.study["citizen_key"] is None:
        st.info(t("triage.context.pseudonymous"))
    # Named in the session's language as the timeline names them (the code beside the name).
    date = days("start").alias(t("column.date"))
    title = pl.col("title").alias(t("column.title"))
    # Where it was recorded: a partner hospital's record says so (apps/common/timeline.py).
    place = pl.col("place").alias(t("column.institution"))
    panels = (
        ("triage.context.diagnoses", describe(ctx.diagnoses), [date, title, place]),
        (
            "triage.context.prescriptions",
            describe(ctx.prescriptions),
            [date, title, pl.col("detail").alias(t("column.detail")), place],
        ),
    )
    for column, (heading, rows_of, shown) in zip(st.columns(2), panels, strict=True):
        column.markdown(f"**{t(heading)}**")
        if rows_of.is_empty():
            column.caption(t("triage.context.none"))
        else:
            column.dataframe(
                rows_of.select(shown).to_arrow(), hide_index=True, key=f"ctx_{heading}"
            )
    st.markdown(f"**{t('triage.context.priors')}**")
    if ctx.priors.is_empty():
        st.caption(t("triage.context.none"))
        return
    st.dataframe(
        ctx.priors.select(
            moments("study_datetime").alias(t("triage.column.acquired")),
            pl.col("modalities").alias(t("triage.worklist.modalities")),
            pl.col("study_description").alias(t("column.title")),
            pl.lit(pl.Series(prior_findings(ctx.priors), dtype=pl.Utf8)).alias(
                t("triage.viewer.findings")
            ),
            (pl.col("score") * 100).round().alias(t("triage.column.score")),
        ).to_arrow(),
        hide_index=True,
        key="ctx_priors",
    )
