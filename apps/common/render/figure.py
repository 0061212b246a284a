"""An image as a plotly figure: the RGB array as a PNG in a ``go.Image`` placed in source pixels
(pixel ``c`` centred on ``c + 0.5``, so a box from a finding's ``location`` is drawn as stored),
and the AI's box as a dashed outline on a dark halo with a text label, so nothing depends on
colour alone. Images larger than ``max_side`` are block-averaged for the browser and placed by
the block size, so every coordinate stays in source pixels.

Figures are built as one dictionary and validated once, in the platform theme (the template
``theme.apply`` sets): plotly's incremental updates deep-copy the layout on every call and cost
more than the pixels. Measured on 2 cores: a 512 x 512 radiograph from dataset to figure in about
25 ms (window 3, heat 1.5, blend 6, PNG 10, figure 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go
from numpy.typing import NDArray

from apps.common import theme
from apps.common.render.png import png_uri

OUTLINE: Final = "#ffffff"  # the box: white dashes on a black halo, visible on any image
HALO: Final = "#000000"


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


def image_trace(image: NDArray[np.uint8], max_side: int, axis: str = "") -> dict[str, Any]:
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


def image_axes(rows: int, columns: int, axis: str = "") -> dict[str, Any]:
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


def box_marks(
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


def themed_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
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
        **image_axes(rows, columns),
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "dragmode": "zoom",
        "hovermode": False,
    }
    if box is not None:
        shapes, note = box_marks(box, label, rows)
        layout |= {"shapes": shapes, "annotations": [note]}
    return themed_figure([image_trace(image, max_side)], layout)
