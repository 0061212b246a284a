"""Prostate MRI (biparametric): axial T2-weighted, high-b DWI and the ADC map, 12 slices each.

The pelvis is laid out as tissue patches per slice (fat, pelvic muscles, pubic bone and femoral
heads with fatty marrow, bladder, seminal vesicles, rectum, and the gland's peripheral and
transition zones) and painted with each sequence's values, so the three series align voxel for
voxel. The finding is a peripheral-zone lesion (PI-RADS 4-5 appearance): dark on T2 and ADC,
bright on DWI, over two to four slices.
"""

from __future__ import annotations

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Box, Case, RenderedImage, RenderedSeries, RenderedStudy

MATRIX = 96
SHAPE = (MATRIX, MATRIX)
SPACING = 1.5  # mm, a 144 mm field of view
SLICES = 12
STEP = 3.5  # mm, superior to inferior
TOP_Z = 20.0

SEQUENCES = ("T2W", "DWI", "ADC")
VALUES: dict[str, dict[str, float]] = {
    "T2W": {
        "air": 0.0,
        "fat": 0.6,
        "muscle": 0.25,
        "cortex": 0.05,
        "marrow": 0.65,
        "urine": 1.0,
        "pz": 0.72,
        "tz": 0.42,
        "wall": 0.3,
        "gas": 0.02,
        "sv": 0.85,
        "lesion": 0.22,
    },
    "DWI": {
        "air": 0.0,
        "fat": 0.02,
        "muscle": 0.10,
        "cortex": 0.0,
        "marrow": 0.02,
        "urine": 0.03,
        "pz": 0.12,
        "tz": 0.15,
        "wall": 0.12,
        "gas": 0.0,
        "sv": 0.08,
        "lesion": 0.7,
    },
    "ADC": {
        "air": 0.0,
        "fat": 300,
        "muscle": 1400,
        "cortex": 0,
        "marrow": 300,
        "urine": 3000,
        "pz": 1600,
        "tz": 1150,
        "wall": 1300,
        "gas": 0,
        "sv": 2000,
        "lesion": 750,
    },
}
NOISE = {"T2W": 0.02, "DWI": 0.025, "ADC": 60.0}
DESCRIPTIONS = {
    "T2W": "t2_tse_tra",
    "DWI": "ep2d_diff_b50_800_1400_tra_CALC_BVAL b1400",
    "ADC": "ep2d_diff_b50_800_1400_tra_ADC",
}
WINDOWS = {"T2W": (1800.0, 3200.0), "DWI": (700.0, 1400.0), "ADC": (1400.0, 2400.0)}


def _ell(dy: float, dx: float, ry: float, rx: float, angle: float = 0.0) -> draw.Ellipse | None:
    if ry <= 0.3 or rx <= 0.3:
        return None
    return (
        MATRIX / 2 + dy / SPACING,
        MATRIX / 2 + dx / SPACING,
        ry / SPACING,
        rx / SPACING,
        angle,
    )


Layer = tuple[str, draw.Patch | None]


def _slice(z: float, gland: float, age: float) -> tuple[list[Layer], tuple[int, int] | None]:
    """Tissue layers of the slice at ``z`` mm, and the indexes of the layers that bound the
    peripheral zone (outer gland, transition zone) when the slice cuts the gland."""
    specs: list[tuple[str, draw.Ellipse | None]] = [("fat", _ell(0, 0, 95, 150))]
    for s in (-1.0, 1.0):
        specs += [("muscle", _ell(45, s * 65, 35, 40)), ("muscle", _ell(0, s * 45, 30, 12))]
        if 0 <= z <= 25:
            specs += [("cortex", _ell(-5, s * 80, 23, 23)), ("marrow", _ell(-5, s * 80, 19, 19))]
        if z < 5:
            specs += [("cortex", _ell(-45, s * 9, 12, 8)), ("marrow", _ell(-45, s * 9, 9, 5))]
        if 5 <= z <= 20:
            specs += [("sv", _ell(18, s * 15, 6, 14, angle=s * 0.3))]
    if z > 6:
        k = min((z - 6) / 10, 1.0)
        specs += [("urine", _ell(-20, 0, 26 * k, 36 * k))]
    specs += [("wall", _ell(30, 0, 14, 18)), ("gas", _ell(30, 0, 7, 10))]
    zone = None
    k2 = 1 - ((z + 4) / 15) ** 2
    if k2 > 0:
        k = k2**0.5 * gland
        zone = (len(specs), len(specs) + 1)
        specs += [
            ("pz", _ell(0, 0, 18 * k, 24 * k)),
            ("tz", _ell(-4 * k, 0, 11 * k * (1 + age), 15 * k)),
            ("urine", _ell(-3 * k, 0, 1.2, 1.2)),
        ]
    present = [spec for _tissue, spec in specs if spec is not None]
    drawn = iter(draw.ellipses(SHAPE, present))  # one call: they batch by size
    layers = [(tissue, next(drawn) if spec is not None else None) for tissue, spec in specs]
    return layers, zone


