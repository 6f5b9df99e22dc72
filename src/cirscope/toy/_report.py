"""The toy model's quality report (``cirscope toy-eval``)."""

from __future__ import annotations

from typing import Any

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._evaluate import star_bias, zero_shot_accuracy
from cirscope.toy._weights import read_meta


def toy_report(n: int = 2000, seed: int = 12345, k: int = 50, progress: bool = False) -> dict[str, Any]:
    """Zero-shot accuracy per attribute and the trained-in bias, on a fresh balanced world.

    The world has both renderers in equal shares and no bias; ``seed`` should differ from
    the training seeds (the default does).
    """
    import cirscope as cs

    gallery = cs.datasets.shapes(n, seed=seed, sources={"render": 1.0, "photo": 1.0})
    space = cs.Space(gallery, cs.Embedder.toy(), cache=False, progress=progress)
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
