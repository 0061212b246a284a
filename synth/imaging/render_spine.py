"""Lumbar spine radiographs: the lateral view (compression-fracture service) and the AP view.

The lateral view stacks T12-L5 along a lordotic curve, each body with a cortical rim, trabecular
texture and posterior elements, over soft tissue with bowel gas. The finding is one wedge-shaped
vertebral body: its anterior height lost by 25-50 %, with a sclerotic band at the collapsed
endplate.
"""

from __future__ import annotations

import math

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Case, RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.rendered import single_image_study as _study

ROWS, COLS = 256, 192
SHAPE = (ROWS, COLS)
SPACING = (0.9, 0.9)
WINDOW = (1900.0, 3400.0)
LEVELS = ("T12", "L1", "L2", "L3", "L4", "L5")
# Where osteoporotic compression fractures occur: mostly at the thoracolumbar junction.
FRACTURE_WEIGHTS = (0.25, 0.35, 0.2, 0.1, 0.06, 0.04)


def _rotate(
    points: list[tuple[float, float]], cy: float, cx: float, angle: float
) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cy + dy * c + dx * s, cx + dx * c - dy * s) for dy, dx in points]


def _body(
    cy: float, cx: float, h: float, w: float, angle: float, wedge: float, inset: float
) -> list[tuple[float, float]]:
    """Corners of a vertebral body; ``wedge`` lowers the anterior (left) top corner."""
    hh, hw = h / 2 - inset, w / 2 - inset
    corners = [(-hh + wedge * h, -hw), (-hh, hw), (hh, hw), (hh, -hw)]
    return _rotate(corners, cy, cx, angle)


def _bowel_gas(
    c: draw.F32,
    a: np.random.Generator,
    count: tuple[int, int],
    columns: tuple[float, float],
    radii: tuple[float, float],
    value: float,
) -> None:
    """Gas bubbles in the bowel: a random number of soft blobs within ``columns``."""
    gas: list[draw.Ellipse] = []
    for _ in range(int(a.integers(*count))):
        y, x = float(a.uniform(20, 236)), float(a.uniform(*columns))
        ry, rx = a.uniform(*radii, 2)
        gas.append((y, x, float(ry), float(rx), 0.0))
    for bubble in draw.blobs(SHAPE, gas, power=1.5):
        draw.add(c, bubble, value)


def spine_lateral(case: Case) -> RenderedStudy:
    """Lateral lumbar spine; anterior is to the image left."""
    a, f = case.anatomy, case.finding
    c = np.full(SHAPE, 0.34, dtype=np.float32)
    draw.paint(c, draw.ellipse(SHAPE, 128, 20, 200, 180, edge=6), 0.36)
    _bowel_gas(c, a, (5, 10), (5, 80), (5, 14), -0.10)  # anterior
    texture = draw.smooth_noise(a, ROWS, COLS, 40)
    bone = np.zeros(SHAPE, dtype=np.float32)
    density = float(a.uniform(0.75, 1.0)) - 0.002 * max(case.age_years - 50, 0)
    height, depth, disc = 27.0 * float(a.uniform(0.95, 1.05)), 40.0, 9.0
    lordosis, x_mid = float(a.uniform(14, 26)), 84.0 + float(a.normal(0, 4))
    y = 14.0 + float(a.normal(0, 3))
    broken = int(f.choice(len(LEVELS), p=FRACTURE_WEIGHTS)) if case.abnormal else -1
    wedge = float(f.uniform(0.25, 0.5)) if case.abnormal else 0.0
    boxes = []
    outers, inners, pedicles, laminae, spinous = [], [], [], [], []
    for i in range(len(LEVELS)):
        cy = y + height / 2
        u = (cy - ROWS / 2) / (ROWS / 2)
        cx = x_mid + lordosis * u * u
        angle = -math.atan(2 * lordosis * u / (ROWS / 2))
        w = wedge if i == broken else 0.0
        outers.append(_body(cy, cx, height, depth, angle, w, 0.0))
        inners.append(_body(cy, cx, height, depth, angle, w * 1.1, 2.5))
        if i == broken:
            top = _body(cy, cx, height, depth, angle, w, 0.0)
            endplate = [top[0], top[1], (top[1][0] + 4, top[1][1]), (top[0][0] + 4, top[0][1])]
            draw.add(c, draw.polygon(SHAPE, endplate, edge=1.0), 0.07)
            full = draw.polygon(SHAPE, _body(cy, cx, height, depth, angle, 0.0, 0.0), edge=1.2)
            box = full.box if full else None
            if box:
                boxes.append(box)
        back = cx + depth / 2
        pedicles.append(((cy - 4, back), (cy - 2, back + 24), 6.0))
        laminae.append(((cy - 2, back + 24), (cy + 8, back + 50), 5.0))
        spinous.append((cy + height / 2 + 2, back + 20, 5.0, 7.0, 0.0))
        y += height + disc
    for outer in draw.polygons(SHAPE, outers, edge=1.2):
        draw.add(c, outer, 0.20 * density)
        draw.add(bone, outer, 1.0)
    for inner in draw.polygons(SHAPE, inners, edge=1.5):
        draw.add(c, inner, -0.06)
    for pedicle in draw.segments(SHAPE, pedicles):
        draw.add(c, pedicle, 0.10)
    for lamina in draw.segments(SHAPE, laminae):
        draw.add(c, lamina, 0.11)
    for process in draw.blobs(SHAPE, spinous, power=0.5):
        draw.add(c, process, 0.08)
    sacrum = _rotate(
        [(-14, -26), (-14, 26), (30, 18), (30, -14)], y + 12, x_mid + lordosis + 6, -0.7
    )
    draw.add(c, draw.polygon(SHAPE, sacrum, edge=2), 0.16)
    c += np.float32(0.035) * texture * bone
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, tuple(boxes), view="LL", laterality="U")
    series = RenderedSeries("LAT", "L-SPINE LAT", (image,), SPACING, 12, WINDOW)
    return _study(case, "spine_fracture", "compression_fracture", series)


