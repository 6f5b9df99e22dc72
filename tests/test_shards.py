"""The Parquet shard format and the in-process engine of ``cs.embed`` (no Ray needed)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import cirscope as cs
from cirscope._embed_api import embed
from cirscope._parquet_space import space_from_parquet
from cirscope._shard_sources import plan_shards, read_task
from cirscope._shards import MANIFEST, MixedModelsError, ShardError, open_shards, write_shard
from tests.conftest import photo_bytes


@pytest.fixture(scope="module")
def toy() -> cs.Embedder:
    return cs.Embedder.toy(num_workers=0)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for i in range(9):
        (root / f"img{i}.jpg").write_bytes(photo_bytes(i))
    (root / "sub" / "p0.png").write_bytes(photo_bytes(20, fmt="PNG"))
    (root / "broken.jpg").write_bytes(b"not an image at all")
    return root


def _by_id(space) -> dict[str, np.ndarray]:
    return dict(zip(space.gallery.ids, np.asarray(space.image_embeddings), strict=True))


def test_local_run_matches_the_in_process_pipeline_and_reports_problems(folder, tmp_path, toy):
    run = embed(folder, toy, out=tmp_path / "out", shard_size=4, progress=False)
    assert run.complete and run.shards == 3 and run.rows == 10 and len(run.computed) == 3
    assert run.problems["id"].tolist() == ["broken.jpg"]
    assert "not an image" in run.problems["reason"][0]
    table = pq.read_table(tmp_path / "out" / "shard-00000.parquet")
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[128]"
    assert table.column_names == ["id", "source", "embedding", "model"]
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert set(table.column("model").to_pylist()) == {manifest["model"]["key"]}
    assert manifest["model"]["fingerprint"] == toy.fingerprint

    reference = toy.embed_gallery(cs.Gallery.from_folder(folder), cache=False, progress=False)
    ids = np.asarray(cs.Gallery.from_folder(folder).ids)[reference.rows]
    space = space_from_parquet(tmp_path / "out")
    got = _by_id(space)
    assert sorted(got) == sorted(ids)
    np.testing.assert_allclose(np.stack([got[i] for i in ids]), reference.embeddings, atol=1e-5)
    assert isinstance(space.image_embeddings, np.memmap)
    assert space.problems["id"].tolist() == ["broken.jpg"]
    assert space.search("a red circle", k=3)["id"].isin(ids).all()


def test_rerun_skips_finished_shards_and_recomputes_only_changed_input(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
    again = embed(folder, toy, out=out, shard_size=4, progress=False)
    assert again.computed == [] and len(again.reused) == 3 and again.rows == 10
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")} == mtimes

    (folder / "zzz.png").write_bytes(photo_bytes(99, fmt="PNG"))  # sorts last: only the last shard changes
    third = embed(folder, toy, out=out, shard_size=4, progress=False)
    assert third.computed == ["shard-00002"] and third.rows == 11
    assert "zzz.png" in set(space_from_parquet(out).gallery.ids)


def test_a_changed_model_never_mixes_with_old_shards(folder, tmp_path, toy, tiny_model_name, tiny_checkpoint):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    other = cs.Embedder(tiny_model_name, tiny_checkpoint, num_workers=0)
    with pytest.raises(MixedModelsError, match="another model"):
        embed(folder, other, out=out, shard_size=4, progress=False)
    assert open_shards(out).model["model"] == "cirscope-toy"  # nothing was touched
    run = embed(folder, other, out=out, shard_size=4, overwrite=True, progress=False)
    assert run.computed == ["shard-00000", "shard-00001", "shard-00002"]
    assert space_from_parquet(out).model["model"] == tiny_model_name


def test_damaged_shards_and_manifests_are_detected(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    shard = out / "shard-00001.parquet"
    good = shard.read_bytes()

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # same size, other bytes: caught by the checksum on first open
    shard.write_bytes(bytes(flipped))
    with pytest.raises(ShardError, match="checksum"):
        open_shards(out)
    shard.write_bytes(good)
    space = space_from_parquet(out)  # builds the memory-mapped matrix
    assert len(space) == 10

    shard.write_bytes(good[:-10])  # truncated after the matrix exists: caught by the size check
    with pytest.raises(ShardError, match="damaged"):
        open_shards(out)
    shard.write_bytes(bytes(flipped))
    with pytest.raises(ShardError, match="checksum"):
        open_shards(out, verify=True)
    shard.write_bytes(good)

    expected = np.array(space.image_embeddings)
    del space  # (rewriting a file in place under a live memory map would crash any reader)
    cache = next((out / ".cirscope-cache").glob("embeddings-*.npy"))
    head = cache.read_bytes()[:100]
    cache.unlink()
    cache.write_bytes(head)  # a damaged matrix is rebuilt, never loaded
    np.testing.assert_array_equal(np.asarray(open_shards(out).embeddings), expected)

    # same size, rows swapped (a tampered or mixed matrix): its record no longer matches, so it is rebuilt
    cache = next((out / ".cirscope-cache").glob("embeddings-*.npy"))
    swapped = np.load(cache)
    swapped[[0, -1]] = swapped[[-1, 0]]
    np.save(cache, swapped)
    with pytest.warns(UserWarning, match="does not match its record"):
        rebuilt = open_shards(out)
    np.testing.assert_array_equal(np.asarray(rebuilt.embeddings), expected)
    del rebuilt

    manifest = out / MANIFEST
    manifest.write_text(manifest.read_text()[:-20])
    with pytest.raises(ShardError, match="damaged"):
        open_shards(out)
    with pytest.raises(ShardError, match="overwrite=True"):
        embed(folder, toy, out=out, shard_size=4, progress=False)
    assert embed(folder, toy, out=out, shard_size=4, progress=False, overwrite=True).complete


def test_tables_and_webdataset_shards_with_bad_items(tmp_path, toy):
    data = tmp_path / "data"
    data.mkdir()
    blobs = [photo_bytes(i) for i in range(5)]
    pd.DataFrame({"key": [f"k{i}" for i in range(7)], "jpg": [*blobs, b"\x00garbage", None]}).to_parquet(
        data / "table.parquet", row_group_size=3)
    (data / "imgs").mkdir()
    (data / "imgs" / "a.jpg").write_bytes(photo_bytes(50))
    pd.DataFrame({"path": ["imgs/a.jpg", "imgs/missing.jpg", "http://127.0.0.1:9/unreachable.jpg"]}).to_csv(data / "list.csv", index=False)
    with tarfile.open(data / "shard-000.tar", "w") as tar:
        for name, payload in [("s1.jpg", photo_bytes(60)), ("s1.txt", b"a caption"), ("s2.png", photo_bytes(61, fmt="PNG")),
                              ("s3.jpg", b"corrupt member")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

    tasks = plan_shards(str(data / "*"), shard_size=4)
    assert [t["kind"] for t in tasks] == ["table", "table", "table", "tar"]
    items, problems = read_task(tasks[2])  # rows 4..6: spans two row groups
    assert [i[0] for i in items] == ["k4", "k5"] and problems == [("k6", "table.parquet#6", "empty image cell")]

    run = embed(str(data / "*"), toy, out=tmp_path / "out", shard_size=4, progress=False)
    space = space_from_parquet(tmp_path / "out")
    assert sorted(space.gallery.ids) == sorted(["k0", "k1", "k2", "k3", "k4", "list:0", "s1", "s2"])
    reasons = dict(zip(run.problems["id"], run.problems["reason"], strict=True))
    assert set(reasons) == {"k5", "k6", "list:1", "list:2", "s3"}
    assert reasons["list:1"] == "file not found" and reasons["list:2"].startswith("URL unreachable")
    got = _by_id(space)
    reference = toy.embed_gallery(cs.Gallery.from_dataframe(pd.DataFrame({"image": blobs}), image="image"),
                                  cache=False, progress=False)
    np.testing.assert_allclose(np.stack([got[f"k{i}"] for i in range(5)]), reference.embeddings, atol=1e-5)


def test_open_without_torch_and_a_glob_of_foreign_parquet(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    code = (
        "import sys, cirscope as cs; cs.embed; from cirscope._parquet_space import space_from_parquet; "
        f"s = space_from_parquet({str(out)!r}); print(len(s), s.dim, len(s.search(0, k=2)), "
        "*[m in sys.modules for m in ('torch', 'ray', 'open_clip')])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["10", "128", "2", "False", "False", "False"]

    other = tmp_path / "foreign"
    other.mkdir()
    write_shard(other, "part-0", ["a", "b"], ["a.jpg", "b.jpg"], np.array([[3, 4], [0, 2]], np.float32), "m")
    space = space_from_parquet(str(other / "*.parquet"))
    np.testing.assert_allclose(space.image_embeddings, [[0.6, 0.8], [0, 1]])
    with pytest.raises(FileNotFoundError, match="No Parquet shards"):
        space_from_parquet(str(tmp_path / "nothing-*.parquet"))


def test_ray_engine_without_ray_says_how_to_install(folder, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import cirscope as cs\n"
        "try:\n"
        f"    cs.embed({str(folder)!r}, cs.Embedder.toy(), out={str(tmp_path / 'o')!r}, engine='ray')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "cirscope[ray]"' in res.stdout
    cli = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None; from cirscope.cli import main; "
         f"sys.exit(main(['embed', {str(folder)!r}, '--engine', 'ray', '--model', 'cirscope-toy', '--out', "
         f"{str(tmp_path / 'o2')!r}]))"],
        capture_output=True, text=True,
    )
    assert cli.returncode == 2 and 'pip install "cirscope[ray]"' in cli.stderr


def test_cli_local_engine_writes_shards(folder, tmp_path, capsys):
    from cirscope.cli import main

    out = tmp_path / "out"
    assert main(["embed", str(folder), "--engine", "local", "--model", "cirscope-toy", "--out", str(out),
                 "--shard-size", "5", "--quiet", "--json", "--workers", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedded"] == 10 and report["shards"] == 3 and report["skipped"] == 1
    assert report["problems"][0]["id"] == "broken.jpg"
    assert len(space_from_parquet(out)) == 10


def test_an_unreadable_shard_fails_alone_and_is_retried_by_the_next_run(folder, tmp_path, toy):
    (tmp_path / "list.csv").write_text("caption\na cat\n")  # no image column: its shard cannot be read
    run = embed([folder, tmp_path / "list.csv"], toy, out=tmp_path / "out", shard_size=6, progress=False)
    assert not run.complete and list(run.failed) == ["shard-00002"] and "no image column" in run.failed["shard-00002"]
    assert run.rows == 10 and "shard-00002" in set(run.problems["id"])
    assert space_from_parquet(tmp_path / "out").shards_missing == ["shard-00002"]
    (tmp_path / "list.csv").write_text(f"path\n{folder / 'img0.jpg'}\n")
    again = embed([folder, tmp_path / "list.csv"], toy, out=tmp_path / "out", shard_size=6, progress=False)
    assert again.complete and again.computed == ["shard-00002"] and again.rows == 11


def test_space_load_opens_a_shard_folder_memory_mapped_with_unit_rows(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    space = cs.Space.load(out)
    same = cs.Space.from_parquet(out)
    assert isinstance(space.image_embeddings, np.memmap) and not space.image_embeddings.flags.writeable
    np.testing.assert_array_equal(np.asarray(space.image_embeddings), np.asarray(same.image_embeddings))
    norms = np.linalg.norm(np.asarray(space.image_embeddings, dtype=np.float64), axis=1)
    assert np.abs(norms - 1).max() < 1e-6
    assert list(space.gallery.ids) == list(same.gallery.ids)
