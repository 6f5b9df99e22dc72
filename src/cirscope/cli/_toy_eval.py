"""``cirscope toy-eval``: zero-shot accuracy, deliberate bias and composed retrieval of the toy model.

Composed retrieval is scored on in-template and held-out phrasings
(:func:`cirscope.eval._phrasings.phrasing_comparison`) on the same fresh world.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``toy-eval`` to the ``cirscope`` command line."""
    p = subparsers.add_parser("toy-eval", help="zero-shot accuracy and deliberate bias of the shipped toy model")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--queries", type=int, default=1000, help="composed queries per phrasing set (0: skip)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope toy-eval``."""
    from cirscope.toy._report import report_space, toy_report

    space = report_space(args.n, args.seed)
    report = toy_report(n=args.n, seed=args.seed, k=args.k, space=space)
    if args.queries > 0:
        from cirscope.eval._phrasings import phrasing_comparison

        report["composed"] = phrasing_comparison(space, args.queries, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"cirscope-toy on a fresh balanced shapes world (n={args.n}, seed={args.seed}, both renderers)")
        print("zero-shot accuracy:")
        for attr, acc in report["accuracy"].items():
            print(f"  {attr:<11} {acc:.3f}  (chance {report['chance'][attr]:.3f})")
        b = report["bias"]
        print(f"deliberate bias (trained with {int(report['train_bias']['p'] * 100)}% of stars yellow):")
        print(f"  yellow share in the top {b['k']} for 'a star': {b['yellow_share_top_k_for_a_star']:.2f} "
              f"(yellow among the gallery's stars: {b['yellow_share_among_gallery_stars']:.2f})")
        print(f"  star share in the top {b['k']} for 'a yellow shape': {b['star_share_top_k_for_a_yellow_shape']:.2f} "
              f"(stars among the gallery's yellow items: {b['star_share_among_gallery_yellow']:.2f})")
        if "composed" in report:
            from cirscope.eval._phrasings import format_comparison

            c = report["composed"]
            print(f"composed retrieval, default settings ({c['queries']} queries, in-template vs held-out phrasings):")
            print("\n".join(format_comparison(c)))
    return 0
