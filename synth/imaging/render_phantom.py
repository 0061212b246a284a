"""The QA phantom image clinics shoot for constancy tests (held back by the router).

A test pattern rather than anatomy: a ten-step wedge, line-pair groups in both directions,
low-contrast discs, a centring cross and an asymmetric orientation marker.
"""

from __future__ import annotations

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Case, RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.rendered import single_image_study as _study

SIZE = 256
SHAPE = (SIZE, SIZE)
SPACING = (1.0, 1.0)
WINDOW = (2048.0, 4096.0)


def phantom(case: Case) -> RenderedStudy:
    """A constancy-test pattern; the acquisition varies only in exposure and position."""
    a = case.anatomy
    gain = float(a.uniform(0.95, 1.05))
    dy, dx = (float(v) for v in a.normal(0, 2, 2))
    c = np.full(SHAPE, 0.08, dtype=np.float32)

    def rect(y0: float, x0: float, y1: float, x1: float) -> list[draw.Point]:
        return [(y0 + dy, x0 + dx), (y0 + dy, x1 + dx), (y1 + dy, x1 + dx), (y1 + dy, x0 + dx)]

    plate = draw.polygon(SHAPE, rect(12, 12, 244, 244), edge=1)
    draw.paint(c, plate, 0.45)
    wedge = [rect(22, 24 + step * 21, 58, 44 + step * 21) for step in range(10)]
    for step, patch in enumerate(draw.polygons(SHAPE, wedge, edge=0.6)):  # step wedge
        draw.paint(c, patch, 0.1 + 0.08 * step)
    bars = []  # line pairs, vertical bars then horizontal bars
    x = 30.0
    for width in (4, 3, 2, 1):
        for k in range(3):
            bx = x + k * 2 * width
            bars.append(rect(80, bx, 120, bx + width))
            by = 80 + k * 2 * width
            bars.append(rect(by, x + 120, by + width, x + 150))
        x += 6 * width + 8
    for bar in draw.polygons(SHAPE, bars, edge=0.5):
        draw.paint(c, bar, 0.85)
    discs = [(170 + dy, 40 + k * 34 + dx, 10.0, 10.0, 0.0) for k in range(6)]
    for k, disc in enumerate(draw.ellipses(SHAPE, discs)):  # low-contrast discs
        draw.paint(c, disc, 0.45 + 0.06 / (k + 1))
    cross = [rect(127, 100, 129, 156), rect(100, 127, 156, 129)]
    for arm in draw.polygons(SHAPE, cross, edge=0.5):
        draw.paint(c, arm, 0.9)
    marker = [rect(205, 210, 230, 216), rect(224, 210, 230, 228)]  # an L: orientation
    for stroke in draw.polygons(SHAPE, marker, edge=0.5):
        draw.paint(c, stroke, 0.95)
    c *= np.float32(gain)
    pixels = draw.xray_finish(c, case.noise, 0.006)
    image = RenderedImage(pixels, (), view="AP", laterality="U")
    series = RenderedSeries("QA", "QC PHANTOM", (image,), SPACING, 12, WINDOW)
    return _study(case, None, None, series)
