"""Calibrating an approximate index's search breadth on queries shaped like the real ones.

Gallery rows used as their own queries sit exactly on the data and flatter an approximate index:
real queries do not. Search-by-image queries are new photos near the gallery, and text or composed
queries lie off the image manifold (CLIP's modality gap: text vectors sit in their own cone, shifted
by a roughly constant direction from the images they describe; Liang et al., "Mind the Gap", 2022).
So the breadth (annoy ``search_k``, HNSW ``efSearch``) is calibrated on two synthetic query kinds:

``perturbed``
    A gallery row plus isotropic noise (norm :data:`PERTURB_NOISE`), renormalised: a near-duplicate
    photo of a gallery item.
``off-manifold``
    A mixture of two gallery rows, shifted by a random "modality gap" direction (norm :data:`GAP`;
    one per query, so that the sample does not hinge on one lucky or unlucky direction) plus noise
    (norm :data:`OFF_NOISE`), renormalised: a text or composed query.

:func:`calibrate` walks a ladder of breadths and keeps the first whose recall@k against exact search
reaches the target on *both* kinds; :class:`RecallReport` records what was measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["GAP", "OFF_NOISE", "PERTURB_NOISE", "Calibrated", "RecallReport", "calibrate", "realistic_queries", "recall_at_k"]

#: Norm of the noise added to a gallery row for a ``perturbed`` query (cosine to its row ~0.93).
PERTURB_NOISE = 0.4
#: Norm of the constant offset of ``off-manifold`` queries (as ``benchmarks/bench_search.py``'s text stub).
GAP = 0.8
#: Norm of the noise added to ``off-manifold`` queries.
OFF_NOISE = 0.5

QUERY_KINDS = ("perturbed", "off-manifold")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def realistic_queries(embeddings: np.ndarray, sample: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """``sample`` queries of each kind in :data:`QUERY_KINDS`, as unit float32 rows.

    Examples
    --------
    >>> emb = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    >>> q = realistic_queries(emb / np.linalg.norm(emb, axis=1, keepdims=True), sample=4)
    >>> sorted(q), q["perturbed"].shape
    (['off-manifold', 'perturbed'], (4, 8))
    """
    n, d = embeddings.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=sample, replace=n < sample))
    near = np.asarray(embeddings[rows], dtype=np.float32)
    noise = rng.normal(size=(sample, d)).astype(np.float32)
    perturbed = _unit(near + PERTURB_NOISE * noise / np.sqrt(d))
    other = np.asarray(embeddings[np.sort(rng.integers(0, n, size=sample))], dtype=np.float32)
    w = rng.uniform(0.6, 0.9, size=(sample, 1)).astype(np.float32)
    gap = rng.normal(size=(sample, d)).astype(np.float32)  # one direction per query: a sample of
    gap *= GAP / np.linalg.norm(gap, axis=1, keepdims=True)  # gaps, less luck than one shared one
    noise = rng.normal(size=(sample, d)).astype(np.float32)
    off = _unit(w * near + (1 - w) * other + gap + OFF_NOISE * noise / np.sqrt(d))
    return {"perturbed": perturbed, "off-manifold": off}


def recall_at_k(truth: np.ndarray, got: np.ndarray) -> float:
    """Mean |got ∩ truth| / |truth| over rows of two ``(m, k)`` row arrays (``-1`` pads ignored).

    Examples
    --------
    >>> recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 9], [4, 3]]))
    0.75
    """
    truth = np.asarray(truth)
    got = np.asarray(got)
    hit = (truth[:, :, None] == got[:, None, :]).any(axis=2) & (truth >= 0)
    return float(hit.sum() / max(1, (truth >= 0).sum()))


@dataclass
class RecallReport:
    """What an index measured about itself: recall@k per query kind at the chosen breadth.

    Attributes
    ----------
    backend
        ``"exact"``, ``"annoy"``, ``"faiss-hnsw"`` or ``"faiss-ivf"``.
    breadth_name, breadth
        The search-breadth knob (``search_k``, ``efSearch``, ``nprobe``) and its calibrated value.
    k, sample
        The recall's ``k`` and the number of queries of each kind.
    target
        The recall the breadth had to reach on every kind.
    recall
        ``{kind: recall@k}`` at the chosen breadth.
    tried
        ``[(breadth, {kind: recall})]`` for every breadth tried, smallest first.
    note
        Why the index is exact, or which backend ``"auto"`` fell back from; empty otherwise.
    """

    backend: str
    breadth_name: str | None
    breadth: int | None
    k: int
    sample: int
    target: float
    recall: dict[str, float]
    tried: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    note: str = ""

    @property
    def reached(self) -> bool:
        """True when every kind reached the target."""
        return all(r >= self.target for r in self.recall.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["tried"] = [[b, r] for b, r in self.tried]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecallReport:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["tried"] = [(int(b), dict(r)) for b, r in d.get("tried", [])]
        return cls(**d)

    def to_frame(self):
        """One row per query kind: ``kind, recall, k, sample, breadth_name, breadth, backend, target``."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "kind": kind,
                    "recall": r,
                    "k": self.k,
                    "sample": self.sample,
                    "breadth_name": self.breadth_name,
                    "breadth": self.breadth,
                    "backend": self.backend,
                    "target": self.target,
                }
                for kind, r in self.recall.items()
            ]
        )


