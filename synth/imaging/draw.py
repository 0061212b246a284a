"""Drawing primitives for the renderers: shapes with soft edges and exact supports.

A shape is first computed as a ``Patch``: a weight map over the bounding window of the shape only,
so an image with a hundred shapes still renders in a few milliseconds. A patch is then added,
painted or multiplied onto a canvas (greyscale ``(rows, cols)`` or colour, planar ``(3, rows,
cols)``: numpy broadcasts a weight over planes fast, but over a trailing axis of 3 it runs
twenty times slower), and reports the box of the pixels it changed. Findings are drawn this way
after the anatomy, so a finding's box is exactly where the abnormal image differs from the normal
one rendered from the same random streams.

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


def coordinates(n: int) -> F32:
    """Pixel coordinates ``0 .. n - 1`` as a read-only vector (shared, so free to get)."""
    return _COORDS[:n]


def _axes(win: Box) -> tuple[F32, F32]:
    """Row and column coordinates of a window, as read-only vectors."""
    x0, y0, x1, y1 = win
    return _COORDS[y0:y1], _COORDS[x0:x1]


@cache
def _power_table(exponent: float) -> F32:
    table: F32 = (np.linspace(0.0, 1.0, POWER_STEPS + 1) ** exponent).astype(np.float32)
    return table


def unit_power(values: F32, exponent: float) -> F32:
    """``values ** exponent`` for values in ``[0, 1]``; may overwrite ``values`` with the result.

    numpy's float power costs twenty times a square root, so square roots and products are used
    where they are exact and other exponents are looked up in a table of 65536 steps, finer
    than the 8- and 12-bit outputs can show.
    """
    if exponent == 1.0:
        return values
    if exponent == 0.5:
        return np.sqrt(values, out=values)
    if exponent == 2.0:
        return np.multiply(values, values, out=values)
    if exponent == 1.5:
        return np.multiply(values, np.sqrt(values), out=values)
    index = (values * np.float32(POWER_STEPS) + np.float32(0.5)).astype(np.uint16)
    return np.take(_power_table(exponent), index)


def _patches(wins: Sequence[Box | None], weights: F32) -> list[Patch | None]:
    """Patches viewing a padded batch: row ``k`` of ``weights`` belongs to the k-th window
    present, and only its top-left window-sized corner is its own."""
    if len(wins) == 1:
        return [None if wins[0] is None else Patch(wins[0], weights[0])]
    out: list[Patch | None] = []
    k = 0
    for win in wins:
        if win is None:
            out.append(None)
            continue
        x0, y0, x1, y1 = win
        out.append(Patch(win, weights[k, : y1 - y0, : x1 - x0]))
        k += 1
    return out


class _Constants:
    """Per-shape constants of a batch of S shapes, one row of numbers per shape.

    ``line(j)`` broadcasts against per-shape vectors ``(S, n)`` and ``plane(j)`` against planes
    ``(S, H, W)``. A batch of one uses plain floats and unbatched arrays instead, because
    numpy's loops against a scalar are several times faster than against a broadcast array;
    ``batched`` restores the leading axis.
    """

    def __init__(self, rows: Sequence[tuple[float, ...]]) -> None:
        self.single = len(rows) == 1
        self.first = rows[0]
        self.table = (
            np.empty((0, 0), dtype=np.float32) if self.single else np.array(rows, dtype=np.float32)
        )

    def line(self, j: int) -> float | F32:
        return self.first[j] if self.single else self.table[:, j, None]

    def plane(self, j: int) -> float | F32:
        return self.first[j] if self.single else self.table[:, j, None, None]

    def batched(self, planes: F32) -> F32:
        return planes[None] if self.single else planes


Ellipse = tuple[float, float, float, float, float]  # cy, cx, ry, rx, angle


def _ellipses_r2(
    shape: tuple[int, ...], specs: Sequence[Ellipse], reach: Sequence[float]
) -> tuple[list[Box | None], F32 | None]:
    """The squared elliptic radius (1 on the ellipse) of each ellipse over the window holding
    ``r <= reach``, as a padded batch ``(S, H, W)`` over the windows present (``None`` when
    none is)."""
    wins: list[Box | None] = []
    rows = []
    for (cy, cx, ry, rx, angle), k in zip(specs, reach, strict=True):
        c, s = math.cos(angle), math.sin(angle)
        hy = k * math.hypot(rx * s, ry * c)
        hx = k * math.hypot(rx * c, ry * s)
        win = window(shape, cy - hy, cy + hy, cx - hx, cx + hx)
        wins.append(win)
        if win is not None:
            rows.append((win[1] - cy, win[0] - cx, s / rx, c / rx, c / ry, -s / ry))
    if not rows:
        return wins, None
    h = max(w[3] - w[1] for w in wins if w is not None)
    w = max(w[2] - w[0] for w in wins if w is not None)
    p = _Constants(rows)
    dy = _COORDS[:h] + p.line(0)
    dx = _COORDS[:w] + p.line(1)
    if not any(row[2] for row in rows):  # axis-aligned: a row term plus a column term
        v, u = dy * p.line(4), dx * p.line(3)
        v *= v
        u *= u
        return wins, p.batched(v[..., :, None] + u[..., None, :])
    u2 = (dy * p.line(2))[..., :, None] + (dx * p.line(3))[..., None, :]
    v2 = (dy * p.line(4))[..., :, None] + (dx * p.line(5))[..., None, :]
    u2 *= u2
    v2 *= v2
    u2 += v2
    return wins, p.batched(u2)


def blobs(
    shape: tuple[int, ...], specs: Sequence[Ellipse], *, power: float = 1.0
) -> list[Patch | None]:
    """Many ``blob``s ``(cy, cx, ry, rx, angle)`` in one batch of numpy calls (per-call
    overhead, not pixels, dominates small shapes)."""
    wins, r2 = _ellipses_r2(shape, specs, [1.0] * len(specs))
    if r2 is None:
        return [None] * len(specs)
    weight = np.subtract(np.float32(1.0), r2, out=r2)
    weight.clip(0.0, 1.0, out=weight)
    return _patches(wins, unit_power(weight, power))


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
    return blobs(shape, [(cy, cx, ry, rx, angle)], power=power)[0]


def ellipses(
    shape: tuple[int, ...], specs: Sequence[Ellipse], *, edge: float = 1.0
) -> list[Patch | None]:
    """Many ``ellipse``s ``(cy, cx, ry, rx, angle)`` in one batch of numpy calls."""
    # weight = (1 - r) * k + 0.5, clipped to [0, 1], with k = min(ry, rx) / edge: it reaches
    # zero at r = 1 + 0.5 / k.
    slopes = [min(ry, rx) / edge for _cy, _cx, ry, rx, _angle in specs]
    wins, r2 = _ellipses_r2(shape, specs, [1.0 + 0.5 / k for k in slopes])
    if r2 is None:
        return [None] * len(specs)
    k = _Constants([(k,) for k, win in zip(slopes, wins, strict=True) if win is not None])
    weight = np.sqrt(r2, out=r2)
    weight *= -k.plane(0)
    weight += k.plane(0) + 0.5
    weight.clip(0.0, 1.0, out=weight)
    return _patches(wins, weight)


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
    return ellipses(shape, [(cy, cx, ry, rx, angle)], edge=edge)[0]


def polygons(
    shape: tuple[int, ...], polys: Sequence[Sequence[Point]], *, edge: float = 1.0
) -> list[Patch | None]:
    """Many ``polygon``s in one batch of numpy calls."""
    wins: list[Box | None] = []
    coefficients = []
    for points in polys:
        ys = [float(p[0]) for p in points]
        xs = [float(p[1]) for p in points]
        win = window(shape, min(ys) - edge, max(ys) + edge, min(xs) - edge, max(xs) + edge)
        wins.append(win)
        if win is None:
            continue
        n = len(points)
        area = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
        sign = -1.0 if area > 0 else 1.0
        # Signed distance to each edge line, in units of ``edge`` and relative to the window
        # origin: a row term plus a column term.
        y0, x0 = win[1], win[0]
        edges = []
        for i in range(n):
            ay, ax, by, bx = ys[i] - y0, xs[i] - x0, ys[(i + 1) % n] - y0, xs[(i + 1) % n] - x0
            ey, ex = by - ay, bx - ax
            k = sign / (math.hypot(ey, ex) or 1.0) / edge
            edges.append((ey * k, -ex * k, (ay * ex - ax * ey) * k + 0.5))
        coefficients.append(edges)
    if not coefficients:
        return [None] * len(polys)
    most = max(len(edges) for edges in coefficients)
    # Repeating an edge leaves the minimum over edges unchanged.
    padded = [edges + [edges[0]] * (most - len(edges)) for edges in coefficients]
    h = max(w[3] - w[1] for w in wins if w is not None)
    w = max(w[2] - w[0] for w in wins if w is not None)
    c = np.array(padded, dtype=np.float32)  # (S, edges, 3)
    rows = c[:, :, 1, None] * _COORDS[:h] + c[:, :, 2, None]
    cols = c[:, :, 0, None] * _COORDS[:w]
    inside = (rows[:, :, :, None] + cols[:, :, None, :]).min(axis=1)
    return _patches(wins, inside.clip(0.0, 1.0, out=inside))


def polygon(shape: tuple[int, ...], points: Sequence[Point], *, edge: float = 1.0) -> Patch | None:
    """A filled convex polygon (vertices ``(y, x)``, either winding) with a soft edge."""
    return polygons(shape, [points], edge=edge)[0]


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


def _capsules(
    wins: Sequence[Box],
    ends: Sequence[tuple[float, float, float, float, float]],
    hollow: float,
    flat: bool,
) -> F32:
    """Weights ``(S, H, W)`` of S capsules ``(ay, ax, by, bx, radius)``, each over its window
    ``wins[s]`` padded at the far sides to the largest window: one batch of numpy calls for a
    whole polyline, since per-call overhead, not pixels, dominates such small windows."""
    h = max(win[3] - win[1] for win in wins)
    w = max(win[2] - win[0] for win in wins)
    rows = []
    for (x0, y0, _x1, _y1), (ay, ax, by, bx, r) in zip(wins, ends, strict=True):
        ey, ex = by - ay, bx - ax
        length2 = ey * ey + ex * ex or 1.0
        rows.append((y0 - ay, x0 - ax, ey / length2, ex / length2, ey, ex, r))
    p = _Constants(rows)
    py = _COORDS[:h] + p.line(0)  # row offsets from a
    px = _COORDS[:w] + p.line(1)  # column offsets from a
    # Position along the axis (0 at a, 1 at b), clamped, then the offset from that axis point.
    t = (py * p.line(2))[..., :, None] + (px * p.line(3))[..., None, :]
    t.clip(0.0, 1.0, out=t)
    dy = py[..., :, None] - t * p.plane(4)
    np.multiply(t, p.plane(5), out=t)
    dx = np.subtract(px[..., None, :], t, out=t)
    dy *= dy
    dx *= dx
    d2: F32 = np.add(dy, dx, out=dy)
    radius = p.plane(6)
    if flat:
        np.sqrt(d2, out=d2)
        np.subtract(radius + 0.5, d2, out=d2)
        d2.clip(0.0, 1.0, out=d2)
        return p.batched(d2)
    inner = None
    if hollow > 0.0:
        inner = d2 * (-1.0 / (hollow * hollow) / (radius * radius))
        inner += 1.0
        inner.clip(0.0, 1.0, out=inner)
        np.sqrt(inner, out=inner)
        inner *= 0.8 * hollow
    d2 *= -1.0 / (radius * radius)
    d2 += 1.0
    d2.clip(0.0, 1.0, out=d2)
    np.sqrt(d2, out=d2)
    if inner is not None:
        d2 -= inner
    return p.batched(d2)


def segments(
    shape: tuple[int, ...],
    ends: Sequence[tuple[Point, Point, float]],
    *,
    hollow: float = 0.0,
    flat: bool = False,
) -> list[Patch | None]:
    """Many ``segment``s ``(a, b, radius)`` in one batch of numpy calls."""
    wins: list[Box | None] = []
    kept: list[tuple[float, float, float, float, float]] = []
    for (ay, ax), (by, bx), r in ends:
        win = window(
            shape,
            min(ay, by) - r - 1,
            max(ay, by) + r + 1,
            min(ax, bx) - r - 1,
            max(ax, bx) + r + 1,
        )
        wins.append(win)
        if win is not None:
            kept.append((float(ay), float(ax), float(by), float(bx), float(r)))
    if not kept:
        return [None] * len(ends)
    present = [win for win in wins if win is not None]
    return _patches(wins, _capsules(present, kept, hollow, flat))


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
    return segments(shape, [(a, b, radius)], hollow=hollow, flat=flat)[0]


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
    pieces = segments(
        shape,
        [
            (points[i], points[i + 1], 0.5 * (radii[i] + radii[i + 1]))
            for i in range(len(points) - 1)
        ],
        hollow=hollow,
        flat=flat,
    )
    present = [piece for piece in pieces if piece is not None]
    if len(present) <= 1:
        return present[0] if present else None
    win = (
        min(p.win[0] for p in present),
        min(p.win[1] for p in present),
        max(p.win[2] for p in present),
        max(p.win[3] for p in present),
    )
    layer = np.zeros((win[3] - win[1], win[2] - win[0]), dtype=np.float32)
    for piece in present:
        x0, y0, x1, y1 = piece.win
        view = layer[y0 - win[1] : y1 - win[1], x0 - win[0] : x1 - win[0]]
        np.maximum(view, piece.weight, out=view)
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


def _view(canvas: F32, patch: Patch) -> F32:
    x0, y0, x1, y1 = patch.win
    if canvas.ndim == 3:
        return canvas[:, y0:y1, x0:x1]
    return canvas[y0:y1, x0:x1]


def _value(value: Value) -> float | F32:
    """A scalar as is (numpy keeps float32 arithmetic float32), a colour as a ``(3, 1, 1)``
    column that broadcasts over a planar canvas."""
    if isinstance(value, tuple):
        return np.array(value, dtype=np.float32)[:, None, None]
    return value


def add(canvas: F32, patch: Patch | None, value: Value) -> Patch | None:
    """Add ``value * weight`` (overlapping structures in a projection)."""
    if patch is not None:
        view = _view(canvas, patch)
        view += patch.weight * _value(value)
    return patch


def paint(canvas: F32, patch: Patch | None, value: Value) -> Patch | None:
    """Blend towards ``value`` by the weight (one tissue replacing another)."""
    if patch is not None:
        view = _view(canvas, patch)
        view += (_value(value) - view) * patch.weight
    return patch


def scale(canvas: F32, patch: Patch | None, factor: Value) -> Patch | None:
    """Multiply by ``factor`` where the weight is 1, blending to no change where it is 0."""
    if patch is not None:
        view = _view(canvas, patch)
        view *= 1.0 - patch.weight * (1.0 - _value(factor))
    return patch


def brighten(canvas: F32, patch: Patch | None, value: float) -> Patch | None:
    """Raise to at least ``value * weight`` (a bright vessel in an angiogram)."""
    if patch is not None:
        view = _view(canvas, patch)
        np.maximum(view, patch.weight * value, out=view)
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


def to_rgb8(canvas: F32) -> NDArray[np.uint8]:
    """Quantise a planar ``[0, 1]`` colour canvas to interleaved ``(rows, cols, 3)`` 8-bit RGB."""
    scaled = canvas * np.float32(255.0)
    scaled.clip(0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    out = np.empty((*canvas.shape[1:], 3), dtype=np.uint8)
    for k in range(3):  # one strided copy per channel: faster than a transposing astype
        out[:, :, k] = scaled[k]
    return out


def xray_finish(
    canvas: F32, noise: np.random.Generator, sigma: float, bits: int = 12
) -> NDArray[np.uint16]:
    """Add quantum-like noise and quantise a projection radiograph."""
    canvas += gaussian(noise, canvas.shape, sigma)
    return to_uint(canvas, bits)
