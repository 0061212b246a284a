"""The study viewer's pure rendering: DICOM pixels and waveforms plus the AI overlay, to plotly.

Numpy and plotly only (no Streamlit, no lakehouse reads), so a page calls these with datasets it
has already read and stays fast and testable. User-facing words come in as arguments from the
caller's message catalogue; only view codes ("R CC") are written here.

Display chain (greyscale), the order DICOM defines (PS3.4 N.2) and the one the models see
(``models.runtime.preprocess``):

1. ``pixels``: one frame with the modality LUT applied (Rescale Slope / Intercept: CT in HU).
2. ``windowed``: a ``Window`` (DICOM "LINEAR", ``preprocess.window_linear``) to 0..255, then
   MONOCHROME1 inverted so that dense is bright, as on every other image. ``window=None`` is the
   file's own display exactly as a model with ``window = "header"`` sees it: the header's VOI LUT
   or window, else the image's 0.5th-99.5th percentiles. ``windows`` lists the presets a reader
   can switch between; the first is that same default.
3. ``blend``: the AI heatmap coloured with viridis (perceptually uniform, colour-blind safe) over
   the image, each pixel's alpha ``opacity * heat``, so cold areas stay untouched.
4. ``image_figure`` / ``mammography_figure``: the RGB array as a PNG data URI in a ``go.Image``
   (one compressed string instead of a JSON list of every pixel; ``png_uri`` writes it with
   numpy and zlib), the AI's box as a dashed outline on a dark halo with a text label, so nothing
   depends on colour alone. Images larger than ``max_side`` are block-averaged for the browser
   and placed by the block size, so every coordinate stays in source pixels.

Colour images (fundus OP, endoscopy ES) skip 1-2: their RGB is shown as stored; ``windows``
returns ``[]`` for them.

How the overlay aligns: a model reads each frame resized with its aspect kept and centred in a
square of ``ImageSpec.size`` (``preprocess.resize_padded``: ``model = source * scale + offset``;
``geometry`` computes the same ``Geometry`` without resampling). Its heatmap is a grid over that
square, and scoring's box (``scoring._hot_box``) is the bounding box of the grid cells at least
half the peak, taken back through ``Geometry.to_source``. ``heat_on_source`` goes the other way
for every source pixel: its centre ``(c + 0.5, r + 0.5)`` goes forward into the square and
samples the grid there, so the padding never shows and a heat of 0.5 or more lands inside the
box listed in the finding's ``location``. Both sides use the source's continuous pixel
coordinates (pixel ``c`` covers ``[c, c + 1)``), and so do the figures: pixel ``c`` is drawn
centred on ``c + 0.5``, so a box from ``location`` is drawn as stored, without conversion. (The
``location`` names the instance, not the frame: for a multi-frame instance the caller must know
which frame was scored.)

ECG (``ecg_figure``): each lead in mV over seconds from the start of the first multiplex group
(the time base of the model's input and so of the finding's ``segments``), 2 columns of stacked
leads on one amplitude scale (limb leads left, chest leads right for the usual order); the
contributing segments, neighbours joined, are shaded and marked with a labelled bracket above
each column.

Figures are built as one dictionary and validated once, in the platform theme (the template
``theme.apply`` sets): plotly's incremental updates deep-copy the layout on every call and cost
more than the pixels. Measured on 2 cores: a 512 x 512 radiograph from dataset to figure in about
25 ms (window 3, heat 1.5, blend 6, PNG 10, figure 4), a 12-lead 10 s ECG in about 30 ms.

API:
    Window(centre, width, name)
    windows(ds, frame=0) -> list[Window]
    frame_count(ds) -> int
    pixels(ds, frame=0) -> ndarray      # H x W float32 (modality LUT), or H x W x 3 uint8
    windowed(ds, frame=0, window=None) -> ndarray   # H x W uint8, or H x W x 3 uint8 (colour)
    geometry(rows, columns, size) -> Geometry
    heat_on_source(heatmap, ds, spec, smooth=True) -> ndarray   # H x W float32 in 0..1
    blend(image, heat, opacity) -> ndarray                      # H x W x 3 uint8
    png_uri(image) -> str
    image_figure(rgb, box, label, height=640, max_side=2048) -> go.Figure
    merged(segments) -> list[tuple[float, float]]
    ecg_figure(ds, segments, label, height=760, leads=12) -> go.Figure
    mammography_views(datasets) -> dict[tuple[str, str], Dataset]   # (view, laterality)
    mammography_figure(views, boxes, label, missing="없음 / missing", height=760,
                       max_side=1024) -> go.Figure
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go
import pydicom
from numpy.typing import NDArray
from plotly.colors import hex_to_rgb, sequential
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from apps.common import theme
from models.runtime.preprocess import (
    COLOUR,
    Geometry,
    ImageSpec,
    InputError,
    frames,
    millivolts,
    window_linear,
)

# Standard CT windows (centre, width) in HU, as radiology departments preset them.
CT_PRESETS: Final[tuple[tuple[str, float, float], ...]] = (
    ("brain", 40.0, 80.0),
    ("subdural", 75.0, 200.0),
    ("soft_tissue", 40.0, 400.0),
    ("bone", 500.0, 2000.0),
    ("lung", -600.0, 1500.0),
)
PROJECTION: Final = frozenset({"CR", "DX", "PX", "IO", "RG"})
MG_VIEW_CODES: Final = {"399162004": "CC", "399368009": "MLO"}  # SNOMED CT, ViewCodeSequence
MG_GRID: Final = (("CC", "R"), ("CC", "L"), ("MLO", "R"), ("MLO", "L"))  # row-major 2x2
PERCENTILES: Final = (0.5, 99.5)  # the automatic window, as preprocess's own range
SAMPLE: Final = 1 << 20  # the automatic window is estimated from at most about this many pixels
OUTLINE: Final = "#ffffff"  # the box: white dashes on a black halo, visible on any image
HALO: Final = "#000000"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
SHADE: Final = theme.PALETTE[1]  # ECG segments: vermilion, plus outline and bracket


def _viridis() -> NDArray[np.float32]:
    """Plotly's viridis stops interpolated into a 256-entry RGB lookup table."""
    stops = np.array([hex_to_rgb(c) for c in sequential.Viridis], dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(grid, at, stops[:, k]) for k in range(3)], axis=1).astype(np.float32)


