"""The 12-Lead ECG Waveform IOD (1.2.840.10008.5.1.4.1.1.9.1.1).

One multiplex group ("RHYTHM") of 12 channels, signed 16-bit samples in 2.5 uV units, with each
channel's source coded in SCP-ECG terms as carts write them.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import VR

from synth.imaging.dicom_common import (
    SeriesHeader,
    StudyHeader,
    base,
    code_item,
    code_sequence,
    set_attributes,
)
from synth.imaging.rendered import RenderedWaveform

ECG_12LEAD = "1.2.840.10008.5.1.4.1.1.9.1.1"
# SCP-ECG lead codes (coding scheme SCPECG 1.3).
LEAD_CODES = {
    "I": ("5.6.3-9-1", "Lead I (Einthoven)"),
    "II": ("5.6.3-9-2", "Lead II"),
    "III": ("5.6.3-9-61", "Lead III"),
    "aVR": ("5.6.3-9-62", "aVR, augmented voltage, right"),
    "aVL": ("5.6.3-9-63", "aVL, augmented voltage, left"),
    "aVF": ("5.6.3-9-64", "aVF, augmented voltage, foot"),
    "V1": ("5.6.3-9-3", "Lead V1"),
    "V2": ("5.6.3-9-4", "Lead V2"),
    "V3": ("5.6.3-9-5", "Lead V3"),
    "V4": ("5.6.3-9-6", "Lead V4"),
    "V5": ("5.6.3-9-7", "Lead V5"),
    "V6": ("5.6.3-9-8", "Lead V6"),
}


def _channel(lead: str, sensitivity: float) -> Dataset:
    value, meaning = LEAD_CODES[lead]
    source = code_item(value, "SCPECG", meaning)
    source.CodingSchemeVersion = "1.3"
    channel = Dataset()
    set_attributes(
        channel,
        {
            "ChannelSourceSequence": Sequence([source]),
            "ChannelSensitivity": f"{sensitivity:g}",
            "ChannelSensitivityUnitsSequence": code_sequence("uV", "UCUM", "microvolt"),
            "ChannelSensitivityCorrectionFactor": "1",
            "ChannelBaseline": "0",
            "ChannelSampleSkew": "0",
            "WaveformBitsStored": 16,
            "FilterLowFrequency": "0.05",
            "FilterHighFrequency": "150",
            "NotchFilterFrequency": "60",
        },
    )
    return channel


def ecg(
    study: StudyHeader, series: SeriesHeader, waveform: RenderedWaveform, sop_uid: str
) -> Dataset:
    """The resting ECG as the cart sends it."""
    ds = base(study, series, ECG_12LEAD, 1, sop_uid)
    group = Dataset()
    samples, channels = waveform.samples.shape
    set_attributes(
        group,
        {
            "MultiplexGroupTimeOffset": "0",
            "TriggerTimeOffset": "0",
            "WaveformOriginality": "ORIGINAL",
            "NumberOfWaveformChannels": channels,
            "NumberOfWaveformSamples": samples,
            "SamplingFrequency": f"{waveform.sampling_hz}",
            "MultiplexGroupLabel": "RHYTHM",
            "ChannelDefinitionSequence": Sequence(
                [_channel(lead, waveform.sensitivity_uv) for lead in waveform.leads]
            ),
            "WaveformBitsAllocated": 16,
            "WaveformSampleInterpretation": "SS",
        },
    )
    group.add_new(0x54001010, VR.OW, waveform.samples.astype("<i2").tobytes())  # WaveformData
    set_attributes(
        ds,
        {
            "AcquisitionDateTime": series.started.strftime("%Y%m%d%H%M%S"),
            "AcquisitionContextSequence": Sequence(),
            "WaveformSequence": Sequence([group]),
        },
    )
    return ds
