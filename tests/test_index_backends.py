"""Every neighbour-index backend against exact search: recall on realistic queries, filters,
excludes, batch == single, save / load, damaged files, the automatic choice and lazy faiss."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from cirscope._core.hashing import file_digest
from cirscope.neighbors._calibrate import realistic_queries, recall_at_k
from cirscope.neighbors._index import AUTO_BACKEND, NeighborIndex
from cirscope.neighbors._persist import IndexRebuilt
from tests.test_index import structured

N, DIM = 8000, 64
BACKENDS = ["exact", "annoy", "faiss-hnsw", "faiss-ivf"]
# annoy cannot reach 0.99 on off-manifold queries at this size with fewer candidates than half
# the gallery (it then answers exactly); 0.95 keeps the forest under test
TARGET = {"exact": 1.0, "annoy": 0.95, "faiss-hnsw": 0.99, "faiss-ivf": 0.99}


@pytest.fixture(scope="module")
def emb() -> np.ndarray:
    return structured(N, DIM, seed=7)


@pytest.fixture(scope="module")
def held_out(emb) -> dict[str, np.ndarray]:
    """Queries of both kinds the calibration never saw (another seed)."""
    return realistic_queries(emb, sample=150, seed=99)


@pytest.fixture(scope="module")
def indexes(emb) -> dict[str, NeighborIndex]:
    out = {}
    for name in BACKENDS:
        target = min(TARGET[name], 0.99)
        out[name] = NeighborIndex(emb, backend=name, exact_below=0, target_recall=target, progress=False)
        assert out[name].backend == name, out[name].exact_reason
    return out


def _exact_truth(emb: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    sims = q @ emb.T
    if allowed is not None:
        sims[:, ~allowed] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


# ---------------------------------------------------------------------- correctness vs exact
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_reaches_its_recall_on_both_query_kinds(indexes, emb, held_out, name):
    index = indexes[name]
    report = index.recall_report()
    assert report.backend == name and report.k == 10
    assert set(report.recall) == {"perturbed", "off-manifold"}
    assert min(report.recall.values()) >= TARGET[name]
    frame = report.to_frame()
    assert frame["kind"].tolist() == ["perturbed", "off-manifold"] and (frame["backend"] == name).all()
    for kind, q in held_out.items():
        rows, scores = index.query_batch(q, 10)
        assert recall_at_k(_exact_truth(emb, q, 10), rows) >= TARGET[name] - 0.01, kind
        # scores are exact cosines of the returned rows, best first
        np.testing.assert_allclose(scores, np.einsum("md,mkd->mk", q, emb[rows]), atol=1e-5)
        assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert index.recall(kind="off-manifold", sample=100, seed=5) >= TARGET[name] - 0.02


def test_calibration_can_fail_too_narrow_a_breadth(emb, held_out):
    """The recall checks above can fail: a fixed narrow HNSW breadth misses neighbours."""
    narrow = NeighborIndex(emb, backend="faiss-hnsw", exact_below=0, breadth=8, progress=False)
    q = held_out["off-manifold"]
    assert recall_at_k(_exact_truth(emb, q, 10), narrow.query_batch(q, 10)[0]) < 0.95
    assert narrow.recall_report().breadth == 8 and min(narrow.recall_report().recall.values()) < 0.95


@pytest.mark.parametrize("name", BACKENDS)
def test_batch_equals_single_queries(indexes, held_out, name):
    index = indexes[name]
    q = np.concatenate([held_out["perturbed"][:6], held_out["off-manifold"][:6]])
    mask = np.arange(N) % 3 != 0
    for kwargs in ({}, {"mask": mask, "exclude": [1, 2, 3]}):
        rows, scores = index.query_batch(q, 7, **kwargs)
        assert rows.shape == scores.shape == (12, 7)
        for i in range(len(q)):
            r, s = index.query(q[i], 7, **kwargs)
            assert rows[i].tolist() == r.tolist()
            np.testing.assert_allclose(scores[i], s, atol=1e-6)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("fraction", [0.5, 0.15, 0.03])
def test_filters_and_excludes(indexes, emb, held_out, name, fraction):
    index = indexes[name]
    rng = np.random.default_rng(int(fraction * 1000))
    mask = rng.random(N) < fraction
    q = held_out["perturbed"][:40]
    exclude = np.argmax(q @ emb.T, axis=1)[:5]  # the best rows of some queries: must never come back
    rows, scores = index.query_batch(q, 10, mask=mask, exclude=exclude)
    assert (rows >= 0).all() and mask[rows].all() and not np.isin(rows, exclude).any()
    allowed = mask.copy()
    allowed[exclude] = False
    assert recall_at_k(_exact_truth(emb, q, 10, allowed), rows) >= 0.97
    # few qualifying rows: fewer than k come back, padded
    few = np.zeros(N, bool)
    few[[5, 17, 300]] = True
    rows, scores = index.query_batch(q[:2], 10, mask=few, exclude=[17])
    assert sorted(rows[0][rows[0] >= 0].tolist()) == [5, 300] and np.isnan(scores[0, 2:]).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_a_query_excluding_its_reference_takes_the_unfiltered_path(indexes, emb, name, monkeypatch):
    """A composed / image-row query excludes one row: searched unfiltered for k + 1, the row
    dropped; the same rows as the filtered path and as exact search, no n-length mask built."""
    index = indexes[name]
    rng = np.random.default_rng(3)
    refs = rng.choice(N, size=60, replace=False)
    q = emb[refs] + rng.normal(scale=0.02, size=(60, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    masks: list[object] = []
    if index._backend is not None:
        real = index._backend.search

        def spy(queries, fetch, breadth, allowed=None):
            masks.append(allowed)
            return real(queries, fetch, breadth, allowed)

        monkeypatch.setattr(index._backend, "search", spy)
    before = index.fast_queries
    got = []
    for i, r in enumerate(refs):
        rows, scores = index.query(q[i], 10, exclude=[int(r)])
        assert len(rows) == 10 and int(r) not in rows.tolist()
        np.testing.assert_allclose(scores, emb[rows] @ q[i], atol=1e-5)
        got.append(rows)
    got = np.array(got)
    assert index.fast_queries - before == len(refs)  # every one took the fast path
    assert all(m is None for m in masks)  # and no backend call got a filter
    truth = np.array([_exact_truth(emb, q[i : i + 1], 11)[0] for i in range(len(refs))])
    truth = np.array([t[t != r][:10] for t, r in zip(truth, refs, strict=True)])
    slow = np.array([index.query_batch(q[i : i + 1], 10, exclude=[int(r)])[0][0] for i, r in enumerate(refs)])
    if name == "exact":
        assert got.tolist() == truth.tolist() == slow.tolist()
    else:
        assert recall_at_k(truth, got) >= 0.99
        assert recall_at_k(slow, got) >= 0.98
    # excluding more rows than the fast path allows (or nearly all rows) still answers correctly
    many = np.argsort(-(emb @ q[0]))[:100]
    rows, _ = index.query(q[0], 10, exclude=many)
    assert len(rows) == 10 and not np.isin(rows, many).any()
    with pytest.raises(IndexError):
        index.query(q[0], 10, exclude=[N])


# ---------------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", BACKENDS)
def test_save_load_roundtrip(indexes, held_out, tmp_path, name):
    index = indexes[name]
    q = held_out["off-manifold"][:20]
    before = index.query_batch(q, 10)
    index.save(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = NeighborIndex.load(tmp_path, index.embeddings)
    assert loaded.loaded_from == tmp_path and loaded.backend == name and loaded.breadth == index.breadth
    assert loaded.recall_report() == index.recall_report()
    after = loaded.query_batch(q, 10)
    assert after[0].tolist() == before[0].tolist()
    np.testing.assert_allclose(after[1], before[1], atol=1e-6)


@pytest.mark.parametrize("name", ["annoy", "faiss-hnsw", "faiss-ivf"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_saved_index_is_detected_and_rebuilt(emb, tmp_path, name, damage):
    small = emb[:3000]
    NeighborIndex(small, backend=name, exact_below=0, breadth=64, progress=False).save(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith(name)]
    data = bytearray(path.read_bytes())
    if damage == "flip":  # one byte in the middle: still parses, but would be silent garbage
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        path.unlink()
    with pytest.warns(IndexRebuilt, match="unusable"):
        index = NeighborIndex.load(tmp_path, small)
    assert index.loaded_from is None and index.backend == name
    assert index.query(small[3], 1)[0].tolist() == [3]


def test_reopening_hashes_sampled_blocks_and_full_verify_reads_all(emb, tmp_path, monkeypatch):
    """Reopening reads the first, the last and sampled blocks, not the whole file; damage outside
    the sample passes the default check (scores stay exact: candidates are re-scored) but not
    ``verify="full"``; damage inside a sampled block is caught either way."""
    import cirscope.neighbors._persist as ix

    monkeypatch.setattr(ix, "_SAMPLE_BLOCK", 256)  # so a small test file counts as a large one
    small = emb[:3000]
    NeighborIndex(small, backend="faiss-hnsw", exact_below=0, breadth=64, progress=False).save(tmp_path)
    (path,) = tmp_path.glob("faiss-hnsw-*.faiss")
    size = path.stat().st_size
    assert size > 256 * ix._SAMPLE_BLOCKS * 10
    reads = []
    real_open = open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def seek(self, pos):
            self.fh.seek(pos)

        def read(self, n=-1):
            out = self.fh.read(n)
            reads.append(len(out))
            return out

    monkeypatch.setattr(ix, "open", lambda p, mode="r": Counting(real_open(p, mode)), raising=False)
    assert NeighborIndex.load(tmp_path, small).loaded_from == tmp_path
    assert sum(reads) <= 256 * ix._SAMPLE_BLOCKS  # the sample only
    monkeypatch.delattr(ix, "open")
    good = path.read_bytes()
    n_blocks = -(-size // 256)
    rng = np.random.default_rng(size)
    inner = set(rng.choice(np.arange(1, n_blocks - 1), size=ix._SAMPLE_BLOCKS - 2, replace=False).tolist())
    skipped = next(b for b in range(n_blocks // 2, n_blocks - 1) if b not in inner)
    data = bytearray(good)
    data[skipped * 256 + 128] ^= 0x01
    path.write_bytes(bytes(data))
    # the default check does not see a block outside the sample (what it reaches is re-scored
    # exactly, see sampled_digest); the full check does
    info = json.loads((tmp_path / "index.json").read_text())
    assert ix.sampled_digest(path) == info["backend_file_sampled_blake2b"]
    assert file_digest(path) != info["backend_file_blake2b"]
    with pytest.warns(IndexRebuilt, match="damaged"):
        assert NeighborIndex.load(tmp_path, small, verify="full").loaded_from is None
    for block in (0, n_blocks - 1, min(inner)):  # inside the sample: caught by default
        data = bytearray(good)
        data[block * 256 + 3] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.warns(IndexRebuilt, match="damaged"):
            assert NeighborIndex.load(tmp_path, small).loaded_from is None
    with pytest.raises(ValueError, match="verify"):
        NeighborIndex.load(tmp_path, small, verify="some")


def test_cached_rebuilds_an_auto_index_when_auto_now_resolves_differently(emb, tmp_path, monkeypatch):
    import cirscope.neighbors._index as ix

    small = emb[:3000]
    ids = np.array([f"img-{i}" for i in range(len(small))], dtype=object)
    monkeypatch.setattr(ix, "faiss_available", lambda: False)  # built where faiss was missing
    first = NeighborIndex.cached(small, tmp_path, ids=ids, exact_below=0, target_recall=0.9, progress=False)
    assert first.backend == "annoy" and "faiss is not installed" in first.note
    again = NeighborIndex.cached(small, tmp_path, ids=ids, exact_below=0, target_recall=0.9, progress=False)
    assert again.loaded_from == tmp_path and again.backend == "annoy"
    monkeypatch.undo()  # faiss installed since: "auto" now means faiss-hnsw
    now = NeighborIndex.cached(small, tmp_path, ids=ids, exact_below=0, target_recall=0.9, progress=False)
    assert now.loaded_from is None and now.backend == "faiss-hnsw"
    # reopening compares the ids as saved, without the uniqueness sort of a build
    monkeypatch.setattr(NeighborIndex, "_check_ids", staticmethod(lambda *a: pytest.fail("ids re-checked")))
    reused = NeighborIndex.cached(small, tmp_path, ids=ids, exact_below=0, target_recall=0.9, progress=False)
    assert reused.loaded_from == tmp_path and reused.backend == "faiss-hnsw"
    assert reused.ids.tolist() == ids.tolist()


def test_old_format_is_rebuilt_and_cached_reuses_matching_settings(emb, tmp_path):
    small = emb[:3000]
    first = NeighborIndex.cached(small, tmp_path, backend="faiss-hnsw", exact_below=0, progress=False)
    assert first.loaded_from is None
    again = NeighborIndex.cached(small, tmp_path, backend="faiss-hnsw", exact_below=0, progress=False)
    assert again.loaded_from == tmp_path and again.breadth == first.breadth
    other = NeighborIndex.cached(small, tmp_path, backend="faiss-hnsw", exact_below=0, hnsw_m=8, progress=False)
    assert other.loaded_from is None and other._backend.m == 8
    info = json.loads((tmp_path / "index.json").read_text())
    info["version"] = 1
    (tmp_path / "index.json").write_text(json.dumps(info))
    with pytest.warns(IndexRebuilt, match="format version 1"):
        assert NeighborIndex.load(tmp_path, small).loaded_from is None


# ---------------------------------------------------------------------- choice, errors, laziness
def test_auto_picks_exact_then_the_measured_backend(emb):
    assert NeighborIndex(emb[:500]).backend == "exact"
    auto = NeighborIndex(emb, exact_below=5000, progress=False)
    assert auto.backend == AUTO_BACKEND == "faiss-hnsw" and not auto.note
    assert NeighborIndex(emb, exact_below=5000, search_k=300, progress=False).backend == "annoy"
    assert NeighborIndex(emb, backend="exact").is_exact
    # fp16 codes (half a float32 copy) + the graph (layer 0: 2 * M = 64 links of 4 bytes per row)
    codes, links = emb.nbytes // 2, N * 64 * 4
    assert codes + links <= auto.memory_bytes() < codes + 1.3 * links


def test_auto_uses_ivf_from_its_threshold_and_ivf_holds_codes_not_a_float32_copy(emb, monkeypatch):
    import cirscope.neighbors._index as ix

    monkeypatch.setattr(ix, "IVF_FROM", 6000)
    big = NeighborIndex(emb, exact_below=5000, progress=False)
    assert big.backend == "faiss-ivf" and big.recall_report().breadth_name == "nprobe"
    assert NeighborIndex(emb[:5500], exact_below=5000, progress=False).backend == "faiss-hnsw"
    # asking for HNSW settings keeps HNSW above the threshold; nlist asks for IVF below it
    assert NeighborIndex(emb, exact_below=5000, hnsw_m=16, progress=False).backend == "faiss-hnsw"
    monkeypatch.setattr(ix, "IVF_FROM", 10**9)
    assert NeighborIndex(emb, exact_below=5000, nlist=128, progress=False).backend == "faiss-ivf"
    # 8-bit codes (a quarter of float32) + 8-byte row ids + float32 centroids
    nlist = big._backend.nlist
    assert big.memory_bytes() == emb.nbytes // 4 + N * 8 + nlist * DIM * 4


def test_ivf_ladder_and_cells():
    from cirscope.neighbors._faiss_ivf import FaissIVFBackend, default_nlist

    assert [default_nlist(n) for n in (1, 10_000, 1_000_000, 10**12)] == [1, 128, 4096, 65536]
    ladder = FaissIVFBackend(8, nlist=256).ladder(10_000)
    assert ladder[:7] == [1, 2, 3, 4, 6, 8, 12] and ladder[-1] == 64
    assert FaissIVFBackend(8, nlist=256).scaled(32, 10, 1.0) == 32
    assert FaissIVFBackend(8, nlist=256).scaled(32, 10, 0.01) == 256  # capped at every cell
    with pytest.raises(ValueError, match="storage"):
        FaissIVFBackend(8, storage="int4")


def test_ivf_keeps_near_duplicates_apart(tmp_path):
    """Tight clusters of near-identical rows: 8-bit codes alone misorder them; the exact re-rank of 4k
    candidates keeps recall, and reopening from disk gives the same answers."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(30, 32))
    x = (centres[:, None, :] + 0.01 * rng.normal(size=(30, 100, 32))).reshape(-1, 32).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = NeighborIndex(x, backend="faiss-ivf", exact_below=0, progress=False)
    q = realistic_queries(x, sample=100, seed=5)["perturbed"]
    assert recall_at_k(_exact_truth(x, q, 10), index.query_batch(q, 10)[0]) >= 0.99
    index.save(tmp_path)
    again = NeighborIndex.load(tmp_path, x)
    assert again.loaded_from is not None and again.backend == "faiss-ivf" and again.breadth == index.breadth
    assert np.array_equal(again.query_batch(q, 10)[0], index.query_batch(q, 10)[0])


