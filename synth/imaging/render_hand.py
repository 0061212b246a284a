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

import math

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


def _fraction(value: float) -> float:
    """``value`` clipped to [0, 1] (in Python: numpy's scalar clip costs microseconds)."""
    return min(max(value, 0.0), 1.0)


def _epiphysis(
    centre: tuple[float, float], width: float, angle: float, grown: float, toward: float
) -> tuple[draw.Ellipse, draw.Ellipse] | None:
    """An epiphysis beside its physis (the gap that closes with fusion), as the ellipses of
    both; ``toward`` is +1 when it caps the bone's far end. ``None`` before it appears."""
    if grown <= 0:
        return None
    y, x = centre
    ry, rx = max(width * 0.22 * grown, 0.6), max(width * 0.5 * grown, 0.8)
    gap_y = y + toward * (ry + 0.8) * math.cos(angle)
    gap_x = x - toward * (ry + 0.8) * math.sin(angle)
    return (y, x, ry, rx, -angle), (gap_y, gap_x, 0.7, width * 0.5, -angle)


def _draw_epiphyses(
    c: draw.F32,
    epiphyses: list[tuple[draw.Ellipse, draw.Ellipse] | None],
    density: float,
    fused: float,
) -> list[draw.Patch | None]:
    """Add the epiphyses and darken their physes by how far fusion has gone; returns each
    epiphysis's patch (``None`` for those not yet ossified)."""
    kept = [(k, e) for k, e in enumerate(epiphyses) if e is not None]
    caps = draw.blobs(SHAPE, [e[0] for _k, e in kept], power=0.5)
    for cap in caps:
        draw.add(c, cap, density)
    for gap in draw.ellipses(SHAPE, [e[1] for _k, e in kept], edge=0.8):
        draw.add(c, gap, -0.12 * (1 - fused))
    patches: list[draw.Patch | None] = [None] * len(epiphyses)
    for (k, _e), cap in zip(kept, caps, strict=True):
        patches[k] = cap
    return patches


def hand(case: Case) -> RenderedStudy:
    """PA radiograph of the left hand and wrist (thumb on the image right)."""
    a = case.anatomy
    months = _bone_age(case)
    years = months / 12.0
    size = 0.42 + 0.58 * (1 - math.exp(-years / 5.5))
    density = 0.2 + 0.1 * min(years / 16.0, 1.0)
    fused = _fraction((years - 13.5) / 3.0)
    wy, wx = 200.0 + float(a.normal(0, 4)), COLS / 2 - 8 + float(a.normal(0, 4))
    c = np.full(SHAPE, 0.04, dtype=np.float32)

    def at(dy: float, dx: float) -> tuple[float, float]:
        return wy + dy * size, wx + dx * size

    bones: list[tuple[tuple[float, float], tuple[float, float], float, float, int, int]] = []
    for ray, ((by, bx), spread, lengths) in enumerate(RAYS):
        angle = spread + float(a.normal(0, 0.03))
        uy, ux = -math.cos(angle), math.sin(angle)
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
    tissue = [
        (start, end, r * 2.0 + 2.5 * size) for start, end, r, _a, ray, k in bones if k or not ray
    ]
    for finger in draw.segments(SHAPE, tissue, flat=True):
        draw.paint(c, finger, 0.16)
    radius_x, ulna_x = 13.0, -11.0
    forearm = [
        (at(8, radius_x), (ROWS + 5, wx + radius_x * size), 6 * size),
        (at(10, ulna_x), (ROWS + 5, wx + ulna_x * size), 4 * size),
    ]
    for bone in draw.segments(SHAPE, forearm, hollow=0.5):
        draw.add(c, bone, density * 1.2)
    epiphyses = [  # radius and ulna first: they are maturity indicators
        _epiphysis(at(2, radius_x), 17 * size, 0.0, _fraction((years - 1) / 6), 1.0),
        _epiphysis(at(4, ulna_x), 10 * size, 0.0, _fraction((years - 6) / 5), 1.0),
    ]
    for start, end, r, angle, ray, k in bones:
        # Metacarpals 2-5 carry their epiphysis distally; the thumb's and phalanges' proximally.
        distal = k == 0 and ray > 0
        uy, ux = -math.cos(angle), math.sin(angle)
        cap = end if distal else start
        shift = 1.6 * size * (1 if distal else -1)
        centre = (cap[0] + uy * shift, cap[1] + ux * shift)
        grown = _fraction((years - 1.2 - 0.3 * k) / 9 + 0.3) if years > 1.2 else 0.0
        epiphyses.append(_epiphysis(centre, r * 2.4, angle, grown, -1.0 if distal else 1.0))
    maturity = _draw_epiphyses(c, epiphyses, density, fused)[:2]
    carpals: list[draw.Ellipse] = []
    for _name, (dy, dx), (ry, rx), appears in CARPALS:
        grown = _fraction((years - appears) / 4 + 0.25) if years >= appears else 0.0
        if grown > 0:
            g = 1.15 * size * grown
            carpals.append((*at(dy, dx), ry * g, rx * g, 0.0))
    for carpal in draw.blobs(SHAPE, carpals, power=0.5):
        maturity.append(draw.add(c, carpal, density))
    for bone in draw.segments(SHAPE, [(s, e, r) for s, e, r, _a, _ray, _k in bones], hollow=0.5):
        draw.add(c, bone, density)
    box = draw.union(maturity)
    boxes = (box,) if box and case.abnormal else ()
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, boxes, view="PA", laterality="L")
    series = RenderedSeries("PA", "HAND PA (BONE AGE)", (image,), SPACING, 12, WINDOW)
    code = None
    if case.abnormal:
        code = "advanced_bone_age" if months > case.age_months else "delayed_bone_age"
    return _study(case, "bone_age", code, series, months)
