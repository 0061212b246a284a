"""Contrast of at least 4.5:1 (WCAG 1.4.3) for every text colour the apps draw on its
background, computed from the colours themselves: Streamlit's theme (``.streamlit/config.toml``:
text, links and buttons, the messages' colours) and the platform's (``apps/common/theme.py``:
chart text, captions and every colour of the charts' palette, since a series is labelled in its
colour). The two must also agree, so that Streamlit's own widgets and the project's charts and
tiles are one look, and normal text must be at least 16 px."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from apps.common import theme

ROOT = Path(__file__).resolve().parents[2]
WHITE = "#ffffff"
MESSAGES = ("red", "orange", "yellow", "blue", "green")  # st.error/warning/info/success's hues


def luminance(colour: str) -> float:
    """WCAG 2's relative luminance of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2's contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def streamlit_theme() -> dict[str, Any]:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    return dict(config["theme"])


def pairs() -> list[tuple[str, str, str]]:
    """(what, text colour, background) for every text the apps draw."""
    st = streamlit_theme()
    pages = (st["backgroundColor"], st["secondaryBackgroundColor"])
    found = [
        (f"{name} on {page}", st[name], page)
        for name in ("textColor", "primaryColor")
        for page in pages
    ]
    found.append(("a primary button's label", WHITE, st["primaryColor"]))
    for hue in MESSAGES:
        text = st[f"{hue}TextColor"]
        found += [
            (f"{hue} message", text, st[f"{hue}BackgroundColor"]),
            (f"{hue} text on the page", text, st["backgroundColor"]),
        ]
    found += [
        (f"{name} on {page}", getattr(theme, name), page)
        for name in ("TEXT", "MUTED", "PRIMARY")
        for page in pages
    ]
    found += [(f"palette {colour}", colour, theme.BACKGROUND) for colour in theme.PALETTE]
    return found


@pytest.mark.parametrize(("what", "text", "background"), pairs(), ids=[p[0] for p in pairs()])
def test_text_contrast_is_at_least_4_5_to_1(what: str, text: str, background: str) -> None:
    assert contrast(text, background) >= 4.5, f"{what}: {contrast(text, background):.2f}:1"


def test_contrast_is_computed_as_wcag_does() -> None:
    assert contrast("#000000", WHITE) == pytest.approx(21.0)
    assert contrast("#777777", WHITE) == pytest.approx(4.48, abs=0.01)  # the known near miss


def test_streamlit_and_the_charts_share_one_theme() -> None:
    st = streamlit_theme()
    assert st["textColor"].lower() == theme.TEXT.lower()
    assert st["primaryColor"].lower() == theme.PRIMARY.lower()
    assert st["backgroundColor"].lower() == theme.BACKGROUND.lower()
    assert [c.lower() for c in st["chartCategoricalColors"]] == [c.lower() for c in theme.PALETTE]
    assert st["baseFontSize"] == theme.PAGE_PX[False]
    assert theme.PAGE_PX[True] > theme.PAGE_PX[False]
    assert 16 <= theme.CHART_PX[False] < theme.CHART_PX[True]
    assert len(set(theme.PALETTE)) == len(theme.PALETTE)