def test_bad_backend_settings_name_the_problem(emb):
    with pytest.raises(ValueError, match="unknown backend 'hnsw'"):
        NeighborIndex(emb, backend="hnsw")
    with pytest.raises(TypeError, match="does not take"):
        NeighborIndex(emb[:2000], backend="faiss-hnsw", exact_below=0, n_trees=5)
    with pytest.raises(ValueError, match="storage"):
        NeighborIndex(emb[:2000], backend="faiss-hnsw", exact_below=0, storage="int4")
    with pytest.raises(ValueError, match="positive"):
        NeighborIndex(emb[:2000], backend="faiss-hnsw", exact_below=0, breadth=0)
    with pytest.raises(TypeError, match="does not take"):
        NeighborIndex(emb[:2000], backend="faiss-ivf", exact_below=0, hnsw_m=8)
    with pytest.raises(ValueError, match="nlist"):
        NeighborIndex(emb[:2000], backend="faiss-ivf", exact_below=0, nlist=0)


def test_faiss_is_imported_lazily_and_auto_falls_back_without_it():
    code = (
        "import sys, numpy as np, cirscope, cirscope.neighbors._index as ix; "
        "ix.NeighborIndex(np.eye(4)).query(np.ones(4)); "
        "print('faiss' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = (
        "import sys; sys.modules['faiss'] = None; import numpy as np; from cirscope.neighbors._index import NeighborIndex; "
        "x = np.random.default_rng(0).normal(size=(3000, 16)); "
        "i = NeighborIndex(x, exact_below=1000, progress=False); print(i.backend, '|', i.note)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    backend, note = out.stdout.strip().split(" | ")
    assert backend in ("annoy", "exact") and "pip install faiss-cpu" in note
