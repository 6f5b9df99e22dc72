"""``cirscope eval cir``: score every composing method on a composed-retrieval benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cirscope.query._methods import method_label

_DATASETS = ("shapes", "cirr", "circo", "fashioniq")
_SHAPES_METRICS = ("R@1", "R@5", "R@10", "R@50", "mAP@10")
_SHAPES_NAMES = {"in-template": "shapes", "held-out": "shapes-held-out"}
_HARD_NAMES = {"held-out": "shapes-hard", "in-template": "shapes-hard-in-template"}
_INTERVALS = ("R@1", "R@10")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval cir`` to the ``cirscope`` command line."""
    p = subparsers.add_parser("eval", help="evaluate composed-retrieval methods on a benchmark")
    sub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    c = sub.add_parser(
        "cir",
        help="Recall@K / mAP@K of image, text, sum, WeiMoCIR, Slerp and PDV (default and swept)",
        description="Score every composing method; the shapes benchmark runs offline with the toy model.",
    )
    c.add_argument("--dataset", choices=_DATASETS, default="shapes")
    c.add_argument(
        "--level",
        choices=("hard", "easy"),
        default="hard",
        help="shapes: hard (default: two-attribute edits in unseen phrasings, rare targets, close distractors, "
        "a short reference caption) or easy (the one-attribute benchmark of earlier releases)",
    )
    c.add_argument("--root", type=Path, default=None, help="dataset folder (cirr, circo, fashioniq)")
    c.add_argument("--split", default="val", help="annotation split (default val)")
    c.add_argument("--category", default=None, help="FashionIQ category (default: dress, shirt and toptee)")
    c.add_argument("--model", default=None, help="open_clip model (default: the toy model, cirscope-toy)")
    c.add_argument("--pretrained", default=None, help="pretrained tag or checkpoint for --model")
    c.add_argument("--n-gallery", type=int, default=2000, help="shapes: gallery size")
    c.add_argument("--n-queries", type=int, default=1000, help="shapes: queries drawn")
    c.add_argument("--seed", type=int, default=0, help="shapes: seed of the world and the queries")
    c.add_argument(
        "--reference-text",
        choices=("auto", "caption", "zero-shot", "neutral"),
        default="zero-shot",
        help="source of the reference text for PDV (default zero-shot: the shapes captions are ground truth)",
    )
    c.add_argument("--template", default="{reference_text}, {text}", help="composed-text template")
    c.add_argument(
        "--phrasings",
        choices=("in-template", "held-out", "both"),
        default=None,
        help="shapes: instructions the toy model was trained on, held-out ones it never saw, or both "
        "(default: held-out for --level hard, both for easy)",
    )
    c.add_argument("--metric", default=None, help="metric the PDV sweep maximises (default: R@1 for shapes hard, "
                   "else R@10)")
    c.add_argument("--benchmark", type=Path, default=None, help="shapes: load a saved benchmark JSON")
    c.add_argument("--save-benchmark", type=Path, default=None, help="write the benchmark as JSON")
    c.add_argument("--heatmap", type=Path, default=None, help="write the PDV sweep heatmap (offline HTML)")
    c.add_argument("--sweep", choices=("tied", "both"), default="tied", help="PDV sweep: alpha_t = alpha_i, or both")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.add_argument("--json", action="store_true", help="print a JSON report")
    c.set_defaults(func=run)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _embedder(args: argparse.Namespace):
    import cirscope as cs

    if args.model is None or args.model == "cirscope-toy":
        return cs.Embedder.toy()
    return cs.Embedder(args.model, args.pretrained)