LUT: Final = _viridis()


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
    return np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)


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
    header = _header_windows(ds)
    out = [*header, auto] if header else [auto]
    modality = str(ds.get("Modality", "")).upper()
    spread = max(high - low, 1.0)
    # Modality values run bright-is-dense on MONOCHROME2 and the other way on MONOCHROME1.
    light_end, toward = (high, -1.0) if _monochrome1(ds) else (low, 1.0)

    def part(start: float, frac_centre: float, frac_width: float, name: str) -> Window:
        return Window(start + toward * frac_centre * spread, frac_width * spread, name)

    if modality == "CT" or str(ds.get("RescaleType", "")).upper() == "HU":
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
        header = _header_windows(ds)
        if header:
            window = header[0]
        elif "VOILUTSequence" in ds:
            values = np.asarray(apply_voi_lut(values, ds), dtype=np.float32)
        if window is None:
            low, high = (float(v) for v in np.percentile(_sample(values), PERCENTILES))
            window = _span(low, high, "auto")
    shown = window_linear(values.astype(np.float64), window.centre, max(window.width, 2.0))
    if _monochrome1(ds):
        shown = 1.0 - shown
    return (shown * 255.0 + 0.5).astype(np.uint8)


def geometry(rows: int, columns: int, size: int) -> Geometry:
    """Where ``preprocess.resize_padded`` puts a rows x columns frame in a ``size`` square,
    computed without resampling the pixels (the tests hold the two equal)."""
    scale = size / max(rows, columns)
    height, width = max(1, round(rows * scale)), max(1, round(columns * scale))
    return Geometry(rows, columns, scale, float((size - width) // 2), float((size - height) // 2))


def _grid_positions(source: int, scale: float, offset: float, cell: float) -> NDArray[np.float64]:
    """Each source pixel centre's position along one axis of the heatmap grid, in cells."""
    model = (np.arange(source, dtype=np.float64) + 0.5) * scale + offset
    return np.asarray(model / cell, dtype=np.float64)


def heat_on_source(
    heatmap: NDArray[Any], ds: pydicom.Dataset, spec: ImageSpec, smooth: bool = True
) -> NDArray[np.float32]:
    """The model's heatmap for one frame as rows x columns float32 in 0..1 on the source frame.

    Normalised as scoring locates (``(h - min) / (max - min)``), so the 0.5 contour is the
    ``HOT`` threshold behind the finding's box; a flat map locates nothing and is all 0.

    Args:
        heatmap: The saved ``np.float16`` grid (rows x columns of cells over the model square).
        spec: The service's ``ImageSpec``: its ``size`` fixes the square and so the geometry.
        smooth: Bilinear between cell centres (default) rather than blocky cells. A lone hot cell
            still reaches 0.5 only inside its own cell; ``False`` reproduces the cells exactly
            (the 0.5 region is then the box itself, up to a pixel).
    """
    grid = np.asarray(heatmap, dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError(f"an image heatmap is 2-D; this one has shape {grid.shape}")
    low, peak = float(grid.min()), float(grid.max() - grid.min())
    rows, columns = int(ds.Rows), int(ds.Columns)
    if peak <= 0 or not math.isfinite(peak):
        return np.zeros((rows, columns), dtype=np.float32)
    grid = (grid - low) / peak
    placed = geometry(rows, columns, spec.size)
    n_y, n_x = grid.shape
    u_y = _grid_positions(rows, placed.scale, placed.offset_y, spec.size / n_y)
    u_x = _grid_positions(columns, placed.scale, placed.offset_x, spec.size / n_x)
    if not smooth:
        iy = np.clip(np.floor(u_y).astype(np.intp), 0, n_y - 1)
        ix = np.clip(np.floor(u_x).astype(np.intp), 0, n_x - 1)
        return np.ascontiguousarray(grid[np.ix_(iy, ix)], dtype=np.float32)
    # Bilinear, separable: interpolate along x for every grid row, then along y.
    c_y, c_x = np.clip(u_y - 0.5, 0, n_y - 1), np.clip(u_x - 0.5, 0, n_x - 1)
    y0, x0 = (
        np.minimum(c_y.astype(np.intp), n_y - 2 if n_y > 1 else 0),
        np.minimum(c_x.astype(np.intp), n_x - 2 if n_x > 1 else 0),
    )
    y1, x1 = np.minimum(y0 + 1, n_y - 1), np.minimum(x0 + 1, n_x - 1)
    f_y, f_x = (c_y - y0).astype(np.float32), (c_x - x0).astype(np.float32)
    across = grid[:, x0] * (1 - f_x) + grid[:, x1] * f_x  # (n_y, columns)
    out = across[y0] * (1 - f_y)[:, None] + across[y1] * f_y[:, None]
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def blend(image: NDArray[Any], heat: NDArray[Any] | None, opacity: float) -> NDArray[np.uint8]:
    """``image`` (rows x columns grey or x 3 RGB, uint8) as RGB with ``heat`` (0..1, same rows
    and columns) in viridis on top, each pixel at alpha ``opacity * heat``; with no heat or
    opacity 0 the image comes back unchanged (as RGB).

    Heat is quantised to 256 levels, and per level the weights of image and colour are fixed
    (in 1/256ths), so the blend is two table look-ups and integer arithmetic: a few ms for a
    512 x 512 image where float arithmetic takes several times longer.
    """
    rgb = np.asarray(image, dtype=np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, np.newaxis], 3, axis=2)
    if heat is None or opacity <= 0:
        return np.ascontiguousarray(rgb)
    level = np.asarray(heat, dtype=np.float32)
    if level.shape != rgb.shape[:2]:
        raise ValueError(f"heat {level.shape} does not match the image {rgb.shape[:2]}")
    alpha = min(float(opacity), 1.0) * np.linspace(0.0, 1.0, 256)
    keep = np.round(256 * (1 - alpha)).astype(np.uint16)  # at most 255 * 256 + 128 in total
    add = np.round(256 * alpha[:, np.newaxis] * LUT).astype(np.uint16)
    index = (np.clip(level, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    # np.take, not fancy indexing: several times faster on a 2-D table.
    out = rgb.astype(np.uint16) * np.take(keep, index)[:, :, np.newaxis]
    out += np.take(add, index, axis=0)
    return ((out + 128) >> 8).astype(np.uint8)


def _reduce(image: NDArray[np.uint8], max_side: int) -> tuple[NDArray[np.uint8], int]:
    """Block-mean an image larger than ``max_side`` by a whole factor, for the browser; the
    figure places it by that factor, so coordinates stay source pixels. A partial last block
    (fewer than ``factor`` pixels at the right and bottom edges) is left out."""
    factor = math.ceil(max(image.shape[:2]) / max_side) if max_side > 0 else 1
    if factor <= 1:
        return image, 1
    rows, columns = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    cropped = image[:rows, :columns].astype(np.float32)
    shape = (rows // factor, factor, columns // factor, factor, *image.shape[2:])
    return (cropped.reshape(shape).mean(axis=(1, 3)) + 0.5).astype(np.uint8), factor


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_uri(image: NDArray[np.uint8]) -> str:
    """A PNG data URI of a grey or RGB uint8 array, lossless.

    Written here (PNG is a header, zlib data and CRCs) rather than through Pillow, which only
    arrives with Streamlit and tries every row filter: one "Up" filter computed by numpy and
    zlib at level 1 encode a 512 x 512 RGB image about twice as fast, a few per cent larger.
    """
    picture = np.ascontiguousarray(image, dtype=np.uint8)
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"a grey or RGB image is needed; this one has shape {picture.shape}")
    rows, columns = picture.shape[:2]
    lines = picture.reshape(rows, -1)
    filtered = np.empty((rows, lines.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # filter type Up: each byte minus the one above (mod 256)
    filtered[0, 1:] = lines[0]
    np.subtract(lines[1:], lines[:-1], out=filtered[1:, 1:])
    colour_type = 0 if picture.ndim == 2 else 2
    header = struct.pack(">IIBBBBB", columns, rows, 8, colour_type, 0, 0, 0)
    data = (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1))
        + _chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _image_trace(image: NDArray[np.uint8], max_side: int, axis: str = "") -> dict[str, Any]:
    """A ``go.Image`` trace of ``image`` placed in source pixels: pixel ``c`` centred on
    ``c + 0.5`` (or a reduced pixel on the middle of the block it stands for)."""
    shown, factor = _reduce(image, max_side)
    return {
        "type": "image",
        "source": png_uri(shown),
        "x0": factor / 2,
        "y0": factor / 2,
        "dx": factor,
        "dy": factor,
        "hoverinfo": "skip",
        "xaxis": f"x{axis}",
        "yaxis": f"y{axis}",
    }


def _image_axes(rows: int, columns: int, axis: str = "") -> dict[str, Any]:
    """Hidden axes over the image's extent, y running down, one unit the same on both axes."""
    return {
        f"xaxis{axis}": {"visible": False, "range": [0, columns], "constrain": "domain"},
        f"yaxis{axis}": {
            "visible": False,
            "range": [rows, 0],
            "scaleanchor": f"x{axis}",
            "scaleratio": 1,
            "constrain": "domain",
        },
    }


def _box_marks(
    box: Sequence[float], label: str, rows: int, axis: str = ""
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A dashed white outline over a solid black halo, and a boxed text label above the box
    (below it when the box touches the top edge)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    xref, yref = f"x{axis}", f"y{axis}"
    common = {"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "xref": xref, "yref": yref}
    shapes = [
        {**common, "line": {"color": HALO, "width": 4}},
        {**common, "line": {"color": OUTLINE, "width": 2, "dash": "dash"}},
    ]
    above = y0 > 0.08 * rows
    note = {
        "x": x0,
        "y": y0 if above else y1,
        "xref": xref,
        "yref": yref,
        "text": label,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "bottom" if above else "top",  # the y axis runs down the screen
        "bgcolor": "rgba(255,255,255,0.85)",
        "bordercolor": HALO,
        "borderwidth": 1,
        "font": {"color": theme.TEXT, "size": 14},
    }
    return shapes, note


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """One validated construction in the platform theme: plotly's incremental updates deep-copy
    the layout each time and cost more than the pixels."""
    return go.Figure(data=data, layout={**layout, "template": theme.TEMPLATE})


def image_figure(
    rgb: NDArray[np.uint8],
    box: Sequence[float] | None,
    label: str,
    height: int = 640,
    max_side: int = 2048,
) -> go.Figure:
    """One image (from ``blend`` or ``windowed``) with the AI's box, zoomable and pannable.

    Args:
        rgb: rows x columns (x 3) uint8.
        box: ``[x0, y0, x1, y1]`` in source pixels, as the finding's ``location`` stores it.
        label: The box's caption (for instance "AI 의심 부위 / AI finding"); unused without box.
        max_side: Larger images are block-averaged to fit about this side for the browser; the
            coordinates stay in source pixels.
    """
    image = np.asarray(rgb, dtype=np.uint8)
    rows, columns = int(image.shape[0]), int(image.shape[1])
    layout: dict[str, Any] = {
        **_image_axes(rows, columns),
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "dragmode": "zoom",
        "hovermode": False,
    }
    if box is not None:
        shapes, note = _box_marks(box, label, rows)
        layout |= {"shapes": shapes, "annotations": [note]}
    return _figure([_image_trace(image, max_side)], layout)


def _lead_names(group: pydicom.Dataset) -> list[str]:
    """Short lead names from each channel's label or source code meaning ("Lead I (Einthoven)",
    "aVR, augmented voltage, right" -> "I", "aVR")."""
    names = []
    for i, channel in enumerate(group.ChannelDefinitionSequence):
        text = str(channel.get("ChannelLabel", "") or "")
        source = channel.get("ChannelSourceSequence")
        if not text and source:
            text = str(source[0].get("CodeMeaning", ""))
        text = text.split(",")[0].split(" (")[0].strip().removeprefix("Lead ").strip()
        names.append(text or str(i + 1))
    return names


def merged(segments: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Segments sorted, with touching or overlapping ones joined (scoring lists the map's cells
    one by one: ``[[2, 3], [3, 4]]`` is one stretch to read, ``(2, 4)``)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in segments):
        if out and start <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _segment_marks(
    stretches: Sequence[tuple[float, float]], xref: str, label: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shading over one column of leads, a bracket above it, the label over the first bracket
    (further brackets look the same, so one label reads for all without crowding)."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for n, (start, end) in enumerate(stretches):
        shapes.append(
            {
                "type": "rect",
                "xref": xref,
                "yref": "paper",
                "x0": start,
                "x1": end,
                "y0": 0,
                "y1": 1,
                "fillcolor": SHADE,
                "opacity": 0.2,
                "layer": "below",
                "line": {"color": SHADE, "width": 1.5, "dash": "dot"},
            }
        )
        shapes.append(
            {
                "type": "path",
                "xref": xref,
                "yref": "paper",
                "path": f"M {start},1.006 L {start},1.022 L {end},1.022 L {end},1.006",
                "line": {"color": theme.TEXT, "width": 2},
            }
        )
        if n == 0:
            notes.append(
                {
                    "x": start,
                    "y": 1.024,
                    "xref": xref,
                    "yref": "paper",
                    "text": label,
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "font": {"size": 13, "color": theme.TEXT},
                }
            )
    return shapes, notes


def ecg_figure(
    ds: pydicom.Dataset,
    segments: Sequence[Sequence[float]],
    label: str,
    height: int = 760,
    leads: int = 12,
) -> go.Figure:
    """The ECG's first multiplex group as stacked leads in 2 columns, in mV over seconds, with the
    AI's contributing ``segments`` (seconds, from the finding's ``location``) shaded across each
    column and marked by a bracket above it, labelled ``label``.

    All leads share one amplitude scale (each centred on its median), as on ECG paper, so
    amplitudes compare across leads; time zooms and pans, amplitude stays fixed.
    """
    if "WaveformSequence" not in ds:
        raise InputError("the object has no waveform")
    group = ds.WaveformSequence[0]
    rate = float(group.SamplingFrequency)
    signal = millivolts(np.asarray(ds.waveform_array(0), dtype=np.float64), group)
    count = min(leads, signal.shape[1])
    signal = signal[:, :count]
    names = _lead_names(group)[:count]
    duration = signal.shape[0] / rate
    columns = 2 if count > 1 else 1
    per_column = math.ceil(count / columns)
    gap_x, gap_y = 0.04, 0.012
    width = (1 - (columns - 1) * gap_x) / columns
    tall = (1 - (per_column - 1) * gap_y) / per_column
    centres = np.median(signal, axis=0)
    half = max(1.0, 1.1 * float(np.percentile(np.abs(signal - centres), 99.9)))
    stretches = merged(segments)
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 60, "b": 40},
        "hovermode": "closest",
        "showlegend": False,
    }
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for k in range(count):
        col, row = divmod(k, per_column)
        axis = "" if k == 0 else str(k + 1)
        bottom = min(count, (col + 1) * per_column)  # the axis every panel of the column matches
        left, top = col * (width + gap_x), 1 - row * (tall + gap_y)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x0": 0.0,
                "dx": 1.0 / rate,
                "y": signal[:, k].astype(np.float32),
                "line": {"color": theme.TEXT, "width": 1},
                "name": names[k],
                "hovertemplate": f"{names[k]} %{{x:.3f}} s %{{y:.2f}} mV<extra></extra>",
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
            }
        )
        last = k + 1 == bottom
        layout[f"xaxis{axis}"] = {
            "domain": [left, left + width],
            "anchor": f"y{axis}",
            "range": [0, duration],
            "dtick": 1.0,
            "showticklabels": last,
            "zeroline": False,
            **({"title": {"text": "s"}} if last else {"matches": f"x{bottom}"}),
        }
        layout[f"yaxis{axis}"] = {
            "domain": [max(0.0, top - tall), top],
            "anchor": f"x{axis}",
            "range": [float(centres[k]) - half, float(centres[k]) + half],
            "dtick": 0.5,
            "showticklabels": False,
            "zeroline": False,
            "fixedrange": True,
            "title": {"text": names[k], "standoff": 2},
        }
        if last:
            drawn, noted = _segment_marks(stretches, f"x{bottom}" if bottom > 1 else "x", label)
            shapes += drawn
            notes += noted
    return _figure(data, layout | {"shapes": shapes, "annotations": notes})


def _view(ds: pydicom.Dataset) -> str:
    view = str(ds.get("ViewPosition", "") or "").upper()
    if not view and ds.get("ViewCodeSequence"):
        view = MG_VIEW_CODES.get(str(ds.ViewCodeSequence[0].get("CodeValue", "")), "")
    return view


def _laterality(ds: pydicom.Dataset) -> str:
    return str(ds.get("ImageLaterality", "") or ds.get("Laterality", "") or "").upper()


def mammography_views(
    datasets: Sequence[pydicom.Dataset],
) -> dict[tuple[str, str], pydicom.Dataset]:
    """The study's images by ``(view, laterality)``, for instance ``("CC", "R")``.

    The view comes from ViewPosition, else the ViewCodeSequence's SNOMED code; the side from
    ImageLaterality, else the series' Laterality. FOR PROCESSING images (raw detector data, held
    back from the AI) and images with no view or side are left out; when a view repeats, the
    first one listed is kept (which repeat to read is the reader's choice).
    """
    out: dict[tuple[str, str], pydicom.Dataset] = {}
    for ds in datasets:
        if str(ds.get("PresentationIntentType", "")).upper() == "FOR PROCESSING":
            continue
        key = (_view(ds), _laterality(ds))
        if key[0] and key[1] in ("R", "L"):
            out.setdefault(key, ds)
    return out


def mammography_figure(
    views: Mapping[tuple[str, str], NDArray[np.uint8]],
    boxes: Mapping[tuple[str, str], Sequence[float]] | None,
    label: str,
    missing: str = "없음 / missing",
    height: int = 760,
    max_side: int = 1024,
) -> go.Figure:
    """The four screening views hung as radiologists read them: rows CC then MLO, columns the
    right breast then the left (R on the viewer's left), each titled by its view code.

    Args:
        views: ``(view, laterality)`` to a rendered image (``blend`` or ``windowed``), keyed as
            ``mammography_views`` returns. Images are drawn as stored; the synthetic city stores
            them already hung (chest walls back to back, per PatientOrientation).
        boxes: ``(view, laterality)`` to the AI's box in that image's source pixels.
        label: Caption of each box.
        missing: Text of a panel whose view the study lacks (from the caller's catalogue).
    """
    gap_x, gap_y = 0.02, 0.07
    width, tall = (1 - gap_x) / 2, (1 - gap_y) / 2
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 36, "b": 0},
        "hovermode": False,
        "dragmode": "zoom",
    }
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for index, (view, side) in enumerate(MG_GRID):
        row, col = divmod(index, 2)
        axis = "" if index == 0 else str(index + 1)
        left, top = col * (width + gap_x), 1 - row * (tall + gap_y)
        domains = {"domain": [left, left + width]}, {"domain": [top - tall, top]}
        notes.append(
            {
                "x": left + width / 2,
                "y": top,
                "xref": "paper",
                "yref": "paper",
                "text": f"{side} {view}",
                "showarrow": False,
                "yanchor": "bottom",
                "font": {"size": 16, "color": theme.TEXT},
            }
        )
        image = views.get((view, side))
        if image is None:
            layout[f"xaxis{axis}"] = {**domains[0], "visible": False, "range": [0, 1]}
            layout[f"yaxis{axis}"] = {**domains[1], "visible": False, "range": [0, 1]}
            layout[f"yaxis{axis}"]["anchor"] = f"x{axis}"
            layout[f"xaxis{axis}"]["anchor"] = f"y{axis}"
            shapes.append(
                {
                    "type": "rect",
                    "xref": f"x{axis} domain",
                    "yref": f"y{axis} domain",
                    "x0": 0,
                    "x1": 1,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": theme.TEXT, "width": 1, "dash": "dot"},
                }
            )
            notes.append(
                {
                    "x": 0.5,
                    "y": 0.5,
                    "xref": f"x{axis}",
                    "yref": f"y{axis}",
                    "text": missing,
                    "showarrow": False,
                    "font": {"size": 16, "color": theme.TEXT},
                }
            )
            continue
        picture = np.asarray(image, dtype=np.uint8)
        rows, columns = int(picture.shape[0]), int(picture.shape[1])
        data.append(_image_trace(picture, max_side, axis))
        axes = _image_axes(rows, columns, axis)
        layout[f"xaxis{axis}"] = axes[f"xaxis{axis}"] | domains[0] | {"anchor": f"y{axis}"}
        layout[f"yaxis{axis}"] = axes[f"yaxis{axis}"] | domains[1] | {"anchor": f"x{axis}"}
        box = (boxes or {}).get((view, side))
        if box is not None:
            drawn, note = _box_marks(box, label, rows, axis)
            shapes += drawn
            notes.append(note)
    return _figure(data, layout | {"shapes": shapes, "annotations": notes})