def spine_ap(case: Case) -> RenderedStudy:
    """AP lumbar spine: bodies, pedicle rings, spinous and transverse processes, iliac wings."""
    a = case.anatomy
    c = np.full(SHAPE, 0.05, dtype=np.float32)
    draw.paint(c, draw.ellipse(SHAPE, 128, 96, 220, 92, edge=6), 0.36)
    _bowel_gas(c, a, (4, 9), (10, 180), (6, 14), -0.08)
    scoliosis = float(a.normal(0, 4))
    y = 12.0
    bodies: list[list[draw.Point]] = []
    rings: list[draw.Ellipse] = []  # pedicle rings, then their hollows
    hollows: list[draw.Ellipse] = []
    transverse: list[tuple[draw.Point, draw.Point, float]] = []
    spinous: list[draw.Ellipse] = []
    for _ in LEVELS:
        cy, cx = y + 13.5, 96 + scoliosis * math.sin(math.pi * y / ROWS)
        bodies.append(
            [(cy - 13, cx - 23), (cy - 13, cx + 23), (cy + 13, cx + 25), (cy + 13, cx - 25)]
        )
        for side in (-1.0, 1.0):
            rings.append((cy - 5, cx + side * 15, 6.0, 4.5, 0.0))
            hollows.append((cy - 5, cx + side * 15, 3.5, 2.2, 0.0))
            transverse.append(((cy - 2, cx + side * 24), (cy, cx + side * 44), 3.5))
        spinous.append((cy + 8, cx, 7.0, 4.0, 0.0))
        y += 36
    for body in draw.polygons(SHAPE, bodies, edge=1.2):
        draw.add(c, body, 0.2)
    for ring in draw.ellipses(SHAPE, rings):
        draw.add(c, ring, 0.08)
    for hollow in draw.ellipses(SHAPE, hollows):
        draw.add(c, hollow, -0.06)
    for process in draw.segments(SHAPE, transverse):
        draw.add(c, process, 0.1)
    for process in draw.blobs(SHAPE, spinous, power=0.5):
        draw.add(c, process, 0.1)
    iliac = [(250.0, 96 + side * 70, 40.0, 30.0, 0.0) for side in (-1.0, 1.0)]
    for wing in draw.blobs(SHAPE, iliac, power=0.6):
        draw.add(c, wing, 0.14)
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, (), view="AP", laterality="U")
    series = RenderedSeries("AP", "L-SPINE AP", (image,), SPACING, 12, WINDOW)
    return _study(case, None, None, series)
