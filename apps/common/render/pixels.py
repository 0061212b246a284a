"""DICOM pixels as a reader sees them: one frame with the modality LUT, the window presets a
reader can switch between, and the windowed greyscale (MONOCHROME1 inverted, so dense is bright),
in the order DICOM defines (PS3.4 N.2) and the models see (``models.runtime.preprocess``).

``windowed(ds, frame, None)`` is the file's own display exactly as a model with
``window = "header"`` sees it: the header's VOI LUT or window, else the image's 0.5th-99.5th
percentiles; the first of ``windows(ds)`` is that same default. Colour images (fundus OP,
endoscopy ES) are shown as stored and have no windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from models.runtime.preprocess import COLOUR, frame_header, frames, window_linear

# Standard CT windows (centre, width) in HU, as radiology departments preset them.
CT_PRESETS: Final[tuple[tuple[str, float, float], ...]] = (
    ("brain", 40.0, 80.0),
    ("subdural", 75.0, 200.0),
    ("soft_tissue", 40.0, 400.0),
    ("bone", 500.0, 2000.0),
    ("lung", -600.0, 1500.0),
)
PROJECTION: Final = frozenset({"CR", "DX", "PX", "IO", "RG"})
PERCENTILES: Final = (0.5, 99.5)  # the automatic window, as preprocess's own range
SAMPLE: Final = 1 << 20  # the automatic window is estimated from at most about this many pixels


@dataclass(frozen=True)
class Window:
    """A VOI window over modality-LUT values (HU for CT); ``name`` is a key for the caller's
    labels: ``header``, ``header_2``..., ``auto``, ``full``, ``wide``, ``lung``, ``bone``,
    ``soft_tissue``, ``brain``, ``subdural``, ``dense``."""

    centre: float
    width: float
    name: str


def _colour(ds: pydicom.Dataset) -> bool:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    return photometric in COLOUR or int(ds.get("SamplesPerPixel", 1) or 1) == 3


def _monochrome1(ds: pydicom.Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"


def frame_count(ds: pydicom.Dataset) -> int:
    """Frames in the object: ``NumberOfFrames`` (1 when absent), 0 without pixel data (ECG)."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        return 0
    return max(1, int(ds.get("NumberOfFrames", 1) or 1))


def pixels(ds: pydicom.Dataset, frame: int = 0) -> NDArray[Any]:
    """One frame with the modality LUT applied: rows x columns float32 (HU for CT), or
    rows x columns x 3 uint8 RGB for colour images (pydicom already converts YBR to RGB).

    Raises:
        InputError: no pixel data, or pixels that cannot be decoded (the caller shows why).
        IndexError: ``frame`` is not in the object.
    """
    stack = frames(ds)  # pydicom caches the decoded array on the dataset: scrolling is cheap
    if not 0 <= frame < len(stack):
        raise IndexError(f"frame {frame} of {len(stack)}")
    raw: NDArray[Any] = np.asarray(stack[frame])
    if _colour(ds):
        bits = int(ds.get("BitsStored", 8) or 8)
        if raw.dtype == np.uint8 and bits <= 8:
            return raw
        scaled = np.asarray(raw, dtype=np.float32) * (255.0 / ((1 << bits) - 1))
        return np.asarray(np.clip(scaled + 0.5, 0, 255), dtype=np.uint8)
    return np.asarray(apply_modality_lut(raw, frame_header(ds, frame)), dtype=np.float32)


def _sample(values: NDArray[Any]) -> NDArray[Any]:
    """A regular subsample of a large frame: percentiles of millions of pixels cost more than the
    rest of the display, and a 1-in-k grid estimates them to well under a grey level."""
    step = max(1, math.ceil(math.sqrt(values.size / SAMPLE)))
    return values[::step, ::step] if step > 1 else values


def _span(low: float, high: float, name: str) -> Window:
    """The window mapping ``low`` to 0 and ``high`` to 1 under DICOM's LINEAR function."""
    width = max(high - low + 1.0, 2.0)
    return Window(low + (width - 1.0) / 2.0 + 0.5, width, name)


def _values(value: object) -> list[Any]:
    """A possibly multi-valued DS as a list (a header may offer several windows)."""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return list(value)
    return [value]


