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

__all__ = ["GAP", "OFF_NOISE", "PERTURB_NOISE", "RecallReport", "calibrate", "realistic_queries", "recall_at_k"]

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
        ``"exact"``, ``"annoy"`` or ``"faiss-hnsw"``.
    breadth_name, breadth
        The search-breadth knob (``search_k``, ``efSearch``) and its calibrated value.
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