def calibrate(
    search: Callable[[np.ndarray, int, int], np.ndarray],
    queries: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    ladder: Sequence[int],
    target: float,
) -> tuple[int | None, list[tuple[int, dict[str, float]]]]:
    """The first breadth in ``ladder`` whose recall reaches ``target`` on every query kind.

    ``search(queries, k, breadth)`` returns ``(m, k)`` rows. Returns ``(breadth, tried)``, with
    ``breadth=None`` when no rung reached the target.

    Examples
    --------
    >>> truth = {"a": np.array([[0, 1]])}
    >>> fake = lambda q, k, b: np.array([[0, 1]]) if b >= 4 else np.array([[0, 7]])
    >>> calibrate(fake, {"a": np.zeros((1, 2))}, truth, [2, 4, 8], 0.99)
    (4, [(2, {'a': 0.5}), (4, {'a': 1.0})])
    """
    tried: list[tuple[int, dict[str, float]]] = []
    for breadth in ladder:
        got = {
            kind: round(recall_at_k(truth[kind], search(q, truth[kind].shape[1], int(breadth))), 4)
            for kind, q in queries.items()
        }
        tried.append((int(breadth), got))
        if all(r >= target for r in got.values()):
            return int(breadth), tried
    return None, tried


_CALIBRATION_K = 10
# Queries of each kind in the calibration sample. Off-manifold recall is heavy-tailed (a few
# queries between clusters have many near-ties): at 30,000 x 256 and a fixed efSearch, six samples
# of 200 gave recall@10 from 0.971 to 0.995; 500 narrow that by ~1.6x.
_CALIBRATION_QUERIES = 500
# Calibrate to a slightly higher recall than asked, for that sampling noise.
_CALIBRATION_MARGIN = 0.003


