"""Built-in datasets: the procedurally drawn shapes world.

Importing this package registers each dataset's vocabulary (``cs.Vocabulary.named("shapes")``),
so zero-shot captions of its galleries are worded like its captions.

Examples
--------
>>> import cirscope as cs
>>> g = cs.datasets.shapes(100, seed=0)
>>> sorted(g.metadata["shape"].unique())[:3]
['circle', 'cross', 'heart']
>>> cs.Vocabulary.from_metadata(g.metadata) == cs.datasets.shapes_vocabulary()
True
"""

from cirscope.datasets._shapes import ATTRIBUTES, BACKGROUNDS, COLORS, SHAPES, SIZES, SOURCES, Bias
from cirscope.datasets._vocabulary import shapes_short_vocabulary, shapes_vocabulary
from cirscope.datasets._world import shapes

__all__ = ["ATTRIBUTES", "BACKGROUNDS", "COLORS", "SHAPES", "SIZES", "SOURCES", "Bias", "shapes", "shapes_short_vocabulary",
           "shapes_vocabulary"]
