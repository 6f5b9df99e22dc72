"""Special files (pipes, devices, dangling links, folders, huge files) never hang or kill a run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cirscope as cs
from cirscope.cli import main
from cirscope.gallery import _decode as _images
from cirscope.gallery._decode import ImageProblem, read_file
from tests.conftest import photo_bytes

pytestmark = pytest.mark.timeout(120)

EXPECTED = {
    "pipe.jpg": "not a regular file: a named pipe (FIFO)",
    "zero.jpg": "not a regular file: a character device",
    "dangling.jpg": "dangling symbolic link (its target does not exist)",
    "huge.jpg": "file too large (4 GiB; the limit is 256 MiB, raise it with max_file_bytes= or --max-file-mb)",
}


def _special_folder(root: Path) -> Path:
    """Three good photos beside a FIFO, a link to /dev/zero, a dangling link, a folder named
    like an image and a sparse 4 GiB file."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (root / f"ok{i}.jpg").write_bytes(photo_bytes(i))
    os.mkfifo(root / "pipe.jpg")
    (root / "zero.jpg").symlink_to("/dev/zero")
    (root / "dangling.jpg").symlink_to(root / "no-such-file.jpg")
    (root / "folder.jpg").mkdir()
    with open(root / "huge.jpg", "wb") as fh:
        fh.truncate(4 * 2**30)  # sparse: takes no disk space
    return root


@pytest.mark.timeout(30)
def test_read_file_refuses_special_files_without_reading_them(tmp_path):
    root = _special_folder(tmp_path / "f")
    for name, reason in EXPECTED.items():
        with pytest.raises(ImageProblem) as info:
            read_file(root / name)
        assert info.value.reason.startswith(reason), (name, info.value.reason)
        assert not info.value.transient
    with pytest.raises(ImageProblem, match="not a regular file: a directory"):
        read_file(root / "folder.jpg")
    with pytest.raises(ImageProblem, match="file too large"):
        read_file(root / "ok0.jpg", max_bytes=100)
    assert read_file(root / "ok0.jpg") == (root / "ok0.jpg").read_bytes()


@pytest.mark.parametrize("workers", [0, 2])
def test_embedding_a_folder_with_special_files_reports_them_and_goes_on(
    tmp_path, tiny_model_name, tiny_checkpoint, workers
):
    root = _special_folder(tmp_path / "f")
    g = cs.Gallery.from_folder(root)
    assert sorted(g.ids) == sorted(["ok0.jpg", "ok1.jpg", "ok2.jpg", *EXPECTED])  # a folder is not an item
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu", num_workers=workers)
    for cache in (True, False):  # with a cache every file is hashed first; without, workers read them
        res = emb.embed_gallery(g, cache=cache, cache_dir=tmp_path / "c", progress=False)
        assert [g.ids[r] for r in res.rows] == ["ok0.jpg", "ok1.jpg", "ok2.jpg"]
        reasons = dict(zip(res.problems["id"], res.problems["reason"], strict=True))
        assert set(reasons) == set(EXPECTED)
        for name, reason in EXPECTED.items():
            assert reasons[name].startswith(reason), (name, reasons[name])


def test_gallery_thumbnails_and_hashes_of_special_files_are_placeholders(tmp_path):
    root = _special_folder(tmp_path / "f")
    g = cs.Gallery.from_folder(root)
    for name in EXPECTED:
        row = g.row_of(name)
        assert g.thumbnail(row)[:2] == b"\xff\xd8"  # the grey placeholder
        with pytest.raises(ImageProblem):
            g.content_hash(row)
    assert set(g.problems["id"]) == set(EXPECTED)
    paths = cs.Gallery.from_paths([str(root / "folder.jpg"), str(root / "ok0.jpg")])
    with pytest.raises(ImageProblem, match="not a regular file: a directory"):
        paths.load_image(0)


def test_the_size_cap_is_configurable(tmp_path, tiny_model_name, tiny_checkpoint):
    root = tmp_path / "f"
    root.mkdir()
    (root / "small.jpg").write_bytes(photo_bytes(1, size=(16, 16)))
    (root / "big.jpg").write_bytes(photo_bytes(2, size=(400, 300)))
    cap = (root / "small.jpg").stat().st_size + 10
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    g = cs.Gallery.from_folder(root, max_file_bytes=cap)
    assert g.max_file_bytes == cap and g.subset([0]).max_file_bytes == cap
    res = emb.embed_gallery(g, cache=False, progress=False)
    assert g.ids[res.rows].tolist() == ["small.jpg"]
    assert res.problems["reason"].str.startswith("file too large").tolist() == [True]
    # the run's own limit wins over the gallery's
    res = emb.embed_gallery(cs.Gallery.from_folder(root), cache_dir=tmp_path / "c", progress=False,
                            max_file_bytes=cap)
    assert res.problems["id"].tolist() == ["big.jpg"]
    assert _images.MAX_FILE_BYTES == 256 * 2**20
    res = emb.embed_gallery(cs.Gallery.from_folder(root), cache_dir=tmp_path / "c", progress=False)
    assert len(res.rows) == 2 and res.problems.empty  # the default cap lets it through: nothing remembered
    np.testing.assert_allclose(np.linalg.norm(res.embeddings, axis=1), 1.0, atol=1e-5)


def test_cli_embed_with_special_files_and_max_file_mb(tmp_path, capsys, tiny_model_name, tiny_checkpoint):
    root = _special_folder(tmp_path / "f")
    code = main(["embed", str(root), "--model", tiny_model_name, "--pretrained", str(tiny_checkpoint),
                 "--out", str(tmp_path / "o"), "--quiet", "--max-file-mb", "0.5", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Embedded 3 of 7 images" in out
    assert "pipe.jpg: not a regular file: a named pipe (FIFO)" in out
    assert "huge.jpg: file too large (4 GiB; the limit is 512 KiB" in out
    assert main(["embed", str(root), "--model", "cirscope-toy", "--out", str(tmp_path / "o2"),
                 "--max-file-mb", "0"]) == 2
    assert "--max-file-mb must be positive" in capsys.readouterr().err
