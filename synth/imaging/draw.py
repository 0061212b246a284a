"""Drawing primitives for the renderers: shapes with soft edges and exact supports.

A shape is first computed as a ``Patch``: a weight map over the bounding window of the shape only,
so an image with a hundred shapes still renders in a few milliseconds. A patch is then added,
painted or multiplied onto a canvas (greyscale ``(rows, cols)`` or RGB ``(rows, cols, 3)``), and
reports the box of the pixels it changed. Findings are drawn this way after the anatomy, so a
finding's box is exactly where the abnormal image differs from the normal one rendered from the
same random streams.

Coordinates are ``(y, x)`` in pixels (row, column), as numpy indexes images.

The primitives are written for speed, because a city renders tens of thousands of images: each
shape is built from row and column vectors combined in as few full-window passes as possible
(numpy calls, not pixels, dominate small windows), clipping uses ``ndarray.clip`` (numpy's
``maximum`` against a scalar is several times slower), and fractional powers and normal noise,
which cost tens of nanoseconds per pixel in numpy, come from lookup tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from synth.imaging.rendered import Box

F32 = NDArray[np.float32]
Point = tuple[float, float]
Value = float | tuple[float, float, float]

MAX_SIDE = 4096  # canvases are far smaller; the shared coordinate vector covers them
# Pixel coordinates 0, 1, 2, ...: windows slice their row and column coordinates from here.
_COORDS = np.arange(MAX_SIDE, dtype=np.float32)
_COORDS.flags.writeable = False
POWER_STEPS = 65535  # resolution of the fractional-power tables over [0, 1]


@dataclass(frozen=True)
class Patch:
    """A shape's weight (0 outside it, up to 1 inside) over the window ``win`` of a canvas."""

    win: Box
    weight: F32

    @property
    def box(self) -> Box | None:
        """The box of the non-zero weights, in canvas pixels."""
        rows = np.flatnonzero(self.weight.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self.weight.any(axis=0))
        x0, y0 = self.win[0], self.win[1]
        return (
            x0 + int(cols[0]),
            y0 + int(rows[0]),
            x0 + int(cols[-1]) + 1,
            y0 + int(rows[-1]) + 1,
        )

    def masked(self, mask: F32) -> Patch:
        """The patch confined by a canvas-sized mask (lung, brain, gland)."""
        x0, y0, x1, y1 = self.win
        return Patch(self.win, self.weight * mask[y0:y1, x0:x1])


def union(boxes: Sequence[Box | Patch | None]) -> Box | None:
    """The smallest box holding every given box (or patch support)."""
    candidates = [b.box if isinstance(b, Patch) else b for b in boxes]
    real = [b for b in candidates if b is not None]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )


def window(shape: tuple[int, ...], y0: float, y1: float, x0: float, x1: float) -> Box | None:
    """The integer window ``(x0, y0, x1, y1)`` covering a span of rows and columns, clipped."""
    h, w = shape[0], shape[1]
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ValueError(f"canvas {h}x{w} is larger than {MAX_SIDE} pixels a side")
    iy0, iy1 = max(math.floor(y0), 0), min(math.ceil(y1) + 1, h)
    ix0, ix1 = max(math.floor(x0), 0), min(math.ceil(x1) + 1, w)
    if iy0 >= iy1 or ix0 >= ix1:
        return None
    return ix0, iy0, ix1, iy1


def _axes(win: Box) -> tuple[F32, F32]:
    """Row and column coordinates of a window, as read-only vectors."""
    x0, y0, x1, y1 = win
    return _COORDS[y0:y1], _COORDS[x0:x1]


@cache
def _power_table(power: float) -> F32:
    table: F32 = (np.linspace(0.0, 1.0, POWER_STEPS + 1) ** power).astype(np.float32)
    return table


def _power(weight: F32, power: float) -> F32:
    """``weight ** power`` for weights in ``[0, 1]``, reusing ``weight``'s memory where it can.

    Square roots and products are exact; other exponents are looked up in a table of 65536 steps,
    finer than the 12-bit output can show.
    """
    if power == 1.0:
        return weight
    if power == 0.5:
        return np.sqrt(weight, out=weight)
    if power == 2.0:
        return np.multiply(weight, weight, out=weight)
    if power == 1.5:
        return np.multiply(weight, np.sqrt(weight), out=weight)
    index = (weight * np.float32(POWER_STEPS) + np.float32(0.5)).astype(np.uint16)
    return np.take(_power_table(power), index)


