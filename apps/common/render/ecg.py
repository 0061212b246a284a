"""The ECG as a reader sees it, with the AI's contributing segments.

Each lead in mV over seconds from the start of the first multiplex group (the time base of the
model's input and so of the finding's ``segments``), stacked on one amplitude scale: a 12-lead ECG
in 2 columns (limb leads left, chest leads right for the usual order), a Holter's 2 leads or a
patch's one in a single column. A recording longer than ``SPAN`` shows the ``SPAN`` seconds
around the finding's first listed segment (scoring lists the worst window's first), on the
recording's own time axis, so a 30-minute Holter opens at its worst 10 s. The contributing
segments, neighbours joined, are shaded and marked with a labelled bracket above each column. A
12-lead 10 s ECG takes about 30 ms on 2 cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go
import pydicom

from apps.common import theme
from apps.common.render.figure import themed_figure
from models.runtime.preprocess import InputError, millivolts

SHADE: Final = theme.PALETTE[1]  # ECG segments: vermilion, plus outline and bracket
SPAN: Final = 10.0  # seconds drawn of a longer recording: one window of the model's


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


def shown_span(duration: float, segments: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The seconds drawn: all of a recording up to ``SPAN`` long; of a longer one, the
    ``SPAN``-second window (on the scorer's 10 s grid) holding the first listed segment."""
    if duration <= SPAN + 1e-6:
        return 0.0, duration
    focus = float(segments[0][0]) if segments else 0.0
    start = min(math.floor(focus / SPAN) * SPAN, duration - SPAN)
    return start, start + SPAN


def ecg_figure(
    ds: pydicom.Dataset,
    segments: Sequence[Sequence[float]],
    label: str,
    height: int = 760,
    leads: int = 12,
) -> go.Figure:
    """The ECG's first multiplex group as stacked leads, in mV over seconds, with the AI's
    contributing ``segments`` (seconds, from the finding's ``location``) shaded across each
    column and marked by a bracket above it, labelled ``label``.

    All leads share one amplitude scale (each centred on its median), as on ECG paper, so
    amplitudes compare across leads; time zooms and pans, amplitude stays fixed. Fewer leads
    make a shorter figure; a long recording shows ``shown_span``.
    """
    if "WaveformSequence" not in ds:
        raise InputError("the object has no waveform")
    group = ds.WaveformSequence[0]
    rate = float(group.SamplingFrequency)
    signal = millivolts(np.asarray(ds.waveform_array(0), dtype=np.float64), group)
    count = min(leads, signal.shape[1])
    first, last_s = shown_span(signal.shape[0] / rate, segments)
    signal = signal[round(first * rate) : round(last_s * rate), :count]
    names = _lead_names(group)[:count]
    columns = 2 if count > 3 else 1
    per_column = math.ceil(count / columns)
    height = min(height, 160 + 120 * per_column)
    gap_x, gap_y = 0.04, 0.012
    width = (1 - (columns - 1) * gap_x) / columns
    tall = (1 - (per_column - 1) * gap_y) / per_column
    centres = np.median(signal, axis=0)
    half = max(1.0, 1.1 * float(np.percentile(np.abs(signal - centres), 99.9)))
    stretches = [
        (max(a, first), min(b, last_s)) for a, b in merged(segments) if b > first and a < last_s
    ]
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
                "x0": first,
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
            "range": [first, last_s],
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
    return themed_figure(data, layout | {"shapes": shapes, "annotations": notes})
