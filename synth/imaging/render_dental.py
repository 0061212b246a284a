"""Dental radiographs: the panoramic (PX) and intra-oral periapical (IO) films.

The panoramic unrolls both arches along a smiling occlusal curve: crowns with enamel, roots with
their canals, the mandible with its cortical border and rami, the maxilla, palate, sinuses and the
ghost of the cervical spine. Teeth go missing with age and some carry bright restorations. The
finding is a carious lesion (a dark notch at a crown's proximal surface) or a periapical lesion
(a round lucency at a root apex).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import (
    Box,
    Case,
    RenderedImage,
    RenderedSeries,
    RenderedStudy,
)

PANO_SHAPE = (180, 360)
PANO_SPACING = (0.75, 0.75)
PANO_WINDOW = (1900.0, 3400.0)
IO_SHAPE = (160, 120)
IO_SPACING = (0.25, 0.25)
IO_WINDOW = (2000.0, 3600.0)
SPRITE_STEP = 0.25  # px: the grid tooth positions snap to, so that tooth sprites recur

# Teeth from the midline outwards: (name, width px, crown px, root px, roots).
TEETH = (
    ("I1", 13.0, 19.0, 26.0, 1),
    ("I2", 11.0, 18.0, 25.0, 1),
    ("C", 13.0, 20.0, 33.0, 1),
    ("PM1", 13.0, 17.0, 27.0, 1),
    ("PM2", 13.0, 17.0, 27.0, 1),
    ("M1", 20.0, 15.0, 24.0, 2),
    ("M2", 19.0, 15.0, 23.0, 2),
    ("M3", 17.0, 14.0, 20.0, 2),
)


def _finding_code(case: Case) -> str:
    return "caries" if case.finding.random() < 0.55 else "periapical_lesion"


@cache
def _sprite(
    width: float,
    crown: float,
    root: float,
    roots: int,
    up: float,
    fraction: tuple[float, float],
    shades: tuple[float, float],
) -> tuple[draw.F32, int, int]:
    """One tooth drawn alone on a small canvas (read-only), and the canvas pixel of the tooth's
    anchor: the crown's centre on the occlusal line, whose position within that pixel is
    ``fraction`` (row, column).

    A film has thirty-odd teeth of a few shapes, so tooth positions are snapped to a quarter
    pixel and every distinct tooth is drawn once per process and then stamped: a few
    microseconds a tooth instead of a dozen shapes.
    """
    pad = 4
    rows, cols = int(np.ceil(crown + root)) + 2 * pad, int(np.ceil(width)) + 2 * pad
    anchor_y, anchor_x = (pad if up > 0 else rows - pad), cols // 2
    tooth = _Tooth(anchor_x + fraction[1], anchor_y + fraction[0], width, crown, root, roots, up)
    sprite = np.zeros((rows, cols), dtype=np.float32)
    tooth.render(sprite, (rows, cols), *shades)
    sprite.flags.writeable = False
    return sprite, anchor_y, anchor_x


def _snap(value: float) -> float:
    return round(value / SPRITE_STEP) * SPRITE_STEP


def _stamp(c: draw.F32, tooth: _Tooth, enamel: float, dentin: float) -> None:
    """Add ``tooth`` (at a snapped position) to the canvas from its cached sprite."""
    row, col = int(np.floor(tooth.occlusal)), int(np.floor(tooth.x))
    fraction = (tooth.occlusal - row, tooth.x - col)
    sprite, anchor_y, anchor_x = _sprite(
        tooth.width, tooth.crown, tooth.root, tooth.roots, tooth.up, fraction, (enamel, dentin)
    )
    top, left = row - anchor_y, col - anchor_x
    y0, x0 = max(top, 0), max(left, 0)
    y1 = min(top + sprite.shape[0], c.shape[0])
    x1 = min(left + sprite.shape[1], c.shape[1])
    if y0 < y1 and x0 < x1:
        c[y0:y1, x0:x1] += sprite[y0 - top : y1 - top, x0 - left : x1 - left]


class _Tooth:
    """Geometry of one tooth; ``up`` is -1 for upper teeth (roots point up) and +1 for lower."""

    def __init__(
        self,
        x: float,
        occlusal: float,
        width: float,
        crown: float,
        root: float,
        roots: int,
        up: float,
    ) -> None:
        self.x, self.occlusal, self.width = x, occlusal, width
        self.crown, self.root, self.roots, self.up = crown, root, roots, up

    def y(self, depth: float) -> float:
        """Row at ``depth`` pixels from the occlusal edge into the jaw."""
        return self.occlusal + self.up * depth

    def render(self, c: draw.F32, shape: tuple[int, int], enamel: float, dentin: float) -> None:
        x, w, ch = self.x, self.width, self.crown
        crown = [
            (self.y(1), x - w * 0.4),
            (self.y(1), x + w * 0.4),
            (self.y(ch), x + w * 0.5),
            (self.y(ch), x - w * 0.5),
        ]
        draw.add(c, draw.polygon(shape, crown, edge=1.0), enamel)
        for k in range(self.roots):
            off = 0.0 if self.roots == 1 else (k - 0.5) * w * 0.5
            half = w * (0.42 if self.roots == 1 else 0.2)
            root = [
                (self.y(ch), x + off - half),
                (self.y(ch), x + off + half),
                (self.y(ch + self.root), x + off + half * 0.3),
                (self.y(ch + self.root), x + off - half * 0.3),
            ]
            draw.add(c, draw.polygon(shape, root, edge=1.0), dentin)
            draw.add(
                c,
                draw.segment(
                    shape,
                    (self.y(ch * 0.5), x + off * 0.5),
                    (self.y(ch + self.root - 2), x + off),
                    max(w * 0.06, 1.0),
                    flat=True,
                ),
                -0.5 * dentin,
            )

    def apex(self) -> tuple[float, float]:
        return self.y(self.crown + self.root), self.x

    def lesion(
        self, c: draw.F32, shape: tuple[int, int], code: str, f: np.random.Generator, scale: float
    ) -> Box | None:
        if code == "caries":
            side = 1.0 if f.random() < 0.5 else -1.0
            r = float(f.uniform(2.5, 4.0)) * scale
            patch = draw.blob(
                shape,
                self.y(self.crown * 0.45),
                self.x + side * self.width * 0.36,
                r,
                r * 0.8,
                power=1.0,
            )
            return draw.union([draw.add(c, patch, -0.3)])
        ay, ax = self.apex()
        r = float(f.uniform(4.0, 7.0)) * scale
        patch = draw.blob(shape, ay + self.up * r * 0.4, ax, r, r * 1.1, power=1.2)
        return draw.union([draw.add(c, patch, -0.22)])


def panoramic(case: Case) -> RenderedStudy:
    """Dental panoramic radiograph (Modality PX)."""
    a, shape = case.anatomy, PANO_SHAPE
    rows, cols = shape
    cx = cols / 2 + float(a.normal(0, 3))
    smile = float(a.uniform(12, 20))
    c = np.full(shape, 0.18, dtype=np.float32)

    def occlusal(x: float) -> float:
        return 92 + smile * ((x - cx) / 150) ** 2

    xs = np.arange(cols)
    lower_border = 166 - 34 * ((xs - cx) / 165) ** 2
    for side in (-1.0, 1.0):  # rami and condyles
        rx = cx + side * 160
        draw.add(
            c,
            draw.polygon(
                shape,
                [
                    (40, rx - 15),
                    (40, rx + 15),
                    (150, rx + side * 8 + 18),
                    (150, rx + side * 8 - 18),
                ],
                edge=3,
            ),
            0.12,
        )
        draw.add(c, draw.blob(shape, 34, rx + side * 6, 10, 14, power=0.5), 0.12)
        draw.add(
            c,
            draw.segment(shape, (0, cx + side * 172), (rows, cx + side * 168), 10, hollow=0.3),
            0.08,
        )  # cervical spine ghost
        draw.add(c, draw.ellipse(shape, 56, cx + side * 88, 22, 42, edge=4), -0.07)  # sinus
    span = xs[int(cx - 165) : int(cx + 166)]
    crest = 94 + smile * ((span - cx) / 150) ** 2
    draw.add(c, draw.between(shape, span, crest, lower_border[span], edge=2), 0.12)  # mandible
    draw.add(c, draw.band(shape, xs, lower_border - 3, 4.0), 0.1)  # mandibular cortex
    draw.add(
        c,
        draw.polygon(
            shape, [(44, cx - 150), (44, cx + 150), (86, cx + 160), (86, cx - 160)], edge=4
        ),
        0.08,
    )  # maxilla
    draw.add(
        c, draw.band(shape, xs[int(cx - 120) : int(cx + 120)], np.full(240, 58.0), 2.5), 0.08
    )  # hard palate
    draw.add(c, draw.ellipse(shape, 38, cx, 16, 30, edge=4), -0.06)  # nasal cavity
    draw.add(c, draw.band(shape, xs, 70 + 6 * np.cos((xs - cx) / 60), 5.0), -0.05)  # air space

    old = max(case.age_years - 40, 0)
    teeth: list[_Tooth] = []
    restorations: list[draw.Ellipse] = []  # amalgam or crown restorations
    for up in (-1.0, 1.0):
        for side in (-1.0, 1.0):
            x = cx + side * 1.5
            for name, width, crown, root, roots in TEETH:
                xc = x + side * width / 2
                x += side * (width + 1.5)
                gone = 0.4 if name == "M3" else 0.02 + 0.006 * old
                if a.random() < gone:
                    continue
                xc = _snap(xc)
                tooth = _Tooth(xc, _snap(occlusal(xc) + up * 1.5), width, crown, root, roots, up)
                _stamp(c, tooth, 0.42, 0.26)
                if a.random() < 0.1:
                    restorations.append((tooth.y(crown * 0.3), xc, crown * 0.3, width * 0.35, 0.0))
                teeth.append(tooth)
    for restoration in draw.ellipses(shape, restorations):
        draw.add(c, restoration, 0.5)
    boxes: list[Box] = []
    code = None
    if case.abnormal and teeth:
        code = _finding_code(case)
        tooth = teeth[int(case.finding.integers(len(teeth)))]
        box = tooth.lesion(c, shape, code, case.finding, 1.0)
        boxes = [box] if box else []
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, tuple(boxes), view="", laterality="B")
    series = RenderedSeries("PANO", "PANORAMA", (image,), PANO_SPACING, 12, PANO_WINDOW)
    return RenderedStudy(case.exam, "dental", case.abnormal, code, None, (series,))


def _periapical(case: Case, lesion_code: str | None, laterality: str) -> RenderedImage:
    """One periapical film of the lower molar region: three teeth in trabecular bone."""
    a, shape = case.anatomy, IO_SHAPE
    c = np.full(shape, 0.12, dtype=np.float32)
    crest = 58.0 + float(a.normal(0, 3)) + 0.2 * max(case.age_years - 40, 0)
    draw.add(
        c, draw.polygon(shape, [(crest, -5), (crest, 125), (165, 125), (165, -5)], edge=4), 0.2
    )
    c += np.float32(0.025) * draw.smooth_noise(a, *shape, 30) * (c > 0.2)
    teeth = []
    x = 14.0 + float(a.normal(0, 3))
    for _name, width, crown, root, roots in (TEETH[4], TEETH[5], TEETH[6]):
        w = width * 2.5
        tooth = _Tooth(_snap(x + w / 2), 10.0, w, crown * 2.7, root * 3.0, roots, 1.0)
        _stamp(c, tooth, 0.42, 0.28)
        teeth.append(tooth)
        x += w + 3
    boxes: tuple[Box, ...] = ()
    if lesion_code is not None:
        tooth = teeth[int(case.finding.integers(len(teeth)))]
        box = tooth.lesion(c, shape, lesion_code, case.finding, 2.6)
        boxes = (box,) if box else ()
    return RenderedImage(draw.xray_finish(c, case.noise, 0.012), boxes, laterality=laterality)


def intraoral(case: Case) -> RenderedStudy:
    """Two periapical films (right and left lower molars); a finding shows on one of them."""
    code = _finding_code(case) if case.abnormal else None
    hit = int(case.finding.integers(2)) if code else -1
    images = tuple(
        _periapical(case, code if i == hit else None, lat) for i, lat in enumerate(("R", "L"))
    )
    series = RenderedSeries("IO", "PERIAPICAL", images, IO_SPACING, 12, IO_WINDOW)
    return RenderedStudy(case.exam, "dental", case.abnormal, code, None, (series,))
