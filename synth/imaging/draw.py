"""Drawing primitives for the renderers: shapes with soft edges and exact supports.

A shape is first computed as a ``Patch``: a weight map over the bounding window of the shape only,
so an image with a hundred shapes still renders in a few milliseconds. A patch is then added,
painted or multiplied onto a canvas (greyscale ``(rows, cols)`` or colour, planar ``(3, rows,
cols)``: numpy broadcasts a weight over planes fast, but over a trailing axis of 3 it runs
twenty times slower), and reports the box of the pixels it changed. Findings are drawn this way
after the anatomy, so a finding's box is exactly where the abnormal image differs from the normal
one rendered from the same random streams.

Coordinates are ``(y, x)`` in pixels (row, column), as numpy indexes images.

The primitives are written for speed, because a city renders tens of thousands of images. A lone
shape is built from a row vector and a column vector combined in as few full-window passes as
possible. Shapes that come in numbers (disc spaces, vertebrae, vessels, carpal bones) have plural
forms (``ellipses``, ``blobs``, ``polygons``, ``segments``, ``polylines``) that compute shapes of
similar size as one batch of numpy calls, because per-call overhead, not pixels, dominates small
windows. Clipping uses ``ndarray.clip`` (numpy's ``maximum`` against a scalar is several times
slower), and fractional powers and normal noise, which cost tens of nanoseconds per pixel in
numpy, come from lookup tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
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
# Windows at least this large are computed one by one: per-call overhead no longer matters, and
# a lone window's row-plus-column form takes fewer passes than a batch's flattened one.
BATCH_PIXELS = 4096
MANY = 16  # shapes in one call from which their numbers are computed as arrays
NORMAL_LEVELS = 4096  # entries of the normal quantile tables (a 12-bit index)


@dataclass(slots=True)
class Patch:
    """A shape's weight (0 outside it, up to 1 inside) over the window ``win`` of a canvas.

    The weight may view an array shared with the other shapes of its batch: read it, never
    write it.
    """

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
    if exponent == 0.75:
        return np.sqrt(np.multiply(values, np.sqrt(values), out=values), out=values)
    index = (values * np.float32(POWER_STEPS) + np.float32(0.5)).astype(np.uint16)
    return np.take(_power_table(exponent), index)


Row = tuple[float, ...]  # one shape's numbers in a batch
_NO_TABLE = np.empty((0, 0), dtype=np.float32)


@lru_cache(maxsize=64)
def _flat_grid(h: int, w: int) -> tuple[F32, F32]:
    """Row and column coordinates of every pixel of an ``h`` x ``w`` window, flattened (the
    recent sizes are kept: batches of one kind of shape recur)."""
    ys = np.repeat(_COORDS[:h], w)
    xs = np.tile(_COORDS[:w], h)
    ys.flags.writeable = False
    xs.flags.writeable = False
    return ys, xs


class _Constants:
    """Per-shape constants of a batch of S shapes over windows padded to ``h`` x ``w``, one
    ``Row`` per shape.

    A batch works on flattened windows ``(S, h * w)``: ``grid`` gives the pixel coordinates and
    ``get(j)`` the j-th constant as an ``(S, 1)`` column, so every numpy loop runs over a whole
    window (broadcasting over a short trailing axis runs several times slower). A batch of one
    works on an ``(h, w)`` window as a row vector plus a column vector, with plain floats:
    numpy's loops against a scalar are the fast ones. ``batched`` gives ``(S, h, w)`` either way.
    """

    def __init__(self, rows: Sequence[Row], h: int, w: int) -> None:
        self.single = len(rows) == 1
        self.h, self.w = h, w
        self.first = rows[0]
        self.table = _NO_TABLE if self.single else np.array(rows, dtype=np.float32)

    def grid(self) -> tuple[F32, F32]:
        if self.single:
            return _COORDS[: self.h, None], _COORDS[None, : self.w]
        return _flat_grid(self.h, self.w)

    def get(self, j: int) -> float | F32:
        return self.first[j] if self.single else self.table[:, j, None]

    def batched(self, planes: F32) -> F32:
        if self.single:
            return planes[None]
        return planes.reshape(len(self.table), self.h, self.w)


def _groups(sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """Batches of window ``sizes`` (rows, columns): each batch's padded size and the indexes
    of its members. Largest first, a window joins the current batch while padding every member
    to the batch's common size at most doubles the pixels computed (plus a little, so that tiny
    shapes always batch)."""
    areas = [h * w for h, w in sizes]
    groups: list[tuple[int, int, list[int]]] = []
    h = w = pixels = 0
    members: list[int] = []
    for k in sorted(range(len(sizes)), key=areas.__getitem__, reverse=True):
        kh, kw = sizes[k]
        nh, nw = max(h, kh), max(w, kw)
        if members and (len(members) + 1) * nh * nw <= 2 * (pixels + areas[k]) + 64 * len(members):
            members.append(k)
            h, w, pixels = nh, nw, pixels + areas[k]
            continue
        if members:
            groups.append((h, w, members))
        h, w, pixels, members = kh, kw, areas[k], [k]
    if members:
        groups.append((h, w, members))
    return groups


def _batched(
    wins: Sequence[Box | None],
    rows: Sequence[Row | None],
    compute: Callable[[int, int, list[Row]], F32],
) -> list[Patch | None]:
    """Patches of many shapes, computed in batches of similar size.

    ``compute(h, w, rows)`` returns the weights ``(S, h, w)`` of S shapes over windows padded
    at the far sides to ``h`` x ``w``, each row's numbers relative to its own window origin.
    """
    if len(wins) == 1:  # the common single shape: no grouping to do
        win, row = wins[0], rows[0]
        if win is None or row is None:
            return [None]
        return [Patch(win, compute(win[3] - win[1], win[2] - win[0], [row])[0])]
    shapes = [
        (k, win, row)
        for k, (win, row) in enumerate(zip(wins, rows, strict=True))
        if win is not None and row is not None
    ]
    sizes = [(win[3] - win[1], win[2] - win[0]) for _k, win, _row in shapes]
    out: list[Patch | None] = [None] * len(wins)
    for h, w, group in _groups(sizes):
        if h * w >= BATCH_PIXELS:  # large: one by one, each as a row and a column term
            for g in group:
                kh, kw = sizes[g]
                out[shapes[g][0]] = Patch(shapes[g][1], compute(kh, kw, [shapes[g][2]])[0])
            continue
        weights = compute(h, w, [shapes[g][2] for g in group])
        for j, g in enumerate(group):
            kh, kw = sizes[g]
            out[shapes[g][0]] = Patch(shapes[g][1], weights[j, :kh, :kw])
    return out


Ellipse = tuple[float, float, float, float, float]  # cy, cx, ry, rx, angle


def _ellipse_rows(
    shape: tuple[int, ...], specs: Sequence[Ellipse], reach: Sequence[float]
) -> tuple[list[Box | None], list[Row | None]]:
    """Each ellipse's window holding ``r <= reach`` and its row: the window origin relative to
    the centre, then the rotation over the radii."""
    wins: list[Box | None] = []
    rows: list[Row | None] = []
    for (cy, cx, ry, rx, angle), k in zip(specs, reach, strict=True):
        c, s = math.cos(angle), math.sin(angle)
        hy = k * math.hypot(rx * s, ry * c)
        hx = k * math.hypot(rx * c, ry * s)
        win = window(shape, cy - hy, cy + hy, cx - hx, cx + hx)
        wins.append(win)
        rows.append(
            None if win is None else (win[1] - cy, win[0] - cx, s / rx, c / rx, c / ry, -s / ry)
        )
    return wins, rows


def _ellipse_r2(p: _Constants, rotated: bool) -> F32:
    """The squared elliptic radius (1 on the ellipse) over the windows (see ``_Constants``)."""
    ys, xs = p.grid()
    dy, dx = ys + p.get(0), xs + p.get(1)
    if not rotated:  # a row term plus a column term
        v, u = dy * p.get(4), dx * p.get(3)
        v *= v
        u *= u
        r2: F32 = v + u
        return r2
    u2 = dy * p.get(2) + dx * p.get(3)
    v2 = dy * p.get(4) + dx * p.get(5)
    u2 *= u2
    v2 *= v2
    u2 += v2
    return u2


def blobs(
    shape: tuple[int, ...], specs: Sequence[Ellipse], *, power: float = 1.0
) -> list[Patch | None]:
    """Many ``blob``s ``(cy, cx, ry, rx, angle)``, in batches (per-call overhead, not pixels,
    dominates small shapes)."""
    wins, rows = _ellipse_rows(shape, specs, [1.0] * len(specs))

    def compute(h: int, w: int, group: list[Row]) -> F32:
        p = _Constants(group, h, w)
        r2 = _ellipse_r2(p, any(r[2] for r in group))
        weight = np.subtract(np.float32(1.0), r2, out=r2)
        weight.clip(0.0, 1.0, out=weight)
        return p.batched(unit_power(weight, power))

    return _batched(wins, rows, compute)


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
    """Many ``ellipse``s ``(cy, cx, ry, rx, angle)``, in batches."""
    # weight = (1 - r) * k + 0.5, clipped to [0, 1], with k = min(ry, rx) / edge: it reaches
    # zero at r = 1 + 0.5 / k.
    slopes = [min(ry, rx) / edge for _cy, _cx, ry, rx, _angle in specs]
    wins, rows = _ellipse_rows(shape, specs, [1.0 + 0.5 / k for k in slopes])
    rows = [None if r is None else (*r, k) for r, k in zip(rows, slopes, strict=True)]

    def compute(h: int, w: int, group: list[Row]) -> F32:
        p = _Constants(group, h, w)
        r2 = _ellipse_r2(p, any(r[2] for r in group))
        weight = np.sqrt(r2, out=r2)
        weight *= -p.get(6)
        weight += p.get(6) + 0.5
        weight.clip(0.0, 1.0, out=weight)
        return p.batched(weight)

    return _batched(wins, rows, compute)


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
    """Many ``polygon``s, in batches."""
    wins: list[Box | None] = []
    rows: list[Row | None] = []
    for points in polys:
        ys = [float(p[0]) for p in points]
        xs = [float(p[1]) for p in points]
        win = window(shape, min(ys) - edge, max(ys) + edge, min(xs) - edge, max(xs) + edge)
        wins.append(win)
        if win is None:
            rows.append(None)
            continue
        n = len(points)
        area = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
        sign = -1.0 if area > 0 else 1.0
        # Signed distance to each edge line, in units of ``edge`` and relative to the window
        # origin: a column term, a row term and a constant per edge, flattened.
        y0, x0 = win[1], win[0]
        row: list[float] = []
        for i in range(n):
            ay, ax, by, bx = ys[i] - y0, xs[i] - x0, ys[(i + 1) % n] - y0, xs[(i + 1) % n] - x0
            ey, ex = by - ay, bx - ax
            k = sign / (math.hypot(ey, ex) or 1.0) / edge
            row += (ey * k, -ex * k, (ay * ex - ax * ey) * k + 0.5)
        rows.append(tuple(row))

    def compute(h: int, w: int, group: list[Row]) -> F32:
        most = max(len(r) for r in group)
        # Repeating an edge leaves the minimum over edges unchanged.
        c = np.array([r + r[:3] * ((most - len(r)) // 3) for r in group], dtype=np.float32)
        c = c.reshape(len(group), most // 3, 3)  # (S, edges, 3)
        if len(group) == 1:  # (edges, h, 1) + (edges, 1, w): a row and a column term
            rows = c[0, :, 1, None, None] * _COORDS[:h, None] + c[0, :, 2, None, None]
            inside: F32 = (rows + c[0, :, 0, None, None] * _COORDS[:w]).min(axis=0)[None]
        else:  # (S, edges, h * w), see _Constants
            ys, xs = _flat_grid(h, w)
            dist = c[:, :, 1, None] * ys + c[:, :, 2, None]
            dist += c[:, :, 0, None] * xs
            inside = dist.min(axis=1).reshape(len(group), h, w)
        inside.clip(0.0, 1.0, out=inside)
        return inside

    return _batched(wins, rows, compute)


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


Capsule = tuple[float, float, float, float, float, float, float]  # ay, ax, az, by, bx, bz, r


def _capsules(h: int, w: int, group: list[Row], hollow: float, flat: bool, edge: float) -> F32:
    """Weights of capsules cut by the plane ``z = 0`` over padded windows, one row per capsule:
    its window origin relative to the end a, its axis over the squared length (y, x), the axis
    (y, x), radius, the plane's share of the axis position, the height of a below the plane,
    and the axis's z."""
    p = _Constants(group, h, w)
    solid = any(r[8] or r[9] for r in group)  # any end off the plane: cut 3D capsules
    ys, xs = p.grid()
    py, px = ys + p.get(0), xs + p.get(1)  # offsets from a
    # Position along the axis (0 at a, 1 at b), clamped, then the offset from that axis point.
    t = py * p.get(2) + px * p.get(3)
    if solid:
        t += p.get(7)
    t.clip(0.0, 1.0, out=t)
    dy = py - t * p.get(4)
    dz = p.get(8) - t * p.get(9) if solid else None
    np.multiply(t, p.get(5), out=t)
    dx = np.subtract(px, t, out=t)
    dy *= dy
    dx *= dx
    d2: F32 = np.add(dy, dx, out=dy)
    if dz is not None:
        dz *= dz
        d2 += dz
    radius = p.get(6)
    if flat:  # (radius - distance) / edge + 0.5, clipped to [0, 1]
        np.sqrt(d2, out=d2)
        np.subtract(radius + 0.5 * edge, d2, out=d2)
        if edge != 1.0:
            d2 *= 1.0 / edge
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
    edge: float = 1.0,
    heights: Sequence[tuple[float, float]] | None = None,
) -> list[Patch | None]:
    """Many ``segment``s ``(a, b, radius)``, in batches.

    ``heights`` lifts each segment's ends that many pixels off the image plane, which then shows
    the cross-section of 3D capsules (vessels crossing a slice). ``edge`` is the ramp width of
    a ``flat`` capsule's rim.
    """
    lifts = heights if heights is not None else [(0.0, 0.0)] * len(ends)
    reach = max(1.0, 0.5 * edge + 0.5) if flat else 1.0  # beyond the radius, to zero weight
    rows_of = _capsule_rows_numpy if len(ends) >= MANY else _capsule_rows
    wins, rows = rows_of(shape, ends, lifts, reach)
    return _batched(wins, rows, lambda h, w, group: _capsules(h, w, group, hollow, flat, edge))


