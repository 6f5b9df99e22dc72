"""How fast are metadata filters (mask + cross-filter counts) at scale, next to pandas doing the same?

Builds a metadata frame of ``--n`` rows and six columns meant for people (three categorical:
5, 20 and 300 values, one with missing values; three numeric: a normal, a uniform with
missing values, and an integer column with 12 values), then times:

* preparing the columns once (:class:`cirscope.space._filters.FilterTable`: codes and bins);
* one filter change with 1, 2 and 4 active filters: the mask and the cross-filter counts of
  all six charts (each counted with the *other* columns' filters), as the filter panel runs it;
* the peer measured in the same run: pandas on the same frame, masks with ``isin`` /
  ``between`` and each chart's counts with ``value_counts`` (categories) or ``np.histogram``
  (numbers) on the rows the other filters keep — the direct way to write it;
* what the Explorer adds per change: the map's dimmed rows as one buffer (a bitmask) and the
  panel's state sent to the browser (bytes of counts, chips and active bars).

Prints JSON (medians of ``--repeats`` runs, milliseconds) and writes it to ``--out`` when given.
Run ``python benchmarks/bench_filters.py [--n 1000000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _ms(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(out), 2)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Six columns meant for people (see the module docstring)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(np.array(["cat", "dog", "bird", "fish", "horse"]), n)
    source = rng.choice(np.array([f"site-{i:02d}" for i in range(20)]), n).astype(object)
    source[rng.random(n) < 0.02] = None
    label = rng.choice(np.array([f"label-{i:03d}" for i in range(300)]), n, p=np.r_[0.5, np.full(299, 0.5 / 299)])
    uniform = rng.random(n)
    uniform[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"kind": kind, "source": source, "label": label, "score": rng.normal(size=n),
                         "brightness": uniform, "year": rng.integers(2010, 2022, n)})


FILTERS = {
    1: {"kind": ["cat", "dog"]},
    2: {"kind": ["cat", "dog"], "score": (-1.0, 0.5)},
    4: {"kind": ["cat", "dog"], "score": (-1.0, 0.5), "source": ["site-01", "site-02", None], "year": [2015, 2016]},
}


def pandas_counts(meta: pd.DataFrame, filters: dict, edges: dict) -> dict:
    """The peer: masks with isin/between, each chart counted on the rows the other filters keep."""
    masks = {}
    for col, spec in filters.items():
        s = meta[col]
        if isinstance(spec, tuple):
            masks[col] = s.between(*spec).to_numpy()
        else:
            values = [v for v in spec if v is not None]
            masks[col] = (s.isin(values) | (s.isna() if None in spec else False)).to_numpy()
    total = np.logical_and.reduce(list(masks.values()))
    out = {}
    for col in meta.columns:
        others = [m for c, m in masks.items() if c != col]
        keep = np.logical_and.reduce(others) if others else np.ones(len(meta), bool)
        s = meta[col][keep]
        out[col] = np.histogram(s.dropna(), bins=edges[col])[0] if col in edges else s.value_counts(dropna=False)
    return {"mask": total, "counts": out}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from cirscope.space._filters import FilterTable
    from cirscope.widgets._rowset import check_rows, rowset_to_json

    meta = frame(args.n)
    start = time.perf_counter()
    table = FilterTable(meta)
    result: dict = {"n": args.n, "columns": list(meta.columns), "repeats": args.repeats,
                    "prepare_ms": round((time.perf_counter() - start) * 1000, 1),
                    "kinds": {name: col.kind for name, col in table.columns.items()}, "filters": {}}
    edges = {name: col.edges for name, col in table.columns.items() if col.kind == "histogram"}

    class _Map:  # the owner a RowSet message is sized by (the map's points)
        coords = np.empty((args.n, 2), np.float32)

    for active, filters in FILTERS.items():
        ours = _ms(lambda f=filters: table.counts(f), args.repeats)
        peer = _ms(lambda f=filters: pandas_counts(meta, f, edges), args.repeats)
        mask, counts = table.counts(filters)
        check = pandas_counts(meta, filters, edges)
        assert np.array_equal(mask, check["mask"]), "the mask differs from pandas"
        for name in edges:
            assert counts[name][:-1].tolist() == check["counts"][name].tolist(), f"{name} counts differ from pandas"
        dimmed = _ms(lambda m=mask: rowset_to_json(check_rows(~m, args.n, unique=True), _Map()), args.repeats)
        message = rowset_to_json(check_rows(~mask, args.n, unique=True), _Map())
        result["filters"][str(active)] = {
            "filters": {k: list(v) if isinstance(v, tuple) else v for k, v in filters.items()},
            "matching": int(mask.sum()),
            "mask_and_counts_ms": ours,
            "pandas_ms": peer,
            "speedup_vs_pandas": round(peer / ours, 1) if ours else None,
            "map_dimmed_message_ms": dimmed,
            "map_dimmed_message_bytes": len(message["data"]),
        }
    # what the panel sends per change: counts, chips and active bars as JSON (no rows)
    from cirscope.widgets._filter_charts import active_keys, bar_counts, chip_text

    filters = table.normalize(FILTERS[4])
    mask, counts = table.counts(filters)
    state = {
        "counts": {k: bar_counts(table.columns[k], c) for k, c in counts.items()},
        "active": {k: active_keys(table.columns[k], filters.get(k)) for k in table.columns},
        "chips": [{"column": k, "text": chip_text(table.columns[k], f)} for k, f in filters.items()],
    }
    result["panel_state_bytes"] = len(json.dumps(state))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
