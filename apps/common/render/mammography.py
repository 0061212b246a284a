"""Screening mammography: the study's four views found by view and side, hung in a 2 x 2 grid
as radiologists read them, each with the AI's box."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go
import pydicom
from numpy.typing import NDArray

from apps.common import theme
from apps.common.render.figure import box_marks, image_axes, image_trace, themed_figure

MG_VIEW_CODES: Final = {"399162004": "CC", "399368009": "MLO"}  # SNOMED CT, ViewCodeSequence
MG_GRID: Final = (("CC", "R"), ("CC", "L"), ("MLO", "R"), ("MLO", "L"))  # row-major 2x2


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
        data.append(image_trace(picture, max_side, axis))
        axes = image_axes(rows, columns, axis)
        layout[f"xaxis{axis}"] = axes[f"xaxis{axis}"] | domains[0] | {"anchor": f"y{axis}"}
        layout[f"yaxis{axis}"] = axes[f"yaxis{axis}"] | domains[1] | {"anchor": f"x{axis}"}
        box = (boxes or {}).get((view, side))
        if box is not None:
            drawn, note = box_marks(box, label, rows, axis)
            shapes += drawn
            notes.append(note)
    return themed_figure(data, layout | {"shapes": shapes, "annotations": notes})
