"""The shapes world: procedurally drawn images whose every concept is known.

Each image shows one shape (six kinds) of one colour (eight) on a background (four),
small or large, at a random position, drawn by one of two renderers ("render": flat
fills; "photo": texture, noise, blur and jitter). Ground truth is exact, so retrieval
and bias metrics can be checked against it.

The module only depends on numpy and Pillow so the toy-model trainer can use it
without building a :class:`~cirscope.Gallery`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 135, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "cyan": (40, 210, 220),
    "blue": (35, 70, 225),
    "purple": (140, 50, 190),
    "pink": (250, 135, 195),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (16, 16, 16),
    "white": (244, 244, 244),
    "gray": (128, 128, 128),
    "brown": (105, 68, 38),
}
SIZES: tuple[str, ...] = ("small", "large")
SOURCES: tuple[str, ...] = ("render", "photo")
#: Columns saying how an image was drawn (position, radius in pixels, angle, seed), not what it shows.
DRAWING_COLUMNS: tuple[str, ...] = ("x", "y", "radius", "rotation", "render_seed")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "background": tuple(BACKGROUNDS),
    "size": SIZES,
}

_RADIUS = {"small": (8.0, 11.0), "large": (17.0, 22.0)}
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class Bias:
    """A deliberate skew of the world's joint distribution.

    Among the items that match ``when``, a share ``p`` gets the attribute values in
    ``then``; the others get any *other* value, drawn from the usual weights. So
    ``Bias(when={"shape": "star"}, then={"color": "yellow"}, p=0.8)`` makes 80% of
    stars yellow (in expectation) and leaves every other shape untouched.

    Examples
    --------
    >>> import cirscope as cs
    >>> g = cs.datasets.shapes(500, biases=[cs.datasets.Bias({"shape": "star"}, {"color": "yellow"}, 0.8)])
    >>> stars = g.metadata[g.metadata["shape"] == "star"]
    >>> bool((stars["color"] == "yellow").mean() > 0.6)
    True
    """

    when: Mapping[str, str]
    then: Mapping[str, str]
    p: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"Bias.p must be within [0, 1], got {self.p}")
        for key, value in {**self.when, **self.then}.items():
            _check_value(key, value)


@dataclass
class WorldSpec:
    """Everything that decides what the world looks like (see :func:`sample_world`)."""

    weights: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    biases: Sequence[Bias] = ()
    sources: Mapping[str, float] = field(default_factory=lambda: {"render": 1.0})

    def __post_init__(self) -> None:
        for attr, table in self.weights.items():
            for value, w in table.items():
                _check_value(attr, value)
                if w < 0:
                    raise ValueError(f"weights[{attr!r}][{value!r}] is negative ({w})")
        for value, w in self.sources.items():
            _check_value("source", value)
            if w < 0:
                raise ValueError(f"sources[{value!r}] is negative ({w})")
        if sum(self.sources.values()) <= 0:
            raise ValueError("sources needs at least one positive weight, e.g. {'render': 1.0}")


def _check_value(attr: str, value: str) -> None:
    choices = SOURCES if attr == "source" else ATTRIBUTES.get(attr)
    if choices is None:
        raise ValueError(
            f"Unknown attribute {attr!r}; the shapes world has {sorted([*ATTRIBUTES, 'source'])}"
        )
    if value not in choices:
        raise ValueError(f"Unknown {attr} {value!r}; choose one of {list(choices)}")


def _probabilities(attr: str, spec: WorldSpec, exclude: str | None = None) -> np.ndarray:
    choices = SOURCES if attr == "source" else ATTRIBUTES[attr]
    table = spec.sources if attr == "source" else spec.weights.get(attr, {})
    default = 0.0 if attr == "source" else 1.0
    w = np.array([float(table.get(c, default)) for c in choices])
    if exclude is not None:
        w[choices.index(exclude)] = 0.0
    if w.sum() <= 0:
        w = np.ones(len(choices))
        if exclude is not None:
            w[choices.index(exclude)] = 0.0
    return w / w.sum()


def sample_world(n: int, seed: int = 0, spec: WorldSpec | None = None) -> pd.DataFrame:
    """Sample the attributes of ``n`` items (no pixels).

    Returns a DataFrame with columns shape, color, background, size, source, x, y,
    radius, rotation, caption and a per-item ``render_seed``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    spec = spec or WorldSpec()
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for attr in (*ATTRIBUTES, "source"):
        choices = SOURCES if attr == "source" else ATTRIBUTES[attr]
        cols[attr] = np.asarray(choices, dtype=object)[
            rng.choice(len(choices), size=n, p=_probabilities(attr, spec))
        ]
    for bias in spec.biases:
        match = np.ones(n, dtype=bool)
        for key, value in bias.when.items():
            match &= cols[key] == value
        idx = np.flatnonzero(match)
        hit = rng.random(idx.size) < bias.p
        for key, value in bias.then.items():
            choices = SOURCES if key == "source" else ATTRIBUTES[key]
            others = np.asarray(choices, dtype=object)[
                rng.choice(len(choices), size=idx.size, p=_probabilities(key, spec, exclude=value))
            ]
            cols[key][idx] = np.where(hit, value, others)
    radius = np.empty(n)
    for size, (lo, hi) in _RADIUS.items():
        m = cols["size"] == size
        radius[m] = rng.uniform(lo, hi, m.sum())
    margin = radius + 2.0
    x = rng.uniform(margin, 64.0 - margin)
    y = rng.uniform(margin, 64.0 - margin)
    photo = cols["source"] == "photo"
    rotation = np.where(photo, rng.uniform(-20, 20, n), 0.0)
    df = pd.DataFrame(
        {
            **{k: cols[k].astype(str) for k in (*ATTRIBUTES, "source")},
            "x": x.round(2),
            "y": y.round(2),
            "radius": radius.round(2),
            "rotation": rotation.round(2),
            "render_seed": rng.integers(0, 2**31 - 1, n),
        }
    )
    df["caption"] = [
        caption(s, c, b, z) for s, c, b, z in zip(df["shape"], df["color"], df["background"], df["size"], strict=False)
    ]
    return df


