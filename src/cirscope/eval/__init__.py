"""Evaluate composed-retrieval methods: protocol metrics, benchmarks, dataset readers and a runner.

Examples
--------
>>> from cirscope.eval import recall_at_k, map_at_k
>>> recall_at_k([["a", "b"]], [{"b"}], k=2)
1.0
"""

from cirscope.eval._benchmark import CIRBenchmark, CIRQuery, Protocol
from cirscope.eval._metrics import (
    average_precision_at_k,
    map_at_k,
    recall_at_k,
    recall_subset_at_k,
    relevance,
)
from cirscope.eval._pdv_sweep import PDVSweep
from cirscope.eval._prepare import Prepared, benchmark_gallery, prepare
from cirscope.eval._readers import FASHIONIQ_CATEGORIES, read_circo, read_cirr, read_fashioniq
from cirscope.eval._runner import evaluate, per_query, query_vectors, score, sweep_pdv
from cirscope.eval._shapes import PHRASINGS, make_shapes_benchmark, phrase
from cirscope.eval._shapes_hard import make_hard_shapes_benchmark
from cirscope.eval._uncertainty import interval, mcnemar_p, tied_with_best

__all__ = [
    "FASHIONIQ_CATEGORIES",
    "PHRASINGS",
    "CIRBenchmark",
    "CIRQuery",
    "PDVSweep",
    "Prepared",
    "Protocol",
    "average_precision_at_k",
    "benchmark_gallery",
    "evaluate",
    "interval",
    "make_hard_shapes_benchmark",
    "make_shapes_benchmark",
    "map_at_k",
    "mcnemar_p",
    "per_query",
    "phrase",
    "prepare",
    "query_vectors",
    "read_circo",
    "read_cirr",
    "read_fashioniq",
    "recall_at_k",
    "recall_subset_at_k",
    "relevance",
    "score",
    "sweep_pdv",
    "tied_with_best",
]
