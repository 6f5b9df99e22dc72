"""Understanding a composed query and a model: feedback, paraphrases, bias along the slider, two models compared.

Each function takes a :class:`~cirscope.Space` (and a query) and returns a result with
``.to_frame()`` and ``.figure()``, like the diagnostics.
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
