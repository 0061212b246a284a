"""The imaging renderers: every exam renders, findings sit exactly in their boxes, truth holds."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest

from synth.imaging.exams import exams
from synth.imaging.orders import ImagingOrder
from synth.imaging.render import RENDERERS, render, render_exam
from synth.imaging.render_ecg import RECORDERS, RESTING, Recorder, recording
from synth.imaging.render_hand import bone_age_sd
from synth.imaging.render_limbs import ABNORMAL_MM
from synth.imaging.rendered import Case, RenderedStudy
from synth.imaging.uids import uid

SERVICE_EXAMS = [code for code, row in exams().items() if row.service]
# Services whose finding is a local lesion; bone age and leg length change the whole skeleton.
LOCAL = [code for code in SERVICE_EXAMS if code not in ("HAND_BONEAGE", "LEG_LENGTH", "ECG_12LEAD")]


def _patient(code: str) -> tuple[str, int]:
    row = exams()[code]
    age = min(max(row.age_min, 8), row.age_max)
    return row.sex or "F", age * 12 + 5


def _render(code: str, abnormal: bool, seed: int = 3) -> RenderedStudy:
    sex, months = _patient(code)
    return render(
        code, abnormal=abnormal, sex=sex, age_months=months, rng=np.random.default_rng(seed)
    )


def test_every_catalogue_exam_has_a_renderer() -> None:
    assert set(RENDERERS) == set(exams())


@pytest.mark.parametrize("code", list(exams()))
def test_exam_renders_deterministically_with_truth(code: str) -> None:
    abnormal = exams()[code].service is not None
    study = _render(code, abnormal)
    again = _render(code, abnormal)
    assert study.exam == code
    assert study.service == exams()[code].service
    assert (study.finding_code is not None) == abnormal
    if study.waveform is not None:
        kind = next(r for r in RECORDERS if r.kind == study.waveform.recorder)
        assert study.waveform.samples.shape == (kind.hz * kind.seconds, len(kind.leads))
        assert np.array_equal(study.waveform.samples, again.waveform.samples)  # type: ignore[union-attr]
        return
    assert study.series
    for series, twin in zip(study.series, again.series, strict=True):
        for image, same in zip(series.images, twin.images, strict=True):
            pixels = image.pixels
            assert np.array_equal(pixels, same.pixels)
            assert pixels.dtype == (np.uint8 if pixels.ndim == 3 else np.uint16)
            assert int(pixels.max()) < (1 << series.bits_stored)
            assert pixels.std() > 0  # structure, not a flat field
            rows, cols = pixels.shape[:2]
            assert rows * cols * (3 if pixels.ndim == 3 else 2) <= 150 * 1024
            for x0, y0, x1, y1 in image.boxes:
                assert 0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows


@pytest.mark.parametrize("code", LOCAL)
def test_finding_changes_the_image_only_inside_its_boxes(code: str) -> None:
    normal, abnormal = _render(code, False, seed=5), _render(code, True, seed=5)
    boxed = 0
    for plain, sick in zip(normal.series, abnormal.series, strict=True):
        for a, b in zip(plain.images, sick.images, strict=True):
            diff = np.abs(a.pixels.astype(np.int32) - b.pixels.astype(np.int32))
            if diff.ndim == 3:
                diff = diff.max(axis=2)
            inside = np.zeros(diff.shape, dtype=bool)
            for x0, y0, x1, y1 in b.boxes:
                inside[y0:y1, x0:x1] = True
                boxed += 1
                region = diff[y0:y1, x0:x1]
                assert region.max() > 0.1 * plain.window[1]  # visible at the default window
            assert not diff[~inside].any(), "pixels changed outside the finding's boxes"
    assert boxed, "an abnormal study must locate its finding"


def test_mammography_mass_shows_in_both_views_of_one_breast() -> None:
    study = _render("MAMMO_SCREEN", True)
    hits = [(s.images[0].laterality, s.images[0].view) for s in study.series if s.images[0].boxes]
    assert len(hits) == 2
    assert hits[0][0] == hits[1][0]
    assert {hits[0][1], hits[1][1]} == {"CC", "MLO"}


def test_prostate_lesion_is_dark_on_t2_and_adc_bright_on_dwi() -> None:
    normal, abnormal = _render("PROSTATE_MR", False), _render("PROSTATE_MR", True)
    signs = {}
    for plain, sick in zip(normal.series, abnormal.series, strict=True):
        deltas = [
            float(b.pixels[y0:y1, x0:x1].astype(float).mean() - a.pixels[y0:y1, x0:x1].mean())
            for a, b in zip(plain.images, sick.images, strict=True)
            for x0, y0, x1, y1 in b.boxes
        ]
        assert deltas
        signs[plain.role] = np.sign(np.mean(deltas))
    assert signs == {"T2W": -1.0, "DWI": 1.0, "ADC": -1.0}


def test_brain_ct_is_in_hounsfield_units() -> None:
    series = _render("BRAIN_CT", False).series[0]
    assert series.rescale_intercept == -1024
    hu = series.images[6].pixels.astype(float) + series.rescale_intercept
    assert hu.min() < -900  # air around the head
    assert hu.max() > 700  # skull
    assert 15 < np.median(hu[54:74, 54:74]) < 50  # brain parenchyma


@pytest.mark.parametrize("seed", range(6))
def test_leg_length_difference_is_the_regression_value(seed: int) -> None:
    normal, abnormal = _render("LEG_LENGTH", False, seed), _render("LEG_LENGTH", True, seed)
    assert normal.value is not None and abnormal.value is not None
    assert 0 <= normal.value <= ABNORMAL_MM < abnormal.value
    assert normal.series[0].pixel_spacing[0] > 1.0
    assert not normal.series[0].images[0].boxes
    assert abnormal.series[0].images[0].boxes


@pytest.mark.parametrize("seed", range(6))
def test_bone_age_is_chronological_age_within_or_beyond_two_sd(seed: int) -> None:
    months = 9 * 12
    normal = render(
        "HAND_BONEAGE", abnormal=False, sex="M", age_months=months, rng=np.random.default_rng(seed)
    )
    abnormal = render(
        "HAND_BONEAGE", abnormal=True, sex="M", age_months=months, rng=np.random.default_rng(seed)
    )
    sd = bone_age_sd(9.0)
    assert normal.value is not None and abnormal.value is not None
    assert abs(normal.value - months) <= 2 * sd
    assert abs(abnormal.value - months) > 2 * sd
    assert abnormal.finding_code == (
        "advanced_bone_age" if abnormal.value > months else "delayed_bone_age"
    )


def test_hand_structure_follows_bone_age() -> None:
    """Older bone age: a larger hand and more ossified bone in the same field of view."""

    def bone_pixels(months: int) -> int:
        study = render(
            "HAND_BONEAGE", abnormal=False, sex="F", age_months=months, rng=np.random.default_rng(1)
        )
        return int((study.series[0].images[0].pixels > 0.3 * 4095).sum())

    assert bone_pixels(36) < bone_pixels(96) < bone_pixels(180)


def _r_peaks(lead: np.ndarray) -> np.ndarray:
    threshold = 0.5 * lead.max()
    peaks = [
        i
        for i in range(1, lead.size - 1)
        if lead[i] > threshold and lead[i] >= lead[i - 1] and lead[i] > lead[i + 1]
    ]
    kept: list[int] = []
    for p in peaks:  # refractory period of 250 ms
        if not kept or p - kept[-1] > 125:
            kept.append(p)
    return np.asarray(kept)


def test_ecg_limb_leads_obey_einthoven() -> None:
    samples = _render("ECG_12LEAD", False).waveform.samples.astype(int)  # type: ignore[union-attr]
    i, ii, iii, avr = samples[:, 0], samples[:, 1], samples[:, 2], samples[:, 3]
    assert np.abs(iii - (ii - i)).max() <= 1
    assert np.abs(avr + (i + ii) / 2).max() <= 1.5


def _recorded(seed: int, abnormal: bool, recorder: Recorder) -> RenderedStudy:
    anatomy, finding, noise = np.random.default_rng(seed).spawn(3)
    return recording(Case("ECG_12LEAD", abnormal, "M", 700, anatomy, finding, noise), recorder)


@pytest.mark.parametrize("recorder", RECORDERS, ids=lambda r: r.kind)
@pytest.mark.parametrize("seed", range(8))
def test_ecg_findings_have_their_signature(seed: int, recorder: Recorder) -> None:
    study = _recorded(seed, True, recorder)
    normal = _recorded(seed, False, recorder)
    assert study.waveform is not None and normal.waveform is not None
    samples = study.waveform.samples
    assert samples.shape == (recorder.hz * recorder.seconds, len(recorder.leads))
    assert study.waveform.sampling_hz == recorder.hz and study.waveform.leads == recorder.leads
    assert study.ecg_segments and not normal.ecg_segments
    for start, end in study.ecg_segments:
        assert 0 <= start < end <= len(samples)
    column = 1 if recorder is RESTING else 0  # lead II, or the Holter's MLII, or the patch's II
    rr_normal = np.diff(_r_peaks(normal.waveform.samples[:, column].astype(float)))
    assert rr_normal.std() / rr_normal.mean() < 0.08
    if study.finding_code == "atrial_fibrillation":
        start = study.ecg_segments[0][0]
        rr = np.diff(_r_peaks(samples[start:, column].astype(float)))
        assert rr.std() / rr.mean() > 0.1
    else:
        assert study.finding_code == "premature_ventricular_contractions"
        per_10_s = len(study.ecg_segments) if recorder is RESTING else 2
        assert 2 <= per_10_s <= 5 and len(study.ecg_segments) >= 2


def test_ecg_studies_come_from_each_recorder_in_its_share() -> None:
    """Issue 21: the city's ECGs include Holters (2 leads, 360 Hz) and patches (1 lead)."""
    kinds = [
        render(
            "ECG_12LEAD", abnormal=False, sex="M", age_months=700, rng=np.random.default_rng(s)
        ).waveform.recorder  # type: ignore[union-attr]
        for s in range(400)
    ]
    for recorder in RECORDERS:
        assert abs(kinds.count(recorder.kind) / 400 - recorder.share) < 0.05, recorder.kind


