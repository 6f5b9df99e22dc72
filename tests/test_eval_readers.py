"""Readers of the CIRR, CIRCO and FashionIQ annotation formats (tiny fixtures in tests/fixtures/cir)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cirscope.eval import CIRBenchmark, benchmark_gallery, read_circo, read_cirr, read_fashioniq

CIR = Path(__file__).parent / "fixtures" / "cir"


def test_read_cirr_val():
    b = read_cirr(CIR / "cirr", split="val")
    assert b.name == "cirr-val" and len(b) == 2
    q = b.queries[0]
    assert (q.id, q.reference, q.text, q.targets) == ("100", "dev-0-0-img0", "make the object blue", ("dev-1-0-img1",))
    assert q.subset == ("dev-0-0-img0", "dev-1-0-img1", "dev-2-0-img0", "dev-3-0-img1")
    assert b.protocol.exclude_reference and b.protocol.subset_ks == (1, 2, 3)
    paths = b.image_paths()
    assert len(paths) == 6 and all(Path(p).is_file() for p in paths.values())
    assert b.gallery["images"]["dev-0-0-img0"] == "img_raw/dev/dev-0-0-img0.png"


def test_read_cirr_test_split_has_no_targets():
    b = read_cirr(CIR / "cirr", split="test1")
    assert b.queries[0].targets == ()


def test_read_circo_drops_padding_and_keeps_concept():
    b = read_circo(CIR / "circo", split="val")
    assert len(b) == 2
    q = b.queries[0]
    assert q.reference == "85932" and q.text == "is held by a little girl"
    assert q.targets == ("9761", "489535", "57541")
    assert q.meta["shared_concept"] == "a teddy bear"
    assert not b.protocol.exclude_reference and b.protocol.map_ks == (5, 10, 25, 50)
    assert b.gallery["images"]["9761"] == "COCO2017_unlabeled/unlabeled2017/000000009761.jpg"
    assert len(b.image_paths()) == 6


def test_read_fashioniq_joins_the_two_captions():
    b = read_fashioniq(CIR / "fashioniq", category="dress", split="val")
    assert len(b) == 2
    q = b.queries[0]
    assert q.reference == "B000ALDRE1" and q.targets == ("B000BUQ3X2",)
    assert q.text == "is solid black with no sleeves and is black with straps"
    assert b.protocol.recall_ks == (10, 50) and not b.protocol.exclude_reference
    assert b.gallery["images"]["B002ZG8I60"] == "images/B002ZG8I60.jpg"  # .jpg found too


def test_fashioniq_missing_images_warn(tmp_path):
    root = tmp_path / "fiq"
    shutil.copytree(CIR / "fashioniq", root)
    (root / "images" / "B000FEVR0E.png").unlink()
    with pytest.warns(UserWarning, match="1 FashionIQ images"):
        b = read_fashioniq(root, category="dress")
    assert "B000FEVR0E" not in b.gallery["images"]


def test_reader_errors_name_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cap\.rc2\.val\.json"):
        read_cirr(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"annotations.val\.json"):
        read_circo(tmp_path)
    with pytest.raises(ValueError, match="Unknown FashionIQ category"):
        read_fashioniq(tmp_path, category="shoes")


def test_benchmark_json_round_trip(tmp_path):
    b = read_cirr(CIR / "cirr")
    path = b.save(tmp_path / "b.json")
    data = json.loads(path.read_text())
    assert data["format"] == "cirscope-cir-benchmark" and data["protocol"]["subset_ks"] == [1, 2, 3]
    again = CIRBenchmark.load(path)
    assert again.queries == b.queries and again.protocol == b.protocol and again.gallery == b.gallery


def test_load_rejects_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="Not a cirscope benchmark"):
        CIRBenchmark.load(p)


def test_benchmark_gallery_loads_images():
    b = read_circo(CIR / "circo")
    g = benchmark_gallery(b)
    assert sorted(g.ids.tolist()) == sorted(b.gallery["images"])
    img = g.load_image(g.row_of("9761"))
    assert img.size == (16, 16)