def _ellipse_r2(
    shape: tuple[int, ...], cy: float, cx: float, ry: float, rx: float, angle: float, reach: float
) -> tuple[Box, F32] | None:
    """The squared elliptic radius (1 on the ellipse) over the window holding ``r <= reach``."""
    c, s = math.cos(angle), math.sin(angle)
    hy = reach * math.hypot(rx * s, ry * c)
    hx = reach * math.hypot(rx * c, ry * s)
    win = window(shape, cy - hy, cy + hy, cx - hx, cx + hx)
    if win is None:
        return None
    ys, xs = _axes(win)
    dy, dx = ys - np.float32(cy), xs - np.float32(cx)
    if s == 0.0:  # axis-aligned: the radius separates into a row and a column term
        v, u = dy * np.float32(1.0 / ry), dx * np.float32(1.0 / rx)
        return win, np.add.outer(v * v, u * u)
    u2 = np.add.outer(dy * np.float32(s / rx), dx * np.float32(c / rx))
    v2 = np.add.outer(dy * np.float32(c / ry), dx * np.float32(-s / ry))
    u2 *= u2
    v2 *= v2
    u2 += v2
    return win, u2


def blob(
    shape: tuple[int, ...],
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    *,
    angle: float = 0.0,
    power: float = 1.0,
) -> Patch | None:
    """Weight ``(1 - r^2)^power`` inside an ellipse, exactly zero outside it.

    ``power=0.5`` is the projected thickness of an ellipsoid (a radiograph of a ball); larger
    powers give softer, fluffier blobs.
    """
    got = _ellipse_r2(shape, cy, cx, ry, rx, angle, 1.0)
    if got is None:
        return None
    win, r2 = got
    weight = np.subtract(np.float32(1.0), r2, out=r2)
    weight.clip(0.0, 1.0, out=weight)
    return Patch(win, _power(weight, power))


def ellipse(
    shape: tuple[int, ...],
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    *,
    angle: float = 0.0,
    edge: float = 1.0,
) -> Patch | None:
    """A filled ellipse whose edge ramps over ``edge`` pixels."""
    k = min(ry, rx) / edge
    got = _ellipse_r2(shape, cy, cx, ry, rx, angle, 1.0 + 0.5 / k)
    if got is None:
        return None
    win, r2 = got
    weight = np.sqrt(r2, out=r2)  # weight = (1 - r) * k + 0.5, clipped to [0, 1]
    weight *= np.float32(-k)
    weight += np.float32(k + 0.5)
    weight.clip(0.0, 1.0, out=weight)
    return Patch(win, weight)


def polygon(shape: tuple[int, ...], points: Sequence[Point], *, edge: float = 1.0) -> Patch | None:
    """A filled convex polygon (vertices ``(y, x)``, either winding) with a soft edge."""
    ys = [float(p[0]) for p in points]
    xs = [float(p[1]) for p in points]
    win = window(shape, min(ys) - edge, max(ys) + edge, min(xs) - edge, max(xs) + edge)
    if win is None:
        return None
    n = len(points)
    area = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    sign = -1.0 if area > 0 else 1.0
    # Signed distance to each edge line, in units of ``edge``: a row term plus a column term.
    coefficients = []
    for i in range(n):
        ay, ax, by, bx = ys[i], xs[i], ys[(i + 1) % n], xs[(i + 1) % n]
        ey, ex = by - ay, bx - ax
        k = sign / (math.hypot(ey, ex) or 1.0) / edge
        coefficients.append((ey * k, -ex * k, (ay * ex - ax * ey) * k + 0.5))
    col_k, row_k, const = np.array(coefficients, dtype=np.float32).T
    rows, cols = _axes(win)
    row_terms = np.multiply.outer(row_k, rows) + const[:, None]
    inside = (row_terms[:, :, None] + np.multiply.outer(col_k, cols)[:, None, :]).min(axis=0)
    return Patch(win, inside.clip(0.0, 1.0, out=inside))


