"""Gallery construction, metadata joins, clear errors, thumbnails and persistence."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs


def test_from_folder_ids_and_metadata_join(image_folder):
    pd.DataFrame({"filename": ["img0.jpg", "sub/p1.png", "img3.jpg"], "label": ["a", "b", "c"]}).to_csv(
        image_folder / "labels.csv", index=False
    )
    g = cs.Gallery.from_folder(image_folder, metadata=image_folder / "labels.csv")
    assert len(g) == 8
    assert g.ids[:2].tolist() == ["img0.jpg", "img1.jpg"] and "sub/p0.png" in g.ids
    meta = g.metadata.set_index("id")
    assert meta.loc["img0.jpg", "label"] == "a" and meta.loc["sub/p1.png", "label"] == "b"
    assert pd.isna(meta.loc["img1.jpg", "label"])


def test_metadata_by_bare_file_name_and_explicit_key(image_folder):
    meta = pd.DataFrame({"picture": ["p0.png"], "label": ["x"]})
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
