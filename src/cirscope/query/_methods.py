"""Training-free ways to turn a composed query (reference image + modification text) into one vector.

Every method takes L2-normalised embeddings ``v_ref``, ``t_mod``, ``t_ref``, ``t_comp`` (see
:mod:`cirscope.query._formulas`, which holds the formulas) and returns an L2-normalised float32
query; each input may be one vector ``(D,)`` or a stack ``(Q, D)`` (one row per query), and the
result has the same leading shape. :data:`METHODS` lists every method, its parameters and their
defaults and ranges (a widget builds its sliders from it); :func:`compose` validates and dispatches.

A slider move changes only the parameters: :func:`prepare` validates and normalises the inputs
once (and derives what does not depend on the parameters, e.g. PDV's direction ``d``), and
``compose(method, prepared=..., **params)`` then runs only the parameter-dependent arithmetic,
the very same float64 operations as a full :func:`compose` (bit-identical results).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cirscope.query._formulas import (
    STEPS,
    compose_image,
    compose_pdv,
    compose_slerp,
    compose_sum,
    compose_text,
    compose_weimocir,
    normalize,
)

__all__ = [
    "INPUTS",
    "METHODS",
    "Method",
    "Param",
    "Prepared",
    "compose",
    "compose_image",
    "compose_pdv",
    "compose_slerp",
    "compose_sum",
    "compose_text",
    "compose_weimocir",
    "method_label",
    "normalize",
    "prepare",
]

#: The embeddings a composing method may ask for.
INPUTS: tuple[str, ...] = ("v_ref", "t_mod", "t_ref", "t_comp")


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


#: The formula each built-in method was registered with (a replaced method does not use ``STEPS``).
_FORMULAS: dict[str, Callable[..., np.ndarray]] = {name: m.func for name, m in METHODS.items()}


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
    values = method.defaults()  # exactly the known parameters
    unknown = sorted(key for key in params if key not in values)
    if unknown:
        allowed = sorted(values) or "none"
        raise TypeError(f"Method {method.name!r} has no parameter {unknown}; its parameters are {allowed}")
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


@dataclass(frozen=True, eq=False)
class Prepared:
    """A method's inputs, validated and normalised once, for composing with many parameter settings.

    Made by :func:`prepare`; pass it as ``compose(method, prepared=...)``. Its arrays are
    read-only, so what was checked cannot change afterwards.

    Attributes
    ----------
    method : str
        The method it was prepared for.
    parts : dict
        The parameter-independent intermediates of the method's formula (float64, read-only).
    """

    method: str
    parts: Mapping[str, np.ndarray]


def _check_inputs(spec: Method, given: Mapping[str, object]) -> dict[str, np.ndarray]:
    arrays = {name: _check_vector(name, given[name]) for name in spec.inputs}
    dims = {a.shape[-1] for a in arrays.values()}
    if len(dims) > 1:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"Embeddings of different dimensions cannot be composed: {shapes}")
    lead = {a.shape[0] for a in arrays.values() if a.ndim == 2}
    if len(lead) > 1:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"Stacked embeddings must have the same number of rows: {shapes}")
    return arrays


def _spec(method: str) -> Method:
    if method not in METHODS:
        raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
    return METHODS[method]


def _copies(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.array(a) for name, a in arrays.items()}


def _steps(spec: Method) -> tuple[Callable[..., dict[str, np.ndarray]], Callable[..., np.ndarray]]:
    """``(prepare, core)`` of a method; one registered without them composes in one step."""
    steps = STEPS.get(spec.name)
    return steps if steps is not None and _FORMULAS.get(spec.name) is spec.func else (_copies, spec.func)


def prepare(
    method: str,
    *,
    v_ref: np.ndarray | None = None,
    t_mod: np.ndarray | None = None,
    t_ref: np.ndarray | None = None,
    t_comp: np.ndarray | None = None,
) -> Prepared:
    """Validate and normalise the inputs of ``method`` once (the same checks as :func:`compose`).

    Examples
    --------
    >>> prepared = prepare("pdv", v_ref=np.array([1.0, 0, 0]), t_ref=np.array([0, 1.0, 0]),
    ...                    t_comp=np.array([0, 0, 1.0]))
    >>> compose("pdv", prepared=prepared, alpha_t=1, alpha_i=1, beta=1).tolist()
    [0.0, 0.0, 1.0]
    """
    spec = _spec(method)
    arrays = _check_inputs(spec, {"v_ref": v_ref, "t_mod": t_mod, "t_ref": t_ref, "t_comp": t_comp})
    parts = _steps(spec)[0](**arrays)
    for part in parts.values():
        part.setflags(write=False)
    return Prepared(method, parts)


def compose(
    method: str,
    *,
    v_ref: np.ndarray | None = None,
    t_mod: np.ndarray | None = None,
    t_ref: np.ndarray | None = None,
    t_comp: np.ndarray | None = None,
    prepared: Prepared | None = None,
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
    prepared
        Instead of the embeddings: what :func:`prepare` made of them for this method (the
        same result, without validating and normalising them again).
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
    spec = _spec(method)
    values = _check_params(spec, params)
    prepare_step, core = _steps(spec)
    if prepared is None:
        given = {"v_ref": v_ref, "t_mod": t_mod, "t_ref": t_ref, "t_comp": t_comp}
        parts = prepare_step(**_check_inputs(spec, given))
    elif not isinstance(prepared, Prepared) or prepared.method != method:
        got = f"one for {prepared.method!r}" if isinstance(prepared, Prepared) else type(prepared).__name__
        raise TypeError(f"prepared must be prepare({method!r}, ...), got {got}")
    elif v_ref is not None or t_mod is not None or t_ref is not None or t_comp is not None:
        raise TypeError("Pass the embeddings or prepared=, not both")
    else:
        parts = prepared.parts
    return core(**parts, **values).astype(np.float32)