def between(
    shape: tuple[int, ...],
    xs: NDArray[Any],
    top: NDArray[Any],
    bottom: NDArray[Any],
    *,
    edge: float = 1.0,
) -> Patch | None:
    """The region between two curves ``top[i] < y < bottom[i]`` over the columns ``xs[i]``."""
    cols = np.asarray(xs).astype(int)
    keep = (cols >= 0) & (cols < shape[1])
    if not keep.any():
        return None
    cols = cols[keep]
    upper = np.asarray(top, dtype=np.float32)[keep]
    lower = np.asarray(bottom, dtype=np.float32)[keep]
    win = window(
        shape,
        float(upper.min()) - edge,
        float(lower.max()) + edge,
        float(cols.min()),
        float(cols.max()),
    )
    if win is None:
        return None
    x0, y0, x1, y1 = win
    yy = _COORDS[y0:y1, None]
    t = np.full(x1 - x0, 1e6, dtype=np.float32)
    b = np.full(x1 - x0, -1e6, dtype=np.float32)
    t[cols - x0], b[cols - x0] = upper, lower
    inside = np.minimum(yy - t, b - yy)
    inside *= np.float32(1.0 / edge)
    inside += np.float32(0.5)
    return Patch(win, inside.clip(0.0, 1.0, out=inside))


def _capsule(ys: F32, xs: F32, a: Point, b: Point, radius: float, hollow: float, flat: bool) -> F32:
    """A capsule's weight over the window with row coordinates ``ys`` and columns ``xs``."""
    (ay, ax), (by, bx) = a, b
    ey, ex = by - ay, bx - ax
    length2 = ey * ey + ex * ex or 1.0
    py, px = ys - np.float32(ay), xs - np.float32(ax)
    # Position along the axis (0 at a, 1 at b), clamped, then the offset from that axis point.
    t = np.add.outer(py * np.float32(ey / length2), px * np.float32(ex / length2))
    t.clip(0.0, 1.0, out=t)
    dy = py[:, None] - t * np.float32(ey)
    dx = np.multiply(t, np.float32(ex), out=t)
    np.subtract(px, dx, out=dx)
    dy *= dy
    dx *= dx
    d2: F32 = np.add(dy, dx, out=dy)
    if flat:
        np.sqrt(d2, out=d2)
        np.subtract(np.float32(radius + 0.5), d2, out=d2)
        d2.clip(0.0, 1.0, out=d2)
        return d2
    inner = None
    if hollow > 0.0:
        inner = d2 * np.float32(-1.0 / (radius * radius * hollow * hollow))
        inner += np.float32(1.0)
        inner.clip(0.0, 1.0, out=inner)
        np.sqrt(inner, out=inner)
        inner *= np.float32(0.8 * hollow)
    d2 *= np.float32(-1.0 / (radius * radius))
    d2 += np.float32(1.0)
    d2.clip(0.0, 1.0, out=d2)
    np.sqrt(d2, out=d2)
    if inner is not None:
        d2 -= inner
    return d2


def segment(
    shape: tuple[int, ...],
    a: Point,
    b: Point,
    radius: float,
    *,
    hollow: float = 0.0,
    flat: bool = False,
) -> Patch | None:
    """A capsule from ``a`` to ``b``.

    By default its profile is the chord of a cylinder (the radiograph of a tube or a long bone);
    ``hollow`` in ``[0, 1)`` removes a medullary cavity of that relative radius, which leaves the
    bright cortical edges a long bone shows. ``flat`` gives a uniform soft-edged band instead
    (vessels in a photograph).
    """
    reach = radius + 1.0
    (ay, ax), (by, bx) = a, b
    win = window(
        shape, min(ay, by) - reach, max(ay, by) + reach, min(ax, bx) - reach, max(ax, bx) + reach
    )
    if win is None:
        return None
    ys, xs = _axes(win)
    return Patch(win, _capsule(ys, xs, a, b, radius, hollow, flat))


