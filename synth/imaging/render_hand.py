"""Left-hand radiograph for bone age (Greulich-Pyle style reading).

The hand is drawn from its bone age, not its chronological age, so a model can learn the age from
the maturity indicators a reader uses:

* hand size;
* which carpal ossification centres have appeared (capitate and hamate in the first months,
  pisiform last, near 10 years) and how large they are;
* the epiphyses of the radius, ulna, metacarpals and phalanges: when they appear, their width
  relative to the metaphysis, and the physeal gap that closes in the mid-teens.

The regression value is the bone age in months: chronological age plus a deviation within 2 SD
when normal and beyond about 2.2 SD (advanced or delayed) when abnormal.
"""

from __future__ import annotations

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Case, RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.rendered import single_image_study as _study

ROWS, COLS = 256, 208
SHAPE = (ROWS, COLS)
SPACING = (1.0, 1.0)
WINDOW = (1700.0, 3200.0)

# Carpal centres: offset from the wrist (mm, adult size), radii (mm), appearance (years).
CARPALS = (
    ("capitate", (-14.0, 2.0), (7.0, 5.0), 0.1),
    ("hamate", (-13.0, -8.0), (6.0, 5.0), 0.2),
    ("triquetrum", (-5.0, -11.0), (4.5, 4.5), 2.5),
    ("lunate", (-4.0, 2.0), (5.0, 5.0), 3.5),
    ("trapezium", (-15.0, 14.0), (5.0, 5.0), 5.0),
    ("trapezoid", (-17.0, 8.0), (4.0, 4.0), 5.5),
    ("scaphoid", (-6.0, 11.0), (7.0, 4.5), 5.5),
    ("pisiform", (-6.0, -14.0), (3.0, 3.0), 10.0),
)
# Rays 1 (thumb) to 5: base offset from the wrist (mm), direction (rad from straight up, + towards
# the thumb, which is on the image right for a left hand), bone lengths (mm, adult).
RAYS = (
    ((-18.0, 18.0), 0.75, (45.0, 30.0, 22.0)),
    ((-22.0, 11.0), 0.1, (68.0, 40.0, 25.0, 18.0)),
    ((-22.0, 0.0), 0.0, (65.0, 45.0, 28.0, 19.0)),
    ((-22.0, -10.0), -0.1, (57.0, 42.0, 26.0, 19.0)),
    ((-22.0, -19.0), -0.22, (53.0, 33.0, 19.0, 17.0)),
)
RADII = (4.2, 4.0, 3.3, 2.8)  # mm: metacarpal, proximal, middle, distal phalanx shafts


def bone_age_sd(age_years: float) -> float:
    """Spread of bone age around chronological age, in months (wider in older children)."""
    return min(4.0 + 0.6 * age_years, 12.0)


def _bone_age(case: Case) -> float:
    f = case.finding
    sd = bone_age_sd(case.age_years)
    if case.abnormal:
        deviation = float(f.uniform(2.2, 3.5)) * sd * (1 if f.random() < 0.5 else -1)
    else:
        deviation = float(np.clip(f.normal(0, 0.7), -1.8, 1.8)) * sd
    return round(max(case.age_months + deviation, 1.0), 1)


def _epiphysis(
    c: draw.F32,
    centre: tuple[float, float],
    width: float,
    angle: float,
    grown: float,
    fused: float,
    toward: float,
    density: float,
) -> draw.Patch | None:
    """An epiphysis beside a physis; ``toward`` is +1 when it caps the bone's far end."""
    if grown <= 0:
        return None
    y, x = centre
    ry, rx = max(width * 0.22 * grown, 0.6), max(width * 0.5 * grown, 0.8)
    patch = draw.add(c, draw.blob(SHAPE, y, x, ry, rx, angle=-angle, power=0.5), density)
    gap_y = y + toward * (ry + 0.8) * np.cos(angle)
    gap_x = x - toward * (ry + 0.8) * np.sin(angle)
    draw.add(
        c,
        draw.ellipse(SHAPE, gap_y, gap_x, 0.7, width * 0.5, angle=-angle, edge=0.8),
        -0.12 * (1 - fused),
    )
    return patch


