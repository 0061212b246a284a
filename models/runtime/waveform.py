"""ECG recordings of any lead set as model input: leads by their codes, one rate, 10 s windows.

Recorders send 12-lead resting ECGs, 2- or 3-lead Holter recordings and single-lead patches, at
125-1,000 Hz and for 10 s to days. The model reads a fixed grid (``WaveformSpec``: its leads in
its order, ``rate_hz``, ``seconds``), so each recording is brought onto it:

1. The multiplex group: the first one with a usable lead and at least ``seconds`` of signal (a
   cart's 1.2 s MEDIAN BEAT group is never it).
2. The leads, by each channel's coded source (Channel Source Sequence), never by position: the
   SCP-ECG and MDC (ISO/IEEE 11073-10101) codes of DICOM PS3.16 CID 3001 "ECG Leads". A channel
   with another code (respiration, a pacing or blood-pressure channel) is not an ECG lead; a lead
   with less than ``FLAT_MV`` of spread is a flat line (an electrode off). The model's other
   leads are zero: it was trained with such lead dropout (``models/ecg/card.md``).
3. Millivolts through each channel's sensitivity and its unit (uV, mV).
4. The model's rate: box-averaged down from a faster recorder (the average over each output
   sample's span, which also filters what the slower rate cannot hold), linearly interpolated up
   from a slower one.
5. Windows of ``seconds`` from the recording's start, back to back; the last one ends at the
   recording's end (overlapping the one before) so that no tail is left unread.

A recording with no usable lead, or shorter than ``seconds``, raises ``InputError`` saying why.
Only the recording's own leads are held, at the model's rate; windows are cut when the model runs
(``Windows.stack``, a few hundred at a time): a day's 2-lead Holter is 8,640 windows, which as the
12-lead input all at once would be about 1 GB of float32, and is 43 MB of signal this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pydicom
from numpy.typing import NDArray

from models.runtime.errors import InputError

LEADS_12: Final = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FLAT_MV: Final = 0.05  # a lead's 1st-99th percentile spread below this is a flat line
RATES_HZ: Final = (125.0, 1000.0)  # the sampling rates read (issue 21: Holters to carts)

# DICOM PS3.16 CID 3001 "ECG Leads": SCP-ECG (EN 1064, scheme SCPECG) lead codes and their
# MDC equivalents (scheme MDC, "partition:code"; ISO/IEEE 11073-10101 MDC_ECG_LEAD_I is 131073
# = 2 * 65536 + 1, so "2:1"). CC5 and CM5 are the bipolar chest leads of Holter recorders that
# stand in for V5 (MDC_ECG_LEAD_CC5 131091, MDC_ECG_LEAD_CM5 131092).
_SCPECG: Final = {
    "5.6.3-9-1": "I",
    "5.6.3-9-2": "II",
    "5.6.3-9-61": "III",
    "5.6.3-9-62": "aVR",
    "5.6.3-9-63": "aVL",
    "5.6.3-9-64": "aVF",
    **{f"5.6.3-9-{k + 2}": f"V{k}" for k in range(1, 7)},
}
_MDC: Final = {
    "2:1": "I",
    "2:2": "II",
    "2:61": "III",
    "2:62": "aVR",
    "2:63": "aVL",
    "2:64": "aVF",
    **{f"2:{k + 2}": f"V{k}" for k in range(1, 7)},
    "2:19": "V5",
    "2:20": "V5",
}
LEAD_CODES: Final = {"SCPECG": _SCPECG, "MDC": _MDC}


@dataclass(frozen=True)
class WaveformSpec:
    """What a model's waveform input is (``config.toml``, table ``[waveform]``).

    Attributes:
        rate_hz: Samples per second of the input.
        seconds: Duration of one input window, and the shortest recording scored.
        leads: Input channels.
        lead_names: The lead each input channel holds, in order (the 12 standard leads).
    """

    rate_hz: float = 250.0
    seconds: float = 10.0
    leads: int = 12
    lead_names: tuple[str, ...] = LEADS_12

    def __post_init__(self) -> None:
        # config.toml gives a list; a tuple keeps the spec hashable and comparable.
        object.__setattr__(self, "lead_names", tuple(self.lead_names))
        if len(self.lead_names) != self.leads:
            raise ValueError(f"{self.leads} leads but {len(self.lead_names)} lead names")


@dataclass(frozen=True)
class Windows:
    """One recording as model input, cut into windows on demand.

    Attributes:
        signal: ``(samples, recorded leads)`` float32 in mV at the model's rate.
        channels: The model's input channel of each recorded lead, in ``signal``'s order.
        shape: One window's ``(leads, rate_hz * seconds)``.
        starts: Each window's start in seconds from the recording's start.
        leads: The recording's leads the model reads, in the model's order.
        seconds: The recording's duration.
        rate_hz: The model's rate (``starts`` in samples is ``starts * rate_hz``).
    """

    signal: NDArray[np.float32]
    channels: tuple[int, ...]
    shape: tuple[int, int]
    starts: tuple[float, ...]
    leads: tuple[str, ...]
    seconds: float
    rate_hz: float

    def __len__(self) -> int:
        return len(self.starts)

    def stack(self, first: int = 0, last: int | None = None) -> NDArray[np.float32]:
        """Windows ``first`` to ``last`` as ``(windows, leads, samples)``; leads the recording
        lacks are 0."""
        chosen = self.starts[first:last]
        leads, length = self.shape
        out = np.zeros((len(chosen), leads, length), dtype=np.float32)
        for w, start in enumerate(chosen):
            at = round(start * self.rate_hz)
            out[w, list(self.channels)] = self.signal[at : at + length].T
        return out

    @property
    def x(self) -> NDArray[np.float32]:
        """Every window at once (training and short recordings)."""
        return self.stack()


def lead_name(channel: pydicom.Dataset) -> str | None:
    """The standard lead a channel records, from its coded source; None for any other channel."""
    source = channel.get("ChannelSourceSequence")
    if not source:
        return None
    code = source[0]
    table = LEAD_CODES.get(str(code.get("CodingSchemeDesignator", "")), {})
    return table.get(str(code.get("CodeValue", "")))


def millivolts(signal: NDArray[np.float64], group: pydicom.Dataset) -> NDArray[np.float64]:
    """Channel units to mV (pydicom applies the sensitivity; the unit may be uV or mV). The
    viewer draws ECGs through this too, so it shows the leads in the model's units."""
    out = signal.copy()
    for i, channel in enumerate(group.ChannelDefinitionSequence[: signal.shape[1]]):
        units = channel.get("ChannelSensitivityUnitsSequence")
        code = str(units[0].CodeValue) if units else "mV"
        out[:, i] *= {"uV": 1e-3, "mV": 1.0, "V": 1e3}.get(code, 1.0)
    return out


