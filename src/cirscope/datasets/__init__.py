"""Built-in datasets: the procedurally drawn shapes world.

Examples
--------
>>> import cirscope as cs
>>> g = cs.datasets.shapes(100, seed=0)
>>> sorted(g.metadata["shape"].unique())[:3]
['circle', 'cross', 'heart']
"""

from cirscope.datasets._shapes import ATTRIBUTES, BACKGROUNDS, COLORS, SHAPES, SIZES, SOURCES, Bias
from cirscope.datasets._world import shapes

__all__ = ["ATTRIBUTES", "BACKGROUNDS", "COLORS", "SHAPES", "SIZES", "SOURCES", "Bias", "shapes"]
