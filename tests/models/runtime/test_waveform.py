"""ECGs of any lead set as model input (issue 21): leads by their codes, any rate from 125 to
1,000 Hz, millivolts, windows; a recording with no usable lead says why."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from models.runtime.preprocess import InputError
from models.runtime.waveform import WaveformSpec, resample, waveform_windows
from synth.imaging.render_ecg import HOLTER, PATCH, RESTING
from tests.pipelines.ecg import flat, recorded, respiration_only

SPEC = WaveformSpec()


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _real() -> pydicom.Dataset:
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None  # the wheel ships it: no download
    return pydicom.dcmread(path)


def test_a_holter_becomes_windows_of_its_two_leads_in_their_places() -> None:
    data, study = recorded(HOLTER, seconds=65)
    windows = waveform_windows(_read(data), SPEC)
    assert windows.leads == ("II", "V5") and windows.seconds == pytest.approx(65.0)
    # 6 back-to-back windows and a last one ending at the recording's end.
    assert windows.starts == (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 55.0)
    assert windows.x.shape == (7, 12, 2500)
    recorded_leads = [SPEC.lead_names.index("II"), SPEC.lead_names.index("V5")]
    others = [k for k in range(12) if k not in recorded_leads]
    assert not windows.x[:, others].any()
    # mV through the 5 uV sensitivity, resampled from 360 Hz: the same beats at 250 Hz.
    assert study.waveform is not None
    mlii = study.waveform.samples[:, 0] * HOLTER.sensitivity_uv / 1000
    first = windows.x[0, SPEC.lead_names.index("II")]
    assert 0.5 < np.ptp(first) < 5
    sampled = np.interp(np.arange(2500) / 250, np.arange(len(mlii)) / 360, mlii)
    assert np.corrcoef(first, sampled)[0, 1] > 0.95


def test_a_patch_is_read_by_its_mdc_code() -> None:
    data, _ = recorded(PATCH, seconds=20)
    ds = _read(data)
    source = ds.WaveformSequence[0].ChannelDefinitionSequence[0].ChannelSourceSequence[0]
    assert (source.CodingSchemeDesignator, source.CodeValue) == ("MDC", "2:2")
    assert str(ds.SOPClassUID) == "1.2.840.10008.5.1.4.1.1.9.1.3"  # Ambulatory ECG
    windows = waveform_windows(ds, SPEC)
    assert windows.leads == ("II",) and windows.x.shape == (2, 12, 2500)


def test_leads_are_picked_by_their_codes_not_their_position() -> None:
    ds = _real()
    group = ds.WaveformSequence[0]
    before = waveform_windows(ds, SPEC).x
    # The same recording with its channels in reverse order (definitions and samples).
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, 12)
    group.WaveformData = np.ascontiguousarray(raw[:, ::-1]).tobytes()
    group.ChannelDefinitionSequence = pydicom.Sequence(
        list(reversed(list(group.ChannelDefinitionSequence)))
    )
    np.testing.assert_array_equal(waveform_windows(ds, SPEC).x, before)


def _three_lead_holter(ds: pydicom.Dataset) -> None:
    """A 3-channel General ECG: the cart's II, V5 and V1, V5 recoded as MDC's CM5 (2:20)."""
    group = ds.WaveformSequence[0]
    keep = [1, 10, 6]
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, 12)
    group.WaveformData = np.ascontiguousarray(raw[:, keep]).tobytes()
    channels = [group.ChannelDefinitionSequence[k] for k in keep]
    code = channels[1].ChannelSourceSequence[0]
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = ("2:20", "MDC", "CM5")
    del code.CodingSchemeVersion
    group.ChannelDefinitionSequence = pydicom.Sequence(channels)
    group.NumberOfWaveformChannels = 3
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.2"  # General ECG


def test_a_three_lead_general_ecg_reads_cm5_as_v5() -> None:
    data, _ = recorded(RESTING, change=_three_lead_holter)
    full, _ = recorded(RESTING)
    windows = waveform_windows(_read(data), SPEC)
    assert windows.leads == ("II", "V1", "V5")
    every = waveform_windows(_read(full), SPEC).x
    kept = [SPEC.lead_names.index(n) for n in windows.leads]
    np.testing.assert_array_equal(windows.x[:, kept], every[:, kept])
    assert not np.delete(windows.x, kept, axis=1).any()


@pytest.mark.parametrize("rate", [125, 360, 500, 1000])
def test_any_rate_from_125_to_1000_hz_becomes_the_models_rate(rate: int) -> None:
    t = np.arange(rate * 12) / rate
    sine = np.sin(2 * np.pi * 1.5 * t)[:, None]
    out = resample(sine, rate, 250.0)
    assert out.shape == (3000, 1)
    want = np.sin(2 * np.pi * 1.5 * np.arange(3000) / 250)
    assert np.abs(out[:, 0] - want).max() < 0.05


def _short(ds: pydicom.Dataset) -> None:
    group = ds.WaveformSequence[0]
    keep = 250 * 8  # 8 s of the patch's 250 Hz
    group.WaveformData = group.WaveformData[: keep * 2]
    group.NumberOfWaveformSamples = keep


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (respiration_only, "1 channels, none coded as an ECG lead"),
        (flat, "1 ECG leads, all flat"),
        (_short, "8.0 s of signal; need 10 s"),
    ],
    ids=["no rhythm lead", "flat line", "under 10 s"],
)
def test_a_recording_with_no_usable_lead_says_why(
    change: Callable[[pydicom.Dataset], None], reason: str
) -> None:
    data, _ = recorded(PATCH, seconds=30, change=change)
    with pytest.raises(InputError, match="no usable ECG lead") as raised:
        waveform_windows(_read(data), SPEC)
    assert reason in str(raised.value)


def test_a_rate_outside_125_to_1000_hz_is_refused() -> None:
    def slow(ds: pydicom.Dataset) -> None:
        ds.WaveformSequence[0].SamplingFrequency = "100"

    data, _ = recorded(RESTING, change=slow)
    with pytest.raises(InputError, match="100 Hz is outside 125-1000 Hz"):
        waveform_windows(_read(data), SPEC)


def test_the_real_ecgs_median_beat_group_is_never_the_one_read() -> None:
    ds = _real()
    assert [g.MultiplexGroupLabel for g in ds.WaveformSequence] == ["RHYTHM", "MEDIAN BEAT"]
    del ds.WaveformSequence[0]  # only the 1.2 s median beats are left
    with pytest.raises(InputError, match=r"1\.2 s of signal; need 10 s"):
        waveform_windows(ds, SPEC)


def test_a_long_recording_holds_its_own_leads_and_cuts_windows_on_demand() -> None:
    """A day-long Holter would be about 1 GB as 12-lead windows held at once: the windows keep
    only the recorded leads at the model's rate, and any span of them cut on demand equals the
    same span of all of them."""
    data, _ = recorded(HOLTER, seconds=600)
    windows = waveform_windows(_read(data), SPEC)
    assert len(windows) == 60
    every = windows.x
    assert windows.signal.shape == (150_000, 2)  # 600 s x 250 Hz, II and V5 only
    assert windows.signal.nbytes * 5 < every.nbytes  # 2 of 12 leads
    for first, last in ((0, 1), (7, 23), (59, None)):
        np.testing.assert_array_equal(windows.stack(first, last), every[first:last])
