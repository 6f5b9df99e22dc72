"""Tags stored beside a space, exports read back by pandas and pyarrow, saved view files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import cirscope as cs
from cirscope.curation._views import ExplorerView, read_view, write_view
from cirscope.space._tags import TAG_FILE, Tags
from tests.conftest import photo_bytes

HOSTILE_TAGS = ["<script>alert('tag')</script>", "\"quoted\" 'both'", "ünïcödé 標籤 🏷", "a, b; c"]


@pytest.fixture(scope="module")
def base():
    return cs.Space(cs.datasets.shapes(60, seed=1), cs.Embedder.toy(), cache=False, progress=False)


@pytest.fixture
def space(base):
    """A fresh space over the same gallery and embeddings (tags of one test never reach another)."""
    return cs.Space.from_embeddings(base.gallery, base.image_embeddings, embedder=base.embedder)


@pytest.fixture
def file_space(tmp_path):
    """A space over image files, two of which share a file name in different folders."""
    root = tmp_path / "photos"
    (root / "b").mkdir(parents=True)
    for i in range(4):
        (root / f"img{i}.jpg").write_bytes(photo_bytes(i))
    (root / "b" / "img0.jpg").write_bytes(photo_bytes(9))
    gallery = cs.Gallery.from_folder(root)
    rng = np.random.default_rng(0)
    return cs.Space.from_embeddings(gallery, rng.normal(size=(len(gallery), 8)), model_name="none")


# ---------------------------------------------------------------------------- tags
def test_tags_are_vectorised_columns_with_masks_ids_and_results(space):
    n = len(space)
    assert space.tag(np.arange(0, n, 2), "even") == n // 2
    assert space.tag(np.arange(0, n, 2), "even") == 0  # nothing new
    mask = np.zeros(n, bool)
    mask[[1, 3]] = True
    assert space.tag(mask, "odd pair") == 2
    ids = space.gallery.ids[[5, 7]].tolist()
    assert space.tag(ids, "odd pair") == 2
    hits = space.search("a red star", k=4)
    assert space.tag(hits, "stars") == 4
    assert space.tagged("odd pair").tolist() == [1, 3, 5, 7]
    assert space.tags.names == ["even", "odd pair", "stars"]
    meta = space.metadata
    assert meta["tag:even"].dtype == bool and meta["tag:even"].sum() == n // 2
    assert list(meta.columns[: len(space.gallery.metadata.columns)]) == list(space.gallery.metadata.columns)
    assert space.column("tag:stars").sum() == 4 and space.column("color").equals(space.gallery.column("color"))
    assert space.untag([1, 2], "odd pair") == 1
    assert space.tags.of([3, 0]) == [["odd pair"], ["even"]]
    assert space.untag(space.tagged("stars"), "stars") == 4 and "stars" not in space.tags


@pytest.mark.parametrize("bad, error", [("", ValueError), ("   ", ValueError), ("a\nb", ValueError),
                                        ("x" * 201, ValueError), (3, TypeError)])
def test_bad_tag_names_are_refused(space, bad, error):
    with pytest.raises(error):
        space.tag([0], bad)
    assert len(space.tags) == 0


def test_bad_rows_are_refused_and_nothing_changes(space):
    space.tag([0], "keep")
    with pytest.raises(IndexError):
        space.tag([0, len(space)], "keep")
    with pytest.raises(KeyError, match="not in the gallery"):
        space.tag(["no-such-id"], "keep")
    with pytest.raises(ValueError, match="one value per row"):
        space.tag(np.ones(3, bool), "keep")
    with pytest.raises(TypeError):
        space.tag([0.5], "keep")
    assert space.tagged("keep").tolist() == [0]


def test_tag_save_load_round_trip_keeps_hostile_names(space, tmp_path):
    for i, name in enumerate(HOSTILE_TAGS):
        space.tag([i, i + 10], name)
    folder = space.save(tmp_path / "saved")
    assert (folder / TAG_FILE).is_file()
    again = cs.Space.load(folder, embedder=space.embedder)
    assert again.tags.names == HOSTILE_TAGS
    for name in HOSTILE_TAGS:
        assert again.tagged(name).tolist() == space.tagged(name).tolist()
    # a saved space writes every change at once
    again.tag([50], HOSTILE_TAGS[0])
    third = cs.Space.load(folder, embedder=space.embedder)
    assert third.tagged(HOSTILE_TAGS[0]).tolist() == [0, 10, 50]
    # the file is plain Arrow: pandas reads it
    assert set(pd.read_feather(folder / TAG_FILE)["tag"]) == set(HOSTILE_TAGS)


def test_saving_again_keeps_tags_and_an_untagged_save_leaves_no_stale_file(space, base, tmp_path):
    space.tag([1, 2], "dup")
    folder = space.save(tmp_path / "s")
    space.save(folder)  # the same folder again
    assert cs.Space.load(folder).tagged("dup").tolist() == [1, 2]
    plain = cs.Space.from_embeddings(base.gallery, base.image_embeddings, embedder=base.embedder)
    plain.save(folder)
    assert not (folder / TAG_FILE).exists()
    assert len(cs.Space.load(folder).tags) == 0


def test_unsaved_space_keeps_tags_in_memory_or_in_a_named_sidecar(space, tmp_path):
    space.tag([3], "later")
    assert space.tags.path is None
    sidecar = space.tags.save(tmp_path / "audit.tags.arrow")
    space.tag([4], "later")  # written there too
    read = Tags.read(sidecar, space.gallery.ids)
    assert read.rows("later").tolist() == [3, 4]


def test_tags_of_ids_missing_from_the_gallery_are_kept_not_lost(space, base, tmp_path):
    space.tag([0, 1, 2], "x")
    path = space.tags.save(tmp_path / "t.arrow")
    smaller = Tags.read(path, base.gallery.ids[1:])  # a gallery without row 0
    assert smaller.rows("x").tolist() == [0, 1]
    assert smaller.to_frame()["id"].tolist().count(base.gallery.ids[0]) == 1
    smaller.write(path)
    assert Tags.read(path, base.gallery.ids).rows("x").tolist() == [0, 1, 2]


def _damage_flip(path):
    data = bytearray(path.read_bytes())
    i = data.find(b"dup")  # a tag value inside the table
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "foreign", "empty"])
def test_damaged_tag_files_are_refused_with_a_clear_error(space, tmp_path, damage):
    space.tag([1, 2, 3], "dup")
    folder = space.save(tmp_path / "s")
    path = folder / TAG_FILE
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "garbage":
        path.write_bytes(b"not arrow at all")
    elif damage == "flip":
        _damage_flip(path)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        pd.DataFrame({"id": ["a"], "tag": ["b"]}).to_feather(path)  # Arrow, but no cirscope record
    with pytest.raises(cs.DamagedFileError, match=r"tags\.arrow is damaged") as info:
        cs.Space.load(folder)
    assert "Move the file aside" in str(info.value)


# ---------------------------------------------------------------------------- exports
def _expected(space, rows):
    meta = space.gallery.metadata.iloc[rows].reset_index(drop=True)
    return meta


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exports_read_back_equal_to_the_rows(space, tmp_path, fmt):
    space.tag([2, 5], HOSTILE_TAGS[0])
    hits = space.search("a blue circle", k=6)
    out = cs.export(space, hits, tmp_path / f"r.{fmt}")
    back = pd.read_csv(out) if fmt == "csv" else pq.read_table(out).to_pandas()
    meta = _expected(space, hits["row"].to_numpy())
    assert back["row"].tolist() == hits["row"].tolist()
    assert back["id"].tolist() == meta["id"].tolist()
    assert back["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(back["score"].to_numpy(), hits["score"].to_numpy(), rtol=1e-6)
    for col in ("shape", "color", "caption"):
        assert back[col].tolist() == meta[col].tolist()
    tag_col = "tag:" + HOSTILE_TAGS[0]
    assert back[tag_col].tolist() == [r in (2, 5) for r in hits["row"]]
    assert back["path"].isna().all() if fmt == "csv" else (back["path"] == "").all()  # in-memory: no file


def test_export_of_a_tag_and_refusal_to_overwrite(space, tmp_path):
    space.tag([7, 8, 9], "dup")
    out = cs.export(space, "dup", tmp_path / "dup.parquet")
    assert pd.read_parquet(out)["row"].tolist() == [7, 8, 9]
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cs.export(space, [0], out)
    assert out.read_bytes() == before
    cs.export(space, [0], out, overwrite=True)
    assert pd.read_parquet(out)["row"].tolist() == [0]
    with pytest.raises(ValueError, match="format"):
        cs.export(space, [0], tmp_path / "x.xlsx")
    with pytest.raises(KeyError, match="No tag"):
        cs.export(space, "nope", tmp_path / "y.csv")


def test_folder_export_links_every_image_and_names_collisions(file_space, tmp_path):
    rows = np.arange(len(file_space))
    out = cs.export(file_space, rows, tmp_path / "picked", format="folder")
    index = pd.read_csv(out / "index.csv")
    assert index["row"].tolist() == rows.tolist()
    assert index["path (metadata)"].tolist() == file_space.gallery.metadata["path"].tolist()
    assert len(set(index["file"])) == len(rows)  # two img0.jpg got distinct names
    sources = [os.path.abspath(s) for s in file_space.gallery.sources]
    for file, row in zip(index["file"], index["row"], strict=True):
        link = out / file
        assert link.is_symlink() and os.readlink(link) == sources[row]
        assert link.read_bytes() == open(sources[row], "rb").read()
    assert sorted(p.name for p in out.iterdir()) == sorted([*index["file"], "index.csv"])
    with pytest.raises(FileExistsError):
        cs.export(file_space, rows, out, format="folder")
    again = cs.export(file_space, rows[:1], out, format="folder", overwrite=True)  # an earlier export: replaced
    assert len(list(again.iterdir())) == 2
    photos = tmp_path / "photos"
    with pytest.raises(FileExistsError, match="never replaced"):
        cs.export(file_space, rows, photos, format="folder", overwrite=True)
    assert (photos / "img1.jpg").is_file()
    (tmp_path / "copies").mkdir()  # an empty folder is fine
    copies = cs.export(file_space, rows[:2], tmp_path / "copies", format="folder", link="copy")
    files = [p for p in copies.iterdir() if p.name != "index.csv"]
    assert len(files) == 2 and not any(p.is_symlink() for p in files)


def test_folder_export_writes_in_memory_images_and_reports_missing_files(space, file_space, tmp_path):
    out = cs.export(space, [0, 1], tmp_path / "mem", format="folder")
    index = pd.read_csv(out / "index.csv")
    from PIL import Image

    assert Image.open(out / index["file"][0]).size == space.gallery.load_image(0).size
    os.unlink(file_space.gallery.sources[1])
    out = cs.export(file_space, [0, 1], tmp_path / "gone", format="folder")
    index = pd.read_csv(out / "index.csv", keep_default_na=False)
    assert index["problem"].tolist()[0] == "" and "not a readable regular file" in index["problem"][1]
    assert index["file"][1] == ""


def test_fiftyone_export_is_a_csv_dataset_with_tags_as_json(file_space, tmp_path):
    file_space.tag([0, 2], "dup, maybe")
    out = cs.export(file_space, np.arange(3), tmp_path / "fo", format="fiftyone")
    labels = pd.read_csv(out / "labels.csv")
    assert labels.columns[0] == "filepath"
    assert labels["filepath"].tolist() == [os.path.abspath(s) for s in file_space.gallery.sources[:3]]
    assert [json.loads(t) for t in labels["tags"]] == [["dup, maybe"], [], ["dup, maybe"]]
    assert labels["cirscope_id"].tolist() == file_space.gallery.ids[:3].tolist()
    script = (out / "load_fiftyone.py").read_text()
    compile(script, "load_fiftyone.py", "exec")  # valid Python, every column parsed back
    for column in labels.columns[1:]:
        assert repr(column) in script
    assert "'tag:" not in script and "'tags': json.loads" in script


# ---------------------------------------------------------------------------- views
def test_view_file_round_trip_with_hostile_text(tmp_path):
    view = ExplorerView(reference=HOSTILE_TAGS[0], text=HOSTILE_TAGS[2], method="slerp", params={"a": 0.25},
                        k=7, color_by="tag:" + HOSTILE_TAGS[1], filters=[{"column": "color", "value": "red"}],
                        selection=["a", "b"], tags={HOSTILE_TAGS[3]: ["a"]})
    path = write_view(view, tmp_path / "v.json")
    assert read_view(path) == view
    assert json.loads(path.read_text("utf-8"))["format"] == "cirscope.view"


@pytest.mark.parametrize("damage", ["edit", "truncate", "not json", "foreign", "bad field", "newer"])
def test_damaged_view_files_are_refused(tmp_path, damage):
    path = write_view(ExplorerView(text="make it blue", k=5), tmp_path / "v.json")
    record = json.loads(path.read_text())
    if damage == "edit":
        record["view"]["k"] = 6
        path.write_text(json.dumps(record))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "not json":
        path.write_bytes(b"\xff\xfe garbage")
    elif damage == "foreign":
        path.write_text(json.dumps({"hello": 1}))
    elif damage == "bad field":
        record["view"]["k"] = "five"
        from cirscope.curation._views import _checksum

        record["checksum"] = _checksum({k: v for k, v in record.items() if k != "checksum"})
        path.write_text(json.dumps(record))
    else:
        record["version"] = 99
        from cirscope.curation._views import _checksum

        record["checksum"] = _checksum({k: v for k, v in record.items() if k != "checksum"})
        path.write_text(json.dumps(record))
    error = ValueError if damage == "newer" else cs.DamagedFileError
    with pytest.raises(error, match="newer cirscope" if damage == "newer" else "is damaged"):
        read_view(path)


def test_two_sessions_tagging_one_saved_space_lose_nothing(space, tmp_path):
    space.tag([1, 2], "shared")
    folder = space.save(tmp_path / "s")
    a, b = cs.Space.load(folder), cs.Space.load(folder)
    a.tag([3], "shared")
    a.tag([10], "from a")
    b.tag([20], "from b")  # b has not seen a's changes: they are merged, not overwritten
    b.untag([1], "shared")
    a.untag([10], "from a")
    final = cs.Space.load(folder)
    assert final.tagged("shared").tolist() == [2, 3]
    assert final.tagged("from b").tolist() == [20] and "from a" not in final.tags
    assert b.tagged("shared").tolist() == [2, 3]  # b's memory holds the merged tags too
