"""``cirscope audit DIR --attribute COL --out report.html``: a standalone HTML audit of an embedded folder."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cirscope._core.text import terminal_text
from cirscope.cli._errors import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``audit`` to the ``cirscope`` command line."""
    p = subparsers.add_parser(
        "audit",
        help="bias and health diagnostics of an embedded folder, as one offline HTML report",
        description=(
            "Run retrieval skew, long tail, hubness, modality gap, near-duplicates, outliers and uniqueness "
            "on a folder written by `cirscope embed` (or Space.save) and write a standalone HTML report. "
            "The model recorded in the folder is recreated to encode texts (e.g. cirscope-toy)."
        ),
    )
    p.add_argument("folder", type=Path, help="a folder written by `cirscope embed` or Space.save")
    p.add_argument("--attribute", required=True, help="the metadata column to audit (e.g. gender, color)")
    p.add_argument("--out", type=Path, required=True, help="the HTML report to write")
    p.add_argument("--queries", nargs="+", default=None,
                   help="skew queries (default: a prompt per word of the other categorical columns)")
    p.add_argument("--k", type=int, nargs="+", default=[10, 50, 100], help="skew cut-offs (default 10 50 100)")
    p.add_argument("--desired", choices=("uniform", "gallery"), default="uniform", help="skew target")
    p.add_argument("--hubness-k", type=int, default=10)
    p.add_argument("--mitigation", choices=("none", "inverted_softmax", "csls", "all"), default="none",
                   help="hubness mitigations to compare (default none)")
    p.add_argument("--duplicate-threshold", type=float, default=None,
                   help="cosine distance (default: a quarter of the median nearest-neighbour distance, at most 0.2)")
    p.add_argument("--pretrained", default=None, help="weights for the recorded model (tag or local file)")
    p.add_argument("--no-thumbnails", action="store_true", help="do not embed image thumbnails in the report")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _load(args: argparse.Namespace):
    import cirscope as cs

    info = args.folder / "space.json"
    if not info.is_file():
        raise CliError(terminal_text(f"{args.folder} is not an embedded folder (no space.json): run `cirscope embed` first"))
    embedder = None
    if args.pretrained is not None:
        model = json.loads(info.read_text()).get("model", {}).get("model")
        embedder = cs.Embedder(model, args.pretrained)
    try:
        return cs.Space.load(args.folder, embedder=embedder)
    except cs.ModelLoadError as exc:
        raise CliError(terminal_text(exc)) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope audit``."""
    from cirscope.diagnostics import audit

    if args.out.suffix.lower() not in (".html", ".htm"):
        raise CliError(terminal_text(f"--out must be an .html file, got {args.out}"))
    space = _load(args)
    if args.attribute not in space.gallery.metadata.columns:
        cols = [c for c in space.gallery.metadata.columns if c != "id"]
        raise CliError(terminal_text(f"No column {args.attribute!r} in {args.folder}; its columns are {cols}"))
    report = audit(
        space, args.attribute, queries=args.queries, k=tuple(args.k), desired=args.desired,
        hubness_k=args.hubness_k, mitigation=None if args.mitigation == "none" else args.mitigation,
        duplicate_threshold=args.duplicate_threshold, progress=not args.quiet,
    )
    path = report.to_html(args.out, thumbnails=not args.no_thumbnails)
    if args.json:
        out = {name: {k: _jsonable(v) for k, v in res.summary().items()} for name, res in report.results.items()}
        print(json.dumps({"out": str(path), "images": len(space), "results": out, "skipped": report.skipped},
                         indent=2))
        return 0
    print(terminal_text(f"Audited {len(space)} images ({space.model.get('model')}), attribute {args.attribute!r} "
                        f"-> {path}"))
    for name, res in report.results.items():
        numbers = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in list(res.summary().items())[:6])
        print(terminal_text(f"  {name:<15} {numbers}"))
    for name, why in report.skipped.items():
        print(terminal_text(f"  {name:<15} skipped: {why}"))
    return 0
