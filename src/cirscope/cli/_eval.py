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
        default="both",
        help="shapes: instructions the toy model was trained on, held-out ones it never saw, or both (default)",
    )
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
        gallery = cs.datasets.shapes(n, seed=seed)
        space = cs.Space(gallery, _embedder(args), progress=progress)
        desc = {"kind": "shapes", "n": n, "seed": seed}
        # PDV is tuned on in-template queries only: held-out phrasings stay unseen.
        tune = ev.make_shapes_benchmark(gallery.metadata, args.n_queries, seed=seed + 1000, gallery=desc, name="shapes-tune")
        if args.benchmark is not None:
            return [(space, bench, tune)]
        sets = ("in-template", "held-out") if args.phrasings == "both" else (args.phrasings,)
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
    from cirscope import eval as ev

    kwargs = {"reference_text": args.reference_text, "template": args.template, "progress": not args.quiet}
    if args.reference_text == "zero-shot" and args.dataset != "shapes":
        kwargs["reference_text"] = "auto"  # real galleries have no vocabulary: falls back to neutral
    prepared = ev.prepare(space, bench, **kwargs)
    tuning = ev.prepare(space, tune, **kwargs) if tune is not None else prepared
    sweep = ev.sweep_pdv(prepared=tuning, mode=args.sweep, progress=not args.quiet)
    label = "pdv (swept)"
    table = ev.evaluate(None, prepared=prepared, extra={label: ("pdv", sweep.best)})
    if args.heatmap is not None:
        path = args.heatmap
        if args.dataset == "fashioniq" and not args.category:
            path = path.with_name(f"{path.stem}-{bench.name}{path.suffix}")
        sweep.write_html(path)
    if args.save_benchmark is not None:
        path = args.save_benchmark
        if bench.name == _SHAPES_NAMES["held-out"]:
            path = path.with_name(f"{path.stem}-held-out{path.suffix}")
        bench.save(path)
    return {
        "benchmark": bench.name,
        "queries": len(prepared),
        "skipped": prepared.skipped,
        "reference_text_sources": table.attrs["reference_text_sources"],
        "pdv_sweep": {
            "metric": sweep.metric,
            "mode": sweep.mode,
            "best": sweep.best,
            "best_score": sweep.best_score,
            "tuned_on": tune.name if tune is not None else f"{bench.name} (the evaluation queries themselves)",
        },
        "table": {m: {k: (v if isinstance(v, str) else round(float(v), 4)) for k, v in row.items()}
                  for m, row in table.to_dict("index").items()},
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
    s = report["pdv_sweep"]
    print(f"  PDV sweep ({s['mode']}, tuned on {s['tuned_on']}): best {s['metric']} "
          f"{100 * s['best_score']:.2f} at {s['best']}")


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope eval cir``."""
    reports = [_run_one(args, *item) for item in _benchmarks(args)]
    if args.json:
        if args.dataset == "shapes" and len(reports) == 2:  # the in-template report, held-out beside it
            reports = [{**reports[0], "held_out": reports[1]}]
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
        return 0
    for report in reports:
        _print(report, args.dataset == "shapes")
    if args.heatmap is not None:
        print(f"heatmap: {args.heatmap}")
    return 0
