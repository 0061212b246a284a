"""ECGs as three kinds of recorder send them, generated from a moving cardiac dipole.

- the resting 12-lead ECG: 10 s at 500 Hz (12-Lead ECG IOD);
- a Holter recorder: 2 leads (MLII and V5, as in the MIT-BIH arrhythmia recordings) at 360 Hz;
- a single-lead patch: 250 Hz.

The ambulatory ones are Ambulatory ECG objects. The city keeps a few minutes of each (``HOLTER``,
``PATCH``): a day's recording would be over 100 MB a study. ``recording`` renders any length.

Each wave (P, septal q, R, S, T) is a Gaussian pulse of a 3D dipole (x to the patient's left, y to
the feet, z anterior). Limb leads are the dipole's projection on the frontal axes, derived leads
obey Einthoven (III = II - I, aVR = -(I + II) / 2, ...), and precordial leads project on the
horizontal plane, which gives an rS complex in V1, a transition near V3-V4 and qR in V6, with
upright T waves where they belong. Baseline wander, muscle noise and 60 Hz mains (Korea) are
added.

Findings: atrial fibrillation (no P waves, irregularly irregular RR, fibrillatory baseline),
either throughout or starting part-way, or frequent premature ventricular contractions (wide
early beats without P waves, discordant T, compensatory pause; on a long recording in one bout of
20-60 s). The truth names the sample ranges that show them, at the recording's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, cast

import numpy as np
from numpy.typing import NDArray

from synth.imaging.draw import gaussian
from synth.imaging.rendered import Case, RenderedStudy, RenderedWaveform

HZ = 500
SECONDS = 10
SAMPLES = HZ * SECONDS
SENSITIVITY_UV = 2.5  # microvolts per stored unit, as many carts store
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class Recorder:
    """A kind of ECG recorder: what it records and how the city's copy of it is stored.

    Attributes:
        kind: ``resting`` (12-lead cart), ``holter`` or ``patch``.
        hz: Samples per second.
        seconds: Length of the city's recordings.
        leads: Lead names in channel order (``MLII``: the Holter's modified lead II, recorded
            as lead II's projection).
        sensitivity_uv: Microvolts per stored unit (MIT-BIH's Holters store 200 units per mV).
        share: Fraction of the city's ECG studies from this recorder. A modelling choice (resting
            ECGs far outnumber ambulatory ones), not a published rate.
    """

    kind: str
    hz: int
    seconds: int
    leads: tuple[str, ...]
    sensitivity_uv: float
    share: float


RESTING: Final = Recorder("resting", HZ, SECONDS, LEADS, SENSITIVITY_UV, 0.85)
HOLTER: Final = Recorder("holter", 360, 300, ("MLII", "V5"), 5.0, 0.10)
PATCH: Final = Recorder("patch", 250, 120, ("II",), 2.5, 0.05)
RECORDERS: Final = (RESTING, HOLTER, PATCH)
PROJECTION: Final = {"MLII": "II"}  # leads recorded as another lead's projection
# Horizontal-plane angles (degrees from the patient's left towards anterior) of V1-V6.
PRECORDIAL = (115.0, 94.0, 75.0, 60.0, 30.0, 0.0)
WAVE_STEP = 100  # samples per block of ``_sinusoids``

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


def _train(clock: tuple[int, int], centres: F64, width: float, after: float | None = None) -> F64:
    """A train of unit Gaussian pulses peaking at ``centres`` (s), each evaluated only within
    five widths of its peak; ``after`` gives a different width after the peak (the asymmetric T
    wave). All pulses of a wave are computed in one batch and summed by ``bincount``. ``clock``
    is the recording's (samples per second, samples)."""
    hz, samples = clock
    if centres.size == 0:
        return np.zeros(samples)
    late = after if after is not None else width
    c = centres[:, None]
    lo = np.maximum(np.trunc((c - 5 * width) * hz).astype(np.intp), 0)
    hi = np.minimum(np.trunc((c + 5 * late) * hz).astype(np.intp) + 1, samples)
    index = lo + np.arange(int(5 * (width + late) * hz) + 2)
    z = index / hz - c
    z /= np.where(z < 0, width, late) if after is not None else width
    pulses = np.exp(-0.5 * z * z)
    inside = index < hi
    return cast(F64, np.bincount(index[inside], weights=pulses[inside], minlength=samples))


@lru_cache(maxsize=4)
def _mains(clock: tuple[int, int]) -> F64:
    """60 Hz mains over the record, the same in every ECG of a recorder (read-only)."""
    hz, samples = clock
    mains = np.sin(2 * np.pi * 60 * np.arange(samples) / hz)
    mains.flags.writeable = False
    return mains


def _sinusoids(clock: tuple[int, int], freq: F64, phase: F64) -> F64:
    """``sin(2 pi f t + phase)`` over the record, one row per frequency.

    Computed exactly from sines of coarse and fine time, ``sin(a + b) = sin a cos b + cos a
    sin b``: a few hundred sines instead of one per sample.
    """
    hz, samples = clock
    blocks = -(-samples // WAVE_STEP)
    coarse = 2 * np.pi * freq[:, None] * (np.arange(blocks) * WAVE_STEP / hz) + phase[:, None]
    fine = 2 * np.pi * freq[:, None] * (np.arange(WAVE_STEP) / hz)
    waves: F64 = (
        np.sin(coarse)[:, :, None] * np.cos(fine)[:, None, :]
        + np.cos(coarse)[:, :, None] * np.sin(fine)[:, None, :]
    ).reshape(freq.size, blocks * WAVE_STEP)
    return waves[:, :samples]


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
    clock: tuple[int, int],
    m: _Morphology,
    beats: list[float],
    ectopic: set[int],
    af_from: float,
    rr: float,
    out: F64,
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
            _train(clock, np.asarray(p_waves), 0.025),
            _train(clock, sinus - 0.025, 0.008),
            _train(clock, sinus, 0.011),
            _train(clock, sinus + 0.03, 0.012),
            _train(clock, sinus + m.qt * 0.85, 0.06, after=0.04),
            _train(clock, pvcs, 0.04),
            _train(clock, pvcs + 0.3, 0.07, after=0.05),
        ]
    )
    vectors = np.stack([m.p, m.q, m.r, m.s, m.t, m.pvc, -m.pvc * 0.35])
    # Each wave's pulse train along its own vector. einsum, not a matrix product: BLAS would
    # start threads that spin on a core another worker process needs.
    np.einsum("kc,kn->cn", vectors, trains, out=out)
    hz, samples = clock
    return [(max(int((e - 0.1) * hz), 0), min(int((e + 0.45) * hz), samples)) for e in early]


