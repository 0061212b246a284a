"""Chest radiographs: PA and AP (the chest service) and the lateral view (no service).

A 256x256 projection: body outline, lungs cut by the diaphragm domes, mediastinum and heart, the
spine, ribs, clavicles, hilar vessels and, in women, breast shadows. The finding is a nodule or a
patch of consolidation inside one lung.
"""

from __future__ import annotations

import math

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Box, Case, RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.rendered import single_image_study as _study

SIZE = 256
SPACING = (1.68, 1.68)  # mm: a 43 cm detector over 256 pixels
WINDOW = (2000.0, 3600.0)
SHAPE = (SIZE, SIZE)


def _ribs(c: draw.F32, a: np.random.Generator, cx: float, top: float, s: float, ap: bool) -> None:
    """Nine posterior rib arcs per side with their anterior ends, and both clavicles."""
    spacing = 19.0 * s * (0.92 if ap else 1.0)
    for side in (-1.0, 1.0):
        width = 100 * s
        xs = np.arange(0, int(width))
        offsets = [float(i * spacing + a.normal(0, 1.0)) for i in range(9)]
        # Posterior arcs rise from the spine, then fall laterally.
        post = top + 6 - 10 * np.sin(np.pi * xs / width * 0.8) + 0.004 * xs**2
        draw.add(c, draw.band(SHAPE, cx + side * (10 + xs), post, 3.6, offsets), 0.055)
        # Anterior arcs run from the lateral ends back towards the midline, lower down.
        xa = np.arange(int(width * 0.45), int(width))
        ant = post[-1] + 0.55 * (width - xa) + 6
        draw.add(c, draw.band(SHAPE, cx + side * (10 + xa), ant, 2.8, offsets), 0.03)
        clav_y = top + (2 if ap else 14)
        xs = np.arange(0, int(80 * s))
        ys = clav_y + 6 * np.sin(np.pi * xs / (80 * s)) - (0.08 if ap else 0.15) * xs
        draw.add(c, draw.band(SHAPE, cx + side * (8 + xs), ys, 4.5), 0.10)


def _frontal(case: Case, ap: bool) -> tuple[draw.F32, draw.F32]:
    """The anatomy of a frontal view; returns the canvas and the lung mask."""
    a = case.anatomy
    s = float(a.uniform(0.9, 1.02))
    cx = SIZE / 2 + float(a.normal(0, 3))
    top = 22 + float(a.normal(0, 3)) + (6 if ap else 0)
    depth = float(a.uniform(0.88, 1.0)) * (0.9 if ap else 1.0)  # inspiration
    heart = float(a.uniform(0.9, 1.1)) * (1.12 if ap else 1.0)
    c = np.full(SHAPE, 0.03, dtype=np.float32)
    draw.paint(c, draw.ellipse(SHAPE, 170, cx, 190 * s, 118 * s, edge=4), 0.40)
    draw.paint(
        c, draw.polygon(SHAPE, [(0, cx - 24), (0, cx + 24), (40, cx + 30), (40, cx - 30)]), 0.40
    )
    sides = (-1.0, 1.0)
    shoulders = [(top + 14, cx + side * 84 * s, 24.0, 46 * s, 0.0) for side in sides]
    for shoulder in draw.ellipses(SHAPE, shoulders, edge=4):
        draw.paint(c, shoulder, 0.40)
    heads = [(top + 24, cx + side * 112 * s, 13.0, 12.0, 0.0) for side in sides]  # humeral
    for head in draw.blobs(SHAPE, heads, power=0.5):
        draw.add(c, head, 0.12)
    if ap:  # scapulae project over the lungs on a supine AP film
        scapulae = [(top + 70, cx + side * 86 * s, 55.0, 22.0, 0.0) for side in sides]
        for scapula in draw.blobs(SHAPE, scapulae, power=0.7):
            draw.add(c, scapula, 0.05)

    lung = np.zeros(SHAPE, dtype=np.float32)
    cy = top + 104 * depth
    lungs = [(cy, cx + side * 50 * s, 106 * depth * s, 46 * s, side * -0.1) for side in sides]
    for half in draw.ellipses(SHAPE, lungs, edge=3):
        draw.paint(lung, half, 1.0)
    domes = [  # right dome higher than left
        (top + 212 * depth + drop, cx + side * 50 * s, 30.0, 62 * s, 0.0)
        for side, drop in ((-1.0, 0.0), (1.0, 8.0))
    ]
    for dome in draw.ellipses(SHAPE, domes, edge=3):
        draw.paint(lung, dome, 0.0)
    mediastinum = [
        (top - 10, cx - 12),
        (top - 10, cx + 12),
        (top + 120, cx + 26),
        (top + 120, cx - 24),
    ]
    draw.paint(lung, draw.polygon(SHAPE, mediastinum, edge=3), 0.0)
    hy, hx = top + 165 * depth, cx + 16 * s
    draw.paint(
        lung, draw.ellipse(SHAPE, hy, hx, 38 * heart * s, 52 * heart * s, angle=-0.45, edge=3), 0.0
    )
    lung.clip(0.0, 1.0, out=lung)
    c -= np.float32(0.25) * lung

    draw.add(c, draw.blob(SHAPE, top + 62, cx + 18, 11, 12, power=0.5), 0.05)  # aortic knob
    draw.add(c, draw.segment(SHAPE, (0, cx), (SIZE, cx), 11, hollow=0.6), 0.13)  # spine
    discs = [(top - 8 + k * 17 * s, cx, 1.6, 11.0, 0.0) for k in range(14)]
    for disc in draw.ellipses(SHAPE, discs):
        draw.add(c, disc, -0.03)
    _ribs(c, a, cx, top, s, ap)
    vessels: list[tuple[draw.Point, draw.Point, float]] = []
    for side in (-1.0, 1.0):  # hilar and lower-zone vessels, tapering from 3 to 0.8 px
        hilum = (top + 95 * depth, cx + side * 30 * s)
        for _ in range(4):
            ang = float(a.uniform(0.3, 2.4))
            length = float(a.uniform(30, 55))
            end = (
                hilum[0] + length * math.cos(ang) * 0.8,
                hilum[1] + side * length * math.sin(ang),
            )
            vessels.append((hilum, end, 1.9))
    for vessel in draw.segments(SHAPE, vessels):
        draw.add(c, vessel, 0.035)
    if case.sex == "F":
        breasts = [(top + 170, cx + side * 70 * s, 38.0, 48.0, 0.0) for side in sides]
        for breast in draw.blobs(SHAPE, breasts, power=1.5):
            draw.add(c, breast, 0.07)
    return c, lung


