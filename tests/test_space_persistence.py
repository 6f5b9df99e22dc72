"""Space folders: atomic saves, cheap verification on open, portable image paths, old formats."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cirscope as cs
from cirscope._core.errors import DamagedFileError
from cirscope._core.hashing import embeddings_fingerprint, sample_rows
from tests.conftest import photo_bytes


def _vecs(n, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _space(n=12, seed=0, d=8, world=1):
    return cs.Space.from_embeddings(cs.datasets.shapes(n, seed=world), _vecs(n, d, seed), model_name="mine")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- round trip, memory map
def test_roundtrip_is_memory_mapped_read_only_and_keeps_the_fingerprint(tmp_path):
    s = _space()
    s.save(tmp_path / "o")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["embeddings.npy", "gallery.parquet", "space.json"]
    assert _leftovers(tmp_path) == []
    info = json.loads((tmp_path / "o" / "space.json").read_text())
    assert info["version"] == 2 and info["normalized"] is True and info["dtype"] == "float32"
    assert info["embeddings_fingerprint"] == s.fingerprint
    back = cs.Space.load(tmp_path / "o")
    assert isinstance(back.image_embeddings, np.memmap) and not back.image_embeddings.flags.writeable
    assert back._fingerprint == s.fingerprint  # read from space.json, not recomputed
    np.testing.assert_array_equal(back.image_embeddings, s.image_embeddings)
    assert back.fingerprint == embeddings_fingerprint(np.asarray(back.image_embeddings))
    pd.testing.assert_frame_equal(back.metadata, s.metadata)
    cs.Space.load(tmp_path / "o", verify="full")
    with pytest.raises(ValueError, match='verify must be "sample" or "full"'):
        cs.Space.load(tmp_path / "o", verify="none")


def test_loaded_space_serves_searches_maps_and_indexes_from_the_read_only_map(tmp_path):
    s = cs.Space(cs.datasets.shapes(60, seed=3), "cirscope-toy", cache=False, progress=False)
    s.save(tmp_path / "o")
    back = cs.Space.load(tmp_path / "o")
    assert isinstance(back.image_embeddings, np.memmap)
    pd.testing.assert_frame_equal(back.search("a red star", k=5), s.search("a red star", k=5))
    pd.testing.assert_frame_equal(back.search(3, k=5), s.search(3, k=5))
    np.testing.assert_allclose(back.map("pca"), s.map("pca"), atol=1e-5)
    np.testing.assert_array_equal(back.encode_image(back.gallery.ids[2]), s.image_embeddings[2])


def test_space_accepts_a_model_name_and_refuses_other_things():
    g = cs.datasets.shapes(8, seed=0)
    s = cs.Space(g, "cirscope-toy", cache=False, progress=False)
    assert s.embedder.name == "cirscope-toy" and len(s) == 8
    with pytest.raises(TypeError, match="Embedder or a model name"):
        cs.Space(g, 3)


# ---------------------------------------------------------------------------- item 7: normalise, then validate
def test_tiny_and_huge_values_normalise_to_unit_rows():
    g = cs.datasets.shapes(3, seed=0)
    v = _vecs(3)
    for scale in (1e-30, 1e25, 1e-300, 1e300):
        s = cs.Space.from_embeddings(g, v * scale, model_name="x")
        np.testing.assert_allclose(np.linalg.norm(s.image_embeddings.astype(np.float64), axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(s.image_embeddings, cs.Space.from_embeddings(g, v).image_embeddings, atol=1e-6)
    with pytest.raises(ValueError, match="all zeros"):
        cs.Space.from_embeddings(g, np.zeros((3, 8)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        cs.Space.from_embeddings(g, np.full((3, 8), np.inf))


def test_tampered_embeddings_scaled_by_1e30_are_refused(tmp_path):
    _space().save(tmp_path / "o")
    path = tmp_path / "o" / "embeddings.npy"
    np.save(path, np.load(path) * np.float32(1e30))
    for verify in ("sample", "full"):
        with pytest.raises(DamagedFileError, match=r"embeddings\.npy is damaged: its rows differ"):
            cs.Space.load(tmp_path / "o", verify=verify)


# ---------------------------------------------------------------------------- item 5: files that belong together
def test_swapped_rows_reversed_parquet_and_mixed_folders_are_refused(tmp_path):
    _space(seed=0).save(tmp_path / "a")
    _space(seed=1, world=2).save(tmp_path / "b")
    (tmp_path / "a2").mkdir()

    def fresh():
        shutil.rmtree(tmp_path / "a2")
        shutil.copytree(tmp_path / "a", tmp_path / "a2")
        return tmp_path / "a2"

    f = fresh()
    e = np.load(f / "embeddings.npy")
    np.save(f / "embeddings.npy", e[[1, 0, *range(2, len(e))]])
    with pytest.raises(DamagedFileError, match=r"embeddings\.npy is damaged: its rows differ"):
        cs.Space.load(f)
    f = fresh()
    t = pq.read_table(f / "gallery.parquet")
    pq.write_table(t.take(list(range(t.num_rows))[::-1]), f / "gallery.parquet")
    with pytest.raises(DamagedFileError, match=r"gallery\.parquet is damaged"):
        cs.Space.load(f)
    for name in ("embeddings.npy", "gallery.parquet"):  # a folder mixing two saves
        f = fresh()
        shutil.copy(tmp_path / "b" / name, f / name)
        with pytest.raises(DamagedFileError, match=rf"{name.replace('.', '[.]')} is damaged"):
            cs.Space.load(f)


def test_full_verification_catches_a_swap_outside_the_sample(tmp_path):
    n = 3000
    s = cs.Space.from_embeddings(cs.Gallery.from_images([b"x"] * n), _vecs(n), model_name="x")
    s.save(tmp_path / "o")
    info = json.loads((tmp_path / "o" / "space.json").read_text())
    outside = np.setdiff1d(np.arange(n), sample_rows(n, info["verify"]["seed"]))[:2]
    e = np.load(tmp_path / "o" / "embeddings.npy")
    e[outside] = e[outside[::-1]]
    np.save(tmp_path / "o" / "embeddings.npy", e)
    cs.Space.load(tmp_path / "o")  # the quick check samples rows: this swap is outside its sample
    with pytest.raises(DamagedFileError, match="fingerprint"):
        cs.Space.load(tmp_path / "o", verify="full")


def test_bad_space_json_fields_give_one_clear_error(tmp_path):
    _space().save(tmp_path / "o")
    path = tmp_path / "o" / "space.json"
    good = json.loads(path.read_text())
    cases = {
        '"n" is "22" (str), expected an integer': {**good, "n": "22"},
        '"dim" is missing': {k: v for k, v in good.items() if k != "dim"},
        '"model" is 5': {**good, "model": 5},
        '"verify" is null': {**good, "verify": None},
        "do not match its checksum": {**good, "problems": 3},
        'says "version": 1 but carries a format 2 verification record': {**good, "version": 1},
    }
    for expected, record in cases.items():
        path.write_text(json.dumps(record))
        with pytest.raises(DamagedFileError, match=f"space.json is damaged: .*{re.escape(expected)}") as err:
            cs.Space.load(tmp_path / "o")
        assert err.value.path == path and "Save the space again" in str(err.value)
    path.write_text("{not json")
    with pytest.raises(DamagedFileError, match="not valid JSON"):
        cs.Space.load(tmp_path / "o")
    from cirscope.space._files import _record_checksum

    newer = {**good, "version": 99}
    path.write_text(json.dumps(newer))  # a flipped digit: the checksum no longer matches, so it is damage
    with pytest.raises(DamagedFileError, match="do not match its checksum"):
        cs.Space.load(tmp_path / "o")
    path.write_text(json.dumps({**newer, "checksum": _record_checksum(newer)}))  # really written by a newer one
    with pytest.raises(ValueError, match="newer cirscope") as err:
        cs.Space.load(tmp_path / "o")
    assert not isinstance(err.value, DamagedFileError)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"space\.json not found"):
        cs.Space.load(tmp_path / "o")


# ---------------------------------------------------------------------------- item 4: portable paths
def _photo_gallery(folder: Path, n=4) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"p{i}.jpg").write_bytes(photo_bytes(i))
    return sorted(folder.glob("*.jpg"))


def _thumbs(space):
    return [space.gallery.thumbnail(i) for i in range(len(space))]


def test_saved_space_opens_from_another_working_directory(tmp_path, monkeypatch):
    _photo_gallery(tmp_path / "work" / "photos")
    monkeypatch.chdir(tmp_path / "work")
    s = cs.Space(cs.Gallery.from_folder("photos"), "cirscope-toy", cache=False, progress=False)
    s.save("out")
    expected = _thumbs(s)
    monkeypatch.chdir(tmp_path)
    back = cs.Space.load(Path("work") / "out")
    assert _thumbs(back) == expected and back.gallery.problems.empty
    assert all(os.path.isabs(p) for p in back.gallery.sources)


def test_space_folder_moves_together_with_the_images_inside_it(tmp_path, monkeypatch):
    _photo_gallery(tmp_path / "proj" / "images")
    monkeypatch.chdir(tmp_path / "proj")
    s = cs.Space(cs.Gallery.from_folder("images"), "cirscope-toy", cache=False, progress=False)
    s.save(".")  # the space lives in the folder that holds its images
    stored = pq.read_table(tmp_path / "proj" / "gallery.parquet").column("__source_path__").to_pylist()
    assert stored == [f"images/p{i}.jpg" for i in range(4)]
    expected = _thumbs(s)
    monkeypatch.chdir(tmp_path)
    shutil.move(tmp_path / "proj", tmp_path / "moved")
    back = cs.Space.load(tmp_path / "moved")
    assert _thumbs(back) == expected
    assert back.gallery.sources[0] == str(tmp_path / "moved" / "images" / "p0.jpg")


def test_saving_into_a_folder_of_images_keeps_them(tmp_path):
    _photo_gallery(tmp_path / "photos")
    s = cs.Space(cs.Gallery.from_folder(tmp_path / "photos"), "cirscope-toy", cache=False, progress=False)
    for _ in range(2):  # the second save replaces the first in place
        s.save(tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == [
        "embeddings.npy", "gallery.parquet", "p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "space.json"]
    assert _leftovers(tmp_path) == []
    back = cs.Space.load(tmp_path / "photos")
    assert _thumbs(back) == _thumbs(s)


# ---------------------------------------------------------------------------- item 6: atomic, concurrent saves
def test_concurrent_saves_to_one_folder_all_succeed_and_the_last_wins(tmp_path):
    spaces = [_space(seed=i) for i in range(4)]
    prints = {sp.fingerprint for sp in spaces}
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda i: spaces[i % 4].save(tmp_path / "o"), range(40)))
    assert len(done) == 40
    back = cs.Space.load(tmp_path / "o", verify="full")
    assert back.fingerprint in prints
    assert _leftovers(tmp_path) == [] and list((tmp_path / "o").glob("*tmp*")) == []


_SAVER = """
import sys, numpy as np, cirscope as cs
g = cs.datasets.shapes(50, seed=1)
spaces = [cs.Space.from_embeddings(g, np.random.default_rng(i).normal(size=(50, 64)), model_name="m") for i in range(2)]
print("ready", flush=True)
i = 0
while True:
    spaces[i % 2].save(sys.argv[1]); i += 1
