"""Lower-limb radiographs: the full-length standing film (leg-length service) and the knee AP.

The full-length film is tall (464x152 at 2.6 mm) with the pelvis, both femora, knees, tibiae,
fibulae and ankles. Leg length is measured from the top of the femoral head to the tibial
plafond; one leg is shorter by the study's difference, which is the regression value in mm. A
study is abnormal when the difference exceeds 20 mm; its box covers the whole shorter leg.
"""

from __future__ import annotations

import numpy as np

from synth.imaging import draw
from synth.imaging.rendered import Case, RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.rendered import single_image_study as _study

LEG_ROWS, LEG_COLS = 464, 152
LEG_SHAPE = (LEG_ROWS, LEG_COLS)
LEG_SPACING = 2.6  # mm per pixel, so the film is 1206 x 395 mm
LEG_WINDOW = (1800.0, 3400.0)
ABNORMAL_MM = 20.0

KNEE_SHAPE = (224, 192)
KNEE_SPACING = (0.7, 0.7)
KNEE_WINDOW = (1900.0, 3400.0)


def _leg_difference(case: Case) -> float:
    """The leg-length difference in mm: small when normal, beyond 20 mm when abnormal."""
    f = case.finding
    if case.abnormal:
        return round(float(f.uniform(22.0, 45.0)), 1)
    return round(min(abs(float(f.normal(0.0, 5.0))), 15.0), 1)


def _leg(
    c: draw.F32, hip: tuple[float, float], femur: float, tibia: float, side: float, bone: float
) -> list[draw.Patch | None]:
    """One leg from the femoral head down to the foot; returns the patches it drew."""
    hy, hx = hip
    knee_y, knee_x = hy + femur, hx - side * 12
    ankle_y, ankle_x = knee_y + tibia, knee_x + side * 2
    neck = (hy + 10, hx + side * 14)
    drawn = [
        draw.add(
            c,
            draw.segment(
                LEG_SHAPE,
                (hy + 18, hx + side * 40),
                (ankle_y + 14, ankle_x + side * 6),
                26,
                flat=True,
            ),
            0.12,
        ),
        draw.add(c, draw.blob(LEG_SHAPE, hy, hx, 10, 10, power=0.5), 0.30 * bone),
        draw.add(c, draw.segment(LEG_SHAPE, (hy, hx), neck, 6), 0.22 * bone),
        draw.add(
            c, draw.blob(LEG_SHAPE, neck[0] + 2, neck[1] + side * 4, 9, 7, power=0.5), 0.18 * bone
        ),
        draw.add(
            c, draw.segment(LEG_SHAPE, neck, (knee_y - 12, knee_x), 6.5, hollow=0.55), 0.30 * bone
        ),
    ]
    for dx in (-8.0, 8.0):  # condyles and tibial plateau
        drawn.append(
            draw.add(c, draw.blob(LEG_SHAPE, knee_y - 6, knee_x + dx, 8, 8, power=0.5), 0.22 * bone)
        )
        drawn.append(
            draw.add(c, draw.blob(LEG_SHAPE, knee_y + 6, knee_x + dx, 6, 9, power=0.6), 0.18 * bone)
        )
    drawn += [
        draw.add(c, draw.blob(LEG_SHAPE, knee_y - 12, knee_x, 6, 7, power=0.5), 0.06 * bone),
        draw.add(
            c,
            draw.segment(LEG_SHAPE, (knee_y + 10, knee_x), (ankle_y - 4, ankle_x), 5.5, hollow=0.5),
            0.30 * bone,
        ),
        draw.add(
            c,
            draw.segment(
                LEG_SHAPE, (knee_y + 10, knee_x + side * 11), (ankle_y, ankle_x + side * 9), 2.5
            ),
            0.18 * bone,
        ),
        draw.add(c, draw.blob(LEG_SHAPE, ankle_y + 5, ankle_x, 6, 9, power=0.5), 0.2 * bone),
        draw.add(
            c,
            draw.polygon(
                LEG_SHAPE,
                [
                    (ankle_y + 10, ankle_x - 8),
                    (ankle_y + 10, ankle_x + 8),
                    (ankle_y + 24, ankle_x + 10),
                    (ankle_y + 24, ankle_x - 10),
                ],
                edge=2,
            ),
            0.16 * bone,
        ),
    ]
    return drawn