def _benchmarks(args: argparse.Namespace) -> list[tuple[Any, Any, Any]]:
    """``[(space, benchmark, tuning benchmark or None)]`` for the chosen dataset."""
    import cirscope as cs
    from cirscope import eval as ev

    progress = not args.quiet
    if args.dataset == "shapes":
        n, seed = args.n_gallery, args.seed
        if args.benchmark is not None:
            bench = ev.CIRBenchmark.load(args.benchmark)
            n, seed = int(bench.gallery.get("n", n)), int(bench.gallery.get("seed", seed))
            args.level = str(bench.gallery.get("level", "easy"))
        gallery = cs.datasets.shapes(n, seed=seed)
        space = cs.Space(gallery, _embedder(args), progress=progress)
        desc = {"kind": "shapes", "n": n, "seed": seed}
        hard = args.level == "hard"
        if hard:
            # tuned on other queries (another seed) in the same unseen phrasings: nothing is fitted to the test set
            tune = ev.make_hard_shapes_benchmark(gallery.metadata, args.n_queries, seed=seed + 1000, gallery=desc,
                                                 name="shapes-hard-tune")
        else:
            # PDV is tuned on in-template queries only: held-out phrasings stay unseen.
            tune = ev.make_shapes_benchmark(gallery.metadata, args.n_queries, seed=seed + 1000, gallery=desc,
                                            name="shapes-tune")
        if args.benchmark is not None:
            return [(space, bench, tune)]
        phrasings = args.phrasings or ("held-out" if hard else "both")
        if hard:
            sets = ("held-out", "in-template") if phrasings == "both" else (phrasings,)
            return [(space, ev.make_hard_shapes_benchmark(gallery.metadata, args.n_queries, seed=seed, gallery=desc,
                                                          phrasings=which, name=_HARD_NAMES[which]), tune)
                    for which in sets]
        sets = ("in-template", "held-out") if phrasings == "both" else (phrasings,)
        return [(space, ev.make_shapes_benchmark(gallery.metadata, args.n_queries, seed=seed, gallery=desc,
                                                 phrasings=which, name=_SHAPES_NAMES[which]), tune)
                for which in sets]
    if args.root is None:
        raise ValueError(f"--root is required for --dataset {args.dataset} (the folder holding the dataset)")
    if args.dataset == "cirr":
        benches = [ev.read_cirr(args.root, split=args.split)]
    elif args.dataset == "circo":
        benches = [ev.read_circo(args.root, split=args.split)]
    else:
        cats = [args.category] if args.category else list(ev.FASHIONIQ_CATEGORIES)
        benches = [ev.read_fashioniq(args.root, category=c, split=args.split) for c in cats]
    embedder = _embedder(args)
    return [(cs.Space(ev.benchmark_gallery(b), embedder, progress=progress), b, None) for b in benches]


def _run_one(args: argparse.Namespace, space: Any, bench: Any, tune: Any) -> dict[str, Any]:
    import cirscope as cs
    from cirscope import eval as ev

    kwargs: dict[str, Any] = {"reference_text": args.reference_text, "template": args.template,
                              "progress": not args.quiet}
    if args.reference_text == "zero-shot" and args.dataset != "shapes":
        kwargs["reference_text"] = "auto"  # real galleries have no vocabulary: falls back to neutral
    hard = args.dataset == "shapes" and args.level == "hard"
    if hard and args.reference_text == "zero-shot":
        kwargs["vocabulary"] = cs.datasets.shapes_short_vocabulary()  # "a red star": no background, no size
    metric = args.metric or ("R@1" if hard else "R@10")
    prepared = ev.prepare(space, bench, **kwargs)
    tuning = ev.prepare(space, tune, **kwargs) if tune is not None else prepared
    sweep = ev.sweep_pdv(prepared=tuning, mode=args.sweep, metric=metric, progress=not args.quiet)
    label = "pdv (swept)"
    intervals = [m for m in _INTERVALS if int(m[2:]) in prepared.benchmark.protocol.recall_ks]
    table = ev.evaluate(None, prepared=prepared, extra={label: ("pdv", sweep.best)}, intervals=intervals)
    if args.heatmap is not None:
        path = args.heatmap
        if args.dataset == "fashioniq" and not args.category:
            path = path.with_name(f"{path.stem}-{bench.name}{path.suffix}")
        sweep.write_html(path)
    if args.save_benchmark is not None:
        path = args.save_benchmark
        if bench.name == _SHAPES_NAMES["held-out"]:
            path = path.with_name(f"{path.stem}-held-out{path.suffix}")
        elif bench.name == _HARD_NAMES["in-template"]:
            path = path.with_name(f"{path.stem}-in-template{path.suffix}")
        bench.save(path)
    return {
        "benchmark": bench.name,
        "queries": len(prepared),
        "skipped": prepared.skipped,
        "reference_text_sources": table.attrs["reference_text_sources"],
        "level": args.level if args.dataset == "shapes" else None,
        "reference_vocabulary": "short: colour and shape" if "vocabulary" in kwargs else None,
        "pdv_sweep": {
            **sweep.summary(),
            "mode": sweep.mode,
            "tuned_on": tune.name if tune is not None else f"{bench.name} (the evaluation queries themselves)",
        },
        "intervals": {"level": 0.95, "method": "percentile bootstrap over queries (2000 resamples, seed 0); "
                      "p vs best: exact McNemar test against the best row"},
        "table": {m: {k: _number(k, v) for k, v in row.items()} for m, row in table.to_dict("index").items()},
    }