def polyline(
    shape: tuple[int, ...],
    points: Sequence[Point],
    radius: float | Sequence[float],
    *,
    hollow: float = 0.0,
    flat: bool = False,
) -> Patch | None:
    """Capsules through consecutive ``points``; ``radius`` may taper point by point.

    Joints are combined with a maximum, so a curve does not brighten where its capsules meet.
    """
    radii = [float(radius)] * len(points) if isinstance(radius, int | float) else list(radius)
    if len(points) == 2:
        return segment(
            shape, points[0], points[1], 0.5 * (radii[0] + radii[1]), hollow=hollow, flat=flat
        )
    reach = max(radii) + 1.0
    ys = [p[0] for p in points]
    xs = [p[1] for p in points]
    win = window(shape, min(ys) - reach, max(ys) + reach, min(xs) - reach, max(xs) + reach)
    if win is None:
        return None
    layer = np.zeros((win[3] - win[1], win[2] - win[0]), dtype=np.float32)
    for i in range(len(points) - 1):
        r = 0.5 * (radii[i] + radii[i + 1])
        (ay, ax), (by, bx) = points[i], points[i + 1]
        sub = window(
            shape,
            min(ay, by) - r - 1,
            max(ay, by) + r + 1,
            min(ax, bx) - r - 1,
            max(ax, bx) + r + 1,
        )
        if sub is None:
            continue
        sub_ys, sub_xs = _axes(sub)
        w = _capsule(sub_ys, sub_xs, points[i], points[i + 1], r, hollow, flat)
        view = layer[sub[1] - win[1] : sub[3] - win[1], sub[0] - win[0] : sub[2] - win[0]]
        np.maximum(view, w, out=view)
    return Patch(win, layer)


def band(
    shape: tuple[int, ...],
    xs: NDArray[Any],
    ys: NDArray[Any],
    radius: float,
    offsets: Sequence[float] = (0.0,),
) -> Patch | None:
    """Bands of cylinder-chord profile centred on row ``ys[i] + offset`` in column ``xs[i]``.

    For ribs and clavicles: curves that are functions of the column. ``xs`` are consecutive
    integer columns. ``offsets`` (increasing, nearly evenly spaced, more than ``2 * radius``
    apart) stack parallel copies of the curve in one pass, as ribs are stacked.
    """
    cols = np.asarray(xs).astype(int)
    centres = np.asarray(ys, dtype=np.float32)
    keep = (cols >= 0) & (cols < shape[1])
    if not keep.any():
        return None
    cols, centres = cols[keep], centres[keep]
    offs = np.asarray(offsets, dtype=np.float32)
    win = window(
        shape,
        float(centres.min() + offs[0]) - radius,
        float(centres.max() + offs[-1]) + radius,
        float(cols.min()),
        float(cols.max()),
    )
    if win is None:
        return None
    x0, y0, x1, y1 = win
    row = np.full(x1 - x0, -1e6, dtype=np.float32)
    row[cols - x0] = centres + offs[0]
    rel = _COORDS[y0:y1, None] - row
    if offs.size > 1:
        step = float(offs[-1] - offs[0]) / (offs.size - 1)
        nearest = np.rint(rel * np.float32(1.0 / step))
        nearest.clip(0, offs.size - 1, out=nearest)
        rel -= np.take(offs - offs[0], nearest.astype(np.intp))
    rel *= np.float32(1.0 / radius)
    rel *= rel
    np.subtract(np.float32(1.0), rel, out=rel)
    rel.clip(0.0, 1.0, out=rel)
    return Patch(win, np.sqrt(rel, out=rel))


def _view(canvas: NDArray[np.float32], patch: Patch) -> tuple[NDArray[np.float32], F32]:
    x0, y0, x1, y1 = patch.win
    view = canvas[y0:y1, x0:x1]
    weight = patch.weight[:, :, None] if canvas.ndim == 3 else patch.weight
    return view, weight


def add(canvas: NDArray[np.float32], patch: Patch | None, value: Value) -> Patch | None:
    """Add ``value * weight`` (overlapping structures in a projection)."""
    if patch is not None:
        view, weight = _view(canvas, patch)
        view += weight * np.asarray(value, dtype=np.float32)
    return patch


def paint(canvas: NDArray[np.float32], patch: Patch | None, value: Value) -> Patch | None:
    """Blend towards ``value`` by the weight (one tissue replacing another)."""
    if patch is not None:
        view, weight = _view(canvas, patch)
        view += (np.asarray(value, dtype=np.float32) - view) * weight
    return patch