def _peripheral_zone(layers: list[Layer], zone: tuple[int, int] | None) -> draw.F32:
    """The peripheral-zone mask: the gland outline less the transition zone."""
    pz = np.zeros(SHAPE, dtype=np.float32)
    if zone is not None:
        draw.paint(pz, layers[zone[0]][1], 1.0)
        draw.paint(pz, layers[zone[1]][1], 0.0)
    return pz


def prostate(case: Case) -> RenderedStudy:
    """Biparametric prostate MRI: T2W, DWI (b1400) and ADC series of 12 aligned slices."""
    a, f = case.anatomy, case.finding
    gland = float(a.uniform(0.9, 1.1)) * (1 + 0.006 * max(case.age_years - 50, 0))
    bph = min(0.01 * max(case.age_years - 45, 0), 0.35)
    texture = draw.smooth_noise(a, MATRIX, MATRIX, 12)
    lesion = None
    if case.abnormal:
        side = 1.0 if f.random() < 0.5 else -1.0
        lesion = (
            float(f.uniform(6, 12)),
            side * float(f.uniform(8, 16)),
            float(f.uniform(-12, 2)),
            float(f.uniform(4.5, 8.0)),
            float(f.uniform(4, 7)),
        )
    stacks: dict[str, list[RenderedImage]] = {s: [] for s in SEQUENCES}
    for i in range(SLICES):
        z = TOP_Z - i * STEP
        layers, zone = _slice(z, gland, bph)
        patch, box = None, None
        if lesion is not None:
            ly, lx, lz, lr, half = lesion
            k = 1 - ((z - lz) / half) ** 2
            if k > 0:
                r = lr * k**0.5 / SPACING
                blob = draw.blob(
                    SHAPE,
                    MATRIX / 2 + ly / SPACING,
                    MATRIX / 2 + lx / SPACING,
                    r,
                    r * 1.2,
                    power=0.7,
                )
                patch = blob.masked(_peripheral_zone(layers, zone)) if blob else None
                box = patch.box if patch else None
        field = draw.gaussian(case.noise, SHAPE, 1.0)
        for seq in SEQUENCES:
            table = VALUES[seq]
            c = np.full(SHAPE, table["air"], dtype=np.float32)
            for tissue, layer in layers:
                draw.paint(c, layer, table[tissue])
            if seq == "T2W":
                c += np.float32(0.04) * texture * (c > 0.3)
            draw.paint(c, patch, table["lesion"])
            c += field * np.float32(NOISE[seq])
            stored = (
                np.rint(np.clip(c, 0, 4095)).astype(np.uint16)
                if seq == "ADC"
                else draw.to_uint(c, 12)
            )
            boxes: tuple[Box, ...] = (box,) if box else ()
            stacks[seq].append(RenderedImage(stored, boxes, position_mm=z))
    series = tuple(
        RenderedSeries(
            seq,
            DESCRIPTIONS[seq],
            tuple(stacks[seq]),
            (SPACING, SPACING),
            12,
            WINDOWS[seq],
            slice_thickness=STEP,
        )
        for seq in SEQUENCES
    )
    code = "suspicious_lesion" if lesion else None
    return RenderedStudy(case.exam, "prostate", case.abnormal, code, None, series)
