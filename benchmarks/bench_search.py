"""How fast does a composed search answer a slider move on a 100,000-item gallery?

After one warm-up search (query resolved, texts encoded, index built), each further
``space.search(q, method="pdv", alpha_t=..., alpha_i=..., beta=...)`` is timed with new
parameters; the baseline is the exact numpy search (compose + ``embeddings @ q`` + top-k)
measured in the same run. Prints JSON.

Run ``python benchmarks/bench_search.py [--n 100000] [--dim 512] [--repeats 50]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time

import numpy as np
import pandas as pd


class StubTextEncoder:
    """Deterministic text vectors shaped like CLIP's (no model needed for a timing run).

    A text lands near one gallery item (picked by a stable hash of the text), shifted by a
    constant "modality gap" direction and some noise, as real text embeddings sit in their
    own cone beside the images they describe (Liang et al. 2022). Without a gallery it
    returns plain random unit vectors.
    """

    name = "bench-stub"
    pretrained = None

    def __init__(self, dim: int, gallery: np.ndarray | None = None, gap: float = 0.8, noise: float = 0.5):
        self.dim, self.gallery, self.noise = dim, gallery, noise
        rng = np.random.default_rng(12345)
        direction = rng.normal(size=dim)
        self.gap = gap * direction / np.linalg.norm(direction)

    def encode_text(self, texts):
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            rng = np.random.default_rng(seed)
            v = rng.normal(size=self.dim)
            if self.gallery is not None:
                anchor = self.gallery[rng.integers(len(self.gallery))]
                v = anchor + self.gap + self.noise * v / np.sqrt(self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def build_space(n: int, dim: int, seed: int, data: str = "clustered"):
    """A gallery of ``n`` synthetic items: clustered like real embeddings, or unstructured noise."""
    import cirscope as cs
    from cirscope.gallery._table import Gallery

    rng = np.random.default_rng(seed)
    if data == "clustered":
        from bench_index import synthetic_embeddings  # the index benchmark's generator (same folder)

        emb = synthetic_embeddings(n, dim, seed=seed)
    else:  # no structure at all: an approximate index cannot help, the search is exact
        emb = rng.normal(size=(n, dim)).astype(np.float32)
    meta = pd.DataFrame(
        {
            "id": [f"item-{i:06d}" for i in range(n)],
            "color": rng.choice(["red", "green", "blue", "yellow"], n),
            "shape": rng.choice(["circle", "square", "star"], n),
            "caption": "a synthetic item",
        }
    )
    gallery = Gallery(meta, [None] * n)
    return cs.Space.from_embeddings(gallery, emb, embedder=StubTextEncoder(dim, emb if data == "clustered" else None))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", choices=("clustered", "random"), default="clustered",
                   help="synthetic embeddings with topic structure (like real ones) or unstructured noise")
    args = p.parse_args(argv)

    from cirscope.query._composed import ComposedQuery
    from cirscope.query._methods import compose
    from cirscope.query._search import exact_neighbors

    t0 = time.perf_counter()
    space = build_space(args.n, args.dim, args.seed, args.data)
    build_s = time.perf_counter() - t0
    query = ComposedQuery(0, "make it blue")
    t0 = time.perf_counter()
    space.search(query, method="pdv", k=args.k)  # warm-up: resolve, encode, build the index
    warmup_s = time.perf_counter() - t0
    index_kind = repr(space.index)

    rng = np.random.default_rng(args.seed + 1)
    settings = [(float(a), float(b)) for a, b in zip(rng.uniform(-0.5, 2.0, args.repeats), rng.uniform(0, 1, args.repeats), strict=False)]
    search_ms, exact_ms = [], []
    resolved = query.resolve(space)
    emb = space.image_embeddings
    overlap = []
    for a, b in settings:
        t0 = time.perf_counter()
        df = space.search(query, method="pdv", k=args.k, alpha_t=a, alpha_i=a, beta=b)
        search_ms.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        vec = compose("pdv", **resolved.embeddings(), alpha_t=a, alpha_i=a, beta=b)
        rows, _ = exact_neighbors(emb, vec, args.k, exclude=[0])
        exact_ms.append(1000 * (time.perf_counter() - t0))
        overlap.append(len(set(df["row"]) & set(rows.tolist())) / args.k)
    med, base = statistics.median(search_ms), statistics.median(exact_ms)
    report = {
        "benchmark": "composed search, new PDV alpha/beta after warm-up",
        "n": args.n,
        "dim": args.dim,
        "data": args.data,
        "k": args.k,
        "repeats": args.repeats,
        "index": index_kind,
        "build_space_s": round(build_s, 3),
        "warmup_s": round(warmup_s, 3),
        "search_ms_median": round(med, 3),
        "search_ms_p90": round(float(np.percentile(search_ms, 90)), 3),
        "exact_numpy_ms_median": round(base, 3),
        "ratio_search_over_exact": round(med / base, 3) if base > 0 else None,
        "recall_vs_exact": round(float(np.mean(overlap)), 4),
        "target_ms": 10.0,
        "meets_target": med < 10.0,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