@dataclass(frozen=True)
class Leads:
    """The usable leads of one multiplex group, in mV: ``signal`` is (samples, leads)."""

    signal: NDArray[np.float64]
    names: tuple[str, ...]
    rate_hz: float

    @property
    def seconds(self) -> float:
        return float(self.signal.shape[0] / self.rate_hz)


def _group_leads(ds: pydicom.Dataset, index: int, wanted: tuple[str, ...]) -> Leads | str:
    """The group's usable leads among ``wanted`` (first channel of each), or why there are none."""
    group = ds.WaveformSequence[index]
    rate = float(group.SamplingFrequency)
    if not RATES_HZ[0] <= rate <= RATES_HZ[1]:
        return f"sampling frequency {rate:g} Hz is outside {RATES_HZ[0]:g}-{RATES_HZ[1]:g} Hz"
    names = [lead_name(c) for c in group.ChannelDefinitionSequence]
    coded = [(i, n) for i, n in enumerate(names) if n in wanted]
    if not coded:
        return f"{len(names)} channels, none coded as an ECG lead (DICOM CID 3001)"
    try:
        raw = np.asarray(ds.waveform_array(index), dtype=np.float64)  # (samples, channels)
    except Exception as error:
        raise InputError(f"waveform cannot be decoded: {error}") from error
    signal = millivolts(raw, group)
    keep: dict[str, int] = {}
    for i, name in coded:
        column = signal[:, i]
        if name in keep or not np.isfinite(column).all():
            continue
        low, high = np.percentile(column, [1, 99])
        if high - low >= FLAT_MV:
            keep[name] = i
    if not keep:
        return f"{len(coded)} ECG leads, all flat (under {FLAT_MV:g} mV)"
    return Leads(signal[:, list(keep.values())], tuple(keep), rate)


