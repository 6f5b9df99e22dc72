"""Random damage to saved spaces and cache shards ends in the same results or a clear error.

Each example copies a pristine folder, damages one file (truncate, flip bytes, delete,
append, replace with another valid save's file, swap or scale rows, change dtype or
shape, NaN/inf, reorder Parquet rows, edit JSON fields) and opens it again. Allowed
outcomes: exactly the saved data, or an error naming the file. Never silent garbage,
never a hang (each load runs under an alarm).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cirscope as cs
from cirscope._core.errors import DamagedFileError
from cirscope.embedding._cache import CacheDamaged, EmbeddingCache

N, D = 20, 8
SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@contextlib.contextmanager
def _time_limit(seconds: int):
    def fire(*_):
        raise TimeoutError(f"gave no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _make(world: int, seed: int) -> cs.Space:
    s = cs.Space.from_embeddings(cs.datasets.shapes(N, seed=world),
                                 np.random.default_rng(seed).normal(size=(N, D)), model_name="m")
    s.problems = pd.DataFrame({"id": ["gone.jpg"], "source": ["gone.jpg"], "reason": ["unreadable"]})
    return s


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    a, b = _make(1, 0), _make(2, 1)
    a.save(root / "a")
    b.save(root / "b")
    return root, cs.Space.load(root / "a", verify="full")


def _same_space(back: cs.Space, ref: cs.Space) -> None:
    np.testing.assert_array_equal(np.asarray(back.image_embeddings), np.asarray(ref.image_embeddings))
    assert back.fingerprint == ref.fingerprint and back.model == ref.model
    pd.testing.assert_frame_equal(back.metadata, ref.metadata)
    pd.testing.assert_frame_equal(back.problems, ref.problems)
    assert back.gallery.sources == ref.gallery.sources


def _check_outcome(folder: Path, ref: cs.Space, verify: str) -> str:
    try:
        with _time_limit(20), warnings.catch_warnings():
            warnings.simplefilter("error")  # no half-silent outcomes either
            back = cs.Space.load(folder, verify=verify)
    except DamagedFileError as exc:
        assert exc.path.parent == folder and exc.path.name in str(exc) and exc.fix
        return "refused"
    except FileNotFoundError as exc:
        assert "space.json" in str(exc)
        return "refused"
    _same_space(back, ref)
    return "same"


# ---------------------------------------------------------------------------- damage operations
def _bytes_damage(path: Path, data: st.DataObject, other: Path) -> None:
    raw = path.read_bytes()
    op = data.draw(st.sampled_from(["truncate", "flip", "delete", "append", "other", "empty"]), label="op")
    if op == "truncate":
        path.write_bytes(raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)), label="keep")])
    elif op == "flip":
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            pos = data.draw(st.integers(0, len(buf) - 1), label="pos")
            buf[pos] ^= data.draw(st.integers(1, 255), label="xor")
        path.write_bytes(bytes(buf))
    elif op == "delete":
        path.unlink()
    elif op == "append":
        path.write_bytes(raw + data.draw(st.binary(min_size=1, max_size=64), label="tail"))
    elif op == "other":
        shutil.copy(other, path)
    else:
        path.write_bytes(b"")


def _embeddings_damage(path: Path, data: st.DataObject) -> None:
    e = np.load(path)
    op = data.draw(st.sampled_from(["swap", "scale", "value", "dtype", "shape", "fortran"]), label="op")
    if op == "swap":
        i, j = data.draw(st.lists(st.integers(0, N - 1), min_size=2, max_size=2, unique=True), label="rows")
        e[[i, j]] = e[[j, i]]
    elif op == "scale":
        e = e * np.float32(data.draw(st.sampled_from([1e30, -1.0, 2.0, 1e-30, 0.0]), label="factor"))
    elif op == "value":
        r, c = data.draw(st.integers(0, N - 1), label="row"), data.draw(st.integers(0, D - 1), label="col")
        e[r, c] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 3e38, 1e-45]), label="value")
    elif op == "dtype":
        e = e.astype(data.draw(st.sampled_from(["float64", "float16", ">f4", "int32"]), label="dtype"))
    elif op == "shape":
        e = data.draw(st.sampled_from([e[:-1], np.vstack([e, e[:1]]), e.T.copy(), e.ravel(), e[:, :-1]]),
                      label="shape")
    else:
        e = np.asfortranarray(e)
    np.save(path, e)


def _parquet_damage(path: Path, data: st.DataObject) -> None:
    t = pq.read_table(path)
    op = data.draw(st.sampled_from(["reorder", "drop", "edit_id", "no_meta", "drop_row"]), label="op")
    if op == "reorder":
        perm = data.draw(st.permutations(range(t.num_rows)), label="perm")
        t = t.take(pa.array(perm))
    elif op == "drop":
        t = t.drop_columns([data.draw(st.sampled_from(t.column_names), label="column")])
    elif op == "edit_id":
        ids = t.column("id").to_pylist()
        ids[data.draw(st.integers(0, len(ids) - 1), label="row")] = data.draw(st.text(max_size=8), label="id")
        t = t.set_column(t.column_names.index("id"), "id", pa.array(ids, pa.string()))
    elif op == "no_meta":
        t = t.replace_schema_metadata({})
    else:
        t = t.slice(0, t.num_rows - 1)
    pq.write_table(t, path)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _json_damage(path: Path, data: st.DataObject) -> None:
    info = json.loads(path.read_text())
    op = data.draw(st.sampled_from(["set", "delete", "nested", "reformat", "number_as_text"]), label="op")
    key = data.draw(st.sampled_from(sorted(info)), label="key")
    if op == "set":
        info[key] = data.draw(_JSON_VALUES, label="value")
    elif op == "delete":
        del info[key]
    elif op == "nested":
        part = data.draw(st.sampled_from(["verify", "model"]), label="part")
        sub = info[part]
        inner = data.draw(st.sampled_from(sorted(sub)), label="inner")
        sub[inner] = data.draw(_JSON_VALUES, label="value")
    elif op == "number_as_text":
        info[key] = str(info[key])
    path.write_text(json.dumps(info, indent=data.draw(st.sampled_from([None, 1, 4]), label="indent")))


_CASES = [(name, kind) for name in ("embeddings.npy", "gallery.parquet", "space.json") for kind in ("bytes", "structured")]


@pytest.mark.parametrize(("name", "kind"), [*_CASES, ("problems.csv", "bytes")])
@SETTINGS
@given(data=st.data())
def test_any_damage_to_a_space_folder_is_refused_or_harmless(saved, name, kind, data):
    root, ref = saved
    verify = data.draw(st.sampled_from(["sample", "full"]), label="verify")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "s"
        shutil.copytree(root / "a", folder)
        if kind == "bytes":
            _bytes_damage(folder / name, data, root / "b" / name)
        elif name == "embeddings.npy":
            _embeddings_damage(folder / name, data)
        elif name == "gallery.parquet":
            _parquet_damage(folder / name, data)
        else:
            _json_damage(folder / name, data)
        _check_outcome(folder, ref, verify)


def test_known_damages_are_refused_not_just_tolerated(saved):
    """The property above allows "same results"; these damages must be refused."""
    root, ref = saved
    for name, damage in [
        ("embeddings.npy", lambda p: np.save(p, np.load(p)[::-1])),
        ("embeddings.npy", lambda p: np.save(p, np.load(p) * np.float32(1e30))),
        ("gallery.parquet", lambda p: pq.write_table(pq.read_table(p).take(pa.array(range(N)[::-1])), p)),
        ("space.json", lambda p: p.write_text(p.read_text().replace('"n": 20', '"n": 19'))),
        ("space.json", lambda p: p.write_text(p.read_text().replace('"model": "m"', '"model": "ViT-B-32"'))),
        ("problems.csv", lambda p: p.write_text("id,source,reason\n")),
    ]:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "s"
            shutil.copytree(root / "a", folder)
            damage(folder / name)
            assert _check_outcome(folder, ref, "sample") == "refused", name


# ---------------------------------------------------------------------------- embedding-cache shards
@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(12, D)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = [f"h{i:02d}" for i in range(12)]
    c = EmbeddingCache(root, "m")
    c.add(keys[:6], vecs[:6])
    c.add(keys[6:], vecs[6:])
    EmbeddingCache(root, "other").add(keys[:6], vecs[6:])
    return root, dict(zip(keys, vecs, strict=True))


def _rewrite_shard(path: Path, data: st.DataObject, touch_keys: bool) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if touch_keys:
        keys = arrays["keys"].copy()
        i, j = data.draw(st.lists(st.integers(0, len(keys) - 1), min_size=2, max_size=2, unique=True), label="keys")
        keys[[i, j]] = keys[[j, i]]
        arrays["keys"] = keys
    else:
        op = data.draw(st.sampled_from(["swap", "scale", "nan", "dtype", "drop_row", "meta"]), label="op")
        emb = arrays["emb"]
        if op == "swap":
            emb = emb[::-1].copy()
        elif op == "scale":
            emb = emb * np.float32(1e30)
        elif op == "nan":
            emb = emb.copy()
            emb[0, 0] = np.nan
        elif op == "dtype":
            emb = emb.astype(np.float64)
        elif op == "drop_row":
            emb = emb[:-1]
        else:
            meta = json.loads(bytes(arrays["meta"]).decode())
            meta[data.draw(st.sampled_from(sorted(meta)), label="field")] = data.draw(_JSON_VALUES, label="value")
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        arrays["emb"] = emb
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _check_cache(root: Path, truth: dict[str, np.ndarray], deleted: bool) -> None:
    with _time_limit(20), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = EmbeddingCache(root, "m").lookup(list(truth))
    for key, vec in got.items():
        np.testing.assert_array_equal(vec, truth[key], err_msg=f"cache returned a wrong vector for {key}")
    if len(got) < len(truth) and not deleted:
        assert any(issubclass(w.category, CacheDamaged) for w in caught), "rows went missing without a report"


@SETTINGS
@given(data=st.data())
def test_any_damage_to_a_cache_shard_is_reported_or_harmless(cache_root, data):
    root, truth = cache_root
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "c"
        shutil.copytree(root, copy)
        shard = data.draw(st.sampled_from(sorted((copy / "m").glob("shard-*.npz"))), label="shard")
        other = sorted((copy / "other").glob("shard-*.npz"))[0]
        kind = data.draw(st.sampled_from(["bytes", "structured"]), label="kind")
        deleted = False
        if kind == "bytes":
            _bytes_damage(shard, data, other)
            deleted = not shard.exists()
        else:
            _rewrite_shard(shard, data, touch_keys=False)
        _check_cache(copy, truth, deleted)


@SETTINGS
@given(data=st.data())
def test_swapped_keys_in_a_cache_shard_are_detected(cache_root, data):
    root, truth = cache_root
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "c"
        shutil.copytree(root, copy)
        shard = sorted((copy / "m").glob("shard-*.npz"))[0]
        _rewrite_shard(shard, data, touch_keys=True)
        _check_cache(copy, truth, False)