def _inside(lung: draw.F32, y: float, x: float, r: float) -> bool:
    pts = [(y, x), (y - r, x), (y + r, x), (y, x - r), (y, x + r)]
    return all(
        0 <= py < SIZE and 0 <= px < SIZE and lung[int(py), int(px)] > 0.98 for py, px in pts
    )


def _lesion(case: Case, c: draw.F32, lung: draw.F32) -> tuple[str, list[Box]]:
    """A nodule (round, dense, 6-14 mm) or consolidation (fluffy, larger) inside one lung."""
    f = case.finding
    code = "nodule" if f.random() < 0.6 else "consolidation"
    radius = float(f.uniform(3.5, 8.0)) if code == "nodule" else float(f.uniform(9, 16))
    # A uniformly random lung pixel, preferably with the lesion's core inside the lung: drawn
    # by rejection, since the lungs fill a third of the image.
    site = None
    for _ in range(1000):
        row, col = (int(v) for v in f.integers(SIZE, size=2))
        if lung[row, col] > 0.98:
            site = (float(row), float(col))
            if _inside(lung, *site, radius * 0.8):
                break
    if site is None:
        raise ValueError("the lung mask is empty")
    y, x = site
    if code == "nodule":
        patch = draw.blob(SHAPE, y, x, radius, radius * float(f.uniform(0.85, 1.15)), power=0.5)
        added = draw.add(c, patch.masked(lung) if patch else None, float(f.uniform(0.13, 0.2)))
        box = draw.union([added])
        return code, [box] if box else []
    boxes: list[draw.Patch | None] = []
    for _ in range(int(f.integers(4, 7))):
        py, px = y + float(f.normal(0, radius * 0.5)), x + float(f.normal(0, radius * 0.5))
        r = radius * float(f.uniform(0.6, 1.1))
        patch = draw.blob(SHAPE, py, px, r, r * float(f.uniform(0.7, 1.3)), power=1.5)
        boxes.append(draw.add(c, patch.masked(lung) if patch else None, 0.09))
    box = draw.union(boxes)
    return code, [box] if box else []


def chest_frontal(case: Case, view: str) -> RenderedStudy:
    """PA (standing, DX) or AP (supine or portable, often CR) chest radiograph."""
    ap = view == "AP"
    c, lung = _frontal(case, ap)
    code, boxes = _lesion(case, c, lung) if case.abnormal else (None, [])
    pixels = draw.xray_finish(c, case.noise, 0.012)
    image = RenderedImage(pixels, tuple(boxes), view=view, laterality="U")
    desc = "CHEST AP" if ap else "CHEST PA"
    series = RenderedSeries(view, desc, (image,), SPACING, 12, WINDOW)
    return _study(case, "chest", code, series)


def chest_lateral(case: Case) -> RenderedStudy:
    """Left lateral chest: lungs, heart anterior, spine posterior (no service reads it)."""
    a = case.anatomy
    s = float(a.uniform(0.9, 1.02))
    c = np.full(SHAPE, 0.03, dtype=np.float32)
    draw.paint(c, draw.ellipse(SHAPE, 140, 128, 150 * s, 100 * s, edge=4), 0.42)
    lung = np.zeros(SHAPE, dtype=np.float32)
    draw.paint(lung, draw.ellipse(SHAPE, 112, 132, 96 * s, 80 * s, edge=3), 1.0)
    draw.paint(lung, draw.ellipse(SHAPE, 215, 132, 30, 90 * s, edge=3), 0.0)
    draw.paint(lung, draw.ellipse(SHAPE, 168, 98, 46 * s, 44 * s, edge=3), 0.35)  # heart overlap
    c -= np.float32(0.24) * lung
    for k in range(12):  # thoracic vertebral bodies, posterior
        y = 20 + k * 19 * s
        x = 196 + 0.0015 * (y - 120) ** 2
        draw.add(
            c,
            draw.polygon(
                SHAPE, [(y, x - 13), (y, x + 13), (y + 15, x + 13), (y + 15, x - 13)], edge=1.5
            ),
            0.18,
        )
    draw.add(c, draw.segment(SHAPE, (30, 42), (180, 38), 4), 0.10)  # sternum
    draw.add(c, draw.segment(SHAPE, (0, 90), (60, 120), 12, hollow=0.5), 0.12)  # raised arms
    draw.add(c, draw.segment(SHAPE, (0, 160), (60, 140), 12, hollow=0.5), 0.12)
    pixels = draw.xray_finish(c, case.noise, 0.012)
    image = RenderedImage(pixels, (), view="LL", laterality="U")
    series = RenderedSeries("LL", "CHEST LAT", (image,), SPACING, 12, WINDOW)
    return _study(case, None, None, series)
