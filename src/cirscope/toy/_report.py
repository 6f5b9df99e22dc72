"""The toy model's quality report (``cirscope toy-eval``)."""

from __future__ import annotations

from typing import Any

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._evaluate import star_bias, zero_shot_accuracy
from cirscope.toy._weights import read_meta


def report_space(n: int = 2000, seed: int = 12345, progress: bool = False):
    """The fresh balanced world of the report (both renderers, no bias) embedded with the toy model."""
    import cirscope as cs

    gallery = cs.datasets.shapes(n, seed=seed, sources={"render": 1.0, "photo": 1.0})
    return cs.Space(gallery, cs.Embedder.toy(), cache=False, progress=progress)


def toy_report(
    n: int = 2000, seed: int = 12345, k: int = 50, progress: bool = False, space: Any = None
) -> dict[str, Any]:
    """Zero-shot accuracy per attribute and the trained-in bias, on a fresh balanced world.

    The world has both renderers in equal shares and no bias; ``seed`` should differ from
    the training seeds (the default does). ``space``: that world already embedded
    (:func:`report_space` with the same ``n`` and ``seed``).
    """
    if space is None:
        space = report_space(n, seed, progress)
    meta = space.gallery.metadata
    emb = space.image_embeddings
    trained = read_meta()
    return {
        "model": "cirscope-toy",
        "gallery": {"n": n, "seed": seed, "sources": {"render": 0.5, "photo": 0.5}, "biases": []},
        "accuracy": zero_shot_accuracy(emb, meta, space.encode_text),
        "chance": {a: 1.0 / len(v) for a, v in ATTRIBUTES.items()},
        "bias": star_bias(emb, meta, space.encode_text, k=k),
        "train_bias": trained.get("train_bias", {}),
        "training": {key: trained.get(key) for key in ("step", "seed", "batch", "lr", "pool", "minutes")},
    }