def _header_windows(ds: pydicom.Dataset) -> list[Window]:
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return []
    centres, widths = _values(ds.WindowCenter), _values(ds.WindowWidth)
    out = []
    for i, (centre, width) in enumerate(zip(centres, widths, strict=False)):
        if centre is None or width is None or float(width) < 2:  # width 1 is a threshold
            continue
        out.append(Window(float(centre), float(width), "header" if i == 0 else f"header_{i + 1}"))
    return out


def windows(ds: pydicom.Dataset, frame: int = 0) -> list[Window]:
    """The windows a reader may switch between for this image; the first is the default.

    The default is the header's window when there is one (the modality's choice, and what the
    model saw), else ``auto`` (the 0.5th-99.5th percentiles, again what the model saw; beyond
    about a million pixels estimated on a regular subsample). Then presets by modality: CT the
    standard HU windows (``CT_PRESETS``); radiographs (CR, DX, PX, IO) the low-density part
    (``lung`` on a chest, else ``soft_tissue``) and the dense part (``bone``) of the image's own
    range, so they suit any detector's units and either photometric interpretation; MR ``wide``;
    MG ``dense`` (the fibroglandular end); every greyscale image ``auto`` and ``full`` (minimum
    to maximum). Colour images have no window: ``[]``.
    """
    if _colour(ds):
        return []
    values = _sample(pixels(ds, frame))
    low, high = (float(v) for v in np.percentile(values, PERCENTILES))
    auto = _span(low, high, "auto")
    own = frame_header(ds, frame)  # an enhanced image's window is in its functional groups
    header = _header_windows(own)
    out = [*header, auto] if header else [auto]
    modality = str(ds.get("Modality", "")).upper()
    spread = max(high - low, 1.0)
    # Modality values run bright-is-dense on MONOCHROME2 and the other way on MONOCHROME1.
    light_end, toward = (high, -1.0) if _monochrome1(ds) else (low, 1.0)

    def part(start: float, frac_centre: float, frac_width: float, name: str) -> Window:
        return Window(start + toward * frac_centre * spread, frac_width * spread, name)

    if modality == "CT" or str(own.get("RescaleType", "")).upper() == "HU":
        out += [Window(c, w, n) for n, c, w in CT_PRESETS]
    elif modality in PROJECTION:
        chest = str(ds.get("BodyPartExamined", "")).upper() == "CHEST"
        out += [
            part(light_end, 0.3, 0.6, "lung" if chest else "soft_tissue"),
            part(light_end, 0.7, 0.6, "bone"),
        ]
    elif modality == "MG":
        out.append(part(light_end, 0.75, 0.5, "dense"))
    elif modality == "MR":
        out.append(Window(auto.centre, auto.width * 1.5, "wide"))
    minimum, maximum = float(values.min()), float(values.max())
    out.append(_span(minimum, maximum, "full"))
    return out


def windowed(
    ds: pydicom.Dataset, frame: int = 0, window: Window | None = None
) -> NDArray[np.uint8]:
    """The frame as shown: rows x columns uint8 with dense bright (MONOCHROME1 inverted), or the
    stored RGB for colour images (``window`` is ignored for them).

    Args:
        window: One of ``windows(ds)``, or a reader's own. ``None`` is the file's own display as
            the models see it (``ImageSpec.window = "header"``): its VOI LUT or window, else
            ``auto``; this also covers files that carry a VOI LUT Sequence and no window.
    """
    values = pixels(ds, frame)
    if _colour(ds):
        return np.asarray(values, dtype=np.uint8)
    if window is None:
        own = frame_header(ds, frame)
        header = _header_windows(own)
        if header:
            window = header[0]
        elif "VOILUTSequence" in own:
            values = np.asarray(apply_voi_lut(values, own), dtype=np.float32)
        if window is None:
            low, high = (float(v) for v in np.percentile(_sample(values), PERCENTILES))
            window = _span(low, high, "auto")
    shown = window_linear(values.astype(np.float64), window.centre, max(window.width, 2.0))
    if _monochrome1(ds):
        shown = 1.0 - shown
    return (shown * 255.0 + 0.5).astype(np.uint8)
