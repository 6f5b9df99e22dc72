"""Images/s of cirscope's embedding pipeline vs a plain DataLoader loop vs the model alone.

A thin wrapper around ``cirscope bench embed`` (same options, JSON on stdout): synthetic
500x375 JPEG photos, random weights (or ``--model cirscope-toy``), the three loops measured
in the same run, ``--repeats`` times, medians and per-run ratios reported.

Run ``python benchmarks/bench_embed.py [--model ViT-B-32] [--n 20000] [--repeats 3]``.
"""

from __future__ import annotations

import sys

from cirscope.cli._main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "embed", *sys.argv[1:]]))
