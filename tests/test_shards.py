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
from cirscope.embedding._shard_read import read_task
from cirscope.embedding._shard_sources import plan_shards
from cirscope.embedding._shard_write import write_shard
from cirscope.embedding._shards import MANIFEST, MixedModelsError, ShardError, open_shards
from cirscope.space._embed import embed
from cirscope.space._space import Space
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
    space = Space.from_parquet(tmp_path / "out")
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
    assert "zzz.png" in set(Space.from_parquet(out).gallery.ids)


def test_a_changed_model_never_mixes_with_old_shards(folder, tmp_path, toy, tiny_model_name, tiny_checkpoint):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    other = cs.Embedder(tiny_model_name, tiny_checkpoint, num_workers=0)
    with pytest.raises(MixedModelsError, match="another model"):
        embed(folder, other, out=out, shard_size=4, progress=False)
    assert open_shards(out).model["model"] == "cirscope-toy"  # nothing was touched
    run = embed(folder, other, out=out, shard_size=4, overwrite=True, progress=False)
    assert run.computed == ["shard-00000", "shard-00001", "shard-00002"]
    assert Space.from_parquet(out).model["model"] == tiny_model_name


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
    space = Space.from_parquet(out)  # builds the memory-mapped matrix
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
    space = Space.from_parquet(tmp_path / "out")
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
        "import sys, cirscope as cs; cs.embed; "
        f"s = cs.Space.from_parquet({str(out)!r}); print(len(s), s.dim, len(s.search(0, k=2)), "
        "*[m in sys.modules for m in ('torch', 'ray', 'open_clip')])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["10", "128", "2", "False", "False", "False"]

    other = tmp_path / "foreign"
    other.mkdir()
    write_shard(other, "part-0", ["a", "b"], ["a.jpg", "b.jpg"], np.array([[3, 4], [0, 2]], np.float32), "m")
    space = Space.from_parquet(str(other / "*.parquet"))
    np.testing.assert_allclose(space.image_embeddings, [[0.6, 0.8], [0, 1]])
    with pytest.raises(FileNotFoundError, match="No Parquet shards"):
        Space.from_parquet(str(tmp_path / "nothing-*.parquet"))


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
    assert len(Space.from_parquet(out)) == 10


def test_an_unreadable_shard_fails_alone_and_is_retried_by_the_next_run(folder, tmp_path, toy):
    (tmp_path / "list.csv").write_text("caption\na cat\n")  # no image column: its shard cannot be read
    run = embed([folder, tmp_path / "list.csv"], toy, out=tmp_path / "out", shard_size=6, progress=False)
    assert not run.complete and list(run.failed) == ["shard-00002"] and "no image column" in run.failed["shard-00002"]
    assert run.rows == 10 and "shard-00002" in set(run.problems["id"])
    assert Space.from_parquet(tmp_path / "out").shards_missing == ["shard-00002"]
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


