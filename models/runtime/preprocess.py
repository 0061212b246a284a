"""Pixels and waveforms as the models see them: one chain, shared by scoring and training.

The training scripts in ``models/`` call these same functions on the synthetic city's DICOM
files, so a model never sees at run time an input prepared differently from the ones it learnt
on. The image chain is the order DICOM defines for display (PS3.4 N.2):

1. modality LUT: stored values to meaningful units (Rescale Slope / Intercept: CT to HU);
2. VOI LUT or window: the range a reader looks at, to 0..1 (PS3.3 C.11.2.1.2, "LINEAR");
3. MONOCHROME1 inverted, so that higher is always brighter (pydicom does not do this);
4. resized with its aspect ratio kept and padded to the model's height x width (a square for the
   reference models), centred, padding black.

Colour images (fundus, endoscopy) skip 1-3: their RGB values are scaled to 0..1. The model's
declared contract (``ImageSpec``, from its ``config.toml``) then shapes the 0..1 pixels into its
tensor: grey replicated to 3 channels or RGB reordered to BGR, the intensity range and per-channel
mean/std normalisation, channels first or last, and the element type. A vendor's model thus reads
its own input with no code change (models/README.md, "The input contract").

``Geometry`` records the resize, so a heatmap or a box in model coordinates maps back to the
source image's pixels. Waveforms (ECG) are picked by their coded leads, resampled to the model's
rate and cut into windows of its duration, in millivolts (``models.runtime.waveform``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from models.runtime.errors import InputError
from models.runtime.waveform import WaveformSpec, millivolts, waveform_windows

COLOUR: Final = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"})


WINDOWS: Final = ("header", "range", "fixed")
LAYOUTS: Final = ("NCHW", "NHWC")
ORDERS: Final = ("RGB", "BGR")
READS: Final = ("grey", "colour")
DTYPES: Final = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "uint8": np.uint8,
}


@dataclass(frozen=True)
class ImageSpec:
    """What a model's image input is (from its ``config.toml``, table ``[image]``): the declared
    contract of its image tensor. The defaults are the reference models' input, so a
    ``config.toml`` that states only ``size``, ``channels`` and ``window`` means what it always did.

    Attributes:
        size: Side of a square input, in pixels (``height`` and ``width`` default to it).
        channels: 1 (grey) or 3 (colour, or grey replicated: see ``reads``).
        window: ``header`` uses the file's VOI LUT or window (falling back to the image's own
            range); ``range`` always uses the image's own ``percentiles``; ``fixed`` uses
            ``window_centre`` / ``window_width`` in the modality LUT's units (HU for CT).
        height: Rows of the input (0: ``size``).
        width: Columns of the input (0: ``size``).
        reads: The images the model takes: ``grey`` or ``colour`` (default: grey for one
            channel, colour for three); a grey image for a 3-channel model is replicated.
        order: Channel order of a 3-channel input, ``RGB`` or ``BGR``.
        layout: ``NCHW`` (channels first) or ``NHWC`` (channels last).
        dtype: The tensor's element type: float32, float16, float64 or uint8.
        window_centre: Centre of a ``fixed`` window.
        window_width: Width of a ``fixed`` window.
        percentiles: The low and high percentiles of ``range`` (and of ``header`` without one).
        intensity: The values the window's 0 and 1 become, e.g. ``[0, 255]``.
        mean: Subtracted per channel after ``intensity`` (one value: every channel).
        std: Divided per channel after ``mean``.
    """

    size: int = 64
    channels: int = 1
    window: str = "header"
    height: int = 0
    width: int = 0
    reads: str = ""
    order: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    window_centre: float | None = None
    window_width: float | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    intensity: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        """Fill the defaults that depend on other keys and refuse a contract that cannot be met.

        Raises:
            ValueError: A key's value is outside what the chain can produce; the message names it.
        """
        set_ = object.__setattr__  # frozen: normalised once, here
        set_(self, "height", self.height or self.size)
        set_(self, "width", self.width or self.size)
        set_(self, "reads", self.reads or ("grey" if self.channels == 1 else "colour"))
        for name in ("percentiles", "intensity", "mean", "std"):
            set_(self, name, tuple(float(v) for v in getattr(self, name)))
        allowed: dict[str, tuple[object, ...]] = {
            "channels": (1, 3),
            "window": WINDOWS,
            "reads": READS,
            "order": ORDERS,
            "layout": LAYOUTS,
            "dtype": tuple(DTYPES),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"{name} = {getattr(self, name)!r}; one of {list(values)}")
        if min(self.size, self.height, self.width) < 1:
            raise ValueError(f"input {self.height} x {self.width} is empty")
        if self.channels == 1 and self.reads == "colour":
            raise ValueError("a one-channel model cannot read colour images")
        if self.window == "fixed" and (self.window_centre is None or self.window_width is None):
            raise ValueError("window = 'fixed' needs window_centre and window_width")
        if len(self.percentiles) != 2 or not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise ValueError(f"percentiles {list(self.percentiles)} are not 0 <= low < high <= 100")
        if len(self.intensity) != 2 or self.intensity[0] == self.intensity[1]:
            raise ValueError(f"intensity {list(self.intensity)} is not [low, high]")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.channels):
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} values; give 1 or {self.channels}"
                )
        if 0.0 in self.std:
            raise ValueError("std holds a 0")

    def dims(self, batch: int | None) -> list[int | None]:
        """The input tensor's dimensions in its layout (``None``: any batch size)."""
        if self.layout == "NHWC":
            return [batch, self.height, self.width, self.channels]
        return [batch, self.channels, self.height, self.width]


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


