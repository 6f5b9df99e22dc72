"""The composing formulas: each turns L2-normalised embeddings into one L2-normalised query.

The inputs are

``v_ref``
    the reference image embedding;
``t_mod``
    the text embedding of the modification alone ("make it blue");
``t_ref``
    the text embedding of the reference *without* the modification (its caption, a
    zero-shot description or a neutral prompt);
``t_comp``
    the text embedding of the reference *with* the modification ("a red star, make it blue").

Each input may be one vector ``(D,)`` or a stack ``(Q, D)``; the result has the same leading
shape. Each ``compose_*`` function is a *prepare* step (normalise the inputs and derive what does
not depend on the parameters, e.g. PDV's direction ``d``) followed by a *core* step (the
parameter-dependent arithmetic); :data:`STEPS` lists the pairs, so that
:func:`cirscope.query._methods.prepare` can run the first once and
:func:`cirscope.query._methods.compose` only the second on each slider move, with the very same
float64 operations (bit-identical results). The registry, validation and dispatch live in
:mod:`cirscope.query._methods`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "STEPS",
    "compose_image",
    "compose_pdv",
    "compose_slerp",
    "compose_sum",
    "compose_text",
    "compose_weimocir",
    "normalize",
]

_SLERP_LINEAR_ABOVE = 0.9995


def normalize(x: np.ndarray) -> np.ndarray:
    """L2-normalise the last axis: ``norm(x) = x / ||x||``.

    Raises
    ------
    ValueError
        If a vector has zero (or non-finite) length.

    Examples
    --------
    >>> normalize(np.array([3.0, 4.0]))
    array([0.6, 0.8])
    """
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    # every norm in (0, inf): NaN fails both comparisons (one vector: compared as a Python float)
    if not (0.0 < n.item() < math.inf if n.size == 1 else bool(((n > 0) & (n < np.inf)).all())):
        raise ValueError(
            "Cannot normalise a zero-length or non-finite vector; the composed query vanished "
            "(e.g. v_ref and t_mod point in opposite directions, or a weight cancels every term). "
            "Change the method's weights."
        )
    return x / n


def compose_image(v_ref: np.ndarray) -> np.ndarray:
    """Image-only baseline: ``q = v_ref``.

    The plain baseline every composed-retrieval paper reports (e.g. Liu et al., "Image
    Retrieval on Real-life Images with Pre-trained Vision-and-Language Models", ICCV 2021).

    Examples
    --------
    >>> compose_image(np.array([0.0, 2.0]))
    array([0., 1.])
    """
    return _image_core(**_image_prepare(v_ref))


def _image_prepare(v_ref: np.ndarray) -> dict[str, np.ndarray]:
    return {"v": normalize(v_ref)}


def _image_core(v: np.ndarray) -> np.ndarray:
    return v


def compose_text(t_mod: np.ndarray) -> np.ndarray:
    """Text-only baseline: ``q = t_mod`` (the modification text's embedding alone).

    Examples
    --------
    >>> compose_text(np.array([1.0, 0.0]))
    array([1., 0.])
    """
    return _text_core(**_text_prepare(t_mod))


def _text_prepare(t_mod: np.ndarray) -> dict[str, np.ndarray]:
    return {"t": normalize(t_mod)}


def _text_core(t: np.ndarray) -> np.ndarray:
    return t


def _pair_prepare(v_ref: np.ndarray, t_mod: np.ndarray) -> dict[str, np.ndarray]:
    return {"v": normalize(v_ref), "t": normalize(t_mod)}


def compose_sum(v_ref: np.ndarray, t_mod: np.ndarray) -> np.ndarray:
    """Sum baseline: ``q = norm(v_ref + t_mod)``.

    Examples
    --------
    >>> compose_sum(np.array([1.0, 0.0]), np.array([0.0, 1.0])).round(4)
    array([0.7071, 0.7071])
    """
    return _sum_core(**_pair_prepare(v_ref, t_mod))


def _sum_core(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    return normalize(v + t)


def compose_weimocir(v_ref: np.ndarray, t_mod: np.ndarray, a: float = 0.8) -> np.ndarray:
    """Weighted modality fusion (WeiMoCIR): ``q = norm((1 - a) * v_ref + a * t_mod)``.

    Wu, Lin & Yang, "Training-free Zero-shot Composed Image Retrieval via Weighted Modality
    Fusion and Similarity" (arXiv:2409.04918); published CLIP setting ``a = 0.8``. (The
    paper's optional caption-similarity term needs captions of every gallery image and is
    not part of the query vector.)

    Examples
    --------
    >>> compose_weimocir(np.array([1.0, 0.0]), np.array([0.0, 1.0]), a=0.75).round(4)
    array([0.3162, 0.9487])
    """
    return _weimocir_core(**_pair_prepare(v_ref, t_mod), a=a)


def _weimocir_core(v: np.ndarray, t: np.ndarray, a: float = 0.8) -> np.ndarray:
    return normalize((1.0 - a) * v + a * t)


def compose_slerp(v_ref: np.ndarray, t_mod: np.ndarray, a: float = 0.8) -> np.ndarray:
    """Spherical linear interpolation from the image to the text embedding.

    Jang et al., "Spherical Linear Interpolation and Text-Anchoring for Zero-shot Composed
    Image Retrieval" (ECCV 2024, arXiv:2405.00571)::

        theta = arccos(v_ref . t_mod)
        q = norm(sin((1 - a) theta) / sin(theta) * v_ref + sin(a theta) / sin(theta) * t_mod)

    When ``|v_ref . t_mod| > 0.9995`` (nearly parallel or antiparallel, ``sin(theta)``
    close to 0) it falls back to linear interpolation ``norm((1 - a) v_ref + a t_mod)``.
    Published ``a = 0.8`` (0.9 on CIRR). ``a = 0`` gives ``v_ref``, ``a = 1`` gives ``t_mod``.

    Examples
    --------
    >>> compose_slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), a=1 / 3).round(4)
    array([0.866, 0.5  ])
    """
    return _slerp_core(**_slerp_prepare(v_ref, t_mod), a=a)


def _slerp_prepare(v_ref: np.ndarray, t_mod: np.ndarray) -> dict[str, np.ndarray]:
    v, t = np.broadcast_arrays(normalize(v_ref), normalize(t_mod))
    dot = np.clip(np.sum(v * t, axis=-1, keepdims=True), -1.0, 1.0)
    linear = np.abs(dot) > _SLERP_LINEAR_ABOVE
    theta = np.arccos(dot)
    return {"v": v, "t": t, "linear": linear, "theta": theta, "sin": np.where(linear, 1.0, np.sin(theta))}


def _slerp_core(
    v: np.ndarray, t: np.ndarray, linear: np.ndarray, theta: np.ndarray, sin: np.ndarray, a: float = 0.8
) -> np.ndarray:
    w_v = np.where(linear, 1.0 - a, np.sin((1.0 - a) * theta) / sin)
    w_t = np.where(linear, a, np.sin(a * theta) / sin)
    return normalize(w_v * v + w_t * t)


def compose_pdv(
    v_ref: np.ndarray,
    t_ref: np.ndarray,
    t_comp: np.ndarray,
    alpha_t: float = 1.0,
    alpha_i: float = 1.0,
    beta: float = 0.75,
) -> np.ndarray:
    """Prompt Directional Vector, shown as "PDV" (the paper's fused PDV-F).

    PDV-T is ``beta = 1``, PDV-I is ``beta = 0``.

    Tursun, Kalkan, Denman & Fookes, "PDV: Prompt Directional Vectors for Zero-shot
    Composed Image Retrieval" (arXiv:2502.07215)::

        d      = norm(t_comp) - norm(t_ref)          # the prompt directional vector
        q_text = norm(t_ref) + alpha_t * d           # PDV-T
        q_img  = norm(v)     + alpha_i * d           # PDV-I
        q      = norm((1 - beta) * q_img + beta * q_text)   # PDV-F

    ``alpha_t = alpha_i = beta = 1`` gives back ``norm(t_comp)`` (the base method);
    ``alpha_i = 0, beta = 0`` gives back the image. A negative alpha moves *away* from the
    modification. The paper explores alpha in [-0.5, 2]; good real-benchmark settings have
    beta 0.55-0.9 and alpha 1.0-1.4.

    Examples
    --------
    >>> v, t_ref, t_comp = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    >>> compose_pdv(v, t_ref, t_comp, alpha_t=1, alpha_i=1, beta=1)
    array([0., 0., 1.])
    >>> compose_pdv(v, t_ref, t_comp, alpha_i=0, beta=0)
    array([1., 0., 0.])
    """
    return _pdv_core(**_pdv_prepare(v_ref, t_ref, t_comp), alpha_t=alpha_t, alpha_i=alpha_i, beta=beta)


def _pdv_prepare(v_ref: np.ndarray, t_ref: np.ndarray, t_comp: np.ndarray) -> dict[str, np.ndarray]:
    t_ref_n = normalize(t_ref)
    return {"v": normalize(v_ref), "t_ref_n": t_ref_n, "d": normalize(t_comp) - t_ref_n}


def _pdv_core(
    v: np.ndarray, t_ref_n: np.ndarray, d: np.ndarray, alpha_t: float = 1.0, alpha_i: float = 1.0, beta: float = 0.75
) -> np.ndarray:
    q_text = t_ref_n + alpha_t * d
    q_img = v + alpha_i * d
    return normalize((1.0 - beta) * q_img + beta * q_text)


#: ``{method: (prepare, core)}``: ``compose_<method>(inputs, params) == core(**prepare(inputs), **params)``.
STEPS: dict[str, tuple[Callable[..., dict[str, np.ndarray]], Callable[..., np.ndarray]]] = {
    "image": (_image_prepare, _image_core),
    "text": (_text_prepare, _text_core),
    "sum": (_pair_prepare, _sum_core),
    "weimocir": (_pair_prepare, _weimocir_core),
    "slerp": (_slerp_prepare, _slerp_core),
    "pdv": (_pdv_prepare, _pdv_core),
}