def _capsule_rows(
    shape: tuple[int, ...],
    ends: Sequence[tuple[Point, Point, float]],
    lifts: Sequence[tuple[float, float]],
    reach: float,
) -> tuple[list[Box | None], list[Row | None]]:
    """Each capsule's window and its row for ``_capsules``."""
    wins: list[Box | None] = []
    rows: list[Row | None] = []
    for ((ay, ax), (by, bx), r), (az, bz) in zip(ends, lifts, strict=True):
        win = window(
            shape,
            min(ay, by) - r - reach,
            max(ay, by) + r + reach,
            min(ax, bx) - r - reach,
            max(ax, bx) + r + reach,
        )
        wins.append(win)
        if win is None:
            rows.append(None)
            continue
        ey, ex, ez = by - ay, bx - ax, bz - az
        length2 = ey * ey + ex * ex + ez * ez or 1.0
        rows.append(
            (
                win[1] - ay,
                win[0] - ax,
                ey / length2,
                ex / length2,
                ey,
                ex,
                r,
                -az * ez / length2,
                -az,
                ez,
            )
        )
    return wins, rows


def _capsule_rows_numpy(
    shape: tuple[int, ...],
    ends: Sequence[tuple[Point, Point, float]],
    lifts: Sequence[tuple[float, float]],
    reach: float,
) -> tuple[list[Box | None], list[Row | None]]:
    """``_capsule_rows`` for many capsules: the same numbers computed as arrays, since a
    Python loop costs microseconds per capsule and numpy's fixed cost is soon repaid."""
    e = np.array(
        [
            (a[0], a[1], b[0], b[1], r, za, zb)
            for (a, b, r), (za, zb) in zip(ends, lifts, strict=True)
        ],
        dtype=np.float64,
    )
    ay, ax, by, bx, r, az, bz = e.T
    pad = r + reach
    y0 = np.maximum(np.floor(np.minimum(ay, by) - pad), 0)
    y1 = np.minimum(np.ceil(np.maximum(ay, by) + pad) + 1, shape[0])
    x0 = np.maximum(np.floor(np.minimum(ax, bx) - pad), 0)
    x1 = np.minimum(np.ceil(np.maximum(ax, bx) + pad) + 1, shape[1])
    ey, ex, ez = by - ay, bx - ax, bz - az
    length2 = ey * ey + ex * ex + ez * ez
    length2[length2 == 0] = 1.0
    table = np.stack(
        [y0 - ay, x0 - ax, ey / length2, ex / length2, ey, ex, r, -az * ez / length2, -az, ez],
        axis=1,
    )
    present = ((y0 < y1) & (x0 < x1)).tolist()
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(int).tolist()
    wins: list[Box | None] = [
        (b[0], b[1], b[2], b[3]) if ok else None for b, ok in zip(boxes, present, strict=True)
    ]
    rows: list[Row | None] = [
        tuple(row) if ok else None for row, ok in zip(table.tolist(), present, strict=True)
    ]
    return wins, rows


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