def _own_range(
    values: NDArray[np.float64], percentiles: tuple[float, float] = (0.5, 99.5)
) -> NDArray[np.float64]:
    low, high = np.percentile(values, percentiles)
    if high <= low:
        return np.zeros_like(values)
    return np.asarray(np.clip((values - low) / (high - low), 0.0, 1.0), dtype=np.float64)


def _voi(ds: pydicom.Dataset, values: NDArray[np.float64], spec: ImageSpec) -> NDArray[np.float64]:
    if spec.window == "fixed" and spec.window_centre is not None and spec.window_width is not None:
        return window_linear(values, spec.window_centre, spec.window_width)
    if spec.window == "header":
        if "WindowCenter" in ds and "WindowWidth" in ds:
            return window_linear(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
        if "VOILUTSequence" in ds:
            mapped = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
            return _own_range(mapped, spec.percentiles)
    return _own_range(values, spec.percentiles)


def resize_padded(
    image: NDArray[np.float32], height: int, width: int | None = None
) -> tuple[NDArray[np.float32], Geometry]:
    """Area-average ``image`` (rows, cols[, channels]) into ``height`` x ``width`` (a square
    when ``width`` is omitted), aspect kept, centred, padded with zeros. Area averaging (each
    output pixel the mean of the source area it covers) keeps small findings visible where point
    sampling would skip them."""
    width = height if width is None else width
    rows, cols = image.shape[:2]
    scale = min(height / rows, width / cols)
    inner_h, inner_w = max(1, round(rows * scale)), max(1, round(cols * scale))
    resized = _area(_area(image, inner_h, axis=0), inner_w, axis=1)
    out = np.zeros((height, width, *image.shape[2:]), dtype=np.float32)
    top, left = (height - inner_h) // 2, (width - inner_w) // 2
    out[top : top + inner_h, left : left + inner_w] = resized
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


# What the image chain reads of a frame's header: the Modality LUT and VOI LUT modules.
FRAME_KEYWORDS: Final = (
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "BitsStored",
    "PixelRepresentation",
)
# Where an enhanced (multi-frame) image keeps them instead (PS3.3 C.7.6.16.2.9 Pixel Value
# Transformation, C.7.6.16.2.10 Frame VOI LUT), shared by all frames or per frame.
FRAME_GROUPS: Final = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


def frame_header(ds: pydicom.Dataset, index: int) -> pydicom.Dataset:
    """The modality and VOI LUT attributes that apply to frame ``index`` (0-based).

    Enhanced CT, MR and other multi-frame objects from scanners keep rescale and window in
    functional groups (the shared group, overridden per frame), not at the top level, and pydicom
    applies only top-level ones: read there, a CT frame would stay in stored values and be
    windowed by its own range."""
    own = pydicom.Dataset()
    for keyword in FRAME_KEYWORDS:
        if keyword in ds:
            own[keyword] = ds[keyword]
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(groups) or []
        at = 0 if groups.startswith("Shared") else index
        if at >= len(items):
            continue
        for group in FRAME_GROUPS:
            for item in items[at].get(group) or []:
                for element in item:
                    own[element.tag] = element
    return own


def image_input(ds: pydicom.Dataset, spec: ImageSpec) -> tuple[NDArray[Any], list[Geometry]]:
    """Every frame of ``ds`` as the model's input tensor, ``(frames, ...)`` in the layout, range
    and element type ``spec`` declares (reference models: ``(frames, channels, size, size)``
    float32 in 0..1)."""
    pixels = frames(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    colour = photometric in COLOUR or pixels.ndim == 4
    if spec.reads == "colour" and not colour:
        raise InputError(f"the model reads colour images; this one is {photometric}")
    if spec.reads == "grey" and colour:
        raise InputError(f"the model reads greyscale images; this one is {photometric}")
    out, geometry = [], []
    for index, frame in enumerate(pixels):
        if colour:
            # pydicom 3's pixel_array already returns YBR data as RGB: no second conversion.
            scaled = np.asarray(frame, dtype=np.float32) / float((1 << int(ds.BitsStored)) - 1)
        else:
            own = frame_header(ds, index)
            values = np.asarray(apply_modality_lut(frame, own), dtype=np.float64)
            shown = _voi(own, values, spec)
            if photometric == "MONOCHROME1":
                shown = 1.0 - shown
            scaled = shown.astype(np.float32)
        placed_pixels, placed = resize_padded(scaled, spec.height, spec.width)
        out.append(_tensor(placed_pixels, spec))
        geometry.append(placed)
    return np.stack(out), geometry


def _tensor(pixels: NDArray[np.float32], spec: ImageSpec) -> NDArray[Any]:
    """One placed frame (height, width[, 3]) in 0..1 as the model's tensor for that frame:
    channels made and ordered, intensity and normalisation applied, in its layout and type."""
    last = pixels if pixels.ndim == 3 else pixels[:, :, np.newaxis]
    if last.shape[2] != spec.channels:  # a grey frame for a 3-channel model
        last = np.repeat(last, spec.channels, axis=2)
    if spec.channels == 3 and spec.order == "BGR":
        last = last[:, :, ::-1]
    low, high = (np.float32(v) for v in spec.intensity)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    values = ((low + last * (high - low)) - mean) / std
    if spec.layout == "NCHW":
        values = values.transpose(2, 0, 1)
    kind = np.dtype(DTYPES[spec.dtype])
    if kind == np.uint8:
        values = np.clip(np.rint(values), 0, 255)  # uint8, the one integer type
    return np.ascontiguousarray(values.astype(kind))


def waveform_input(ds: pydicom.Dataset, spec: WaveformSpec) -> NDArray[np.float32]:
    """The recording's first window as ``(leads, rate_hz * seconds)`` in mV (``waveform``)."""
    first: NDArray[np.float32] = waveform_windows(ds, spec).stack(0, 1)[0]
    return first


# The waveform names are re-exported: scoring, training and the viewer import both chains here.
__all__ = [
    "COLOUR",
    "Geometry",
    "ImageSpec",
    "InputError",
    "WaveformSpec",
    "frame_header",
    "frames",
    "image_input",
    "millivolts",
    "resize_padded",
    "waveform_input",
    "window_linear",
]
