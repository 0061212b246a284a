"""Pixels and waveforms as the models see them: one chain, shared by scoring and training.

The training scripts in ``models/`` call these same functions on the synthetic city's DICOM
files, so a model never sees at run time an input prepared differently from the ones it learnt
on. The image chain is the order DICOM defines for display (PS3.4 N.2):

1. modality LUT: stored values to meaningful units (Rescale Slope / Intercept: CT to HU);
2. VOI LUT or window: the range a reader looks at, to 0..1 (PS3.3 C.11.2.1.2, "LINEAR");
3. MONOCHROME1 inverted, so that higher is always brighter (pydicom does not do this);
4. resized with its aspect ratio kept and padded to a square, centred, padding black.

Colour images (fundus, endoscopy) skip 1-3: their RGB values are scaled to 0..1.

``Geometry`` records the resize, so a heatmap or a box in model coordinates maps back to the
source image's pixels. Waveforms (ECG) are picked by their coded leads, resampled to the model's
rate and cut into windows of its duration, in millivolts (``models.runtime.waveform``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from models.runtime.errors import InputError
from models.runtime.waveform import WaveformSpec, millivolts, waveform_windows

COLOUR: Final = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"})


@dataclass(frozen=True)
class ImageSpec:
    """What a model's image input is (from its ``config.toml``, table ``[image]``).

    Attributes:
        size: Side of the square input, in pixels.
        channels: 1 (grey) or 3 (RGB).
        window: ``header`` uses the file's VOI LUT or window (falling back to the image's own
            range); ``range`` always uses the image's own 0.5th-99.5th percentiles.
    """

    size: int = 64
    channels: int = 1
    window: str = "header"


@dataclass(frozen=True)
class Geometry:
    """How a source frame was placed in the model's square: ``model = source * scale + offset``."""

    rows: int
    columns: int
    scale: float
    offset_x: float
    offset_y: float

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        """A point in model pixels as (column, row) in the source frame's pixels."""
        return (x - self.offset_x) / self.scale, (y - self.offset_y) / self.scale


def window_linear(values: NDArray[np.float64], centre: float, width: float) -> NDArray[np.float64]:
    """DICOM's LINEAR VOI function (PS3.3 C.11.2.1.2.1) with output range 0..1."""
    if width < 1:
        raise InputError(f"window width {width} is below 1")
    out = (values - (centre - 0.5)) / (width - 1) + 0.5
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def _first(value: object) -> float:
    """The first of a possibly multi-valued DS (a header may offer several windows)."""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return float(value[0])
    return float(value)  # type: ignore[arg-type]


def _own_range(values: NDArray[np.float64]) -> NDArray[np.float64]:
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        return np.zeros_like(values)
    return np.asarray(np.clip((values - low) / (high - low), 0.0, 1.0), dtype=np.float64)


def _voi(ds: pydicom.Dataset, values: NDArray[np.float64], spec: ImageSpec) -> NDArray[np.float64]:
    if spec.window == "header":
        if "WindowCenter" in ds and "WindowWidth" in ds:
            return window_linear(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
        if "VOILUTSequence" in ds:
            mapped = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
            return _own_range(mapped)
    return _own_range(values)


def resize_padded(image: NDArray[np.float32], size: int) -> tuple[NDArray[np.float32], Geometry]:
    """Area-average ``image`` (rows, cols[, channels]) into a ``size`` square, aspect kept,
    centred, padded with zeros. Area averaging (each output pixel the mean of the source area it
    covers) keeps small findings visible where point sampling would skip them."""
    rows, cols = image.shape[:2]
    scale = size / max(rows, cols)
    height, width = max(1, round(rows * scale)), max(1, round(cols * scale))
    resized = _area(_area(image, height, axis=0), width, axis=1)
    out = np.zeros((size, size, *image.shape[2:]), dtype=np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    out[top : top + height, left : left + width] = resized
    return out, Geometry(rows, cols, scale, float(left), float(top))


def _area(image: NDArray[np.float32], n: int, axis: int) -> NDArray[np.float32]:
    """Resample one axis to ``n`` samples by exact area averaging (prefix sums)."""
    length = image.shape[axis]
    if length == n:
        return image
    moved = np.moveaxis(image, axis, 0).astype(np.float64)
    cumulative = np.concatenate([np.zeros((1, *moved.shape[1:])), np.cumsum(moved, axis=0)])
    edges = np.linspace(0.0, length, n + 1)

    def at(position: NDArray[np.float64]) -> NDArray[np.float64]:
        whole = np.clip(np.floor(position).astype(int), 0, length - 1)
        part = position - whole
        step = cumulative[whole + 1] - cumulative[whole]
        shape = (-1, *([1] * (moved.ndim - 1)))
        return np.asarray(cumulative[whole] + step * part.reshape(shape), dtype=np.float64)

    sums = at(edges[1:]) - at(edges[:-1])
    widths = (edges[1:] - edges[:-1]).reshape(-1, *([1] * (moved.ndim - 1)))
    return np.moveaxis((sums / widths).astype(np.float32), 0, axis)


def frames(ds: pydicom.Dataset) -> NDArray[np.generic]:
    """The decoded pixel data as (frames, rows, cols[, samples])."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise InputError("the object has no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as error:  # decoders fail in many ways; the finding records which
        raise InputError(f"pixels cannot be decoded: {type(error).__name__}: {error}") from error
    frames_ = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames_ == 1:
        pixels = pixels[np.newaxis]
    expected = 3 if samples == 1 else 4
    if pixels.ndim != expected:
        raise InputError(f"unsupported pixel array shape {pixels.shape}")
    return np.asarray(pixels)


def image_input(ds: pydicom.Dataset, spec: ImageSpec) -> tuple[NDArray[np.float32], list[Geometry]]:
    """Every frame of ``ds`` as model input ``(frames, channels, size, size)`` in 0..1."""
    pixels = frames(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    colour = photometric in COLOUR or pixels.ndim == 4
    if spec.channels == 3 and not colour:
        raise InputError(f"the model reads colour images; this one is {photometric}")
    if spec.channels == 1 and colour:
        raise InputError(f"the model reads greyscale images; this one is {photometric}")
    out, geometry = [], []
    for frame in pixels:
        if colour:
            # pydicom 3's pixel_array already returns YBR data as RGB: no second conversion.
            scaled = np.asarray(frame, dtype=np.float32) / float((1 << int(ds.BitsStored)) - 1)
        else:
            values = np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
            shown = _voi(ds, values, spec)
            if photometric == "MONOCHROME1":
                shown = 1.0 - shown
            scaled = shown.astype(np.float32)
        square, placed = resize_padded(scaled, spec.size)
        out.append(square.transpose(2, 0, 1) if colour else square[np.newaxis])
        geometry.append(placed)
    return np.stack(out).astype(np.float32), geometry


def waveform_input(ds: pydicom.Dataset, spec: WaveformSpec) -> NDArray[np.float32]:
    """The recording's first window as ``(leads, rate_hz * seconds)`` in mV (``waveform``)."""
    first: NDArray[np.float32] = waveform_windows(ds, spec).x[0]
    return first


# The waveform names are re-exported: scoring, training and the viewer import both chains here.
__all__ = [
    "COLOUR",
    "Geometry",
    "ImageSpec",
    "InputError",
    "WaveformSpec",
    "frames",
    "image_input",
    "millivolts",
    "resize_padded",
    "waveform_input",
    "window_linear",
]