def polylines(
    shape: tuple[int, ...],
    lines: Sequence[tuple[Sequence[Point], float | Sequence[float]]],
    *,
    hollow: float = 0.0,
    flat: bool = False,
) -> list[Patch | None]:
    """Many ``polyline``s ``(points, radius)``, their capsules computed in batches."""
    ends: list[tuple[Point, Point, float]] = []
    counts = []
    for points, radius in lines:
        radii = [float(radius)] * len(points) if isinstance(radius, int | float) else radius
        ends += [
            (points[i], points[i + 1], 0.5 * (radii[i] + radii[i + 1]))
            for i in range(len(points) - 1)
        ]
        counts.append(len(points) - 1)
    pieces = iter(segments(shape, ends, hollow=hollow, flat=flat))
    return [_joined([next(pieces) for _ in range(n)]) for n in counts]


def _joined(pieces: list[Patch | None]) -> Patch | None:
    """One patch of a polyline's capsules, combined with a maximum so that a curve does not
    brighten where its capsules meet."""
    present = [piece for piece in pieces if piece is not None]
    if len(present) <= 1:
        return present[0] if present else None
    xs0, ys0, xs1, ys1 = zip(*(piece.win for piece in present), strict=True)
    left, top = min(xs0), min(ys0)
    layer = np.zeros((max(ys1) - top, max(xs1) - left), dtype=np.float32)
    for piece, x0, y0, x1, y1 in zip(present, xs0, ys0, xs1, ys1, strict=True):
        view = layer[y0 - top : y1 - top, x0 - left : x1 - left]
        np.maximum(view, piece.weight, out=view)
    return Patch((left, top, max(xs1), max(ys1)), layer)


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
    return polylines(shape, [(points, radius)], hollow=hollow, flat=flat)[0]


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
    apart, at most 256) stack parallel copies of the curve in one pass, as ribs are stacked.
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
    # Distance below the first curve, in radii, then from the nearest curve of the stack.
    row = np.full(x1 - x0, -1e6, dtype=np.float32)
    row[cols - x0] = centres + offs[0]
    rel = np.subtract.outer(
        _COORDS[y0:y1] * np.float32(1.0 / radius), row * np.float32(1.0 / radius)
    )
    if offs.size > 1:
        step = float(offs[-1] - offs[0]) / (offs.size - 1)
        nearest = np.rint(rel * np.float32(radius / step))
        nearest.clip(0, offs.size - 1, out=nearest)
        rel -= np.take((offs - offs[0]) / np.float32(radius), nearest.astype(np.uint8))
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
    """N(0, sigma^2) at the centres of NORMAL_LEVELS equal-probability bins (symmetric, so
    half is computed and mirrored)."""
    dist = NormalDist(0.0, sigma)
    half = NORMAL_LEVELS // 2
    upper = np.array([dist.inv_cdf((k + 0.5) / NORMAL_LEVELS) for k in range(half, 2 * half)])
    return np.concatenate([-upper[::-1], upper]).astype(np.float32)


def gaussian(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> F32:
    """Normal noise N(0, sigma^2) (detector and sensor noise).

    Uniform 12-bit draws are mapped through the normal quantile table: a fraction of the cost
    of ``standard_normal``, and after quantisation to 8 or 12 bits indistinguishable from it
    (the tails stop at 3.5 sd). The 16 kB table stays in the fastest cache, which a finer one
    would not; sigmas are few per process, so their tables are cached.
    """
    n = math.prod(shape)
    raw = rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
    return np.take(_normal_table(sigma), raw >> 4).reshape(shape)


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
