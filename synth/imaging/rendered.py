"""What a renderer returns: pixels, waveforms and the truth about them, with no DICOM attached.

Model-training scripts consume these directly, so everything a label needs lives here: the boxes
where a finding shows, the regression value and the ECG segments.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the image they belong to, half-open (``x1``/``y1`` one
past the last changed column/row), so in continuous image coordinates they are exact edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class RenderedImage:
    """One frame.

    Attributes:
        pixels: Stored values: ``(rows, cols)`` ``uint16`` for greyscale (MONOCHROME2 sense: higher
            is brighter), or ``(rows, cols, 3)`` ``uint8`` RGB.
        boxes: Where the finding shows in this image; empty when it does not.
        view: The view as DICOM ViewPosition writes it (``PA``, ``AP``, ``LL``, ``CC``, ``MLO``),
            or ``""`` for cross-sectional and photographic images.
        laterality: ``R``, ``L``, ``B`` (both) or ``U`` (unpaired).
        position_mm: Slice position along the patient's feet-head axis, for cross-sections.
    """

    pixels: NDArray[np.uint16] | NDArray[np.uint8]
    boxes: tuple[Box, ...] = ()
    view: str = ""
    laterality: str = "U"
    position_mm: float = 0.0


@dataclass(frozen=True)
class RenderedSeries:
    """One series: images acquired together with one protocol.

    Attributes:
        role: The protocol role the DICOM side keys on (``PA``, ``T2W``, ``DWI``, ``ADC``, ...).
        description: SeriesDescription as the device writes it.
        images: The frames, in instance order.
        pixel_spacing: Row and column spacing in mm.
        bits_stored: Significant bits of each stored sample.
        window: Default display window (centre, width) in rescaled units.
        rescale_intercept: Modality LUT intercept (CT: -1024, stored value = HU + 1024).
        slice_thickness: Slice thickness in mm for cross-sections, else ``None``.
    """

    role: str
    description: str
    images: tuple[RenderedImage, ...]
    pixel_spacing: tuple[float, float]
    bits_stored: int
    window: tuple[float, float]
    rescale_intercept: float = 0.0
    slice_thickness: float | None = None


@dataclass(frozen=True)
class RenderedWaveform:
    """A multiplexed waveform (an ECG).

    Attributes:
        samples: ``(n_samples, n_leads)`` ``int16`` in units of ``sensitivity_uv``.
        sampling_hz: Samples per second.
        sensitivity_uv: Microvolts per stored unit.
        leads: Lead names in channel order.
        recorder: ``resting`` (a 12-lead cart), ``holter`` or ``patch`` (ambulatory).
    """

    samples: NDArray[np.int16]
    sampling_hz: int
    sensitivity_uv: float
    leads: tuple[str, ...]
    recorder: str = "resting"


@dataclass(frozen=True)
class RenderedStudy:
    """Everything one exam produces, with its truth.

    Attributes:
        exam: Exam code.
        service: The AI service, or ``None``.
        abnormal: Whether a finding was drawn.
        finding_code: The finding's code (``nodule``, ``atrial_fibrillation``, ...), or ``None``.
        value: Regression truth: bone age in months or leg-length difference in mm, else ``None``.
        series: Image series, in series-number order (empty for the ECG).
        waveform: The ECG, else ``None``.
        ecg_segments: Half-open sample ranges that show the ECG finding.
    """

    exam: str
    service: str | None
    abnormal: bool
    finding_code: str | None
    value: float | None
    series: tuple[RenderedSeries, ...]
    waveform: RenderedWaveform | None = None
    ecg_segments: tuple[tuple[int, int], ...] = field(default=())


@dataclass(frozen=True)
class Case:
    """What a renderer is asked to draw, and the random streams it draws from.

    Three independent streams keep a finding from moving the anatomy: the same ``anatomy`` and
    ``noise`` streams give the same patient whether or not ``finding`` adds an abnormality.

    Attributes:
        exam: Exam code.
        abnormal: Whether to draw the service's finding.
        sex: ``"M"`` or ``"F"``.
        age_months: Age in whole months on the study date.
        anatomy: Stream for the patient's anatomy and the acquisition.
        finding: Stream for the finding and the regression value.
        noise: Stream for detector noise.
    """

    exam: str
    abnormal: bool
    sex: str
    age_months: int
    anatomy: np.random.Generator
    finding: np.random.Generator
    noise: np.random.Generator

    @property
    def age_years(self) -> float:
        return self.age_months / 12.0


def single_image_study(
    case: Case,
    service: str | None,
    finding_code: str | None,
    series: RenderedSeries,
    value: float | None = None,
) -> RenderedStudy:
    """Wrap one series (most radiographs are one image in one series) as a study."""
    return RenderedStudy(
        exam=case.exam,
        service=service,
        abnormal=case.abnormal,
        finding_code=finding_code if case.abnormal else None,
        value=value,
        series=(series,),
    )
