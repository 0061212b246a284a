"""Brain imaging for the aneurysm / infarction service: MR angiography (TOF), MR DWI with its ADC
map, and non-contrast CT in Hounsfield units.

One head model (scalp, skull, CSF spaces that widen with age, cortex, white matter, ventricles,
deep grey nuclei, posterior fossa, orbits) is laid out slice by slice as tissue patches, then
painted with each sequence's tissue values, so DWI and ADC of one study agree voxel for voxel.

* TOF: a 3D arterial tree (vertebrals, basilar, ICAs, circle of Willis, MCA/ACA/PCA branches)
  rendered as bright tubes; the finding is a saccular aneurysm at a typical site.
* DWI/ADC and CT: the finding is an acute infarct in an MCA territory, bright on DWI, dark on
  ADC and hypodense on CT.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from synth.imaging import draw
from synth.imaging.rendered import Box, Case, RenderedImage, RenderedSeries, RenderedStudy

MATRIX = 128
SHAPE = (MATRIX, MATRIX)
SPACING = 1.8  # mm, 230 mm field of view
SLICES = 12
SLICE_GAP = 10.0  # mm between slice centres (5 mm slices, 5 mm gap)
FIRST_Z = -25.0  # mm below the circle of Willis plane

TOF_MATRIX = 160
TOF_SHAPE = (TOF_MATRIX, TOF_MATRIX)
TOF_SPACING = 1.25
TOF_SLICES = 12
TOF_STEP = 2.5
TOF_FIRST_Z = -12.0

# Tissue values per sequence. CT in HU; ADC in 1e-6 mm2/s; DWI and TOF in relative signal.
TISSUES = ("scalp", "bone", "csf", "grey", "white", "fat", "globe", "air")
VALUES: dict[str, dict[str, float]] = {
    "CT": {
        "scalp": 40,
        "bone": 1000,
        "csf": 6,
        "grey": 38,
        "white": 27,
        "fat": -90,
        "globe": 12,
        "air": -1000,
    },
    "DWI": {
        "scalp": 0.05,
        "bone": 0.0,
        "csf": 0.05,
        "grey": 0.36,
        "white": 0.30,
        "fat": 0.03,
        "globe": 0.08,
        "air": 0.0,
    },
    "ADC": {
        "scalp": 600,
        "bone": 0,
        "csf": 3000,
        "grey": 850,
        "white": 720,
        "fat": 200,
        "globe": 2800,
        "air": 0,
    },
    "TOF": {
        "scalp": 0.3,
        "bone": 0.03,
        "csf": 0.06,
        "grey": 0.2,
        "white": 0.18,
        "fat": 0.45,
        "globe": 0.1,
        "air": 0.0,
    },
}
INFARCT = {"CT": 14.0, "DWI": 0.85, "ADC": 420.0}


@dataclass(frozen=True)
class Head:
    """One patient's head: size, position and age-related atrophy (mm)."""

    ry: float
    rx: float
    cy: float
    cx: float
    atrophy: float

    @classmethod
    def draw_from(cls, case: Case) -> Head:
        a = case.anatomy
        return cls(
            ry=float(a.normal(96, 4)),
            rx=float(a.normal(74, 3)),
            cy=float(a.normal(0, 3)),
            cx=float(a.normal(0, 2)),
            atrophy=1.5 + 0.06 * max(case.age_years - 40, 0) + float(a.uniform(0, 1)),
        )


Layer = tuple[str, draw.Patch | None]


