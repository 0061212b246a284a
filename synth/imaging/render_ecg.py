"""The resting 12-lead ECG: 10 s at 500 Hz, generated from a moving cardiac dipole.

Each wave (P, septal q, R, S, T) is a Gaussian pulse of a 3D dipole (x to the patient's left, y to
the feet, z anterior). Limb leads are the dipole's projection on the frontal axes, derived leads
obey Einthoven (III = II - I, aVR = -(I + II) / 2, ...), and precordial leads project on the
horizontal plane, which gives an rS complex in V1, a transition near V3-V4 and qR in V6, with
upright T waves where they belong. Baseline wander, muscle noise and 60 Hz mains (Korea) are
added.

Findings: atrial fibrillation (no P waves, irregularly irregular RR, fibrillatory baseline),
either throughout or starting part-way, or frequent premature ventricular contractions (wide
early beats without P waves, discordant T, compensatory pause). The truth names the sample ranges
that show them.
"""

from __future__ import annotations

from functools import cache
from typing import cast

import numpy as np
from numpy.typing import NDArray

from synth.imaging.draw import gaussian
from synth.imaging.rendered import Case, RenderedStudy, RenderedWaveform

HZ = 500
SECONDS = 10
SAMPLES = HZ * SECONDS
SENSITIVITY_UV = 2.5  # microvolts per stored unit, as many carts store
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
# Horizontal-plane angles (degrees from the patient's left towards anterior) of V1-V6.
PRECORDIAL = (115.0, 94.0, 75.0, 60.0, 30.0, 0.0)
WAVE_STEP = 100  # samples per block of ``_sinusoids``; SAMPLES is a multiple

F64 = NDArray[np.float64]


def _unit(v: tuple[float, float, float]) -> F64:
    arr = np.asarray(v, dtype=float)
    unit: F64 = arr / float(np.linalg.norm(arr))
    return unit


# Unrotated directions of the P, q, R, S and T dipoles.
WAVES = np.stack(
    [
        _unit((0.5, 0.8, 0.2)),
        _unit((-0.5, 0.0, 0.8)),
        _unit((0.6, 0.7, -0.35)),
        _unit((-0.3, -0.4, -0.85)),
        _unit((0.5, 0.55, 0.3)),
    ]
)


def _lead_matrix() -> F64:
    """Lead voltages as a linear map of the 3 dipole components and the 8 measured channels'
    noise: ``(12, 11)``.

    Leads I, II and V1-V6 are measured (each with its own noise); III, aVR, aVL and aVF are
    derived from I and II by Einthoven's and Goldberger's equations, as carts do.
    """
    i = np.zeros(11)
    i[[0, 3]] = 1.0
    ii = np.zeros(11)
    ii[[0, 1, 4]] = 0.5, 0.866, 1.0
    rows = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    for k, deg in enumerate(PRECORDIAL):
        t = np.radians(deg)
        v = np.zeros(11)
        v[:3] = _unit((np.cos(t), 0.15, np.sin(t)))
        v[5 + k] = 1.0
        rows.append(v)
    return np.stack(rows)


LEAD_MATRIX = _lead_matrix()


def _train(centres: F64, width: float, after: float | None = None) -> F64:
    """A train of unit Gaussian pulses peaking at ``centres`` (s), each evaluated only within
    five widths of its peak; ``after`` gives a different width after the peak (the asymmetric T
    wave). All pulses of a wave are computed in one batch and summed by ``bincount``."""
    if centres.size == 0:
        return np.zeros(SAMPLES)
    late = after if after is not None else width
    c = centres[:, None]
    lo = np.maximum(np.trunc((c - 5 * width) * HZ).astype(np.intp), 0)
    hi = np.minimum(np.trunc((c + 5 * late) * HZ).astype(np.intp) + 1, SAMPLES)
    index = lo + np.arange(int(5 * (width + late) * HZ) + 2)
    z = index / HZ - c
    z /= np.where(z < 0, width, late) if after is not None else width
    pulses = np.exp(-0.5 * z * z)
    inside = index < hi
    return cast(F64, np.bincount(index[inside], weights=pulses[inside], minlength=SAMPLES))


