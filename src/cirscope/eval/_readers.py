"""Readers for the public annotation formats of CIRR, CIRCO and FashionIQ.

Each reader returns a :class:`~cirscope.eval.CIRBenchmark` whose gallery is the split's
image files (``{"kind": "files", "root": ..., "images": {id: relative path}}``), ready for
:func:`~cirscope.eval.benchmark_gallery` and the runner. Only annotation files and image
names are read here; images are decoded later, when the gallery is embedded.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from cirscope.eval._benchmark import CIRBenchmark, CIRQuery, Protocol

__all__ = ["FASHIONIQ_CATEGORIES", "read_circo", "read_cirr", "read_fashioniq"]

FASHIONIQ_CATEGORIES: tuple[str, ...] = ("dress", "shirt", "toptee")


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {path}")
    with path.open() as f:
        return json.load(f)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def read_cirr(root: str | os.PathLike, split: str = "val", version: str = "rc2") -> CIRBenchmark:
    """Read CIRR (Liu et al., ICCV 2021) from its public layout.

    Expects ``captions/cap.{version}.{split}.json`` (a list of ``{"pairid", "reference",
    "target_hard", "target_soft", "caption", "img_set": {"members": [...]}}``) and
    ``image_splits/split.{version}.{split}.json`` (``{name: "./dev/<name>.png"}``), image
    paths being relative to ``root/img_raw`` (or to ``root`` itself). The gallery is every
    image of the split; each query's candidate subset is ``img_set.members``.

    The test split (``test1``) has no public targets; its queries get no targets.

    Examples
    --------
    >>> bench = read_cirr("data/cirr", split="val")  # needs CIRR on disk  # doctest: +SKIP
    """
    root = Path(root)
    caps = _load_json(root / "captions" / f"cap.{version}.{split}.json", "CIRR captions")
    names = _load_json(root / "image_splits" / f"split.{version}.{split}.json", "CIRR image split")
    if not isinstance(names, dict):
        raise ValueError("The CIRR image split must map image names to relative paths")
    base = root / "img_raw"
    if not base.is_dir():
        base = root
    images = {str(n): _rel(base / p, root) for n, p in names.items()}
    queries = []
    for entry in caps:
        target = entry.get("target_hard")
        members = entry.get("img_set", {}).get("members")
        queries.append(
            CIRQuery(
                id=str(entry["pairid"]),
                reference=str(entry["reference"]),
                text=str(entry["caption"]),
                targets=() if target is None else (str(target),),
                subset=None if members is None else tuple(str(m) for m in members),
                meta={"target_soft": entry.get("target_soft", {})},
            )
        )
    return CIRBenchmark(f"cirr-{split}", queries, Protocol.cirr(), {"kind": "files", "root": str(root), "images": images})


def _clean_ids(values: Any) -> list[str]:
    out: list[str] = []
    for v in values or []:
        if v is None or v == "":
            continue
        s = str(int(v))
        if s not in out:
            out.append(s)
    return out


def read_circo(root: str | os.PathLike, split: str = "val") -> CIRBenchmark:
    """Read CIRCO (Baldrati et al., ICCV 2023) from its public layout.

    Expects ``annotations/{split}.json`` (a list of ``{"id", "reference_img_id",
    "target_img_id", "relative_caption", "shared_concept", "gt_img_ids"}``) and the COCO 2017
    unlabeled images as ``COCO2017_unlabeled/unlabeled2017/<12-digit id>.jpg``. The gallery is
    every image in that folder (ids are the integer COCO ids as strings); padding entries in
    ``gt_img_ids`` are dropped. ``shared_concept`` is kept in each query's ``meta``.

    Examples
    --------
    >>> bench = read_circo("data/CIRCO", split="val")  # needs CIRCO on disk  # doctest: +SKIP
    """
    root = Path(root)
    anns = _load_json(root / "annotations" / f"{split}.json", "CIRCO annotations")
    folder = root / "COCO2017_unlabeled" / "unlabeled2017"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CIRCO images not found: expected the COCO 2017 unlabeled images in {folder} (named <12-digit id>.jpg)"
        )
    images: dict[str, str] = {}
    for p in sorted(folder.glob("*.jpg")):
        if p.stem.isdigit():
            images[str(int(p.stem))] = _rel(p, root)
    if not images:
        raise ValueError(f"No <12-digit id>.jpg images in {folder}")
    queries = []
    for entry in anns:
        queries.append(
            CIRQuery(
                id=str(entry["id"]),
                reference=str(int(entry["reference_img_id"])),
                text=str(entry["relative_caption"]),
                targets=tuple(_clean_ids(entry.get("gt_img_ids"))),
                meta={"shared_concept": entry.get("shared_concept", "")},
            )
        )
    return CIRBenchmark(f"circo-{split}", queries, Protocol.circo(), {"kind": "files", "root": str(root), "images": images})


def _join_captions(captions: list[str]) -> str:
    parts = [c.strip().strip(".?, ").strip() for c in captions]
    return " and ".join(p for p in parts if p)


def read_fashioniq(root: str | os.PathLike, category: str = "dress", split: str = "val") -> CIRBenchmark:
    """Read one FashionIQ category (Wu et al., "Fashion IQ", CVPR 2021) from its public layout.

    Expects ``captions/cap.{category}.{split}.json`` (a list of ``{"candidate", "target",
    "captions": [two relative captions]}``), ``image_splits/split.{category}.{split}.json``
    (a list of image names, the gallery) and ``images/<name>.png`` (or ``.jpg``). The two
    captions are joined with " and " (trailing punctuation stripped); the reference is the
    candidate. Scored with R@10 and R@50, reference not removed.

    Examples
    --------
    >>> bench = read_fashioniq("data/fashionIQ", category="dress")  # needs FashionIQ on disk  # doctest: +SKIP
    """
    if category not in FASHIONIQ_CATEGORIES:
        raise ValueError(f"Unknown FashionIQ category {category!r}; choose one of {list(FASHIONIQ_CATEGORIES)}")
    root = Path(root)
    caps = _load_json(root / "captions" / f"cap.{category}.{split}.json", "FashionIQ captions")
    names = _load_json(root / "image_splits" / f"split.{category}.{split}.json", "FashionIQ image split")
    folder = root / "images"
    images: dict[str, str] = {}
    absent = []
    for name in names:
        for ext in (".png", ".jpg", ".jpeg"):
            if (folder / f"{name}{ext}").is_file():
                images[str(name)] = f"images/{name}{ext}"
                break
        else:
            absent.append(name)
    if absent:
        warnings.warn(
            f"{len(absent)} FashionIQ images of the {category} {split} split are missing from {folder} "
            f"(e.g. {absent[:3]}); they are left out of the gallery",
            stacklevel=2,
        )
    if not images:
        raise FileNotFoundError(f"No FashionIQ images found in {folder} (expected <name>.png or <name>.jpg)")
    queries = [
        CIRQuery(
            id=str(i),
            reference=str(entry["candidate"]),
            text=_join_captions(list(entry["captions"])),
            targets=(str(entry["target"]),) if entry.get("target") else (),
            meta={"category": category},
        )
        for i, entry in enumerate(caps)
    ]
    return CIRBenchmark(
        f"fashioniq-{category}-{split}",
        queries,
        Protocol.fashioniq(),
        {"kind": "files", "root": str(root), "images": images},
    )