def _slice(
    head: Head, z: float, shape: tuple[int, int], spacing: float
) -> tuple[list[Layer], list[Layer]]:
    """Tissue layers of the axial slice at height ``z`` mm, in painting order, and the brain's
    own layers (for its mask)."""
    h, w = shape
    oy, ox = h / 2 + head.cy / spacing, w / 2 + head.cx / spacing

    def ell(dy: float, dx: float, ry: float, rx: float) -> draw.Ellipse | None:
        if ry <= 0 or rx <= 0:
            return None
        return (oy + dy / spacing, ox + dx / spacing, ry / spacing, rx / spacing, 0.0)

    k = max(1 - ((z - 15) / 105) ** 2, 0.05) ** 0.5
    ry, rx = head.ry * k, head.rx * k
    inner_ry, inner_rx = ry - 11, rx - 11
    brain_ry, brain_rx = inner_ry - head.atrophy, inner_rx - head.atrophy
    shells = [
        ("scalp", ell(0, 0, ry, rx)),
        ("bone", ell(0, 0, ry - 5, rx - 5)),
        ("csf", ell(0, 0, inner_ry, inner_rx)),
        ("grey", ell(0, 0, brain_ry, brain_rx)),
        ("white", ell(0, 0, brain_ry - 4, brain_rx - 4)),
    ]
    base: list[tuple[str, draw.Ellipse | None]] = []  # painted between the CSF and the brain
    parts: list[tuple[str, draw.Ellipse | None]] = []  # painted over the grey and white matter
    if z < -8:  # skull base: orbits, temporal lobes, posterior fossa
        base += [("bone", ell(-brain_ry * 0.45, 0, brain_ry * 0.5, brain_rx * 0.9))]
        for side in (-1.0, 1.0):
            base += [
                ("fat", ell(-ry * 0.72, side * 30, 16, 14)),
                ("globe", ell(-ry * 0.78, side * 30, 11, 11)),
            ]
            parts += [
                ("grey", ell(-5, side * brain_rx * 0.6, brain_ry * 0.35, brain_rx * 0.3)),
                ("white", ell(-5, side * brain_rx * 0.6, brain_ry * 0.22, brain_rx * 0.18)),
            ]
        parts += [
            ("grey", ell(brain_ry * 0.45, 0, brain_ry * 0.45, brain_rx * 0.75)),
            ("white", ell(brain_ry * 0.4, 0, brain_ry * 0.25, brain_rx * 0.4)),
            ("white", ell(brain_ry * 0.05, 0, 12, 13)),
            ("csf", ell(brain_ry * 0.25, 0, 4, 6)),
            ("air", ell(-brain_ry * 0.55, 0, 10, 12)),
        ]
    else:
        vent = 1.0 + head.atrophy / 6
        if -8 <= z < 30:  # deep grey nuclei and third ventricle
            for side in (-1.0, 1.0):
                parts += [("grey", ell(-8, side * 14, 10, 7)), ("grey", ell(12, side * 11, 11, 9))]
            parts += [("csf", ell(2, 0, 12, 1.5 * vent))]
        if 10 <= z < 60:  # lateral ventricles
            span = 1 - abs(z - 35) / 30
            for side in (-1.0, 1.0):
                parts += [
                    ("csf", ell(-22, side * 7 * vent, 12 * span, 5 * vent)),
                    ("csf", ell(5, side * 10 * vent, 26 * span, 4 * vent * span)),
                    ("csf", ell(35, side * 14 * vent, 10 * span, 4 * vent)),
                ]
    specs = shells + base + parts
    drawn = iter(draw.ellipses(shape, [spec for _tissue, spec in specs if spec is not None]))
    layers = [(tissue, next(drawn) if spec is not None else None) for tissue, spec in specs]
    n = len(base)
    brain = layers[3:5] + layers[5 + n :]
    return layers[:3] + layers[5 : 5 + n] + brain, brain


def _brain_mask(brain: list[Layer], shape: tuple[int, int]) -> draw.F32:
    """Where grey and white matter show, for confining an infarct to the brain."""
    mask = np.zeros(shape, dtype=np.float32)
    for tissue, patch in brain:
        draw.paint(mask, patch, 1.0 if tissue in ("grey", "white") else 0.0)
    return mask


def _paint(layers: list[Layer], table: dict[str, float], shape: tuple[int, int]) -> draw.F32:
    c = np.full(shape, table["air"], dtype=np.float32)
    for tissue, patch in layers:
        draw.paint(c, patch, table[tissue])
    return c


@dataclass(frozen=True)
class Infarct:
    """An MCA-territory infarct: centre (mm, relative to the head centre) and extent."""

    y: float
    x: float
    z: float
    r: float
    half_height: float

    @classmethod
    def draw_from(cls, case: Case, head: Head) -> Infarct:
        f = case.finding
        side = 1.0 if f.random() < 0.5 else -1.0
        angle = float(f.uniform(-0.6, 0.6))
        dist = float(f.uniform(0.5, 0.7))
        return cls(
            y=head.cy + head.ry * dist * 0.8 * np.sin(angle),
            x=head.cx + side * head.rx * dist * np.cos(angle),
            z=float(f.uniform(15, 45)),
            r=float(f.uniform(8, 18)),
            half_height=float(f.uniform(8, 22)),
        )

    def patch(self, z: float, mask: draw.F32) -> draw.Patch | None:
        k = 1 - ((z - self.z) / self.half_height) ** 2
        if k <= 0:
            return None
        r = self.r * k**0.5 / SPACING
        blob = draw.blob(
            SHAPE,
            MATRIX / 2 + self.y / SPACING,
            MATRIX / 2 + self.x / SPACING,
            r,
            r * 1.2,
            power=0.6,
        )
        return blob.masked(mask) if blob else None


