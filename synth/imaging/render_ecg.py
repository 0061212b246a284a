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
WANDER_STEP = 25  # samples between the computed points of the baseline wander

F64 = NDArray[np.float64]


def _unit(v: tuple[float, float, float]) -> F64:
    arr = np.asarray(v, dtype=float)
    unit: F64 = arr / float(np.linalg.norm(arr))
    return unit


def _rotate_frontal(v: F64, degrees: float) -> F64:
    t = np.radians(degrees)
    x, y = v[0] * np.cos(t) - v[1] * np.sin(t), v[0] * np.sin(t) + v[1] * np.cos(t)
    return np.array([x, y, v[2]])


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
    t = index / HZ
    z = (t - c) / np.where(t < c, width, late)
    pulses = np.exp(-0.5 * z * z)
    inside = index < hi
    return np.bincount(index[inside], weights=pulses[inside], minlength=SAMPLES)


@cache
def _mains() -> F64:
    """60 Hz mains over the record, the same in every ECG (read-only)."""
    mains = np.sin(2 * np.pi * 60 * np.arange(SAMPLES) / HZ)
    mains.flags.writeable = False
    return mains


def _wander(a: np.random.Generator) -> F64:
    """Baseline wander, a 0.15-0.35 Hz sinusoid per measured lead, ``(samples, 8)``.

    It is so slow that sampling it every 50 ms and interpolating linearly is exact to well
    under the 2.5 uV storage step, at a tenth of the cost of the sines.
    """
    coarse_t = np.arange(0, SAMPLES + WANDER_STEP, WANDER_STEP) / HZ
    coarse = (
        np.sin(
            2 * np.pi * a.uniform(0.15, 0.35, 8)[None, :] * coarse_t[:, None]
            + a.uniform(0, 6.3, 8)[None, :]
        )
        * a.uniform(0.03, 0.12, 8)[None, :]
    )
    k, frac = np.divmod(np.arange(SAMPLES), WANDER_STEP)
    w = (frac / WANDER_STEP)[:, None]
    wander: F64 = coarse[k] * (1 - w) + coarse[k + 1] * w
    return wander


class _Morphology:
    """One patient's waves: dipole directions and amplitudes."""

    def __init__(self, a: np.random.Generator) -> None:
        axis = float(a.normal(0, 15))
        self.p = _rotate_frontal(_unit((0.5, 0.8, 0.2)), axis) * a.uniform(0.1, 0.18)
        self.q = _rotate_frontal(_unit((-0.5, 0.0, 0.8)), axis) * a.uniform(0.1, 0.2)
        self.r = _rotate_frontal(_unit((0.6, 0.7, -0.35)), axis) * a.uniform(1.1, 1.8)
        self.s = _rotate_frontal(_unit((-0.3, -0.4, -0.85)), axis) * a.uniform(0.4, 0.8)
        self.t = _rotate_frontal(_unit((0.5, 0.55, 0.3)), axis) * a.uniform(0.3, 0.5)
        self.pr = float(a.uniform(0.13, 0.19))
        self.qt = float(a.uniform(0.26, 0.32))
        self.pvc = _unit(tuple(a.normal(0, 1, 3))) * a.uniform(1.6, 2.4)  # ectopic focus


def _leads(dipole: F64, noise: F64) -> F64:
    """(samples, 3) dipole in mV -> (samples, 12) lead voltages.

    Leads I, II and V1-V6 are measured (with their own ``noise``, shape (samples, 8)); III, aVR,
    aVL and aVF are derived from I and II by Einthoven's and Goldberger's equations, as carts do.
    """
    i = dipole[:, 0] + noise[:, 0]
    ii = 0.5 * dipole[:, 0] + 0.866 * dipole[:, 1] + noise[:, 1]
    out = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    for k, deg in enumerate(PRECORDIAL):
        t = np.radians(deg)
        v = _unit((np.cos(t), 0.15, np.sin(t)))
        out.append(
            dipole[:, 0] * v[0] + dipole[:, 1] * v[1] + dipole[:, 2] * v[2] + noise[:, 2 + k]
        )
    return np.stack(out, axis=1)


def _beats(
    a: np.random.Generator, rr: float, start: float, end: float, irregular: bool
) -> list[float]:
    times, t = [], start
    while t < end:
        times.append(t)
        jitter = a.normal(0, 0.22) if irregular else a.normal(0, 0.025)
        t += rr * float(np.clip(1 + jitter, 0.55, 1.6))
    return times


def ecg(case: Case) -> RenderedStudy:
    """A 12-lead resting ECG; abnormal studies show atrial fibrillation or frequent PVCs."""
    a, f = case.anatomy, case.finding
    m = _Morphology(a)
    t = np.arange(SAMPLES, dtype=float) / HZ
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
    p_waves: list[float] = []
    qrs: list[float] = []
    ectopic_beats: list[float] = []
    segments: list[tuple[int, int]] = []
    for k, beat in enumerate(sinus + fib):
        if k in ectopic:
            early = beat - 0.35 * rr  # premature; the next sinus beat keeps its time (pause)
            ectopic_beats.append(early)
            segments.append(
                (max(int((early - 0.1) * HZ), 0), min(int((early + 0.45) * HZ), SAMPLES))
            )
            continue
        if beat < af_from:
            p_waves.append(beat - m.pr)
        qrs.append(beat)
    beats, pvcs = np.asarray(qrs), np.asarray(ectopic_beats)
    dipole = (
        np.outer(_train(np.asarray(p_waves), 0.025), m.p)
        + np.outer(_train(beats - 0.025, 0.008), m.q)
        + np.outer(_train(beats, 0.011), m.r)
        + np.outer(_train(beats + 0.03, 0.012), m.s)
        + np.outer(_train(beats + m.qt * 0.85, 0.06, after=0.04), m.t)
        + np.outer(_train(pvcs, 0.04), m.pvc)
        + np.outer(_train(pvcs + 0.3, 0.07, after=0.05), -m.pvc * 0.35)
    )
    if af_from < SECONDS:
        start = int(af_from * HZ)
        waves = np.zeros(SAMPLES)
        for _ in range(3):  # chaotic f waves: three drifting 4-9 Hz oscillations
            drift = 0.8 * np.sin(2 * np.pi * 0.3 * t * float(f.uniform(0.5, 1.5)))
            waves += np.sin(
                2 * np.pi * float(f.uniform(4, 9)) * t + float(f.uniform(0, 6.3)) + drift
            )
        amplitude = float(f.uniform(0.03, 0.07))
        dipole[start:] += np.outer(waves[start:] * amplitude, _unit((-0.2, 0.3, 0.9)))
        segments.append((start, SAMPLES))
    noise = _wander(a)
    noise += _mains()[:, None] * a.uniform(0.0, 0.015, 8)[None, :]
    noise += gaussian(case.noise, (SAMPLES, 8), 0.01)
    volts = _leads(dipole, noise)
    samples = np.rint(volts * 1000 / SENSITIVITY_UV).astype(np.int16)
    waveform = RenderedWaveform(samples, HZ, SENSITIVITY_UV, LEADS)
    return RenderedStudy(
        case.exam, "ecg", case.abnormal, code, None, (), waveform, tuple(sorted(segments))
    )
