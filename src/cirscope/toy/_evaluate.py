"""Zero-shot quality and the deliberate bias of a model on the shapes world."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._texts import ZERO_SHOT_PROMPTS

EncodeFn = Callable[[list[str]], np.ndarray]


def zero_shot_accuracy(
    image_embeddings: np.ndarray, metadata: pd.DataFrame, encode_text: EncodeFn
) -> dict[str, float]:
    """Per-attribute zero-shot accuracy: each image takes the label whose prompt is closest.

    Prompts: ``"a {shape}"``, ``"a {color} shape"``, ``"a shape on a {background}
    background"``, ``"a {size} shape"``.
    """
    out: dict[str, float] = {}
    for attr, values in ATTRIBUTES.items():
        prompts = [ZERO_SHOT_PROMPTS[attr].format(value=v) for v in values]
        text = encode_text(prompts)
        pred = np.asarray(values)[np.argmax(image_embeddings @ text.T, axis=1)]
        out[attr] = float(np.mean(pred == metadata[attr].to_numpy()))
    return out


def label_share_in_top(
    image_embeddings: np.ndarray,
    metadata: pd.DataFrame,
    encode_text: EncodeFn,
    prompt: str,
    attribute: str,
    label: str,
    k: int = 50,
) -> float:
    """Share of ``label`` in column ``attribute`` among the top ``k`` results for ``prompt``."""
    scores = image_embeddings @ encode_text([prompt])[0]
    top = np.argsort(-scores, kind="stable")[:k]
    return float(np.mean(metadata[attribute].to_numpy()[top] == label))


def star_bias(image_embeddings: np.ndarray, metadata: pd.DataFrame, encode_text: EncodeFn, k: int = 50) -> dict:
    """The toy model's trained-in bias, measured on a gallery.

    Returns the share of yellow items in the top ``k`` for ``"a star"``, the share of
    yellow among the stars of the gallery, and the share of stars in the top ``k`` for
    ``"a yellow shape"`` against their gallery share.
    """
    stars = metadata["shape"].to_numpy() == "star"
    yellow = metadata["color"].to_numpy() == "yellow"
    return {
        "k": k,
        "yellow_share_top_k_for_a_star": label_share_in_top(
            image_embeddings, metadata, encode_text, "a star", "color", "yellow", k
        ),
        "yellow_share_among_gallery_stars": float(yellow[stars].mean()) if stars.any() else float("nan"),
        "star_share_top_k_for_a_yellow_shape": label_share_in_top(
            image_embeddings, metadata, encode_text, "a yellow shape", "shape", "star", k
        ),
        "star_share_among_gallery_yellow": float(stars[yellow].mean()) if yellow.any() else float("nan"),
    }
