"""The in-memory composed-retrieval benchmark every reader produces and the runner consumes.

A benchmark is a list of queries (a reference item, a modification text, the correct
targets and, for CIRR, a small candidate set) plus the protocol that scores them and a
description of its gallery. It is saved as plain JSON::

    {
      "format": "cirscope-cir-benchmark",
      "version": 1,
      "name": "shapes",                      # free text
      "protocol": {
        "exclude_reference": true,           # remove the reference from its ranking (CIRR)
        "recall_ks": [1, 5, 10, 50],         # Recall@K reported
        "subset_ks": [],                     # Recall_subset@K reported (CIRR: [1, 2, 3])
        "map_ks": [5, 10, 25, 50]            # mAP@K reported (CIRCO)
      },
      "gallery": {"kind": "shapes", "n": 2000, "seed": 0},
          # or {"kind": "files", "root": "/data/cirr", "images": {"<id>": "<path relative to root>"}}
      "queries": [
        {"id": "0", "reference": "<gallery id>", "text": "make it blue",
         "targets": ["<gallery id>", ...], "subset": null or ["<gallery id>", ...],
         "meta": {"attribute": "color", "from": "red", "to": "blue"}}
      ]
    }

Ids are the gallery's item ids (strings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "CIRBenchmark", "CIRQuery", "Protocol"]

FORMAT = "cirscope-cir-benchmark"
VERSION = 1


@dataclass(frozen=True)
class CIRQuery:
    """One composed query: reference id, modification text, target ids, optional candidate set.

    Examples
    --------
    >>> q = CIRQuery("0", reference="a", text="make it blue", targets=("b", "c"))
    >>> q.targets
    ('b', 'c')
    """

    id: str
    reference: str
    text: str
    targets: tuple[str, ...]
    subset: tuple[str, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see the module docstring for the schema)."""
        return {
            "id": self.id,
            "reference": self.reference,
            "text": self.text,
            "targets": list(self.targets),
            "subset": None if self.subset is None else list(self.subset),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CIRQuery:
        """Inverse of :meth:`to_dict`."""
        missing = [k for k in ("id", "reference", "text", "targets") if k not in d]
        if missing:
            raise ValueError(f"A benchmark query lacks the fields {missing}: {dict(d)!r:.200}")
        subset = d.get("subset")
        return cls(
            id=str(d["id"]),
            reference=str(d["reference"]),
            text=str(d["text"]),
            targets=tuple(str(t) for t in d["targets"]),
            subset=None if subset is None else tuple(str(s) for s in subset),
            meta=dict(d.get("meta") or {}),
        )


@dataclass(frozen=True)
class Protocol:
    """How a benchmark is scored.

    Examples
    --------
    >>> Protocol.cirr().subset_ks
    (1, 2, 3)
    """

    exclude_reference: bool = True
    recall_ks: tuple[int, ...] = (1, 5, 10, 50)
    subset_ks: tuple[int, ...] = ()
    map_ks: tuple[int, ...] = ()

    @classmethod
    def cirr(cls) -> Protocol:
        """CIRR: reference removed, R@1/5/10/50 and R_subset@1/2/3."""
        return cls(True, (1, 5, 10, 50), (1, 2, 3), ())

    @classmethod
    def circo(cls) -> Protocol:
        """CIRCO: mAP@5/10/25/50 over the whole COCO unlabeled gallery (also R@K for reference)."""
        return cls(False, (1, 5, 10, 50), (), (5, 10, 25, 50))

    @classmethod
    def fashioniq(cls) -> Protocol:
        """FashionIQ: R@10 and R@50, reference not removed."""
        return cls(False, (10, 50), (), ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "exclude_reference": self.exclude_reference,
            "recall_ks": list(self.recall_ks),
            "subset_ks": list(self.subset_ks),
            "map_ks": list(self.map_ks),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Protocol:
        return cls(
            bool(d.get("exclude_reference", True)),
            tuple(int(k) for k in d.get("recall_ks", (1, 5, 10, 50))),
            tuple(int(k) for k in d.get("subset_ks", ())),
            tuple(int(k) for k in d.get("map_ks", ())),
        )


@dataclass
class CIRBenchmark:
    """A composed-retrieval benchmark: queries, protocol and gallery description.

    ``gallery`` is ``{"kind": "shapes", "n": ..., "seed": ...}`` for the generated shapes
    benchmark, or ``{"kind": "files", "root": ..., "images": {id: relative path}}`` for a
    public dataset read from disk (see :meth:`image_paths`).

    Examples
    --------
    >>> b = CIRBenchmark("demo", [CIRQuery("0", "a", "make it blue", ("b",))])
    >>> len(b), b.protocol.exclude_reference
    (1, True)
    """

    name: str
    queries: list[CIRQuery]
    protocol: Protocol = field(default_factory=Protocol)
    gallery: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        kind = self.gallery.get("kind", "?")
        n_targets = sum(len(q.targets) for q in self.queries) / max(len(self.queries), 1)
        return (
            f"CIRBenchmark({self.name!r}, {len(self)} queries, {n_targets:.2f} targets/query, gallery={kind}, "
            f"protocol={self.protocol})"
        )

    def image_paths(self) -> dict[str, str]:
        """``{id: absolute path}`` of a file-based gallery, in gallery order."""
        if self.gallery.get("kind") != "files":
            raise ValueError(f"Benchmark {self.name!r} has no image files (gallery kind {self.gallery.get('kind')!r})")
        root = Path(self.gallery.get("root", "."))
        return {i: str(root / p) for i, p in self.gallery["images"].items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "protocol": self.protocol.to_dict(),
            "gallery": self.gallery,
            "queries": [q.to_dict() for q in self.queries],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the benchmark as JSON (schema in the module docstring)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CIRBenchmark:
        if d.get("format") != FORMAT:
            raise ValueError(f"Not a cirscope benchmark (format {d.get('format')!r}, expected {FORMAT!r})")
        if int(d.get("version", 0)) > VERSION:
            raise ValueError(f"Benchmark version {d.get('version')} is newer than this cirscope reads ({VERSION})")
        return cls(
            name=str(d.get("name", "")),
            queries=[CIRQuery.from_dict(q) for q in d.get("queries", [])],
            protocol=Protocol.from_dict(d.get("protocol", {})),
            gallery=dict(d.get("gallery", {})),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> CIRBenchmark:
        """Read a benchmark written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No benchmark file at {path}")
        return cls.from_dict(json.loads(path.read_text()))

    def take(self, indices: Sequence[int]) -> CIRBenchmark:
        """A benchmark with a subset of the queries (same protocol and gallery)."""
        return CIRBenchmark(self.name, [self.queries[i] for i in indices], self.protocol, dict(self.gallery))