def _sectional(
    case: Case, sequences: tuple[str, ...], noise: dict[str, float]
) -> tuple[tuple[RenderedSeries, ...], str | None]:
    head = Head.draw_from(case)
    infarct = Infarct.draw_from(case, head) if case.abnormal else None
    stacks: dict[str, list[RenderedImage]] = {s: [] for s in sequences}
    for i in range(SLICES):
        z = FIRST_Z + i * SLICE_GAP
        layers, brain = _slice(head, z, SHAPE, SPACING)
        lesion = infarct.patch(z, _brain_mask(brain, SHAPE)) if infarct else None
        box = lesion.box if lesion else None
        field = draw.gaussian(case.noise, SHAPE, 1.0)
        for seq in sequences:
            c = _paint(layers, VALUES[seq], SHAPE)
            draw.paint(c, lesion, INFARCT[seq])
            c += field * np.float32(noise[seq])
            stacks[seq].append(RenderedImage(_store(c, seq), (box,) if box else (), position_mm=z))
    series = tuple(_series(seq, tuple(stacks[seq])) for seq in sequences)
    return series, "acute_infarct" if infarct else None


def _store(c: draw.F32, seq: str) -> NDArray[np.uint16]:
    """Stored values: CT as HU + 1024, ADC in 1e-6 mm2/s, DWI and TOF on a 12-bit scale."""
    if seq == "CT":
        return np.rint(np.clip(c + 1024, 0, 4095)).astype(np.uint16)
    if seq == "ADC":
        return np.rint(np.clip(c, 0, 4095)).astype(np.uint16)
    return draw.to_uint(c, 12)


def _series(seq: str, images: tuple[RenderedImage, ...]) -> RenderedSeries:
    if seq == "CT":
        return RenderedSeries(
            "CT",
            "Brain 5.0 H30s",
            images,
            (SPACING, SPACING),
            12,
            (40.0, 80.0),
            rescale_intercept=-1024.0,
            slice_thickness=5.0,
        )
    if seq == "ADC":
        return RenderedSeries(
            "ADC",
            "ep2d_diff_3scan_ADC",
            images,
            (SPACING, SPACING),
            12,
            (1000.0, 2000.0),
            slice_thickness=5.0,
        )
    return RenderedSeries(
        "DWI",
        "ep2d_diff_3scan_TRACEW b1000",
        images,
        (SPACING, SPACING),
        12,
        (1400.0, 2400.0),
        slice_thickness=5.0,
    )


def brain_ct(case: Case) -> RenderedStudy:
    """Non-contrast head CT, 12 axial slices, stored as HU + 1024."""
    series, code = _sectional(case, ("CT",), {"CT": 3.0})
    return RenderedStudy(case.exam, "brain", case.abnormal, code, None, series)


def brain_dwi(case: Case) -> RenderedStudy:
    """Diffusion-weighted MR (b1000 trace) with its ADC map, as two series."""
    series, code = _sectional(case, ("DWI", "ADC"), {"DWI": 0.02, "ADC": 40.0})
    return RenderedStudy(case.exam, "brain", case.abnormal, code, None, series)


# Arterial tree (mm; x to the patient's left, y posterior, z up) as polylines with radii.
ARTERIES: tuple[tuple[tuple[tuple[float, float, float], ...], float], ...] = (
    (((-8, 30, -40), (0, 22, -25), (0, 18, 0)), 1.6),
    (((8, 30, -40), (0, 22, -25)), 1.5),
    *(
        item
        for s in (-1.0, 1.0)
        for item in (
            (((0, 18, 0), (s * 12, 22, 1), (s * 25, 40, 4), (s * 35, 60, 10)), 1.2),
            (((s * 14, 0, -25), (s * 15, 2, -8), (s * 13, -2, 0)), 2.0),
            (((s * 13, -2, 0), (s * 12, 22, 1)), 0.7),
            (((s * 13, -2, 0), (s * 30, -2, 2), (s * 42, 0, 4)), 1.4),
            (((s * 42, 0, 4), (s * 52, -10, 14), (s * 58, -5, 26)), 1.0),
            (((s * 42, 0, 4), (s * 54, 8, 0), (s * 60, 20, -4)), 1.0),
            (((s * 13, -2, 0), (s * 3, -15, 3), (s * 2, -30, 20)), 1.1),
        )
    ),
    (((-3, -15, 3), (3, -15, 3)), 0.6),
)
ANEURYSM_SITES = (
    (0.0, -15.0, 3.0),
    (42.0, 0.0, 4.0),
    (-42.0, 0.0, 4.0),
    (13.0, -2.0, 0.0),
    (-13.0, -2.0, 0.0),
    (0.0, 18.0, 0.0),
)