class Calibrated:
    """Calibration and recall measurement of :class:`~cirscope.NeighborIndex` (a mixin: it uses the
    index's ``embeddings``, ``_backend``, exact and approximate search)."""

    embeddings: Any
    target_recall: float
    seed: int
    note: str
    exact_reason: str
    breadth: int | None
    _backend: Any
    _report: RecallReport | None

    def _calibrate(self, breadth: int | None) -> None:
        """Pick (or, for a given ``breadth``, just measure) the breadth reaching ``target_recall``
        on perturbed and off-manifold queries; fall back to exact search when no breadth does."""
        n = len(self)
        k = min(_CALIBRATION_K, n)
        queries = realistic_queries(self.embeddings, _CALIBRATION_QUERIES, self.seed)
        backend = self._backend
        truth = {kind: self._truth(q, k) for kind, q in queries.items()}

        def search(q: np.ndarray, kk: int, b: int) -> np.ndarray:
            self.breadth = b
            return self._approximate(q, kk, None, None)[0]

        target = min(1.0, self.target_recall + _CALIBRATION_MARGIN)
        ladder = [breadth] if breadth is not None else backend.ladder(n)
        chosen, tried = calibrate(search, queries, truth, ladder, target if breadth is None else 0.0)
        if chosen is None:
            last = tried[-1][1] if tried else {}
            self.exact_reason = (
                f"{backend.name} needs {backend.breadth_name} > {ladder[-1] if ladder else 0} for recall@10 >= "
                f"{self.target_recall} on these embeddings (reached {last}); exact search is faster there"
            )
            self._backend, self.breadth = None, None
            return
        self.breadth = chosen
        self._report = RecallReport(
            backend=backend.name, breadth_name=backend.breadth_name, breadth=chosen, k=k,
            sample=_CALIBRATION_QUERIES, target=self.target_recall, recall=dict(tried[-1][1]), tried=tried,
            note=self.note,
        )  # fmt: skip

    def _truth(self, q: np.ndarray, k: int) -> np.ndarray:
        """Exact top-``k`` rows of the calibration queries. With a faiss backend, faiss's exact
        ``knn`` (no copy of the matrix): right after faiss's threads ran, numpy's BLAS threads
        competed with them and the same products took twice as long (at 1,000,000 x 256, 1,000
        queries: 25 s against 6 s)."""
        if getattr(self._backend, "name", "").startswith("faiss") and isinstance(self.embeddings, np.ndarray):
            import faiss

            emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
            _, rows = faiss.knn(np.ascontiguousarray(q, dtype=np.float32), emb, k, metric=faiss.METRIC_INNER_PRODUCT)
            return rows.astype(np.int64, copy=False)
        return self._exact_rows(q, k, None)[0]

    def recall_report(self) -> RecallReport:
        """The recall@10 measured on build, per query kind (perturbed gallery rows, off-manifold
        "text-like" vectors), with the breadth chosen, ``k`` and the sample size.

        Examples
        --------
        >>> cs.NeighborIndex(np.eye(4)).recall_report().to_frame()[["kind", "recall"]].to_dict("list")
        {'kind': ['perturbed', 'off-manifold'], 'recall': [1.0, 1.0]}
        """
        if self._report is not None:
            return self._report
        return RecallReport(
            backend="exact", breadth_name=None, breadth=None, k=_CALIBRATION_K, sample=0,
            target=self.target_recall, recall={"perturbed": 1.0, "off-manifold": 1.0},
            note=" ".join(x for x in (self.exact_reason, self.note) if x),
        )  # fmt: skip

    def recall(self, k: int = 10, sample: int = 200, seed: int = 0, kind: str = "gallery") -> float:
        """Mean recall@k of this index against exact search on ``sample`` queries.

        ``kind="gallery"``: sampled gallery rows as queries, each with itself excluded (as when
        searching by an image of the gallery); ``"perturbed"`` or ``"off-manifold"``: the
        calibration's realistic query kinds (:func:`cirscope.neighbors._calibrate.realistic_queries`).
        recall@k = |approximate top-k ∩ exact top-k| / k, averaged (Manning, Raghavan & Schütze
        2008, ch. 8). An exact index has recall 1.

        Examples
        --------
        >>> cs.NeighborIndex(np.eye(5)).recall(k=2, sample=5)
        1.0
        """
        n = len(self)
        if kind == "gallery":
            k = min(int(k), n - 1)
            if k <= 0:
                return 1.0
            rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
            q = np.asarray(self.embeddings[rows], dtype=np.float32)
            truth, _ = self._exact_rows(q, k + 1, None)
            got, _ = self.query_batch(q, k + 1)
            drop = lambda r: np.array([x[x != row][:k] for x, row in zip(r, rows, strict=True)])  # noqa: E731
            return recall_at_k(drop(truth), drop(got))
        queries = realistic_queries(self.embeddings, sample, seed)
        if kind not in queries:
            raise ValueError(f"kind must be 'gallery' or one of {sorted(queries)}, got {kind!r}")
        k = min(int(k), n)
        return recall_at_k(self._exact_rows(queries[kind], k, None)[0], self.query_batch(queries[kind], k)[0])