def _print(report: dict[str, Any], shapes: bool) -> None:
    table = report["table"]
    first = next(iter(table.values()))
    metrics = [m for m in (_SHAPES_METRICS if shapes else first) if m in first and m != "params"]
    print(f"{report['benchmark']}: {report['queries']} queries ({report['skipped']} skipped), "
          f"reference text: {report['reference_text_sources']}")
    print(f"  {'method':<14}" + "".join(f"{m:>8}" for m in metrics) + "   params")
    for name, row in table.items():
        print(f"  {method_label(name):<14}" + "".join(f"{100 * row[m]:8.2f}" for m in metrics) + f"   {row['params']}")
    ci = [m for m in _INTERVALS if f"{m} lo" in first]
    if ci:
        print("  95% bootstrap intervals; p: exact McNemar test against the best row")
        print(f"  {'method':<14}" + "".join(f"{m + ' interval':>18}{'p':>9}" for m in ci))
        for name, row in table.items():
            spans = [f"[{100 * row[f'{m} lo']:.1f}, {100 * row[f'{m} hi']:.1f}]" for m in ci]
            cells = "".join(f"{span:>18}{_p(row[f'{m} p vs best']):>9}" for m, span in zip(ci, spans, strict=True))
            print(f"  {method_label(name):<14}" + cells)
    s = report["pdv_sweep"]
    where = ", ".join(f"{p} {lo:g}-{hi:g}" for p in ("alpha_t", "alpha_i", "beta") for lo, hi in [s[p]])
    print(f"  PDV sweep ({s['mode']}, tuned on {s['tuned_on']}): best {s['metric']} "
          f"{100 * s['best_score']:.2f} at {s['best']}; within noise of it: {s['cells']} of {s['of']} settings "
          f"({where}); {'an interior optimum' if s['interior'] else 'the plateau reaches the edge of the grid'}")


def _number(key: str, value: Any) -> Any:
    """A report cell: metrics rounded to 4 decimals, p-values to 3 significant digits (never rounded to 0)."""
    if isinstance(value, str):
        return value
    return float(f"{float(value):.3g}") if key.endswith("p vs best") else round(float(value), 4)


def _p(p: float) -> str:
    """A p-value as text: below 1e-15 it is written as a bound (floating point cannot say more)."""
    return "<1e-15" if p < 1e-15 else f"{p:.2g}"


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope eval cir``."""
    reports = [_run_one(args, *item) for item in _benchmarks(args)]
    if args.json:
        if args.dataset == "shapes" and len(reports) == 2:  # the first set's report, the other beside it
            key = "in_template" if args.level == "hard" else "held_out"
            reports = [{**reports[0], key: reports[1]}]
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
        return 0
    for report in reports:
        _print(report, args.dataset == "shapes")
    if args.heatmap is not None:
        print(f"heatmap: {args.heatmap}")
    return 0
