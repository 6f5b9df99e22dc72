"""Gallery construction, metadata joins, clear errors, thumbnails and persistence."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs
from cirscope.gallery._metadata import USER_ID_COLUMN, MetadataWarning
from tests.conftest import photo_bytes


def test_from_folder_ids_and_metadata_join(image_folder):
    pd.DataFrame({"filename": ["img0.jpg", "sub/p1.png", "img3.jpg"], "label": ["a", "b", "c"]}).to_csv(
        image_folder / "labels.csv", index=False
    )
    with pytest.warns(MetadataWarning, match="5 of 8 images have no metadata row"):
        g = cs.Gallery.from_folder(image_folder, metadata=image_folder / "labels.csv")
    assert len(g) == 8
    assert g.ids[:2].tolist() == ["img0.jpg", "img1.jpg"] and "sub/p0.png" in g.ids
    meta = g.metadata.set_index("id")
    assert meta.loc["img0.jpg", "label"] == "a" and meta.loc["sub/p1.png", "label"] == "b"
    assert pd.isna(meta.loc["img1.jpg", "label"])


def test_metadata_by_bare_file_name_and_explicit_key(image_folder):
    meta = pd.DataFrame({"picture": ["p0.png"], "label": ["x"]})
    with pytest.warns(MetadataWarning, match="7 of 8 images have no metadata row"):
        g = cs.Gallery.from_folder(image_folder, metadata=meta, key="picture")
    assert g.metadata.set_index("id").loc["sub/p0.png", "label"] == "x"


def test_metadata_errors_name_the_fix(image_folder):
    with pytest.raises(ValueError, match="No metadata row matches"):
        cs.Gallery.from_folder(image_folder, metadata=pd.DataFrame({"file": ["nope.jpg"], "y": [1]}))
    with pytest.raises(KeyError, match="Pass key="):
        cs.Gallery.from_folder(image_folder, metadata=pd.DataFrame({"what": ["img0.jpg"]}))
    with pytest.raises(KeyError, match="available columns"):
        cs.Gallery.from_folder(image_folder, metadata=pd.DataFrame({"file": ["img0.jpg"]}), key="nope")
    with pytest.raises(ValueError, match="same image"):
        cs.Gallery.from_folder(image_folder, metadata=pd.DataFrame({"file": ["img0.jpg", "img0.jpg"]}))


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="No image files"):
        cs.Gallery.from_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="Folder not found"):
        cs.Gallery.from_folder(tmp_path / "nope")


def test_from_dataframe_sources_and_errors(image_folder):
    red = Image.new("RGB", (8, 8), "red")
    buf = io.BytesIO()
    red.save(buf, format="PNG")
    df = pd.DataFrame({"img": [str(image_folder / "img0.jpg"), buf.getvalue(), red], "tag": [1, 2, 3]})
    g = cs.Gallery.from_dataframe(df, image="img")
    assert len(g) == 3 and g.ids.tolist() == ["0", "1", "2"]
    assert all(g.load_image(i).mode == "RGB" for i in range(3))
    with pytest.raises(KeyError, match="available columns"):
        cs.Gallery.from_dataframe(df, image="path")
    with pytest.raises(ValueError, match="Duplicate ids"):
        cs.Gallery.from_dataframe(df.assign(name=["a", "a", "b"]), image="img", id="name")


def test_from_images_and_subset():
    imgs = [np.full((6, 6, 3), i * 40, np.uint8) for i in range(4)]
    g = cs.Gallery.from_images(imgs, metadata=pd.DataFrame({"v": range(4)}), ids=list("abcd"))
    sub = g.subset([3, 1])
    assert sub.ids.tolist() == ["d", "b"] and sub.metadata["v"].tolist() == [3, 1]
    assert sub.load_image(0).getpixel((0, 0)) == (120, 120, 120)
    with pytest.raises(ValueError, match="one row per image"):
        cs.Gallery.from_images(imgs, metadata=pd.DataFrame({"v": range(3)}))
    with pytest.raises(ValueError, match="empty"):
        cs.Gallery.from_images([])


def test_problems_are_recorded_and_thumbnail_has_placeholder(tmp_path, image_folder):
    (image_folder / "broken.jpg").write_bytes(b"not a jpeg")
    g = cs.Gallery.from_folder(image_folder)
    row = g.row_of("broken.jpg")
    with pytest.raises(cs.ImageProblem):
        g.load_image(row)
    assert g.problems.to_dict("records") == [
        {"id": "broken.jpg", "source": str(image_folder / "broken.jpg"), "reason": "not an image (unrecognised format)"}
    ]
    assert Image.open(io.BytesIO(g.thumbnail(row))).size == (128, 128)


def test_thumbnails_are_cached_and_sized(image_folder):
    g = cs.Gallery.from_folder(image_folder)
    first = g.thumbnail(0, size=32)
    assert g.thumbnail(0, size=32) is first
    assert max(Image.open(io.BytesIO(first)).size) == 32


def test_save_and_load_roundtrip(tmp_path, image_folder):
    g = cs.Gallery.from_dataframe(
        pd.DataFrame({"p": [str(image_folder / "img0.jpg"), Image.new("RGB", (5, 5), "blue")], "k": ["x", "y"]}),
        image="p",
    )
    g.save(tmp_path / "g")
    back = cs.Gallery.load(tmp_path / "g")
    assert back.ids.tolist() == g.ids.tolist() and back.metadata["k"].tolist() == ["x", "y"]
    assert back.load_image(1).getpixel((2, 2)) == (0, 0, 255)
    assert back.load_image(0).size == g.load_image(0).size


class _FakeHFDataset:
    """The two methods of a datasets.Dataset that Gallery.from_hf uses."""

    column_names = ("image", "label")

    def __init__(self, rows):
        self.rows = rows

    def cast_column(self, name, feature):
        return self

    def to_pandas(self):
        return pd.DataFrame(self.rows)


def test_from_hf_reads_encoded_image_records():
    buf = io.BytesIO()
    Image.new("RGB", (7, 7), "green").save(buf, format="PNG")
    ds = _FakeHFDataset([{"image": {"bytes": buf.getvalue(), "path": None}, "label": 3}])
    g = cs.Gallery.from_hf(ds)
    assert g.metadata["label"].tolist() == [3] and g.load_image(0).size == (7, 7)
    with pytest.raises(KeyError, match="Pass image="):
        cs.Gallery.from_hf(ds, image="picture")


def test_hidden_files_and_folders_are_skipped_alike(image_folder):
    (image_folder / ".ipynb_checkpoints").mkdir()
    (image_folder / ".ipynb_checkpoints" / "x.jpg").write_bytes(photo_bytes(50))
    (image_folder / "sub" / ".git" / "deep").mkdir(parents=True)
    (image_folder / "sub" / ".git" / "deep" / "y.png").write_bytes(photo_bytes(51, fmt="PNG"))
    (image_folder / ".hidden.jpg").write_bytes(photo_bytes(52))
    g = cs.Gallery.from_folder(image_folder)
    assert len(g) == 8 and not any("/." in f"/{i}" for i in g.ids)
    assert "Hidden files and hidden folders" in cs.Gallery.from_folder.__doc__
    only_hidden = image_folder.parent / "only_hidden"
    (only_hidden / ".cache").mkdir(parents=True)
    (only_hidden / ".cache" / "z.jpg").write_bytes(photo_bytes(53))
    with pytest.raises(ValueError, match="hidden files and folders are skipped"):
        cs.Gallery.from_folder(only_hidden)


def test_metadata_that_does_not_join_is_reported_with_counts_and_examples(image_folder):
    rows = [f"img{i}.jpg" for i in range(4)] + [f"gone{i}.jpg" for i in range(7)]
    meta = pd.DataFrame({"file": rows, "label": list("abcd") + ["z"] * 7})
    with pytest.warns(MetadataWarning) as record:
        g = cs.Gallery.from_folder(image_folder, metadata=meta)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert messages[0].startswith("7 of 11 metadata rows name no image in the folder and were not used")
    assert "'gone0.jpg', 'gone1.jpg', 'gone2.jpg', 'gone3.jpg', 'gone4.jpg', ..." in messages[0]
    assert "'gone5.jpg'" not in messages[0]
    assert messages[1].startswith("4 of 8 images have no metadata row")
    assert "'img4.jpg', 'img5.jpg', 'sub/p0.png', 'sub/p1.png'" in messages[1]
    table = g.metadata.set_index("id")
    assert table.loc["img3.jpg", "label"] == "d" and pd.isna(table.loc["sub/p0.png", "label"])


def test_a_user_id_column_is_kept_under_another_name(image_folder):
    files = [f"img{i}.jpg" for i in range(6)] + ["sub/p0.png", "sub/p1.png"]
    meta = pd.DataFrame({"file": files, "id": [f"u{i}" for i in range(8)], "n": range(8)})
    with pytest.warns(MetadataWarning, match="The metadata column 'id' was kept as 'id_original'"):
        g = cs.Gallery.from_folder(image_folder, metadata=meta)
    table = g.metadata.set_index("id")
    assert table.loc["img2.jpg", "id_original"] == "u2" and table.loc["sub/p1.png", "n"] == 7
    assert table["n"].dtype.kind == "i"  # a full join keeps the column's type
    assert USER_ID_COLUMN == "id_original"
    with warnings.catch_warnings():  # an id column that is the key is simply the join key: no warning
        warnings.simplefilter("error")
        keyed = cs.Gallery.from_folder(image_folder, metadata=meta.drop(columns="file").assign(id=files))
    assert "id_original" not in keyed.metadata.columns


def test_metadata_rows_in_any_order_join_their_images(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    data = photo_bytes(1, size=(8, 8))
    for i in range(300):
        (root / f"{i:05d}.jpg").write_bytes(data)
    meta = pd.DataFrame({"file": [f"{i:05d}.jpg" for i in range(300)][::-1], "k": np.arange(300)[::-1]})
    g = cs.Gallery.from_folder(root, metadata=meta)
    assert g.metadata["k"].tolist() == list(range(300))


def test_a_file_name_shared_by_several_images_does_not_join_and_is_reported(tmp_path):
    from PIL import Image

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (8, 8), "red").save(tmp_path / sub / "x.jpg")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "y.jpg")
    meta = pd.DataFrame({"file": ["x.jpg", "y.jpg"], "label": ["cat", "dog"]})
    with pytest.warns(cs.MetadataWarning, match="several images share"):
        gallery = cs.Gallery.from_folder(tmp_path, metadata=meta)
    labels = dict(zip(gallery.metadata["id"], gallery.metadata["label"], strict=True))
    assert labels["y.jpg"] == "dog"
    assert pd.isna(labels["a/x.jpg"]) and pd.isna(labels["b/x.jpg"])  # never joined to an arbitrary one