def test_render_refuses_a_finding_on_an_exam_no_service_reads() -> None:
    with pytest.raises(ValueError, match="no AI service"):
        render("KNEE_AP", abnormal=True, sex="M", age_months=600, rng=np.random.default_rng(0))


def test_render_exam_follows_the_order() -> None:
    order = ImagingOrder(
        accession="R0001",
        exam="HAND_BONEAGE",
        patient_id="150301-3123456",
        patient_name="이서연",
        sex="F",
        birth_date=date(2015, 3, 1),
        institution_code="36100011",
        institution_name="빛고을소아과의원",
        study_datetime=datetime(2024, 9, 2, 10, 0),
        abnormal=False,
        visit_key="S1",
    )
    assert order.age_months == 9 * 12 + 6
    via_order = render_exam(order, np.random.default_rng(4))
    direct = render(
        "HAND_BONEAGE",
        abnormal=False,
        sex="F",
        age_months=order.age_months,
        rng=np.random.default_rng(4),
    )
    assert np.array_equal(via_order.series[0].images[0].pixels, direct.series[0].images[0].pixels)
    assert via_order.value == direct.value


def test_uids_are_deterministic_valid_and_distinct() -> None:
    a = uid(7, "A1", "series", 1)
    assert a == uid(7, "A1", "series", 1)
    assert a.startswith("2.25.") and len(a) <= 64
    assert (
        len({a, uid(8, "A1", "series", 1), uid(7, "A2", "series", 1), uid(7, "A1", "series", 2)})
        == 4
    )
