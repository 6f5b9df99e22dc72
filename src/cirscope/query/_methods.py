"""Training-free ways to turn a composed query (reference image + modification text) into one vector.

Every method takes L2-normalised embeddings and returns an L2-normalised float32 query.
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

Each input may be one vector ``(D,)`` or a stack ``(Q, D)`` (one row per query); the result
has the same leading shape. :data:`METHODS` lists every method, its parameters and their
defaults and ranges (a widget builds its sliders from it); :func:`compose` dispatches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "INPUTS",
    "METHODS",
    "Method",
    "Param",
    "compose",
    "compose_image",
    "compose_pdv",
    "compose_slerp",
    "compose_sum",
    "compose_text",
    "compose_weimocir",
    "method_label",
    "normalize",
]

#: The embeddings a composing method may ask for.
INPUTS: tuple[str, ...] = ("v_ref", "t_mod", "t_ref", "t_comp")

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
    if not np.all(np.isfinite(n)) or np.any(n == 0):
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
    return normalize(v_ref)


def compose_text(t_mod: np.ndarray) -> np.ndarray:
    """Text-only baseline: ``q = t_mod`` (the modification text's embedding alone).

    Examples
    --------
    >>> compose_text(np.array([1.0, 0.0]))
    array([1., 0.])
    """
    return normalize(t_mod)


def compose_sum(v_ref: np.ndarray, t_mod: np.ndarray) -> np.ndarray:
    """Sum baseline: ``q = norm(v_ref + t_mod)``.

    Examples
    --------
    >>> compose_sum(np.array([1.0, 0.0]), np.array([0.0, 1.0])).round(4)
    array([0.7071, 0.7071])
    """
    return normalize(normalize(v_ref) + normalize(t_mod))


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
    return normalize((1.0 - a) * normalize(v_ref) + a * normalize(t_mod))


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
    v = normalize(v_ref)
    t = normalize(t_mod)
    v, t = np.broadcast_arrays(v, t)
    dot = np.clip(np.sum(v * t, axis=-1, keepdims=True), -1.0, 1.0)
    linear = np.abs(dot) > _SLERP_LINEAR_ABOVE
    theta = np.arccos(dot)
    sin = np.where(linear, 1.0, np.sin(theta))
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
    t_ref_n = normalize(t_ref)
    d = normalize(t_comp) - t_ref_n
    q_text = t_ref_n + alpha_t * d
    q_img = normalize(v_ref) + alpha_i * d
    return normalize((1.0 - beta) * q_img + beta * q_text)


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a composing method (what a slider shows).

    Examples
    --------
    >>> Param("a", 0.8, 0.0, 1.0, 0.05, "weight of the text").default
    0.8
    """

    name: str
    default: float
    min: float
    max: float
    step: float
    doc: str


@dataclass(frozen=True)
class Method:
    """A registered composing method: its function, inputs, parameters and citation.

    ``name`` is the key code passes (``method="pdv"``); ``title`` is what a person reads
    (the panel's menu, the grid header, reports, plots) and ``full_name`` spells it out
    (tooltips and legends).

    Examples
    --------
    >>> METHODS["pdv"].defaults()
    {'alpha_t': 1.0, 'alpha_i': 1.0, 'beta': 0.75}
    >>> METHODS["pdv"].title, METHODS["pdv"].full_name
    ('PDV', 'Prompt Directional Vector')
    """

    name: str
    title: str
    func: Callable[..., np.ndarray]
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    formula: str
    paper: str
    full_name: str = ""

    def defaults(self) -> dict[str, float]:
        """The default value of every parameter."""
        return {p.name: p.default for p in self.params}


_A_SLIDER = "a", 0.0, 1.0, 0.05
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("image", "Image only", compose_image, ("v_ref",), (), "q = v_ref", "baseline"),
        Method("text", "Text only", compose_text, ("t_mod",), (), "q = t_mod", "baseline"),
        Method("sum", "Sum", compose_sum, ("v_ref", "t_mod"), (), "q = norm(v_ref + t_mod)", "baseline"),
        Method(
            "weimocir",
            "WeiMoCIR",
            compose_weimocir,
            ("v_ref", "t_mod"),
            (Param("a", 0.8, 0.0, 1.0, 0.05, "weight of the modification text (0: image, 1: text)"),),
            "q = norm((1 - a) v_ref + a t_mod)",
            "Wu et al., arXiv:2409.04918",
            "Weighted Modality Fusion",
        ),
        Method(
            "slerp",
            "Slerp",
            compose_slerp,
            ("v_ref", "t_mod"),
            (Param("a", 0.8, 0.0, 1.0, 0.05, "position along the great circle (0: image, 1: text)"),),
            "q = slerp(v_ref, t_mod; a)",
            "Jang et al., ECCV 2024, arXiv:2405.00571",
            "Spherical Linear Interpolation",
        ),
        Method(
            "pdv",
            "PDV",
            compose_pdv,
            ("v_ref", "t_ref", "t_comp"),
            (
                Param("alpha_t", 1.0, -0.5, 2.0, 0.05, "how far the text moves along d"),
                Param("alpha_i", 1.0, -0.5, 2.0, 0.05, "how far the image moves along d"),
                Param("beta", 0.75, 0.0, 1.0, 0.05, "fusion weight (0: image side, 1: text side)"),
            ),
            "d = norm(t_comp) - norm(t_ref); q = norm((1-beta)(v + alpha_i d) + beta(t_ref + alpha_t d))",
            "Tursun et al., arXiv:2502.07215",
            "Prompt Directional Vector",
        ),
    )
}


