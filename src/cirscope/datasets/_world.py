"""The shapes world as a :class:`~cirscope.Gallery`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image

from cirscope.datasets._shapes import Bias, WorldSpec, render_array, sample_world
from cirscope.gallery._table import Gallery


def shapes(
    n: int = 2000,
    seed: int = 0,
    *,
    biases: Sequence[Bias] = (),
    weights: Mapping[str, Mapping[str, float]] | None = None,
    sources: Mapping[str, float] | None = None,
    image_size: int = 64,
) -> Gallery:
    """A gallery of ``n`` procedurally drawn shapes with exact ground truth.

    Metadata columns: ``shape`` (circle, square, triangle, star, cross, heart), ``color``
    (red, orange, yellow, green, cyan, blue, purple, pink), ``background`` (black, white,
    gray, brown), ``size`` (small, large), ``source`` (render, photo), ``x``, ``y``,
    ``radius``, ``rotation`` and ``caption`` (e.g. "a large red star on a black background").
    The same ``seed`` always gives the same images.

    Parameters
    ----------
    n, seed
        How many items, and the random seed.
    biases
        Deliberate skews of the joint distribution, e.g. 80% of stars yellow::

            shapes(2000, biases=[Bias({"shape": "star"}, {"color": "yellow"}, p=0.8)])

        A bias can also tie an attribute to the source (renderer)::

            shapes(2000, sources={"render": 1, "photo": 1},
                   biases=[Bias({"source": "photo"}, {"background": "white"}, p=0.9)])
    weights
        Relative weights of attribute values (default 1 each), e.g. few purple items::

            shapes(2000, weights={"color": {"purple": 0.2}})
    sources
        Relative weights of the two renderers: ``"render"`` (clean flat fills, the default
        alone) and ``"photo"`` (texture, shading, noise, blur, rotation jitter)::

            shapes(2000, sources={"render": 0.5, "photo": 0.5})
    image_size
        Side of the square images in pixels.

    Examples
    --------
    >>> g = shapes(50, seed=1)
    >>> len(g), g.metadata["caption"].iloc[0].startswith("a ")
    (50, True)
    """
    spec = WorldSpec(weights=dict(weights or {}), biases=tuple(biases), sources=dict(sources or {"render": 1.0}))
    if n < 1:
        raise ValueError(f"shapes() needs n >= 1 (got {n}): an empty gallery has nothing to explore")
    df = sample_world(n, seed=seed, spec=spec)
    pixels = render_array(df, size=image_size)
    meta = df.drop(columns=["render_seed"])
    meta.insert(0, "id", [f"shape-{seed}-{i:05d}" for i in range(n)])
    return Gallery.from_images([Image.fromarray(p) for p in pixels], metadata=meta)