@cache
def _mains() -> F64:
    """60 Hz mains over the record, the same in every ECG (read-only)."""
    mains = np.sin(2 * np.pi * 60 * np.arange(SAMPLES) / HZ)
    mains.flags.writeable = False
    return mains


def _sinusoids(freq: F64, phase: F64) -> F64:
    """``sin(2 pi f t + phase)`` over the record, one row per frequency.

    Computed exactly from sines of coarse and fine time, ``sin(a + b) = sin a cos b + cos a
    sin b``: a few hundred sines instead of one per sample.
    """
    coarse = 2 * np.pi * freq[:, None] * (np.arange(0, SAMPLES, WAVE_STEP) / HZ) + phase[:, None]
    fine = 2 * np.pi * freq[:, None] * (np.arange(WAVE_STEP) / HZ)
    waves: F64 = (
        np.sin(coarse)[:, :, None] * np.cos(fine)[:, None, :]
        + np.cos(coarse)[:, :, None] * np.sin(fine)[:, None, :]
    ).reshape(freq.size, SAMPLES)
    return waves


class _Morphology:
    """One patient's waves: dipole directions and amplitudes."""

    def __init__(self, a: np.random.Generator) -> None:
        t = np.radians(float(a.normal(0, 15)))  # frontal axis deviation
        rotate = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
        gains = [a.uniform(lo, hi) for lo, hi in ((0.1, 0.18), (0.1, 0.2), (1.1, 1.8))]
        gains += [a.uniform(lo, hi) for lo, hi in ((0.4, 0.8), (0.3, 0.5))]
        directions = np.einsum("wc,rc->wr", WAVES, rotate)
        self.p, self.q, self.r, self.s, self.t = directions * np.array(gains)[:, None]
        self.pr = float(a.uniform(0.13, 0.19))
        self.qt = float(a.uniform(0.26, 0.32))
        self.pvc = _unit(tuple(a.normal(0, 1, 3))) * a.uniform(1.6, 2.4)  # ectopic focus


def _beats(
    a: np.random.Generator, rr: float, start: float, end: float, irregular: bool
) -> list[float]:
    times, t = [], start
    while t < end:
        times.append(t)
        jitter = float(a.normal(0, 0.22) if irregular else a.normal(0, 0.025))
        t += rr * min(max(1 + jitter, 0.55), 1.6)
    return times


def _dipole(
    m: _Morphology, beats: list[float], ectopic: set[int], af_from: float, rr: float, out: F64
) -> list[tuple[int, int]]:
    """Write the cardiac dipole ``(3, samples)`` of every beat into ``out``; return the sample
    ranges of the premature beats (the ``ectopic`` indexes)."""
    p_waves: list[float] = []
    qrs: list[float] = []
    early: list[float] = []
    for k, beat in enumerate(beats):
        if k in ectopic:  # premature; the next sinus beat keeps its time (compensatory pause)
            early.append(beat - 0.35 * rr)
            continue
        if beat < af_from:
            p_waves.append(beat - m.pr)
        qrs.append(beat)
    sinus, pvcs = np.asarray(qrs), np.asarray(early)
    trains = np.stack(
        [
            _train(np.asarray(p_waves), 0.025),
            _train(sinus - 0.025, 0.008),
            _train(sinus, 0.011),
            _train(sinus + 0.03, 0.012),
            _train(sinus + m.qt * 0.85, 0.06, after=0.04),
            _train(pvcs, 0.04),
            _train(pvcs + 0.3, 0.07, after=0.05),
        ]
    )
    vectors = np.stack([m.p, m.q, m.r, m.s, m.t, m.pvc, -m.pvc * 0.35])
    # Each wave's pulse train along its own vector. einsum, not a matrix product: BLAS would
    # start threads that spin on a core another worker process needs.
    np.einsum("kc,kn->cn", vectors, trains, out=out)
    return [(max(int((e - 0.1) * HZ), 0), min(int((e + 0.45) * HZ), SAMPLES)) for e in early]


