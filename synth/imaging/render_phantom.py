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
    draw.paint(
        c,
        draw.polygon(
            SHAPE,
            [(12 + dy, 12 + dx), (12 + dy, 244 + dx), (244 + dy, 244 + dx), (244 + dy, 12 + dx)],
            edge=1,
        ),
        0.45,
    )
    for step in range(10):  # step wedge
        x0 = 24 + step * 21 + dx
        draw.paint(
            c,
            draw.polygon(
                SHAPE,
                [(22 + dy, x0), (22 + dy, x0 + 20), (58 + dy, x0 + 20), (58 + dy, x0)],
                edge=0.6,
            ),
            0.1 + 0.08 * step,
        )
    x = 30.0 + dx
    for width in (4, 3, 2, 1):  # line pairs, vertical bars then horizontal bars
        for k in range(3):
            bx = x + k * 2 * width
            draw.paint(
                c,
                draw.polygon(
                    SHAPE,
                    [(80 + dy, bx), (80 + dy, bx + width), (120 + dy, bx + width), (120 + dy, bx)],
                    edge=0.5,
                ),
                0.85,
            )
            by = 80 + dy + k * 2 * width
            draw.paint(
                c,
                draw.polygon(
                    SHAPE,
                    [(by, x + 120), (by, x + 150), (by + width, x + 150), (by + width, x + 120)],
                    edge=0.5,
                ),
                0.85,
            )
        x += 6 * width + 8
    for k in range(6):  # low-contrast discs
        draw.paint(
            c, draw.ellipse(SHAPE, 170 + dy, 40 + k * 34 + dx, 10, 10), 0.45 + 0.06 / (k + 1)
        )
    draw.paint(
        c,
        draw.polygon(
            SHAPE,
            [
                (127 + dy, 100 + dx),
                (127 + dy, 156 + dx),
                (129 + dy, 156 + dx),
                (129 + dy, 100 + dx),
            ],
            edge=0.5,
        ),
        0.9,
    )
    draw.paint(
        c,
        draw.polygon(
            SHAPE,
            [
                (100 + dy, 127 + dx),
                (100 + dy, 129 + dx),
                (156 + dy, 129 + dx),
                (156 + dy, 127 + dx),
            ],
            edge=0.5,
        ),
        0.9,
    )
    draw.paint(
        c,
        draw.polygon(
            SHAPE,
            [
                (205 + dy, 210 + dx),
                (205 + dy, 216 + dx),
                (230 + dy, 216 + dx),
                (230 + dy, 210 + dx),
            ],
            edge=0.5,
        ),
        0.95,
    )
    draw.paint(
        c,
        draw.polygon(
            SHAPE,
            [
                (224 + dy, 210 + dx),
                (224 + dy, 228 + dx),
                (230 + dy, 228 + dx),
                (230 + dy, 210 + dx),
            ],
            edge=0.5,
        ),
        0.95,
    )
    c *= np.float32(gain)
    pixels = draw.xray_finish(c, case.noise, 0.006)
    image = RenderedImage(pixels, (), view="AP", laterality="U")
    series = RenderedSeries("QA", "QC PHANTOM", (image,), SPACING, 12, WINDOW)
    return _study(case, None, None, series)