# ---------------------------------------------------------------------- regressions (issue 15)
def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_shards_store_absolute_paths_and_open_from_another_directory(folder, tmp_path, toy, monkeypatch):
    (tmp_path / "list.csv").write_text("path\nimgs/img1.jpg\n")
    monkeypatch.chdir(tmp_path)
    embed(["imgs", "list.csv"], toy, out="out", shard_size=20, progress=False)
    sources = pq.read_table(tmp_path / "out" / "shard-00000.parquet").column("source").to_pylist()
    assert all(Path(s).is_absolute() for s in sources) and str(folder / "img0.jpg") in sources
    csv_sources = pq.read_table(tmp_path / "out" / "shard-00001.parquet").column("source").to_pylist()
    assert csv_sources == [str(folder / "img1.jpg")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    space = Space.from_parquet(tmp_path / "out")
    row = list(space.gallery.ids).index("img0.jpg")
    assert space.gallery.load_image(row).size == (80, 60) and len(space.gallery.problems) == 0


def test_images_inside_tars_and_table_cells_report_a_clear_problem_instead_of_a_thumbnail(tmp_path, toy):
    from cirscope.space._parquet import NOT_KEPT

    _tar(tmp_path / "w.tar", [("a.jpg", photo_bytes(1))])
    pd.DataFrame({"id": ["t0"], "jpg": [photo_bytes(2)]}).to_parquet(tmp_path / "t.parquet")
    embed([tmp_path / "w.tar", tmp_path / "t.parquet"], toy, out=tmp_path / "out", progress=False)
    (tmp_path / "w.tar").unlink()  # nothing may be read from a path named like the source
    space = Space.from_parquet(tmp_path / "out")
    assert sorted(space.gallery.metadata["source"]) == ["t.parquet#0", "w.tar/a.jpg"]
    for row in range(2):
        assert len(space.gallery.thumbnail(row)) > 0  # a grey placeholder, no crash
    assert space.gallery.problems["reason"].tolist() == [NOT_KEPT, NOT_KEPT]
    assert isinstance(space.gallery.subset([1]).thumbnail(0), bytes)


def test_a_replaced_image_with_the_same_name_is_embedded_again(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    before = _by_id(Space.from_parquet(out))["img5.jpg"]
    (folder / "img5.jpg").write_bytes(photo_bytes(77))  # same name, new content
    again = embed(folder, toy, out=out, shard_size=4, progress=False)
    plan = plan_shards(folder, shard_size=4)
    assert again.computed == [t["name"] for t in plan if str(folder / "img5.jpg") in t.get("paths", [])]
    after = _by_id(Space.from_parquet(out))["img5.jpg"]
    assert not np.allclose(before, after)


def test_ids_are_checked_unique_at_planning(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_bytes(photo_bytes(3))
    tasks = plan_shards([tmp_path / "a", tmp_path / "b"])  # two folders with the same relative names
    assert [i for t in tasks for i in t["ids"]] == ["a/x.jpg", "b/x.jpg"]
    with pytest.raises(ValueError, match=r"x\.jpg"):
        plan_shards([tmp_path / "a", tmp_path / "a"])

    pd.DataFrame({"id": ["p", "q", "p"], "jpg": [b"1", b"2", b"3"]}).to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"'p' in .*dup.parquet.*id_column="):
        plan_shards(tmp_path / "dup.parquet")
    assert len(plan_shards(tmp_path / "dup.parquet", id_column="jpg")) == 1  # unique values: fine

    for name in ("a", "b"):  # two tables sharing a stem, no id column: ids name their folders
        pd.DataFrame({"jpg": [b"1"]}).to_parquet(tmp_path / name / "t.parquet")
    tasks = plan_shards(str(tmp_path / "*" / "t.parquet"))
    assert [read_task(t)[0][0][0] for t in tasks] == ["a/t.parquet:0", "b/t.parquet:0"]

    _tar(tmp_path / "s0.tar", [("k1.jpg", b"1"), ("k2.jpg", b"2")])
    _tar(tmp_path / "s1.tar", [("k2.jpg", b"3")])
    with pytest.raises(ValueError, match=r"'k2' in .*s0.tar.*s1.tar"):
        plan_shards(str(tmp_path / "s*.tar"))


def test_a_glob_of_shards_from_different_models_is_refused(tmp_path):
    write_shard(tmp_path, "a", ["a"], ["a.jpg"], np.eye(1, 2, dtype=np.float32), "model-one")
    write_shard(tmp_path, "b", ["b"], ["b.jpg"], np.eye(1, 2, dtype=np.float32), "model-two")
    with pytest.raises(MixedModelsError, match="model-one, model-two"):
        open_shards(str(tmp_path / "*.parquet"))
    assert open_shards(str(tmp_path / "a.parquet")).model["key"] == "model-one"


def test_tar_members_and_files_over_the_size_cap_are_problems_never_read(folder, tmp_path, toy):
    _tar(tmp_path / "w.tar", [("small.jpg", b"x" * 100), ("big.jpg", b"x" * 5000)])
    (task,) = plan_shards(tmp_path / "w.tar", max_file_bytes=1000)
    items, problems = read_task(task)
    assert [i[0] for i in items] == ["small"]
    assert problems[0][0] == "big" and problems[0][2].startswith("file too large")
    big = max(folder.glob("*.jpg"), key=lambda p: p.stat().st_size)
    cap = big.stat().st_size - 1
    run = embed(folder, toy, out=tmp_path / "out", max_file_bytes=cap, progress=False)
    reasons = dict(zip(run.problems["id"], run.problems["reason"], strict=True))
    assert reasons[big.name].startswith("file too large")


def test_csv_tables_are_parsed_once_at_planning(tmp_path):
    rows = [f"img{i}.jpg" for i in range(7)]
    pd.DataFrame({"path": rows}).to_csv(tmp_path / "list.csv", index=False)
    tasks = plan_shards(tmp_path / "list.csv", shard_size=3, staging=tmp_path / "staged")
    assert len(tasks) == 3 and {Path(t["path"]).parent for t in tasks} == {tmp_path / "staged"}
    (tmp_path / "list.csv").write_text("not,the,table\n")  # shards read the Parquet copy, not the CSV
    items = [item for t in tasks for item in read_task(t)[0]]
    assert [i[0] for i in items] == [f"list:{r}" for r in range(7)]
    assert [i[1] for i in items] == [str(tmp_path / r) for r in rows]


def test_hidden_entries_are_skipped_and_special_files_reported(folder, tmp_path, toy):
    import os

    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "img0-checkpoint.jpg").write_bytes(photo_bytes(1))
    (folder / ".hidden.jpg").write_bytes(photo_bytes(2))
    os.mkfifo(folder / "pipe.jpg")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    ids = [i for t in plan_shards(folder) for i in t["ids"]]
    assert ids == sorted(cs.Gallery.from_folder(folder).ids)
    assert "pipe.jpg" in ids and "gone.jpg" in ids and not any(i.startswith(".") for i in ids)
    run = embed(folder, toy, out=tmp_path / "out", progress=False)
    reasons = dict(zip(run.problems["id"], run.problems["reason"], strict=True))
    assert "named pipe" in reasons["pipe.jpg"] and "dangling" in reasons["gone.jpg"]


def test_cli_engine_refuses_in_process_options_and_passes_max_file_mb(folder, tmp_path, capsys):
    from cirscope.cli import main

    base = ["embed", str(folder), "--engine", "local", "--model", "cirscope-toy", "--quiet", "--workers", "0"]
    for extra, word in [(["--metadata", "m.csv"], "pandas on the 'id' column"), (["--no-cache"], "--overwrite"),
                        (["--cache-dir", "c"], "--out"), (["--key", "file"], "join metadata")]:
        assert main([*base, "--out", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    assert main([*base, "--out", str(tmp_path / "o2"), "--max-file-mb", "0.0001", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {p["id"]: p["reason"] for p in report["problems"]}
    assert report["embedded"] == 0 and len(reasons) == 11 and "not an image" in reasons.pop("broken.jpg")
    assert all(reason.startswith("file too large") for reason in reasons.values())


def test_overwrite_deletes_only_what_the_manifest_lists(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    (out / "shard-notes.txt").write_text("mine")
    write_shard(out, "shard-99999", ["z"], ["z.jpg"], np.eye(1, 2, dtype=np.float32), "someone-else")
    run = embed(folder, toy, out=out, shard_size=20, overwrite=True, progress=False)
    assert run.computed == ["shard-00000"]
    assert (out / "shard-notes.txt").read_text() == "mine" and (out / "shard-99999.parquet").is_file()
    assert not (out / "shard-00001.parquet").exists() and not (out / "shard-00002.parquet").exists()


def test_damaged_files_raise_damaged_file_error(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    (out / "problems.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(cs.DamagedFileError, match=r"problems\.parquet is damaged"):
        cs.Space.load(out)
    (out / "shard-00000.problems.parquet").write_bytes(b"garbage")  # the shard holding broken.jpg
    (folder / "zzz.png").write_bytes(photo_bytes(9, fmt="PNG"))  # the rerun collects every problems file
    with pytest.raises(cs.DamagedFileError, match=r"shard-00000\.problems\.parquet"):
        embed(folder, toy, out=out, shard_size=4, progress=False)
    (out / MANIFEST).write_text("{")
    with pytest.raises(cs.DamagedFileError, match=r"manifest\.json is damaged") as caught:
        cs.Space.load(out)
    assert isinstance(caught.value, ShardError) and caught.value.path == out / MANIFEST


def test_ray_engine_refuses_random_weights_up_front(folder, tmp_path, tiny_model_name):
    random = cs.Embedder(tiny_model_name, "random", num_workers=0)
    with pytest.raises(ValueError, match="random weights"):
        embed(folder, random, out=tmp_path / "out", engine="ray", progress=False)
    assert not (tmp_path / "out").exists()  # refused before any folder, plan or Ray start


def test_parquet_space_fingerprint_comes_from_the_manifest(folder, tmp_path, toy):
    out = tmp_path / "out"
    embed(folder, toy, out=out, shard_size=4, progress=False)
    space = Space.from_parquet(out)
    assert space._fingerprint is not None and space.fingerprint == open_shards(out).fingerprint
    (folder / "zzz.png").write_bytes(photo_bytes(99, fmt="PNG"))
    embed(folder, toy, out=out, shard_size=4, progress=False)
    assert Space.from_parquet(out).fingerprint != space.fingerprint


def test_shard_files_are_fsynced_before_they_are_renamed(tmp_path, monkeypatch):
    import os

    from cirscope.embedding import _shards as _shards

    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    _shards.save_manifest(tmp_path, _shards.new_manifest({"model": "m"}, 2))
    write_shard(tmp_path, "shard-00000", ["a"], ["a.jpg"], np.eye(1, 2, dtype=np.float32), "m")
    files = [Path(p).name for p in synced if Path(p).parent == tmp_path]
    assert any(".manifest.json.part-" in f for f in files) and any(".shard-00000.parquet.part-" in f for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shard-00000.parquet"]
