"""The plotly theme: Korean-capable fonts, a colour-blind-safe palette (Okabe-Ito) with text
contrast of at least 4.5:1 on white, and sizes readable by seniors. Charts also use patterns or
labels, so nothing is told by colour alone."""

from __future__ import annotations

from importlib import import_module
from typing import Final

import plotly.graph_objects as go
import plotly.io as pio

# pandas imported whole before any figure is built: plotly's validators peek at ``sys.modules``
# for it, and a session's figure built while another session's thread is still importing pandas
# finds it half-initialised (AttributeError, seen with five clinicians opening studies at once).
# Importing this module waits until the import has finished.
import_module("pandas")

FONT: Final = "Noto Sans CJK KR, Noto Sans KR, Malgun Gothic, Apple SD Gothic Neo, sans-serif"
TEXT: Final = "#1f2328"  # 15.8:1 on white
PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
TEMPLATE: Final = "gjh"

pio.templates[TEMPLATE] = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 16, "color": TEXT},
        title={"font": {"size": 20}},
        colorway=list(PALETTE),
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        xaxis={"gridcolor": "#d0d7de", "linecolor": TEXT},
        yaxis={"gridcolor": "#d0d7de", "linecolor": TEXT},
        legend={"font": {"size": 15}},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
    )
)


def apply(figure: go.Figure) -> go.Figure:
    """``figure`` in the platform's theme."""
    figure.update_layout(template=TEMPLATE)
    return figure
