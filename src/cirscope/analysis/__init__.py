"""Understanding a composed query and a model: feedback, paraphrases, bias along the slider, two models compared.

Each function takes a :class:`~cirscope.Space` (and a query) and returns a result with
``.to_frame()`` and ``.figure()``, like the diagnostics.
"""

from cirscope.analysis._compare import CompareResult, compare
from cirscope.analysis._path import QueryPath, query_path

__all__ = ["CompareResult", "QueryPath", "compare", "query_path"]
