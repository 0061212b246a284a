"""The 12-Lead and Ambulatory ECG Waveform IODs (1.2.840.10008.5.1.4.1.1.9.1.1 and .9.1.3).

One multiplex group ("RHYTHM") of signed 16-bit samples: a cart's 12 channels in 2.5 uV units,
each channel's source coded in SCP-ECG terms as carts write them; a Holter's 2 channels (MLII
and V5, labelled so, coded as leads II and V5), or a patch's single channel coded in MDC terms
(DICOM PS3.16 CID 3001 allows either scheme), as Ambulatory ECG objects.
"""

from __future__ import annotations

from functools import cache

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import VR

from synth.imaging.dicom_common import (
    EMPTY_SEQUENCE,
    SeriesHeader,
    StudyHeader,
    base,
    code_item,
    code_sequence,
)
from synth.imaging.encoder import DicomObject, SharedSequence, dataset
from synth.imaging.rendered import RenderedWaveform

ECG_12LEAD = "1.2.840.10008.5.1.4.1.1.9.1.1"
AMBULATORY_ECG = "1.2.840.10008.5.1.4.1.1.9.1.3"
SOP_CLASS = {"resting": ECG_12LEAD, "holter": AMBULATORY_ECG, "patch": AMBULATORY_ECG}
DESCRIPTION = {"resting": "12 Lead ECG", "holter": "Holter ECG", "patch": "Patch ECG"}
WAVEFORM_DATA = 0x54001010
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
LEAD_CODES["MLII"] = LEAD_CODES["II"]  # the Holter's modified lead II (label "MLII")
MDC_CODES = {"II": ("2:2", "Lead II")}  # MDC_ECG_LEAD_II (ISO/IEEE 11073-10101 131074)


def _channel(lead: str, sensitivity: float, recorder: str) -> Dataset:
    if recorder == "patch":
        value, meaning = MDC_CODES[lead]
        source = code_item(value, "MDC", meaning)
    else:
        value, meaning = LEAD_CODES[lead]
        source = code_item(value, "SCPECG", meaning, "1.3")
    labelled = {"ChannelLabel": lead} if recorder != "resting" else {}
    return dataset(
        {
            **labelled,
            "ChannelSourceSequence": SharedSequence([source]),
            "ChannelSensitivity": f"{sensitivity:g}",
            "ChannelSensitivityUnitsSequence": code_sequence("uV", "UCUM", "microvolt"),
            "ChannelSensitivityCorrectionFactor": "1",
            "ChannelBaseline": "0",
            "ChannelSampleSkew": "0",
            "WaveformBitsStored": 16,
            "FilterLowFrequency": "0.05",
            "FilterHighFrequency": "150",
            "NotchFilterFrequency": "60",
        }
    )


@cache
def _channels(leads: tuple[str, ...], sensitivity: float, recorder: str) -> SharedSequence:
    """The channel definitions, the same for every ECG of a recorder: built once and shared."""
    return SharedSequence([_channel(lead, sensitivity, recorder) for lead in leads])


def ecg(
    study: StudyHeader, series: SeriesHeader, waveform: RenderedWaveform, sop_uid: str
) -> DicomObject:
    """The ECG as its recorder sends it."""
    samples, channels = waveform.samples.shape
    group = dataset(
        {
            "MultiplexGroupTimeOffset": "0",
            "TriggerTimeOffset": "0",
            "WaveformOriginality": "ORIGINAL",
            "NumberOfWaveformChannels": channels,
            "NumberOfWaveformSamples": samples,
            "SamplingFrequency": f"{waveform.sampling_hz}",
            "MultiplexGroupLabel": "RHYTHM",
            "ChannelDefinitionSequence": _channels(
                waveform.leads, waveform.sensitivity_uv, waveform.recorder
            ),
            "WaveformBitsAllocated": 16,
            "WaveformSampleInterpretation": "SS",
        },
        DataElement(WAVEFORM_DATA, VR.OW, waveform.samples.astype("<i2").tobytes()),
    )
    attributes = base(study, series, SOP_CLASS[waveform.recorder], 1, sop_uid)
    attributes.update(
        {
            "SeriesDescription": DESCRIPTION[waveform.recorder],
            "AcquisitionDateTime": series.started.strftime("%Y%m%d%H%M%S"),
            "AcquisitionContextSequence": EMPTY_SEQUENCE,
            "WaveformSequence": Sequence([group]),
        }
    )
    return DicomObject(attributes)