def scale(canvas: NDArray[np.float32], patch: Patch | None, factor: Value) -> Patch | None:
    """Multiply by ``factor`` where the weight is 1, blending to no change where it is 0."""
    if patch is not None:
        view, weight = _view(canvas, patch)
        view *= 1.0 - weight * (1.0 - np.asarray(factor, dtype=np.float32))
    return patch


def brighten(canvas: NDArray[np.float32], patch: Patch | None, value: float) -> Patch | None:
    """Raise to at least ``value * weight`` (a bright vessel in an angiogram)."""
    if patch is not None:
        view, weight = _view(canvas, patch)
        np.maximum(view, weight * np.float32(value), out=view)
    return patch


@cache
def _interp(n_out: int, n_in: int) -> tuple[NDArray[np.intp], NDArray[np.intp], F32, F32]:
    """Bilinear sampling of ``n_in`` points at ``n_out`` positions: neighbours and weights."""
    pos = np.linspace(0, n_in - 1, n_out, dtype=np.float32)
    lo = np.minimum(pos.astype(np.intp), max(n_in - 2, 0))
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    return lo, hi, 1 - frac, frac


def resize(small: NDArray[np.floating], rows: int, cols: int) -> F32:
    """Bilinear upsampling of a coarse grid to ``(rows, cols)``, one axis at a time.

    Deliberately not a matrix product: multi-threaded BLAS is pathologically slow for small
    matrices on some machines, and the gathers below cost well under a millisecond.
    """
    s = small.astype(np.float32)
    x0, x1, gx, fx = _interp(cols, s.shape[1])
    across = s[:, x0] * gx + s[:, x1] * fx
    y0, y1, gy, fy = _interp(rows, s.shape[0])
    out = across[y0] * gy[:, None]
    out += across[y1] * fy[:, None]
    return out


def smooth_noise(rng: np.random.Generator, rows: int, cols: int, cells: int) -> F32:
    """Low-frequency texture with about ``cells`` lumps across the shorter side, roughly N(0, 1)."""
    short = min(rows, cols)
    gh = max(2, round(cells * rows / short) + 1)
    gw = max(2, round(cells * cols / short) + 1)
    return resize(rng.standard_normal((gh, gw)) * 1.6, rows, cols)


@cache
def _normal_table(sigma: float) -> F32:
    """N(0, sigma^2) at the centres of 65536 equal-probability bins (symmetric, so half is
    computed and mirrored)."""
    dist = NormalDist(0.0, sigma)
    upper = np.array([dist.inv_cdf((k + 0.5) / 65536) for k in range(32768, 65536)])
    return np.concatenate([-upper[::-1], upper]).astype(np.float32)


def gaussian(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> F32:
    """Normal noise N(0, sigma^2) (detector and sensor noise).

    Uniform 16-bit draws are mapped through the normal quantile table: a quarter of the cost of
    ``standard_normal``, and after quantisation to 8 or 12 bits indistinguishable from it (the
    tails stop at 4.3 sd). Sigmas are few per process, so their tables are cached.
    """
    n = math.prod(shape)
    raw = rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
    return np.take(_normal_table(sigma), raw).reshape(shape)


def to_uint(canvas: NDArray[np.floating], bits: int) -> NDArray[np.uint16]:
    """Quantise a ``[0, 1]`` canvas to ``bits``-bit stored values."""
    top = (1 << bits) - 1
    scaled = canvas * np.float32(top)
    scaled.clip(0, top, out=scaled)
    out: NDArray[np.uint16] = np.rint(scaled, out=scaled).astype(np.uint16)
    return out


def to_rgb8(canvas: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Quantise a ``[0, 1]`` RGB canvas to 8 bits per sample."""
    scaled = canvas * np.float32(255.0)
    scaled.clip(0, 255, out=scaled)
    out: NDArray[np.uint8] = np.rint(scaled, out=scaled).astype(np.uint8)
    return out


def xray_finish(
    canvas: F32, noise: np.random.Generator, sigma: float, bits: int = 12
) -> NDArray[np.uint16]:
    """Add quantum-like noise and quantise a projection radiograph."""
    canvas += gaussian(noise, canvas.shape, sigma)
    return to_uint(canvas, bits)
