"""Render an imaging exam to pixels or a waveform, with its truth, without DICOM or files.

This is the library entry point the model-training scripts use to make labelled data::

    from synth.imaging.render import render
    study = render("CXR_PA", abnormal=True, sex="F", age_months=600, rng=np.random.default_rng(7))
    study.series[0].images[0].pixels, study.series[0].images[0].boxes

The writer calls ``render_exam`` with the order and the accession's own stream, so a study's
pixels depend only on the seed and the accession.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from synth.imaging.exams import exam as exam_row
from synth.imaging.orders import ImagingOrder
from synth.imaging.render_brain import brain_ct, brain_dwi, brain_mra
from synth.imaging.render_breast import mammography
from synth.imaging.render_chest import chest_frontal, chest_lateral
from synth.imaging.render_colour import endoscopy, fundus
from synth.imaging.render_dental import intraoral, panoramic
from synth.imaging.render_ecg import ecg
from synth.imaging.render_hand import hand
from synth.imaging.render_limbs import knee_ap, leg_length
from synth.imaging.render_phantom import phantom
from synth.imaging.render_prostate import prostate
from synth.imaging.render_spine import spine_ap, spine_lateral
from synth.imaging.rendered import Case, RenderedStudy

RENDERERS: dict[str, Callable[[Case], RenderedStudy]] = {
    "CXR_PA": partial(chest_frontal, view="PA"),
    "CXR_AP": partial(chest_frontal, view="AP"),
    "CXR_LAT": chest_lateral,
    "LSPINE_LAT": spine_lateral,
    "LSPINE_AP": spine_ap,
    "KNEE_AP": knee_ap,
    "DENTAL_PANO": panoramic,
    "DENTAL_IO": intraoral,
    "LEG_LENGTH": leg_length,
    "HAND_BONEAGE": hand,
    "ECG_12LEAD": ecg,
    "BRAIN_MRA": brain_mra,
    "BRAIN_DWI": brain_dwi,
    "BRAIN_CT": brain_ct,
    "FUNDUS": fundus,
    "GASTROSCOPY": partial(endoscopy, colon=False),
    "COLONOSCOPY": partial(endoscopy, colon=True),
    "MAMMO_SCREEN": mammography,
    "PROSTATE_MR": prostate,
    "QA_PHANTOM": phantom,
}


def render(
    exam: str, *, abnormal: bool, sex: str, age_months: int, rng: np.random.Generator
) -> RenderedStudy:
    """Render one exam.

    Args:
        exam: Exam code from ``synth/params/imaging_exams.csv``.
        abnormal: Draw the service's finding. Exams no service reads (and the QA phantom) have no
            finding, so asking for one is an error rather than a silently normal study.
        sex: ``"M"`` or ``"F"``; shapes breast shadows and the like.
        age_months: Age on the study date; drives bone age, degeneration and atrophy.
        rng: The stream to draw from. It is split into independent anatomy, finding and noise
            streams, so rendering the same stream with and without ``abnormal`` gives the same
            patient, differing only inside the finding's boxes (bone age and leg length change
            the skeleton itself).
    """
    row = exam_row(exam)
    if abnormal and row.service is None:
        raise ValueError(f"exam {exam} has no AI service, so it cannot carry a finding")
    anatomy, finding, noise = rng.spawn(3)
    case = Case(exam, abnormal, sex, age_months, anatomy, finding, noise)
    return RENDERERS[exam](case)


def render_exam(order: ImagingOrder, rng: np.random.Generator) -> RenderedStudy:
    """Render an order's exam for its patient; deterministic for a given ``rng``."""
    return render(
        order.exam,
        abnormal=order.abnormal,
        sex=order.sex,
        age_months=order.age_months,
        rng=rng,
    )