def _fibrillation(f: np.random.Generator, start: int, dipole: F64) -> None:
    """Add the chaotic f waves of atrial fibrillation from sample ``start``."""
    t = np.arange(SAMPLES, dtype=np.float32) / np.float32(HZ)  # float32: sines cost a third
    waves = np.zeros(SAMPLES, dtype=np.float32)
    for _ in range(3):  # three drifting 4-9 Hz oscillations
        drift = 0.8 * np.sin(2 * np.pi * 0.3 * t * float(f.uniform(0.5, 1.5)))
        waves += np.sin(2 * np.pi * float(f.uniform(4, 9)) * t + float(f.uniform(0, 6.3)) + drift)
    amplitude = float(f.uniform(0.03, 0.07))
    dipole[:, start:] += np.outer(_unit((-0.2, 0.3, 0.9)), waves[start:] * amplitude)


def ecg(case: Case) -> RenderedStudy:
    """A 12-lead resting ECG; abnormal studies show atrial fibrillation or frequent PVCs."""
    a, f = case.anatomy, case.finding
    m = _Morphology(a)
    rr = 60.0 / float(a.uniform(55, 95))
    first = float(a.uniform(0.2, 0.6))
    code: str | None = None
    af_from = SECONDS + 1.0
    if case.abnormal:
        code = "atrial_fibrillation" if f.random() < 0.5 else "premature_ventricular_contractions"
        if code == "atrial_fibrillation":
            af_from = 0.0 if f.random() < 0.6 else float(f.uniform(2.5, 6.0))
    sinus = _beats(a, rr, first, min(af_from, SECONDS), irregular=False)
    af_rr = rr * float(f.uniform(0.7, 0.95)) if code == "atrial_fibrillation" else rr
    fib = (
        _beats(
            f,
            af_rr,
            max(af_from, sinus[-1] + rr * 0.6 if sinus else af_from),
            SECONDS,
            irregular=True,
        )
        if af_from < SECONDS
        else []
    )
    ectopic: set[int] = set()
    if code == "premature_ventricular_contractions":
        count = int(f.integers(2, 6))
        ectopic = {
            int(k)
            for k in f.choice(
                np.arange(1, len(sinus) - 1), size=min(count, len(sinus) - 2), replace=False
            )
        }
    # Rows: the dipole (3), then the 8 measured channels' noise, so that one product with
    # LEAD_MATRIX gives every lead.
    signals = np.empty((11, SAMPLES))
    segments = _dipole(m, sinus + fib, ectopic, af_from, rr, signals[:3])
    if af_from < SECONDS:
        _fibrillation(f, int(af_from * HZ), signals[:3])
        segments.append((int(af_from * HZ), SAMPLES))
    # Baseline wander (0.15-0.35 Hz) and 60 Hz mains per measured lead, and electrode noise.
    noise = signals[3:]
    noise[:] = _sinusoids(a.uniform(0.15, 0.35, 8), a.uniform(0, 6.3, 8))
    noise *= a.uniform(0.03, 0.12, 8)[:, None]
    noise += a.uniform(0.0, 0.015, 8)[:, None] * _mains()
    noise += gaussian(case.noise, (8, SAMPLES), 0.01)
    volts = np.einsum("ls,sn->ln", LEAD_MATRIX, signals)  # einsum, not BLAS: see _dipole
    volts *= 1000 / SENSITIVITY_UV
    # Stored sample-major; transposing the rounded int16 values is the cheap place to do it.
    samples = np.ascontiguousarray(np.rint(volts, out=volts).astype(np.int16).T)
    waveform = RenderedWaveform(samples, HZ, SENSITIVITY_UV, LEADS)
    return RenderedStudy(
        case.exam, "ecg", case.abnormal, code, None, (), waveform, tuple(sorted(segments))
    )