def leg_length(case: Case) -> RenderedStudy:
    """Standing full-length AP of both lower limbs (DX, pixel spacing in mm)."""
    a = case.anatomy
    c = np.full(LEG_SHAPE, 0.04, dtype=np.float32)
    scale = 0.78 + 0.22 * min(case.age_years / 16.0, 1.0)
    femur_mm = float(a.normal(450, 25)) * scale
    tibia_mm = float(a.normal(370, 20)) * scale
    bone = float(a.uniform(0.8, 1.0))
    shorter = 1.0 if a.random() < 0.5 else -1.0  # image side of the shorter leg
    difference = _leg_difference(case)
    cx, hip_y = LEG_COLS / 2 + float(a.normal(0, 3)), 62.0 + float(a.normal(0, 4))
    draw.add(c, draw.ellipse(LEG_SHAPE, hip_y - 18, cx, 52, 70, edge=6), 0.14)  # pelvis soft tissue
    for side in (-1.0, 1.0):
        draw.add(
            c, draw.blob(LEG_SHAPE, hip_y - 36, cx + side * 40, 30, 26, power=0.6), 0.16 * bone
        )
    draw.add(c, draw.blob(LEG_SHAPE, hip_y - 34, cx, 26, 14, power=0.6), 0.18 * bone)  # sacrum
    draw.add(c, draw.ellipse(LEG_SHAPE, hip_y + 16, cx, 8, 18), 0.1 * bone)  # pubic rami
    boxes = []
    for side in (-1.0, 1.0):
        loss = difference / LEG_SPACING if side == shorter else 0.0
        total = (femur_mm + tibia_mm) / LEG_SPACING
        femur = femur_mm / LEG_SPACING * (1 - loss / total)
        tibia = tibia_mm / LEG_SPACING * (1 - loss / total)
        drawn = _leg(c, (hip_y, cx + side * 48), femur, tibia, side, bone)
        if side == shorter and case.abnormal:
            box = draw.union(drawn)
            if box:
                boxes.append((box[0], box[1], box[2], LEG_ROWS))
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, tuple(boxes), view="AP", laterality="B")
    series = RenderedSeries(
        "AP", "LOWER LIMB FULL AP", (image,), (LEG_SPACING, LEG_SPACING), 12, LEG_WINDOW
    )
    return _study(case, "leg_length", "leg_length_discrepancy", series, difference)


def knee_ap(case: Case) -> RenderedStudy:
    """AP knee, right or left (fibula on the lateral side), with age-related narrowing."""
    a = case.anatomy
    shape = KNEE_SHAPE
    right = bool(a.random() < 0.5)
    lateral = -1.0 if right else 1.0  # image side of the patient's lateral
    c = np.full(shape, 0.05, dtype=np.float32)
    draw.paint(c, draw.polygon(shape, [(0, 30), (0, 162), (224, 150), (224, 42)], edge=6), 0.32)
    cx = 96 + float(a.normal(0, 4))
    gap = max(9.0 - 0.06 * max(case.age_years - 40, 0) + float(a.normal(0, 1)), 3.0)
    joint = 112.0 + float(a.normal(0, 4))
    draw.add(
        c,
        draw.polygon(
            shape,
            [(0, cx - 20), (0, cx + 20), (joint - 30, cx + 40), (joint - 30, cx - 40)],
            edge=1.5,
        ),
        0.26,
    )
    draw.add(c, draw.segment(shape, (0, cx), (joint - 40, cx), 18, hollow=0.6), 0.1)
    for side in (-1.0, 1.0):
        draw.add(c, draw.blob(shape, joint - 22, cx + side * 24, 22, 22, power=0.5), 0.22)
    draw.add(c, draw.blob(shape, joint - 10, cx, 10, 8, power=1.0), -0.12)  # intercondylar notch
    draw.add(c, draw.ellipse(shape, joint - 40, cx, 22, 18), 0.06)  # patella
    tib = joint + gap
    draw.add(
        c,
        draw.polygon(
            shape,
            [(tib, cx - 48), (tib, cx + 48), (tib + 40, cx + 24), (tib + 40, cx - 24)],
            edge=1.5,
        ),
        0.26,
    )
    draw.add(c, draw.segment(shape, (tib + 30, cx), (224, cx), 19, hollow=0.6), 0.28)
    draw.add(c, draw.blob(shape, tib + 26, cx + lateral * 46, 10, 9, power=0.5), 0.2)
    draw.add(
        c,
        draw.segment(shape, (tib + 30, cx + lateral * 48), (224, cx + lateral * 44), 6, hollow=0.4),
        0.2,
    )
    if case.age_years > 55:  # marginal osteophytes
        for side in (-1.0, 1.0):
            draw.add(c, draw.blob(shape, tib + 2, cx + side * 50, 4, 5, power=0.5), 0.12)
    pixels = draw.xray_finish(c, case.noise, 0.01)
    image = RenderedImage(pixels, (), view="AP", laterality="R" if right else "L")
    series = RenderedSeries("AP", "KNEE AP", (image,), KNEE_SPACING, 12, KNEE_WINDOW)
    return _study(case, None, None, series)
