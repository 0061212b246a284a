"""The fast drawing primitives: batches equal their shapes drawn one by one, lookup tables stay
true to the functions they stand for, and fast UIDs equal the uuid5 ones."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from synth.imaging import draw
from synth.imaging.uids import NAMESPACE, uid

SHAPE = (160, 200)


def _same(batch: list[draw.Patch | None], single: list[draw.Patch | None]) -> None:
    assert len(batch) == len(single)
    for a, b in zip(batch, single, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.win == b.win
            np.testing.assert_allclose(a.weight, b.weight, atol=2e-5)


def _ellipses(rng: np.random.Generator, n: int) -> list[draw.Ellipse]:
    """Small and large, rotated and upright, some partly or wholly off the canvas."""
    return [
        (
            float(rng.uniform(-20, 180)),
            float(rng.uniform(-20, 220)),
            float(rng.uniform(1, 40 if k % 3 == 0 else 8)),
            float(rng.uniform(1, 40 if k % 3 == 0 else 8)),
            float(rng.uniform(0, 3)) if k % 2 else 0.0,
        )
        for k in range(n)
    ]


@pytest.mark.parametrize("seed", range(3))
def test_batched_ellipses_and_blobs_equal_single_ones(seed: int) -> None:
    specs = _ellipses(np.random.default_rng(seed), 40)
    _same(
        draw.ellipses(SHAPE, specs, edge=2.0),
        [draw.ellipse(SHAPE, cy, cx, ry, rx, angle=t, edge=2.0) for cy, cx, ry, rx, t in specs],
    )
    for power in (0.5, 0.7, 1.5):
        _same(
            draw.blobs(SHAPE, specs, power=power),
            [draw.blob(SHAPE, cy, cx, ry, rx, angle=t, power=power) for cy, cx, ry, rx, t in specs],
        )


@pytest.mark.parametrize("seed", range(3))
def test_batched_polygons_equal_single_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    polys = []
    for k in range(30):  # convex: points on an ellipse, in angle order, 3 to 6 of them
        cy, cx, r = rng.uniform(-10, 170), rng.uniform(-10, 210), rng.uniform(2, 30)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 3 + k % 4))
        polys.append([(cy + r * np.sin(t), cx + 1.3 * r * np.cos(t)) for t in angles])
    _same(
        draw.polygons(SHAPE, polys, edge=1.5),
        [draw.polygon(SHAPE, points, edge=1.5) for points in polys],
    )


@pytest.mark.parametrize(("hollow", "flat"), [(0.0, False), (0.5, False), (0.0, True)])
def test_batched_segments_equal_single_ones(hollow: float, flat: bool) -> None:
    rng = np.random.default_rng(4)
    ends = [
        (
            (float(rng.uniform(-10, 170)), float(rng.uniform(-10, 210))),
            (float(rng.uniform(-10, 170)), float(rng.uniform(-10, 210))),
            float(rng.uniform(0.8, 6)),
        )
        for _ in range(40)  # enough for the array-computed rows
    ]
    _same(
        draw.segments(SHAPE, ends, hollow=hollow, flat=flat),
        [draw.segment(SHAPE, a, b, r, hollow=hollow, flat=flat) for a, b, r in ends],
    )


def test_lifted_segment_is_the_cross_section_of_a_3d_capsule() -> None:
    """A vessel crossing the slice: the section shrinks to nothing as the slice leaves it."""
    a, b = (80.0, 60.0), (80.0, 140.0)
    widths = []
    for height in (0.0, 6.0, 9.0, 10.5):
        (patch,) = draw.segments(SHAPE, [(a, b, 10.0)], flat=True, heights=[(height, height)])
        widths.append(0 if patch is None else int((patch.weight[:, 40] > 0.5).sum()))
    assert widths[0] > widths[1] > widths[2] > widths[3] == 0


def test_unit_power_follows_the_power_function() -> None:
    x = np.linspace(0.0, 1.0, 10_001, dtype=np.float32)
    for exponent in (0.12, 0.5, 0.7, 0.75, 1.0, 1.2, 1.5, 2.0):
        got = draw.unit_power(x.copy(), exponent)
        want = x.astype(np.float64) ** exponent
        assert np.abs(got - want)[x > 0.01].max() < 2e-3, exponent
        assert got[0] == 0.0


def test_gaussian_noise_is_normal_and_reproducible() -> None:
    a = draw.gaussian(np.random.default_rng(9), (400, 500), 0.5)
    b = draw.gaussian(np.random.default_rng(9), (400, 500), 0.5)
    assert a.shape == (400, 500) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert abs(float(a.mean())) < 0.005
    assert abs(float(a.std()) - 0.5) < 0.005
    assert 0.043 < float((np.abs(a) > 1.0).mean()) < 0.048  # beyond 2 sd: 4.55 %


def test_fast_uids_equal_uuid5() -> None:
    for parts in [("study",), ("series", 2, "instance", 31), ("frame-of-reference",)]:
        name = "/".join(str(p) for p in (20240601, "A0000042", *parts))
        assert uid(20240601, "A0000042", *parts) == f"2.25.{uuid.uuid5(NAMESPACE, name).int}"