"""


def test_a_save_killed_at_any_moment_leaves_a_loadable_space(tmp_path):
    g = cs.datasets.shapes(50, seed=1)
    prints = {cs.Space.from_embeddings(g, np.random.default_rng(i).normal(size=(50, 64))).fingerprint
              for i in range(2)}
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path / "o")], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 5
        while not (tmp_path / "o").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.05, 0.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert cs.Space.load(tmp_path / "o", verify="full").fingerprint in prints


def test_a_failed_save_leaves_the_previous_folder_untouched(tmp_path, monkeypatch):
    s = _space()
    s.save(tmp_path / "o")
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    import cirscope._core.atomic

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(cirscope._core.atomic, "swap_folder", boom)
    with pytest.raises(OSError, match="disk full"):
        _space(seed=5).save(tmp_path / "o")
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before
    assert _leftovers(tmp_path) == []


def test_derived_caches_survive_a_save_of_the_same_embeddings_only(tmp_path):
    s = _space()
    s.save(tmp_path / "o")
    back = cs.Space.load(tmp_path / "o")
    (back.cache_dir / "x").mkdir(parents=True)
    back.save(tmp_path / "o")  # reads its own memory map while replacing the folder
    assert (tmp_path / "o" / "derived" / "x").is_dir()
    np.testing.assert_array_equal(cs.Space.load(tmp_path / "o").image_embeddings, s.image_embeddings)
    _space(seed=9).save(tmp_path / "o")
    assert not (tmp_path / "o" / "derived").exists()


# ---------------------------------------------------------------------------- format 1 folders
def _write_format1(folder: Path, space) -> None:
    """What cirscope wrote before format 2 (no verification record; paths as given)."""
    folder.mkdir()
    np.save(folder / "embeddings.npy", np.asarray(space.image_embeddings))
    space.gallery.save(folder)
    table = pq.read_table(folder / "gallery.parquet")
    meta = dict(table.schema.metadata)
    meta[b"cirscope"] = json.dumps({"kind": "gallery", "version": 1}).encode()
    pq.write_table(table.replace_schema_metadata(meta), folder / "gallery.parquet")
    (folder / "space.json").write_text(json.dumps({
        "format": "cirscope.space", "version": 1, "n": len(space), "dim": space.dim, "model": space.model,
        "embeddings_fingerprint": space.fingerprint, "problems": 0}))


def test_format1_folders_still_open_with_a_note_and_are_checked(tmp_path):
    s = _space()
    _write_format1(tmp_path / "old", s)
    with pytest.warns(UserWarning, match="older cirscope .* save it again"):
        back = cs.Space.load(tmp_path / "old")
    np.testing.assert_array_equal(back.image_embeddings, s.image_embeddings)
    assert back.fingerprint == s.fingerprint
    back.save(tmp_path / "old")  # upgraded in place
    assert json.loads((tmp_path / "old" / "space.json").read_text())["version"] == 2
    assert isinstance(cs.Space.load(tmp_path / "old").image_embeddings, np.memmap)
    _write_format1(tmp_path / "old2", s)
    e = np.load(tmp_path / "old2" / "embeddings.npy")
    np.save(tmp_path / "old2" / "embeddings.npy", e[::-1])
    with pytest.raises(DamagedFileError, match="fingerprint"):
        cs.Space.load(tmp_path / "old2")


# ---------------------------------------------------------------------------- normalisation as a property
@settings(max_examples=60, deadline=None, database=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                  elements=st.floats(-1e300, 1e300, allow_nan=False, allow_subnormal=True)))
def test_normalising_any_finite_rows_gives_unit_rows_or_names_the_zero_rows(arr):
    from cirscope._core.arrays import normalize_rows

    zero = ~arr.any(axis=1)
    if zero.any():
        with pytest.raises(ValueError, match=f"{int(zero.sum())} rows of the embeddings are all zeros"):
            normalize_rows(arr)
        return
    out = normalize_rows(arr)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), 1.0, atol=1e-6)
    big = np.abs(arr).argmax(axis=1)  # the largest component keeps its sign
    assert (np.sign(out[np.arange(len(arr)), big]) == np.sign(arr[np.arange(len(arr)), big])).all()


def test_check_matrix_names_values_beyond_float32():
    from cirscope._core.arrays import check_matrix

    with pytest.raises(ValueError, match=r"beyond the float32 range"):
        check_matrix(np.full((2, 3), 1e39))
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_matrix(np.array([[1.0, np.nan]]))


def test_urls_survive_a_gallery_save_and_load(tmp_path, monkeypatch):
    from cirscope.gallery._table import Gallery

    urls = ["https://example.com/a.jpg", "http://example.org/b/c.png?x=1"]
    gallery = Gallery(pd.DataFrame({"id": ["a", "c"]}), urls)
    monkeypatch.chdir(tmp_path)
    gallery.save(tmp_path / "g")
    assert Gallery.load(tmp_path / "g").sources == urls
