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
    yy = (np.arange(shape[0], dtype=np.float32)[:, None] - cy) / (shape[0] / 2)
    xx = (np.arange(shape[1], dtype=np.float32)[None, :] - cx) / (shape[1] / 2)
    radius: draw.F32 = np.sqrt(yy * yy + xx * xx)
    return radius


def _vessel(
    c: draw.F32,
    a: np.random.Generator,
    start: tuple[float, float],
    angle: float,
    bend: float,
    length: float,
    width: float,
    factor: tuple[float, float, float],
    depth: int = 0,
) -> None:
    """A vessel curving by ``bend`` per step, darkening the image by ``factor``, with branches."""
    points, radii = [start], [width]
    y, x = start
    steps = 8
    for step in range(steps):
        angle += bend * 12 / steps + float(a.normal(0, 0.06))
        y, x = y + np.sin(angle) * length / steps, x + np.cos(angle) * length / steps
        points.append((y, x))
        radii.append(max(width * (1 - step / 11), 0.5))
        if depth < 1 and step in (3, 6) and a.random() < 0.7:
            side = 1.0 if a.random() < 0.5 else -1.0
            _vessel(
                c,
                a,
                (y, x),
                angle + side * 0.7,
                bend * 0.5,
                length * 0.45,
                radii[-1] * 0.7,
                factor,
                depth + 1,
            )
    draw.scale(c, draw.polyline(FUNDUS_SHAPE, points, radii, flat=True), factor)


def _turn(start: float, end: float) -> float:
    """The signed angle from ``start`` to ``end``, the short way round."""
    return float((end - start + np.pi) % (2 * np.pi) - np.pi)


def _fundus_eye(case: Case, eye: str, lesion: str | None) -> RenderedImage:
    a, f = case.anatomy, case.finding
    shape = FUNDUS_SHAPE
    right = eye == "R"
    cy = cx = FUNDUS / 2
    r = _radial(shape, cy, cx)
    base = np.array([0.86, 0.42, 0.2], dtype=np.float32) * np.float32(a.uniform(0.85, 1.05))
    texture = draw.smooth_noise(a, FUNDUS, FUNDUS, 18)
    c = base[None, None, :] * (1 - 0.45 * r * r)[:, :, None]
    c *= (1 + 0.05 * texture)[:, :, None]
    disc = (cy + float(a.normal(0, 3)), cx + (1 if right else -1) * FUNDUS * 0.22)
    macula = (cy + 4.0, cx - (1 if right else -1) * FUNDUS * 0.1)
    draw.scale(c, draw.blob(shape, *macula, 22, 22, power=1.0), (0.7, 0.6, 0.7))
    draw.scale(c, draw.blob(shape, *macula, 4, 4, power=1.0), (0.8, 0.7, 0.8))
    draw.paint(c, draw.ellipse(shape, *disc, 12, 10.5, edge=1.5), (0.98, 0.78, 0.5))
    draw.paint(c, draw.blob(shape, *disc, 6, 5, power=1.0), (1.0, 0.92, 0.75))
    temporal = -1.0 if right else 1.0  # image x direction of the temporal side
    for v in (-1.0, 1.0):  # superior, inferior
        for factor, width, lag in (((0.62, 0.4, 0.5), 2.2, 0.0), ((0.8, 0.6, 0.65), 1.6, 0.12)):
            # Temporal arcade: leaves the disc vertically, arches round the macula.
            start = float(np.arctan2(v, temporal * (0.45 + lag)))
            end = float(np.arctan2(0.2 * v, temporal))
            _vessel(c, a, disc, start, _turn(start, end) / 12, FUNDUS * 0.75, width, factor)
            start = float(np.arctan2(v, -temporal * (0.5 + lag)))
            end = float(np.arctan2(0.5 * v, -temporal))
            _vessel(c, a, disc, start, _turn(start, end) / 12, FUNDUS * 0.35, width * 0.8, factor)
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
    c *= (r < 0.94)[:, :, None].astype(np.float32)
    c += case.noise.standard_normal(c.shape, dtype=np.float32) * np.float32(0.012)
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


def _octagon(shape: tuple[int, int]) -> draw.F32:
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
    return mask


def _endo_frame(case: Case, colon: bool, lesion: bool) -> RenderedImage:
    a, f = case.anatomy, case.finding
    shape = ENDO_SHAPE
    ly, lx = float(a.uniform(50, 110)), float(a.uniform(50, 110))
    r = _radial(shape, ly, lx)
    yy = np.arange(ENDO, dtype=np.float32)[:, None]
    xx = np.arange(ENDO, dtype=np.float32)[None, :]
    warp = draw.smooth_noise(a, ENDO, ENDO, 4)
    if colon:
        base = np.array([0.88, 0.55, 0.47], dtype=np.float32)
        folds = np.sin(r * np.float32(a.uniform(14, 20)) + warp * 1.5)
    else:
        base = np.array([0.8, 0.38, 0.3], dtype=np.float32)
        theta = float(a.uniform(0, np.pi))
        folds = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) / 7 + warp * 2.5)
    light = np.clip(r * 1.3, 0.08, 1.0) ** 0.8
    shade = light * (0.85 + 0.15 * folds)
    c = base[None, None, :] * shade[:, :, None]
    vessels = np.abs(draw.smooth_noise(a, ENDO, ENDO, 26)) < 0.05
    c[vessels] *= np.array([0.95, 0.82, 0.85], dtype=np.float32)
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
    for _ in range(int(a.integers(3, 8))):  # specular highlights
        hy, hx = a.uniform(10, 150, 2)
        draw.paint(
            c,
            draw.blob(shape, float(hy), float(hx), *a.uniform(1, 3, 2), power=2.0),
            (1.0, 1.0, 1.0),
        )
    c *= _octagon(shape)[:, :, None]
    c += case.noise.standard_normal(c.shape, dtype=np.float32) * np.float32(0.01)
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