def caption(shape: str, color: str, background: str, size: str) -> str:
    """The full description of an item, e.g. ``'a large red star on a black background'``."""
    return f"a {size} {color} {shape} on a {background} background"


def _polygon(shape: str, cx: float, cy: float, r: float, rot_deg: float) -> list[tuple[float, float]]:
    if shape == "square":
        pts = [(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)]
    elif shape == "triangle":
        pts = [(math.cos(a), math.sin(a) + 0.15) for a in np.deg2rad([-90, 30, 150])]
    elif shape == "star":
        pts = []
        for i in range(10):
            a = math.radians(-90 + 36 * i)
            rr = 1.0 if i % 2 == 0 else 0.42
            pts.append((rr * math.cos(a), rr * math.sin(a) + 0.05))
    elif shape == "cross":
        w, e = 0.3, 0.95
        pts = [(-w, -e), (w, -e), (w, -w), (e, -w), (e, w), (w, w), (w, e), (-w, e), (-w, w), (-e, w), (-e, -w), (-w, -w)]
    elif shape == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        hx = 16 * np.sin(t) ** 3
        hy = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = list(zip(hx / 17.0, (hy + 2.5) / 17.0, strict=False))
    else:  # pragma: no cover - guarded by _check_value
        raise ValueError(shape)
    a = math.radians(rot_deg)
    ca, sa = math.cos(a), math.sin(a)
    return [(cx + r * (px * ca - py * sa), cy + r * (px * sa + py * ca)) for px, py in pts]


def render(row: Mapping[str, object], size: int = 64) -> Image.Image:
    """Draw one item described by a row of :func:`sample_world`."""
    s = _SUPERSAMPLE * size / 64.0
    rng = np.random.default_rng(int(row["render_seed"]))
    bg = np.array(BACKGROUNDS[str(row["background"])], dtype=np.float32)
    fg = np.array(COLORS[str(row["color"])], dtype=np.float32)
    photo = row["source"] == "photo"
    if photo:
        fg = np.clip(fg + rng.normal(0, 12, 3), 0, 255)
        bg = np.clip(bg + rng.normal(0, 10, 3), 0, 255)
    canvas = Image.new("RGB", (int(64 * s), int(64 * s)), tuple(int(v) for v in bg))
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = float(row["x"]) * s, float(row["y"]) * s, float(row["radius"]) * s
    color = tuple(int(v) for v in fg)
    if row["shape"] == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    else:
        draw.polygon(_polygon(str(row["shape"]), cx, cy, r, float(row["rotation"])), fill=color)
    img = canvas.resize((size, size), Image.Resampling.BILINEAR)
    if photo:
        arr = np.asarray(img, dtype=np.float32)
        yy, xx = np.mgrid[0:size, 0:size] / size
        angle = rng.uniform(0, 2 * np.pi)
        shade = (np.cos(angle) * xx + np.sin(angle) * yy - 0.5) * rng.uniform(20, 45)
        arr = arr + shade[..., None] + rng.normal(0, 9, arr.shape)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8))
        )
    return img


def render_array(df: pd.DataFrame, size: int = 64) -> np.ndarray:
    """Render every row of ``df`` into a ``(n, size, size, 3)`` uint8 array."""
    out = np.empty((len(df), size, size, 3), dtype=np.uint8)
    for i, row in enumerate(df.to_dict("records")):
        out[i] = np.asarray(render(row, size))
    return out