Vessel = tuple[NDArray[np.float64], NDArray[np.float64], float]  # ends (x, y, z mm) and radius


def _tubes(head: Head, z: float, vessels: list[Vessel]) -> list[draw.Patch | None]:
    """Cross-sections with the slice at height ``z`` of 3D vessel capsules (one batch), with a
    0.7 mm soft rim; ``None`` for those the slice misses."""
    ox = TOF_MATRIX / 2 + head.cx / TOF_SPACING
    oy = TOF_MATRIX / 2 + head.cy / TOF_SPACING
    crossing = [
        k for k, (a, b, r) in enumerate(vessels) if min(a[2], b[2]) - r <= z <= max(a[2], b[2]) + r
    ]
    patches: list[draw.Patch | None] = [None] * len(vessels)
    if not crossing:
        return patches
    s = TOF_SPACING
    drawn = draw.segments(
        TOF_SHAPE,
        [
            (
                (oy + vessels[k][0][1] / s, ox + vessels[k][0][0] / s),
                (oy + vessels[k][1][1] / s, ox + vessels[k][1][0] / s),
                vessels[k][2] / s,
            )
            for k in crossing
        ],
        flat=True,
        edge=0.7 / s,
        heights=[((vessels[k][0][2] - z) / s, (vessels[k][1][2] - z) / s) for k in crossing],
    )
    for k, patch in zip(crossing, drawn, strict=True):
        patches[k] = patch
    return patches


def brain_mra(case: Case) -> RenderedStudy:
    """3D time-of-flight MR angiography source slices through the circle of Willis."""
    a, f = case.anatomy, case.finding
    head = Head.draw_from(case)
    jitter = a.normal(0, 1.2, (len(ARTERIES), 3))
    size = float(a.uniform(0.9, 1.1))
    aneurysm: tuple[np.ndarray, float] | None = None
    if case.abnormal:
        site = np.asarray(ANEURYSM_SITES[int(f.integers(len(ANEURYSM_SITES)))], dtype=float)
        radius = float(f.uniform(2.5, 5.0))
        direction = f.normal(0, 1, 3)
        direction /= np.linalg.norm(direction)
        aneurysm = (site * size + direction * (radius + 0.8), radius)
    vessels = [
        (p, q, r)
        for (points, r), shift in zip(ARTERIES, jitter, strict=True)
        for p, q in pairwise([np.asarray(point, dtype=float) * size + shift for point in points])
    ]
    images = []
    for i in range(TOF_SLICES):
        z = TOF_FIRST_Z + i * TOF_STEP
        layers, _brain = _slice(head, z, TOF_SHAPE, TOF_SPACING)
        c = _paint(layers, VALUES["TOF"], TOF_SHAPE)
        c += draw.gaussian(case.noise, TOF_SHAPE, 0.02)
        for tube in _tubes(head, z, vessels):
            draw.brighten(c, tube, 0.92)
        boxes: tuple[Box, ...] = ()
        if aneurysm is not None:
            centre, radius = aneurysm
            box = draw.brighten(c, _tubes(head, z, [(centre, centre, radius)])[0], 0.97)
            boxes = (box.box,) if box is not None and box.box else ()
        images.append(RenderedImage(draw.to_uint(c, 12), boxes, position_mm=z))
    series = RenderedSeries(
        "TOF",
        "TOF_3D_multi-slab",
        tuple(images),
        (TOF_SPACING, TOF_SPACING),
        12,
        (1600.0, 3200.0),
        slice_thickness=TOF_STEP,
    )
    return RenderedStudy(
        case.exam, "brain", case.abnormal, "aneurysm" if aneurysm else None, None, (series,)
    )