def hand(case: Case) -> RenderedStudy:
    """PA radiograph of the left hand and wrist (thumb on the image right)."""
    a = case.anatomy
    months = _bone_age(case)
    years = months / 12.0
    size = 0.42 + 0.58 * (1 - np.exp(-years / 5.5))
    density = 0.2 + 0.1 * min(years / 16.0, 1.0)
    fused = float(np.clip((years - 13.5) / 3.0, 0.0, 1.0))
    wy, wx = 200.0 + float(a.normal(0, 4)), COLS / 2 - 8 + float(a.normal(0, 4))
    c = np.full(SHAPE, 0.04, dtype=np.float32)

    def at(dy: float, dx: float) -> tuple[float, float]:
        return wy + dy * size, wx + dx * size

    bones: list[tuple[tuple[float, float], tuple[float, float], float, float, int, int]] = []
    for ray, ((by, bx), spread, lengths) in enumerate(RAYS):
        angle = spread + float(a.normal(0, 0.03))
        uy, ux = -np.cos(angle), np.sin(angle)
        pos = at(by, bx)
        for k, length in enumerate(lengths):
            r = RADII[k if ray else (0 if k == 0 else k + 1)] * size
            end = (pos[0] + uy * length * size, pos[1] + ux * length * size)
            bones.append((pos, end, r, angle, ray, k))
            pos = (end[0] + uy * 3.2 * size, end[1] + ux * 3.2 * size)
    palm = [at(-88, -32), at(-94, 20), at(-40, 34), at(0, 26), at(0, -24), at(-40, -32)]
    draw.paint(c, draw.polygon(SHAPE, palm, edge=3), 0.16)
    draw.paint(
        c,
        draw.polygon(
            SHAPE, [at(0, -24), at(0, 26), (ROWS, wx + 26 * size), (ROWS, wx - 24 * size)], edge=3
        ),
        0.16,
    )
    for start, end, r, _angle, _ray, k in bones:
        if k > 0 or _ray == 0:
            draw.paint(c, draw.segment(SHAPE, start, end, r * 2.0 + 2.5 * size, flat=True), 0.16)
    radius_x, ulna_x = 13.0, -11.0
    draw.add(
        c,
        draw.segment(
            SHAPE, at(8, radius_x), (ROWS + 5, wx + radius_x * size), 6 * size, hollow=0.5
        ),
        density * 1.2,
    )
    draw.add(
        c,
        draw.segment(SHAPE, at(10, ulna_x), (ROWS + 5, wx + ulna_x * size), 4 * size, hollow=0.5),
        density * 1.2,
    )
    maturity: list[draw.Patch | None] = [
        _epiphysis(
            c,
            at(2, radius_x),
            17 * size,
            0.0,
            float(np.clip((years - 1) / 6, 0, 1)),
            fused,
            1.0,
            density,
        ),
        _epiphysis(
            c,
            at(4, ulna_x),
            10 * size,
            0.0,
            float(np.clip((years - 6) / 5, 0, 1)),
            fused,
            1.0,
            density,
        ),
    ]
    for _name, (dy, dx), (ry, rx), appears in CARPALS:
        grown = float(np.clip((years - appears) / 4 + 0.25, 0, 1)) if years >= appears else 0.0
        if grown > 0:
            g = 1.15 * size * grown
            patch = draw.blob(SHAPE, *at(dy, dx), ry * g, rx * g, power=0.5)
            maturity.append(draw.add(c, patch, density))
    for start, end, r, angle, ray, k in bones:
        draw.add(c, draw.segment(SHAPE, start, end, r, hollow=0.5), density)
        # Metacarpals 2-5 carry their epiphysis distally; the thumb's and phalanges' proximally.
        distal = k == 0 and ray > 0
        uy, ux = -np.cos(angle), np.sin(angle)
        cap = end if distal else start
        shift = 1.6 * size * (1 if distal else -1)
        centre = (cap[0] + uy * shift, cap[1] + ux * shift)
        grown = float(np.clip((years - 1.2 - 0.3 * k) / 9 + 0.3, 0, 1)) if years > 1.2 else 0.0
        _epiphysis(c, centre, r * 2.4, angle, grown, fused, -1.0 if distal else 1.0, density)
    box = draw.union(maturity)
    boxes = (box,) if box and case.abnormal else ()
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, boxes, view="PA", laterality="L")
    series = RenderedSeries("PA", "HAND PA (BONE AGE)", (image,), SPACING, 12, WINDOW)
    code = None
    if case.abnormal:
        code = "advanced_bone_age" if months > case.age_months else "delayed_bone_age"
    return _study(case, "bone_age", code, series, months)