def _fibrillation(clock: tuple[int, int], f: np.random.Generator, start: int, dipole: F64) -> None:
    """Add the chaotic f waves of atrial fibrillation from sample ``start``."""
    hz, samples = clock
    t = np.arange(samples, dtype=np.float32) / np.float32(hz)  # float32: sines cost a third
    waves = np.zeros(samples, dtype=np.float32)
    for _ in range(3):  # three drifting 4-9 Hz oscillations
        drift = 0.8 * np.sin(2 * np.pi * 0.3 * t * float(f.uniform(0.5, 1.5)))
        waves += np.sin(2 * np.pi * float(f.uniform(4, 9)) * t + float(f.uniform(0, 6.3)) + drift)
    amplitude = float(f.uniform(0.03, 0.07))
    dipole[:, start:] += np.outer(_unit((-0.2, 0.3, 0.9)), waves[start:] * amplitude)


def _ectopic(f: np.random.Generator, sinus: list[float], seconds: float) -> set[int]:
    """The sinus beats replaced by premature ones: 2-5 in a 10 s record; on a longer one, 2-5 per
    10 s within one bout of 20-60 s."""
    count = int(f.integers(2, 6))
    candidates = np.arange(1, len(sinus) - 1)
    if seconds > SECONDS:
        bout = float(f.uniform(20, 60))
        start = float(f.uniform(0, seconds - bout))
        times = np.asarray(sinus)[candidates]
        candidates = candidates[(times >= start) & (times < start + bout)]
        count = round(count * bout / SECONDS)
    return {int(k) for k in f.choice(candidates, size=min(count, len(candidates)), replace=False)}


