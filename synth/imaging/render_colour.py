"""Colour images: fundus photographs (OP) and gastro/colonoscopy frames (ES), 8-bit RGB.

Fundus: a circular field of orange-red retina with choroidal texture and vignetting, the optic
disc with its cup on the nasal side, the darker macula temporally, and arteries and veins arching
from the disc around the macula. Findings: retinal haemorrhages (dark red blots) or hard exudates
(yellow dots) near the posterior pole, in one eye.

Endoscopy: mucosa lit from the scope tip, darkening into the lumen, with gastric rugae or colonic
haustral folds, a fine vascular pattern and specular highlights, inside the processor's octagonal
mask. Findings: a gastric ulcer (white fibrin base with a red rim) or a colonic polyp (a raised,
redder dome with its own highlight), in one or two of the four frames.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Box, Case, RenderedImage, RenderedSeries, RenderedStudy

FUNDUS = 192
FUNDUS_SHAPE = (FUNDUS, FUNDUS)
FUNDUS_SPACING = (0.06, 0.06)  # mm on the retina
ENDO = 160
ENDO_SHAPE = (ENDO, ENDO)
ENDO_FRAMES = 4
RGB_WINDOW = (128.0, 256.0)


def _radial(shape: tuple[int, int], cy: float, cx: float) -> draw.F32:
    """Distance from ``(cy, cx)`` in units of half the image side."""
    dy = (draw.coordinates(shape[0]) - np.float32(cy)) * np.float32(2 / shape[0])
    dx = (draw.coordinates(shape[1]) - np.float32(cx)) * np.float32(2 / shape[1])
    radius: draw.F32 = np.sqrt(np.add.outer(dy * dy, dx * dx))
    return radius


@cache
def _fundus_field() -> tuple[draw.F32, draw.F32]:
    """The camera's vignetting and its circular field stop: the same in every photograph, so
    built once per process (read-only)."""
    r = _radial(FUNDUS_SHAPE, FUNDUS / 2, FUNDUS / 2)
    vignette = 1 - 0.45 * r * r
    field = (r < 0.94).astype(np.float32)
    vignette.flags.writeable = False
    field.flags.writeable = False
    return vignette, field


Vessel = tuple[list[draw.Point], list[float], tuple[float, float, float]]


def _vessel(
    vessels: list[Vessel],
    a: np.random.Generator,
    start: tuple[float, float],
    angle: float,
    bend: float,
    length: float,
    width: float,
    factor: tuple[float, float, float],
    depth: int = 0,
) -> None:
    """A vessel curving by ``bend`` per step, that darkens the image by ``factor``, and its
    branches: appended to ``vessels`` as points, radii and factor."""
    points, radii = [start], [width]
    y, x = start
    steps = 8
    wobble = a.normal(0, 0.06, steps).tolist()
    for step in range(steps):
        angle += bend * 12 / steps + wobble[step]
        y, x = y + math.sin(angle) * length / steps, x + math.cos(angle) * length / steps
        points.append((y, x))
        radii.append(max(width * (1 - step / 11), 0.5))
        if depth < 1 and step in (3, 6) and a.random() < 0.7:
            side = 1.0 if a.random() < 0.5 else -1.0
            _vessel(
                vessels,
                a,
                (y, x),
                angle + side * 0.7,
                bend * 0.5,
                length * 0.45,
                radii[-1] * 0.7,
                factor,
                depth + 1,
            )
    vessels.append((points, radii, factor))


def _turn(start: float, end: float) -> float:
    """The signed angle from ``start`` to ``end``, the short way round."""
    return float((end - start + np.pi) % (2 * np.pi) - np.pi)


def _fundus_eye(case: Case, eye: str, lesion: str | None) -> RenderedImage:
    a, f = case.anatomy, case.finding
    shape = FUNDUS_SHAPE
    right = eye == "R"
    cy = cx = FUNDUS / 2
    vignette, field = _fundus_field()
    base = np.array([0.86, 0.42, 0.2], dtype=np.float32) * np.float32(a.uniform(0.85, 1.05))
    texture = draw.smooth_noise(a, FUNDUS, FUNDUS, 18)
    texture *= np.float32(0.05)
    texture += np.float32(1.0)
    texture *= vignette
    c = base[:, None, None] * texture
    disc = (cy + float(a.normal(0, 3)), cx + (1 if right else -1) * FUNDUS * 0.22)
    macula = (cy + 4.0, cx - (1 if right else -1) * FUNDUS * 0.1)
    draw.scale(c, draw.blob(shape, *macula, 22, 22, power=1.0), (0.7, 0.6, 0.7))
    draw.scale(c, draw.blob(shape, *macula, 4, 4, power=1.0), (0.8, 0.7, 0.8))
    draw.paint(c, draw.ellipse(shape, *disc, 12, 10.5, edge=1.5), (0.98, 0.78, 0.5))
    draw.paint(c, draw.blob(shape, *disc, 6, 5, power=1.0), (1.0, 0.92, 0.75))
    temporal = -1.0 if right else 1.0  # image x direction of the temporal side
    vessels: list[Vessel] = []
    for v in (-1.0, 1.0):  # superior, inferior
        for factor, width, lag in (((0.62, 0.4, 0.5), 2.2, 0.0), ((0.8, 0.6, 0.65), 1.6, 0.12)):
            # Temporal arcade: leaves the disc vertically, arches round the macula.
            start = float(np.arctan2(v, temporal * (0.45 + lag)))
            end = float(np.arctan2(0.2 * v, temporal))
            turn = _turn(start, end) / 12
            _vessel(vessels, a, disc, start, turn, FUNDUS * 0.75, width, factor)
            start = float(np.arctan2(v, -temporal * (0.5 + lag)))
            end = float(np.arctan2(0.5 * v, -temporal))
            turn = _turn(start, end) / 12
            _vessel(vessels, a, disc, start, turn, FUNDUS * 0.35, width * 0.8, factor)
    lines = [(points, radii) for points, radii, _factor in vessels]
    for (_points, _radii, factor), patch in zip(
        vessels, draw.polylines(shape, lines, flat=True), strict=True
    ):
        draw.scale(c, patch, factor)
    boxes: tuple[Box, ...] = ()
    if lesion is not None:
        patches: list[draw.Patch | None] = []
        ly, lx = macula[0] + float(f.normal(0, 18)), macula[1] + float(f.normal(0, 18))
        for _ in range(int(f.integers(4, 9))):
            py, px = ly + float(f.normal(0, 10)), lx + float(f.normal(0, 10))
            if lesion == "retinal_haemorrhage":
                rr = float(f.uniform(2, 5))
                patch = draw.blob(shape, py, px, rr, rr * float(f.uniform(0.7, 1.4)), power=0.7)
                patches.append(draw.scale(c, patch, (0.45, 0.25, 0.3)))
            else:
                rr = float(f.uniform(1.2, 2.8))
                patch = draw.blob(shape, py, px, rr, rr, power=0.6)
                patches.append(draw.add(c, patch, (0.35, 0.4, 0.02)))
        box = draw.union(patches)
        boxes = (box,) if box else ()
    c *= field
    c += draw.gaussian(case.noise, c.shape, 0.012)
    return RenderedImage(draw.to_rgb8(c), boxes, laterality=eye)


def fundus(case: Case) -> RenderedStudy:
    """Colour fundus photographs of both eyes, one series per eye (OD, then OS)."""
    f = case.finding
    code = None
    hit = ""
    if case.abnormal:
        code = "retinal_haemorrhage" if f.random() < 0.5 else "hard_exudates"
        hit = "R" if f.random() < 0.5 else "L"
    series = tuple(
        RenderedSeries(
            f"O{'D' if eye == 'R' else 'S'}",
            f"Color Fundus {'OD' if eye == 'R' else 'OS'}",
            (_fundus_eye(case, eye, code if eye == hit else None),),
            FUNDUS_SPACING,
            8,
            RGB_WINDOW,
        )
        for eye in ("R", "L")
    )
    return RenderedStudy(case.exam, "fundus", case.abnormal, code, None, series)


@cache
def _octagon(shape: tuple[int, int]) -> draw.F32:
    """The processor's octagonal mask: the same for every frame, so built once per process
    (read-only)."""
    h, w = shape
    cut = h * 0.16
    mask = np.zeros(shape, dtype=np.float32)
    draw.paint(
        mask,
        draw.polygon(
            shape,
            [
                (2, cut),
                (2, w - cut),
                (cut, w - 3),
                (h - cut, w - 3),
                (h - 3, w - cut),
                (h - 3, cut),
                (h - cut, 2),
                (cut, 2),
            ],
        ),
        1.0,
    )
    mask.flags.writeable = False
    return mask


def _endo_frame(case: Case, colon: bool, lesion: bool) -> RenderedImage:
    a, f = case.anatomy, case.finding
    shape = ENDO_SHAPE
    ly, lx = float(a.uniform(50, 110)), float(a.uniform(50, 110))
    r = _radial(shape, ly, lx)
    warp = draw.smooth_noise(a, ENDO, ENDO, 4)
    if colon:
        base = np.array([0.88, 0.55, 0.47], dtype=np.float32)
        warp *= np.float32(1.5)
        folds = np.sin(np.add(r * np.float32(a.uniform(14, 20)), warp, out=warp), out=warp)
    else:
        base = np.array([0.8, 0.38, 0.3], dtype=np.float32)
        theta = float(a.uniform(0, np.pi))
        ramp = np.add.outer(
            draw.coordinates(ENDO) * np.float32(np.sin(theta) / 7),
            draw.coordinates(ENDO) * np.float32(np.cos(theta) / 7),
        )
        warp *= np.float32(2.5)
        folds = np.sin(np.add(ramp, warp, out=warp), out=warp)
    light = r * np.float32(1.3)  # the exponent 0.75 is exact in square roots
    light = draw.unit_power(light.clip(0.08, 1.0, out=light), 0.75)
    folds *= np.float32(0.15)
    folds += np.float32(0.85)
    shade = np.multiply(light, folds, out=folds)
    vessels = np.abs(draw.smooth_noise(a, ENDO, ENDO, 26)) < 0.05  # a fine vascular net
    tint = base * np.array([-0.05, -0.18, -0.15], dtype=np.float32)  # to 0.95, 0.82, 0.85
    c = vessels * tint[:, None, None]
    c += base[:, None, None]
    c *= shade
    boxes: tuple[Box, ...] = ()
    if lesion:
        py, px = float(f.uniform(30, 130)), float(f.uniform(30, 130))
        rr = float(f.uniform(8, 18))
        if colon:  # polyp: raised dome, redder, lit from the scope side, with a highlight
            dome = draw.scale(
                c, draw.blob(shape, py, px, rr, rr * 1.1, power=0.5), (1.12, 0.85, 0.85)
            )
            draw.add(
                c,
                draw.blob(shape, py - rr * 0.4, px - rr * 0.3, rr * 0.25, rr * 0.3, power=2.0),
                (0.5, 0.5, 0.5),
            )
            boxes = (dome.box,) if dome and dome.box else ()
        else:  # ulcer: erythematous rim around a white fibrin base
            rim = draw.scale(
                c, draw.blob(shape, py, px, rr * 1.35, rr * 1.5, power=1.0), (1.1, 0.75, 0.75)
            )
            draw.paint(
                c, draw.blob(shape, py, px, rr * 0.8, rr * 0.9, power=0.4), (0.93, 0.88, 0.74)
            )
            boxes = (rim.box,) if rim and rim.box else ()
    highlights: list[draw.Ellipse] = []  # specular highlights
    for _ in range(int(a.integers(3, 8))):
        hy, hx = a.uniform(10, 150, 2)
        ry, rx = a.uniform(1, 3, 2)
        highlights.append((float(hy), float(hx), float(ry), float(rx), 0.0))
    for highlight in draw.blobs(shape, highlights, power=2.0):
        draw.paint(c, highlight, (1.0, 1.0, 1.0))
    c *= _octagon(shape)
    c += draw.gaussian(case.noise, c.shape, 0.01)
    return RenderedImage(draw.to_rgb8(c), boxes)


def endoscopy(case: Case, colon: bool) -> RenderedStudy:
    """Four captured frames of an upper-GI endoscopy or a colonoscopy, one series."""
    f = case.finding
    hits: set[int] = set()
    if case.abnormal:
        first = int(f.integers(ENDO_FRAMES))
        hits = {first, (first + 1) % ENDO_FRAMES} if f.random() < 0.4 else {first}
    images = tuple(_endo_frame(case, colon, i in hits) for i in range(ENDO_FRAMES))
    desc = "Colonoscopy" if colon else "Gastroscopy"
    series = RenderedSeries("ES", desc, images, (0.2, 0.2), 8, RGB_WINDOW)
    code = ("polyp" if colon else "ulcer") if case.abnormal else None
    return RenderedStudy(
        case.exam, "colonoscopy" if colon else "gastroscopy", case.abnormal, code, None, (series,)
    )
