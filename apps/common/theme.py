"""The look every app shares, in one place: the text sizes of normal and large text, the colours
and the plotly theme.

- **Sizes.** The page's root size is ``PAGE_PX`` (Streamlit's ``theme.baseFontSize`` in
  ``.streamlit/config.toml`` for normal text; the sidebar's large-text switch raises the root, and
  everything Streamlit sizes in rem grows with it: titles, labels, buttons, tables). Chart text is
  ``CHART_PX``: at least 16 px, as seniors' guidance asks, and larger in large text.
- **Colours.** Text and every chart colour have a contrast of at least 4.5:1 on the white page
  (WCAG 1.4.3; ``tests/apps/test_contrast.py`` computes each pair). The palette is Okabe-Ito's
  colour-blind-safe hues, darkened to that contrast (sky blue, too close to blue once darkened,
  gave way to a violet); charts also use patterns or labels, so nothing is told by colour alone.
- **Charts.** Streamlit's own chart theme (``st.plotly_chart``'s default) writes its sizes over a
  figure's template (12.8 px), so ``apply`` sets the sizes and colours on the figure itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import Final

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

# pandas imported whole before any figure is built: plotly's validators peek at ``sys.modules``
# for it, and a session's figure built while another session's thread is still importing pandas
# finds it half-initialised (AttributeError, seen with five clinicians opening studies at once).
# Importing this module waits until the import has finished.
import_module("pandas")

FONT: Final = "Noto Sans CJK KR, Noto Sans KR, Malgun Gothic, Apple SD Gothic Neo, sans-serif"
BACKGROUND: Final = "#ffffff"
TEXT: Final = "#1f2328"  # 15.8:1 on white
MUTED: Final = "#57606a"  # captions: 6.4:1 on white (Streamlit's faded grey is under 4.5:1)
PRIMARY: Final = "#1a5fb4"  # buttons, links, tiles: 6.3:1 on white
GRID: Final = "#d0d7de"  # lines only, never text
# Okabe-Ito (blue, vermilion, bluish green, reddish purple, orange), darkened to 4.5:1 or more on
# white, then a violet and black.
PALETTE: Final = ("#0072B2", "#B95200", "#007F5D", "#B84685", "#946700", "#5D3A9B", "#000000")
TEMPLATE: Final = "gjh"
LARGE_KEY: Final = "large_text"  # the session's large-text switch (the sidebar's toggle)
PAGE_PX: Final = {False: 17, True: 22}  # the root font size: normal text, large text
CHART_PX: Final = {False: 16, True: 21}  # chart text (ticks, legends, labels on bars)
TITLE_PX: Final = {False: 20, True: 26}  # a chart's title


def large() -> bool:
    """Whether this session reads in large text."""
    return bool(st.session_state.get(LARGE_KEY, False))


pio.templates[TEMPLATE] = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": CHART_PX[False], "color": TEXT},
        title={"font": {"size": TITLE_PX[False]}},
        colorway=list(PALETTE),
        paper_bgcolor=BACKGROUND,
        plot_bgcolor=BACKGROUND,
        xaxis={"gridcolor": GRID, "linecolor": TEXT},
        yaxis={"gridcolor": GRID, "linecolor": TEXT},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
    )
)
# Plotly Express picks a figure's colours when it builds it, from the default template.
pio.templates.default = TEMPLATE


def apply(figure: go.Figure) -> go.Figure:
    """``figure`` in the platform's theme, its text sized for this session (large text or not),
    on the figure itself so that Streamlit's chart theme does not shrink it."""
    size, title = CHART_PX[large()], TITLE_PX[large()]
    text = {"family": FONT, "size": size, "color": TEXT}
    figure.update_layout(
        template=TEMPLATE,
        font=text,
        title_font={"size": title, "color": TEXT},
        legend_font=text,
        legend_title_font=text,
        hoverlabel_font={"family": FONT, "size": size},
        colorway=list(PALETTE),
        paper_bgcolor=BACKGROUND,
        plot_bgcolor=BACKGROUND,
    )
    figure.update_xaxes(tickfont=text, title_font=text)
    figure.update_yaxes(tickfont=text, title_font=text)
    figure.update_annotations(font_size=size)
    figure.for_each_xaxis(
        lambda axis: axis.update(rangeselector_font=text) if axis.rangeselector.buttons else None
    )
    return figure