def recorder_of(case: Case) -> Recorder:
    """The recorder an ECG study comes from, in the recorders' shares; drawn from a stream of its
    own, so the patient's heart (``anatomy``) is the same whichever recorder it is."""
    (stream,) = case.anatomy.spawn(1)
    shares = np.asarray([r.share for r in RECORDERS])
    return RECORDERS[int(stream.choice(len(RECORDERS), p=shares / shares.sum()))]


def ecg(case: Case) -> RenderedStudy:
    """An ECG from the recorder ``recorder_of`` draws; abnormal ones show atrial fibrillation or
    frequent PVCs."""
    return recording(case, recorder_of(case))


def recording(case: Case, recorder: Recorder, seconds: int | None = None) -> RenderedStudy:
    """An ECG from ``recorder``, ``seconds`` long (the recorder's own length by default)."""
    a, f = case.anatomy, case.finding
    length = float(seconds or recorder.seconds)
    clock = (recorder.hz, int(recorder.hz * length))
    hz, samples = clock
    m = _Morphology(a)
    rr = 60.0 / float(a.uniform(55, 95))
    first = float(a.uniform(0.2, 0.6))
    code: str | None = None
    af_from = length + 1.0
    if case.abnormal:
        code = "atrial_fibrillation" if f.random() < 0.5 else "premature_ventricular_contractions"
        if code == "atrial_fibrillation":
            late = (2.5, 6.0) if length <= SECONDS else (0.2 * length, 0.7 * length)
            af_from = 0.0 if f.random() < 0.6 else float(f.uniform(*late))
    sinus = _beats(a, rr, first, min(af_from, length), irregular=False)
    af_rr = rr * float(f.uniform(0.7, 0.95)) if code == "atrial_fibrillation" else rr
    fib = (
        _beats(
            f,
            af_rr,
            max(af_from, sinus[-1] + rr * 0.6 if sinus else af_from),
            length,
            irregular=True,
        )
        if af_from < length
        else []
    )
    ectopic: set[int] = set()
    if code == "premature_ventricular_contractions":
        ectopic = _ectopic(f, sinus, length)
    # Rows: the dipole (3), then the 8 measured channels' noise, so that one product with
    # LEAD_MATRIX gives every lead.
    signals = np.empty((11, samples))
    segments = _dipole(clock, m, sinus + fib, ectopic, af_from, rr, signals[:3])
    if af_from < length:
        _fibrillation(clock, f, int(af_from * hz), signals[:3])
        segments.append((int(af_from * hz), samples))
    # Baseline wander (0.15-0.35 Hz) and 60 Hz mains per measured lead, and electrode noise.
    noise = signals[3:]
    noise[:] = _sinusoids(clock, a.uniform(0.15, 0.35, 8), a.uniform(0, 6.3, 8))
    noise *= a.uniform(0.03, 0.12, 8)[:, None]
    noise += a.uniform(0.0, 0.015, 8)[:, None] * _mains(clock)
    noise += gaussian(case.noise, (8, samples), 0.01)
    rows = [LEADS.index(PROJECTION.get(lead, lead)) for lead in recorder.leads]
    matrix = LEAD_MATRIX if len(rows) == len(LEADS) else LEAD_MATRIX[rows]
    volts = np.einsum("ls,sn->ln", matrix, signals)  # einsum, not BLAS: see _dipole
    volts *= 1000 / recorder.sensitivity_uv
    # Stored sample-major; transposing the rounded int16 values is the cheap place to do it.
    stored = np.ascontiguousarray(np.rint(volts, out=volts).astype(np.int16).T)
    waveform = RenderedWaveform(stored, hz, recorder.sensitivity_uv, recorder.leads, recorder.kind)
    return RenderedStudy(
        case.exam, "ecg", case.abnormal, code, None, (), waveform, tuple(sorted(segments))
    )