def usable_leads(ds: pydicom.Dataset, spec: WaveformSpec) -> Leads:
    """The first multiplex group with a usable lead and at least ``spec.seconds`` of signal."""
    if "WaveformSequence" not in ds:
        raise InputError("the object has no waveform")
    reasons = []
    for index in range(len(ds.WaveformSequence)):
        found = _group_leads(ds, index, tuple(spec.lead_names))
        if isinstance(found, Leads) and found.seconds < spec.seconds:
            found = f"{found.seconds:.1f} s of signal; need {spec.seconds:g} s"
        if isinstance(found, Leads):
            return found
        label = ds.WaveformSequence[index].get("MultiplexGroupLabel", "") or index + 1
        reasons.append(f"group {label}: {found}")
    raise InputError("no usable ECG lead: " + "; ".join(reasons))


def resample(signal: NDArray[np.float64], rate: float, target: float) -> NDArray[np.float64]:
    """(samples, leads) from ``rate`` to ``target`` Hz: box average down, linear up."""
    if rate == target:
        return signal
    n = int(signal.shape[0] * target / rate)
    if rate > target:
        cumulative = np.concatenate([np.zeros((1, signal.shape[1])), np.cumsum(signal, axis=0)])
        edges = np.arange(n + 1) * (rate / target)
        positions = np.arange(cumulative.shape[0])
        at = np.stack([np.interp(edges, positions, c) for c in cumulative.T], axis=1)
        return np.asarray((at[1:] - at[:-1]) * (target / rate), dtype=np.float64)
    times = np.arange(n) / target
    source = np.arange(signal.shape[0]) / rate
    return np.stack([np.interp(times, source, lead) for lead in signal.T], axis=1)


def window_starts(samples: int, length: int) -> list[int]:
    """Back-to-back windows of ``length`` samples; the last one ends at the recording's end."""
    starts = list(range(0, samples - length + 1, length))
    if starts and starts[-1] + length < samples:
        starts.append(samples - length)
    return starts


def waveform_windows(ds: pydicom.Dataset, spec: WaveformSpec) -> Windows:
    """The recording as the model's windows (module docstring)."""
    leads = usable_leads(ds, spec)
    signal = resample(leads.signal, leads.rate_hz, spec.rate_hz)
    length = round(spec.rate_hz * spec.seconds)
    starts = window_starts(signal.shape[0], length)
    if not starts:  # rounding in the resampling can leave a sample short of exactly ``seconds``
        signal = np.pad(signal, ((0, length - signal.shape[0]), (0, 0)))
        starts = [0]
    channels = tuple(spec.lead_names.index(name) for name in leads.names)
    names = tuple(n for n in spec.lead_names if n in leads.names)
    return Windows(
        signal=np.ascontiguousarray(signal, dtype=np.float32),
        channels=channels,
        shape=(spec.leads, length),
        starts=tuple(s / spec.rate_hz for s in starts),
        leads=names,
        seconds=leads.seconds,
        rate_hz=spec.rate_hz,
    )