def method_label(name: str) -> str:
    """What a person reads for the method key ``name`` (a row label such as ``"pdv (swept)"`` too).

    Unknown names (``"vector"`` queries, user labels) are returned unchanged.

    Examples
    --------
    >>> method_label("pdv"), method_label("pdv (swept)"), method_label("image"), method_label("vector")
    ('PDV', 'PDV (swept)', 'Image only', 'vector')
    """
    key, sep, rest = str(name).partition(" ")
    method = METHODS.get(key)
    return f"{method.title}{sep}{rest}" if method is not None else str(name)


def _check_vector(name: str, x: object) -> np.ndarray:
    if x is None:
        raise ValueError(f"{name} is required")
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0 or arr.size == 0:
        raise ValueError(f"{name} must be an embedding of shape (D,) or a stack (Q, D); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; re-encode it or drop the bad rows")
    return arr


def _check_params(method: Method, params: Mapping[str, object]) -> dict[str, float]:
    known = {p.name for p in method.params}
    unknown = sorted(set(params) - known)
    if unknown:
        allowed = sorted(known) or "none"
        raise TypeError(f"Method {method.name!r} has no parameter {unknown}; its parameters are {allowed}")
    values = method.defaults()
    for key, value in params.items():
        if value is None:
            continue
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError(f"Parameter {key!r} of {method.name!r} must be a number, got {value!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"Parameter {key!r} of {method.name!r} must be finite, got {value!r}")
        values[key] = f
    return values


def compose(
    method: str,
    *,
    v_ref: np.ndarray | None = None,
    t_mod: np.ndarray | None = None,
    t_ref: np.ndarray | None = None,
    t_comp: np.ndarray | None = None,
    **params: float,
) -> np.ndarray:
    """Compose a query vector with ``method`` (one of :data:`METHODS`).

    Parameters
    ----------
    method
        ``"image"``, ``"text"``, ``"sum"``, ``"weimocir"``, ``"slerp"`` or ``"pdv"``.
    v_ref, t_mod, t_ref, t_comp
        Embeddings, ``(D,)`` or ``(Q, D)``; only those the method uses (``METHODS[m].inputs``)
        are needed, the others are ignored.
    **params
        The method's parameters (``METHODS[m].params``); missing ones take their defaults.

    Returns
    -------
    numpy.ndarray
        L2-normalised float32 query, ``(D,)`` or ``(Q, D)``.

    Examples
    --------
    >>> q = compose("pdv", v_ref=np.array([1.0, 0, 0]), t_ref=np.array([0, 1.0, 0]),
    ...             t_comp=np.array([0, 0, 1.0]), alpha_t=1, alpha_i=1, beta=1)
    >>> q.dtype, q.tolist()
    (dtype('float32'), [0.0, 0.0, 1.0])
    """
    if method not in METHODS:
        raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
    spec = METHODS[method]
    values = _check_params(spec, params)
    given = {"v_ref": v_ref, "t_mod": t_mod, "t_ref": t_ref, "t_comp": t_comp}
    arrays = {name: _check_vector(name, given[name]) for name in spec.inputs}
    dims = {a.shape[-1] for a in arrays.values()}
    if len(dims) > 1:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"Embeddings of different dimensions cannot be composed: {shapes}")
    lead = {a.shape[0] for a in arrays.values() if a.ndim == 2}
    if len(lead) > 1:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"Stacked embeddings must have the same number of rows: {shapes}")
    return spec.func(**arrays, **values).astype(np.float32)
