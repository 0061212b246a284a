"""Screening mammography: four views (R/L x CC/MLO), scored per study.

Each breast is a compressed half-ellipse against its chest-wall edge (right breasts at the image
right, left at the left, so the pair hangs back to back) with skin roll-off, fibroglandular texture
whose amount falls with age, a nipple and, on MLO, the pectoral muscle. The finding is a mass,
round-lobulated or spiculated, drawn in both views of one breast at a consistent depth from the
nipple.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Box, Case, RenderedImage, RenderedSeries, RenderedStudy

ROWS, COLS = 256, 192
SHAPE = (ROWS, COLS)
SPACING = (0.85, 0.85)
WINDOW = (1700.0, 3000.0)
VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


@dataclass(frozen=True)
class Mass:
    """A mass at fraction ``depth`` of the way from nipple to chest wall, offsets per view."""

    side: str
    depth: float
    offset_cc: float
    offset_mlo: float
    radius: float
    spiculated: bool

    @classmethod
    def draw_from(cls, f: np.random.Generator) -> Mass:
        return cls(
            side="R" if f.random() < 0.5 else "L",
            depth=float(f.uniform(0.25, 0.7)),
            offset_cc=float(f.uniform(-0.45, 0.45)),
            offset_mlo=float(f.uniform(-0.45, 0.45)),
            radius=float(f.uniform(6, 12)),
            spiculated=bool(f.random() < 0.5),
        )

    def draw(
        self,
        c: draw.F32,
        cy: float,
        ry: float,
        wall: float,
        toward: float,
        depth: float,
        offset: float,
        f: np.random.Generator,
    ) -> Box | None:
        y = cy + offset * ry * 0.75
        x = wall + toward * depth * (1 - self.depth)
        r = self.radius
        patches = [draw.add(c, draw.blob(SHAPE, y, x, r, r * 1.1, power=0.6), 0.16)]
        for _ in range(3):  # lobulations
            ang = float(f.uniform(0, 2 * np.pi))
            patches.append(
                draw.add(
                    c,
                    draw.blob(
                        SHAPE,
                        y + 0.6 * r * np.sin(ang),
                        x + 0.6 * r * np.cos(ang),
                        r * 0.6,
                        r * 0.6,
                        power=0.8,
                    ),
                    0.06,
                )
            )
        if self.spiculated:
            for ang in f.uniform(0, 2 * np.pi, 8):
                length = r * float(f.uniform(1.5, 2.4))
                end = (y + length * np.sin(ang), x + length * np.cos(ang))
                patches.append(draw.add(c, draw.polyline(SHAPE, [(y, x), end], [1.4, 0.4]), 0.07))
        return draw.union(patches)


def _breast(
    case: Case,
    side: str,
    view: str,
    texture: draw.F32,
    density: float,
    size: float,
    mass: Mass | None,
) -> RenderedImage:
    a = case.anatomy
    right = side == "R"
    wall = COLS - 1.0 if right else 0.0
    toward = -1.0 if right else 1.0  # direction from the chest wall to the nipple
    depth = 150.0 * size
    c = np.full(SHAPE, 0.02, dtype=np.float32)
    if view == "CC":
        cy, ry, angle = 128.0 + float(a.normal(0, 4)), 92.0 * size, 0.0
    else:
        cy, ry, angle = 118.0 + float(a.normal(0, 4)), 125.0 * size, toward * 0.15
    outline = draw.blob(SHAPE, cy, wall, ry, depth, angle=angle, power=0.12)
    draw.add(c, outline, 0.3)
    inside = np.zeros(SHAPE, dtype=np.float32)
    draw.add(inside, outline, 1.0)
    np.minimum(inside * 20, 1.0, out=inside)
    gland = draw.blob(
        SHAPE, cy, wall + toward * depth * 0.45, ry * 0.75, depth * 0.55, angle=angle, power=1.0
    )
    if gland is not None:
        x0, y0, x1, y1 = gland.win
        amount = np.clip(texture[y0:y1, x0:x1] * 0.5 + 0.4, 0.0, 1.0) * density
        draw.add(c, draw.Patch(gland.win, gland.weight * amount), 0.22)
    draw.add(c, draw.blob(SHAPE, cy, wall + toward * depth, 5, 4, power=0.5), 0.08)  # nipple
    if view == "MLO":
        muscle = [(0.0, wall), (0.0, wall + toward * 70 * size), (135 * size, wall)]
        pectoral = draw.polygon(SHAPE, muscle, edge=3)
        draw.add(c, pectoral.masked(inside) if pectoral else None, 0.2)
    boxes: tuple[Box, ...] = ()
    if mass is not None and mass.side == side:
        offset = mass.offset_cc if view == "CC" else mass.offset_mlo
        box = mass.draw(c, cy, ry, wall, toward, depth, offset, case.finding)
        boxes = (box,) if box else ()
    pixels = draw.xray_finish(c, case.noise, 0.008)
    return RenderedImage(pixels, boxes, view=view, laterality=side)


def mammography(case: Case) -> RenderedStudy:
    """Four-view screening mammogram, one image per series (RCC, LCC, RMLO, LMLO)."""
    a = case.anatomy
    density = float(np.clip(a.normal(0.9 - 0.012 * max(case.age_years - 40, 0), 0.2), 0.15, 1.0))
    size = float(a.uniform(0.7, 1.0))
    textures = {
        s: draw.smooth_noise(a, ROWS, COLS, 10) * 0.7 + draw.smooth_noise(a, ROWS, COLS, 30) * 0.3
        for s in ("R", "L")
    }
    mass = Mass.draw_from(case.finding) if case.abnormal else None
    series = tuple(
        RenderedSeries(
            f"{side}{view}",
            f"{side} {view}",
            (_breast(case, side, view, textures[side], density, size, mass),),
            SPACING,
            12,
            WINDOW,
        )
        for side, view in VIEWS
    )
    return RenderedStudy(
        case.exam, "mammography", case.abnormal, "mass" if mass else None, None, series
    )
