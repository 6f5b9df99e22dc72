"""Composing methods: identities, hand-computed cases and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cirscope.query._methods import METHODS, compose, normalize

E1, E2, E3 = np.eye(3)
S = math.sqrt(0.5)


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.fixture
def rng_vectors():
    rng = np.random.default_rng(0)
    return [normalize(rng.normal(size=16)) for _ in range(4)]


def test_pdv_all_ones_gives_back_t_comp(rng_vectors):
    v, _t_mod, t_ref, t_comp = rng_vectors
    q = compose("pdv", v_ref=v, t_ref=t_ref, t_comp=t_comp * 3.0, alpha_t=1, alpha_i=1, beta=1)
    np.testing.assert_allclose(q, normalize(t_comp), atol=1e-7)


def test_pdv_beta0_alpha_i0_gives_back_image(rng_vectors):
    v, _, t_ref, t_comp = rng_vectors
    q = compose("pdv", v_ref=v * 2.0, t_ref=t_ref, t_comp=t_comp, alpha_t=1.7, alpha_i=0, beta=0)
    np.testing.assert_allclose(q, v, atol=1e-7)


def test_pdv_hand_computed_3d():
    # v = e1, t_ref = e2, t_comp = e3: d = e3 - e2
    # alpha_t = 0.5: q_text = e2 + 0.5 (e3 - e2) = (0, .5, .5)
    # alpha_i = 1:   q_img  = e1 + e3 - e2       = (1, -1, 1)
    # beta = 0.5:    q ∝ (0.5, -0.25, 0.75)
    q = compose("pdv", v_ref=E1, t_ref=E2, t_comp=E3, alpha_t=0.5, alpha_i=1.0, beta=0.5)
    np.testing.assert_allclose(q, unit(0.5, -0.25, 0.75), atol=1e-7)


def test_pdv_negative_alpha_moves_away():
    q = compose("pdv", v_ref=E1, t_ref=E2, t_comp=E3, alpha_t=-0.5, alpha_i=-0.5, beta=1.0)
    # q_text = e2 - 0.5 (e3 - e2) = (0, 1.5, -0.5)
    np.testing.assert_allclose(q, unit(0, 1.5, -0.5), atol=1e-7)
    assert q @ E3 < 0


def test_pdv_text_side_only_is_pdv_t():
    q = compose("pdv", v_ref=E1, t_ref=E2, t_comp=E3, alpha_t=2.0, alpha_i=0.3, beta=1.0)
    np.testing.assert_allclose(q, unit(0, -1, 2), atol=1e-7)


def test_baselines_hand_computed():
    v, t = unit(3, 4), unit(1, 0)
    np.testing.assert_allclose(compose("image", v_ref=np.array([3.0, 4.0])), [0.6, 0.8], atol=1e-7)
    np.testing.assert_allclose(compose("text", t_mod=np.array([0.0, 5.0])), [0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(compose("sum", v_ref=v, t_mod=t), unit(1.6, 0.8), atol=1e-7)


def test_weimocir_hand_computed():
    q = compose("weimocir", v_ref=E1[:2], t_mod=E2[:2], a=0.75)
    np.testing.assert_allclose(q, unit(0.25, 0.75), atol=1e-7)
    np.testing.assert_allclose(compose("weimocir", v_ref=E1[:2], t_mod=E2[:2]), unit(0.2, 0.8), atol=1e-7)


def test_slerp_endpoints_and_midpoint():
    v, t = unit(1, 0, 0), unit(1, 1, 0)
    np.testing.assert_allclose(compose("slerp", v_ref=v, t_mod=t, a=0.0), v, atol=1e-7)
    np.testing.assert_allclose(compose("slerp", v_ref=v, t_mod=t, a=1.0), t, atol=1e-7)
    # the angle is 45 degrees; a = 0.5 lands at 22.5 degrees
    mid = compose("slerp", v_ref=v, t_mod=t, a=0.5)
    np.testing.assert_allclose(mid, [math.cos(math.pi / 8), math.sin(math.pi / 8), 0], atol=1e-7)
    # orthogonal inputs, a = 1/3: 30 degrees from v
    q = compose("slerp", v_ref=E1[:2], t_mod=E2[:2], a=1 / 3)
    np.testing.assert_allclose(q, [math.cos(math.pi / 6), math.sin(math.pi / 6)], atol=1e-7)


def test_slerp_keeps_constant_angular_speed():
    v, t = E1, unit(0, 1, 1)
    for a in (0.1, 0.4, 0.8):
        q = compose("slerp", v_ref=v, t_mod=t, a=a)
        assert math.isclose(math.acos(float(np.clip(q @ v, -1, 1))), a * math.pi / 2, abs_tol=1e-6)


def test_slerp_falls_back_to_linear_when_nearly_parallel():
    v = unit(1, 0)
    t = unit(1, 0.02)  # dot = 0.9998 > 0.9995
    q = compose("slerp", v_ref=v, t_mod=t, a=0.8)
    np.testing.assert_allclose(q, normalize(0.2 * v + 0.8 * t), atol=1e-7)
    same = compose("slerp", v_ref=v, t_mod=v, a=0.3)
    np.testing.assert_allclose(same, v, atol=1e-7)
    assert np.all(np.isfinite(same))


def test_batched_matches_single(rng_vectors):
    rng = np.random.default_rng(1)
    stacks = {k: normalize(rng.normal(size=(5, 8))) for k in ("v_ref", "t_mod", "t_ref", "t_comp")}
    for name in METHODS:
        batched = compose(name, **stacks)
        assert batched.shape == (5, 8) and batched.dtype == np.float32
        for i in range(5):
            single = compose(name, **{k: v[i] for k, v in stacks.items()})
            np.testing.assert_allclose(batched[i], single, atol=1e-6)


def test_registry_lists_parameters_and_defaults():
    assert list(METHODS) == ["image", "text", "sum", "weimocir", "slerp", "pdv"]
    assert METHODS["weimocir"].defaults() == {"a": 0.8}
    assert METHODS["slerp"].defaults() == {"a": 0.8}
    assert set(METHODS["pdv"].defaults()) == {"alpha_t", "alpha_i", "beta"}
    for m in METHODS.values():
        for p in m.params:
            assert p.min <= p.default <= p.max and p.step > 0
    assert METHODS["pdv"].params[0].min < 0  # negative alpha allowed
    assert METHODS["pdv"].inputs == ("v_ref", "t_ref", "t_comp")


def test_output_is_float32_unit_norm(rng_vectors):
    v, t_mod, t_ref, t_comp = rng_vectors
    for name in METHODS:
        q = compose(name, v_ref=v, t_mod=t_mod, t_ref=t_ref, t_comp=t_comp)
        assert q.dtype == np.float32 and q.shape == (16,)
        assert math.isclose(float(np.linalg.norm(q)), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "nope", "v_ref": E1}, ValueError, "Unknown composing method"),
        ({"method": "sum", "v_ref": E1}, ValueError, "t_mod is required"),
        ({"method": "sum", "v_ref": E1, "t_mod": np.ones(4)}, ValueError, "different dimensions"),
        ({"method": "image", "v_ref": np.array([1.0, np.nan])}, ValueError, "NaN"),
        ({"method": "image", "v_ref": np.ones((2, 2, 2))}, ValueError, "shape"),
        ({"method": "image", "v_ref": np.zeros(3)}, ValueError, "zero-length"),
        ({"method": "pdv", "v_ref": E1, "t_ref": E2, "t_comp": E3, "beta": float("nan")}, ValueError, "finite"),
        ({"method": "pdv", "v_ref": E1, "t_ref": E2, "t_comp": E3, "gamma": 1.0}, TypeError, "no parameter"),
        ({"method": "slerp", "v_ref": E1, "t_mod": E2, "a": "x"}, TypeError, "number"),
        ({"method": "sum", "v_ref": np.ones((2, 3)), "t_mod": np.ones((3, 3))}, ValueError, "same number of rows"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, error, match):
    method = kwargs.pop("method")
    with pytest.raises(error, match=match):
        compose(method, **kwargs)


def test_vanishing_query_is_reported():
    with pytest.raises(ValueError, match="vanished"):
        compose("sum", v_ref=E1, t_mod=-E1)


# ---------------------------------------------------------------------- prepared inputs (the slider path)
INPUT_NAMES = ("v_ref", "t_mod", "t_ref", "t_comp")


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _composed_in_one_step(method, v_ref, t_mod, t_ref, t_comp, **p):
    """Each formula as it was computed before inputs were prepared once: validate, normalise and
    compose in one pass (the reference the prepared path must match bit for bit)."""
    v_ref, t_mod, t_ref, t_comp = (np.asarray(x, dtype=np.float64) for x in (v_ref, t_mod, t_ref, t_comp))
    if method == "image":
        q = _norm(v_ref)
    elif method == "text":
        q = _norm(t_mod)
    elif method == "sum":
        q = _norm(_norm(v_ref) + _norm(t_mod))
    elif method == "weimocir":
        q = _norm((1.0 - p["a"]) * _norm(v_ref) + p["a"] * _norm(t_mod))
    elif method == "slerp":
        a = p["a"]
        v, t = np.broadcast_arrays(_norm(v_ref), _norm(t_mod))
        dot = np.clip(np.sum(v * t, axis=-1, keepdims=True), -1.0, 1.0)
        linear = np.abs(dot) > 0.9995
        theta = np.arccos(dot)
        sin = np.where(linear, 1.0, np.sin(theta))
        w_v = np.where(linear, 1.0 - a, np.sin((1.0 - a) * theta) / sin)
        w_t = np.where(linear, a, np.sin(a * theta) / sin)
        q = _norm(w_v * v + w_t * t)
    else:
        t_ref_n = _norm(t_ref)
        d = _norm(t_comp) - t_ref_n
        q_text = t_ref_n + p["alpha_t"] * d
        q_img = _norm(v_ref) + p["alpha_i"] * d
        q = _norm((1.0 - p["beta"]) * q_img + p["beta"] * q_text)
    return q.astype(np.float32)


@pytest.mark.parametrize("shape", [(512,), (7, 64), (3,)])
def test_prepared_inputs_compose_bit_identically_to_the_one_step_formulas(shape):
    """prepare() once + compose(prepared=...) per parameter setting gives the very same float32 bits
    as composing from the raw embeddings, for every method, on random data (float32 inputs of any
    norm, as a space holds them) and random parameters, including near-parallel slerp inputs."""
    from cirscope.query._methods import prepare

    rng = np.random.default_rng(sum(shape))
    raw = {k: (rng.normal(size=shape) * rng.uniform(0.5, 3)).astype(np.float32) for k in INPUT_NAMES}
    if shape == (3,):  # nearly parallel: slerp's linear branch
        raw["t_mod"] = (2 * raw["v_ref"] + 1e-3 * raw["t_mod"]).astype(np.float32)
    for name, spec in METHODS.items():
        prepared = prepare(name, **{k: raw[k] for k in spec.inputs})
        assert all(not part.flags.writeable for part in prepared.parts.values())
        for _ in range(25):
            params = {p.name: float(rng.uniform(p.min, p.max)) for p in spec.params}
            expected = _composed_in_one_step(name, **raw, **params)
            fast = compose(name, prepared=prepared, **params)
            assert fast.dtype == np.float32 and fast.shape == shape
            np.testing.assert_array_equal(fast, expected)
            np.testing.assert_array_equal(compose(name, **raw, **params), expected)


def test_prepare_checks_like_compose_and_prepared_is_not_mixed_up():
    from cirscope.query._methods import prepare

    with pytest.raises(ValueError, match="NaN"):
        prepare("image", v_ref=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="t_mod is required"):
        prepare("sum", v_ref=E1)
    with pytest.raises(ValueError, match="Unknown composing method"):
        prepare("magic", v_ref=E1)
    caller = np.array([3.0, 4.0])
    prepared = prepare("image", v_ref=caller)
    caller[:] = [0.0, 1.0]  # the caller's array stays theirs: what was prepared does not change
    np.testing.assert_allclose(compose("image", prepared=prepared), [0.6, 0.8], atol=1e-7)
    assert caller.flags.writeable
    with pytest.raises(TypeError, match="prepared must be"):
        compose("text", prepared=prepared)
    with pytest.raises(TypeError, match="not both"):
        compose("image", prepared=prepared, v_ref=E1)
    with pytest.raises(TypeError, match="no parameter"):
        compose("image", prepared=prepared, a=1.0)
    with pytest.raises(ValueError, match="vanished"):  # checked per setting: the weights can cancel
        compose("weimocir", prepared=prepare("weimocir", v_ref=E1, t_mod=-E1), a=0.5)


def test_a_replaced_method_composes_with_its_own_function(monkeypatch):
    """A method registered under a built-in name with another function is not run through the
    built-in formula's steps."""
    from dataclasses import replace

    from cirscope.query._methods import prepare

    monkeypatch.setitem(METHODS, "sum", replace(METHODS["sum"], func=lambda v_ref, t_mod: normalize(v_ref - t_mod)))
    np.testing.assert_allclose(compose("sum", v_ref=E1, t_mod=E2), unit(1, -1, 0), atol=1e-7)
    np.testing.assert_allclose(compose("sum", prepared=prepare("sum", v_ref=E1, t_mod=E2)), unit(1, -1, 0), atol=1e-7)
