"""Understanding a composed query and a model: feedback, paraphrases, bias along the slider, two models compared.

Each function takes a :class:`~cirscope.Space` (and a query) and returns a result with
``.to_frame()`` and ``.figure()``, like the diagnostics.

* :func:`feedback` -- relevance feedback: Rocchio on the query vector, or PDV's text direction
  refined; the marked images' ranks before and after. :func:`feedback_rounds` simulates rounds
  on a benchmark.
* :func:`paraphrases`, :func:`rewrites` -- how stable each method's top k is to rewordings of the
  modification (Jaccard, rank spread).
* :func:`slider_bias` -- MaxSkew / NDKL of an attribute in the top k along PDV's alpha.
* :func:`query_path` -- the composed query placed on the map at each slider value, with its top k.
* :func:`compare` -- two models of one gallery: per-image k-NN overlap, the images that changed
  most, diagnostics side by side.
"""

from cirscope.analysis._compare import CompareResult, compare
from cirscope.analysis._feedback import FeedbackResult, feedback
from cirscope.analysis._feedback_rounds import RoundsResult, feedback_rounds
from cirscope.analysis._paraphrase import ParaphraseResult, paraphrases, rewrites
from cirscope.analysis._path import QueryPath, query_path
from cirscope.analysis._slider_bias import SliderBiasResult, slider_bias

__all__ = [
    "CompareResult",
    "FeedbackResult",
    "ParaphraseResult",
    "QueryPath",
    "RoundsResult",
    "SliderBiasResult",
    "compare",
    "feedback",
    "feedback_rounds",
    "paraphrases",
    "query_path",
    "rewrites",
    "slider_bias",
]
