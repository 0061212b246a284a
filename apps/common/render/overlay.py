"""The AI's heatmap on the source pixels, and blended over the image.

How the overlay aligns: a model reads each frame resized with its aspect kept and centred in a
square of ``ImageSpec.size`` (``preprocess.resize_padded``: ``model = source * scale + offset``;
``geometry`` computes the same ``Geometry`` without resampling). Its heatmap is a grid over that
square, and scoring's box (``scoring._hot_box``) is the bounding box of the grid cells at least
half the peak, taken back through ``Geometry.to_source``. ``heat_on_source`` goes the other way
for every source pixel: its centre ``(c + 0.5, r + 0.5)`` goes forward into the square and
samples the grid there, so the padding never shows and a heat of 0.5 or more lands inside the
box listed in the finding's ``location``. Both sides use the source's continuous pixel
coordinates (pixel ``c`` covers ``[c, c + 1)``), and so do the figures (``render.figure``). The
heatmap is the one of the frame scoring located the finding on (``location``'s ``frame`` in a
multi-frame instance): the viewer lays it only over that frame.

``blend`` colours the heat with viridis (perceptually uniform, colour-blind safe) over the image,
each pixel's alpha ``opacity * heat``, so cold areas stay untouched.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pydicom
from numpy.typing import NDArray
from plotly.colors import hex_to_rgb, sequential

from models.runtime.preprocess import Geometry, ImageSpec


def _viridis() -> NDArray[np.float32]:
    """Plotly's viridis stops interpolated into a 256-entry RGB lookup table."""
    stops = np.array([hex_to_rgb(c) for c in sequential.Viridis], dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(grid, at, stops[:, k]) for k in range(3)], axis=1).astype(np.float32)


LUT: Final = _viridis()


def geometry(rows: int, columns: int, height: int, width: int | None = None) -> Geometry:
    """Where ``preprocess.resize_padded`` puts a rows x columns frame in a ``height`` x
    ``width`` input (a square if ``width`` is omitted), computed without resampling the pixels
    (the tests hold the two equal)."""
    width = height if width is None else width
    scale = min(height / rows, width / columns)
    inner_h, inner_w = max(1, round(rows * scale)), max(1, round(columns * scale))
    return Geometry(
        rows, columns, scale, float((width - inner_w) // 2), float((height - inner_h) // 2)
    )


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
        spec: The service's ``ImageSpec``: its height and width fix the geometry.
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
    placed = geometry(rows, columns, spec.height, spec.width)
    n_y, n_x = grid.shape
    u_y = _grid_positions(rows, placed.scale, placed.offset_y, spec.height / n_y)
    u_x = _grid_positions(columns, placed.scale, placed.offset_x, spec.width / n_x)
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
