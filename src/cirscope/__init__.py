"""cirscope: Jupyter widgets for exploring image-embedding spaces.

Load a gallery, embed it with any open_clip model, see it as a map, issue composed
queries (a reference image plus a modification text, with the Prompt Directional Vector
slider) and audit it with standard bias and health diagnostics.

``import cirscope`` is light: torch, open_clip and umap are imported only when a model
runs or a map is computed.

Examples
--------
>>> import cirscope as cs
>>> gallery = cs.datasets.shapes(200)
>>> space = cs.Space(gallery, cs.Embedder.toy())            # doctest: +SKIP
>>> space.search("a red star", k=5)                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from cirscope._version import __version__

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Gallery": "cirscope.gallery._table",
    "Embedder": "cirscope.embedding._embedder",
    "embed": "cirscope.space._embed",
    "EmbedResult": "cirscope.embedding._run",
    "register_model": "cirscope.embedding._models",
    "ModelLoadError": "cirscope._core.errors",
    "DamagedFileError": "cirscope._core.errors",
    "MetadataWarning": "cirscope.gallery._metadata",
    "Space": "cirscope.space._space",
    "ImageProblem": "cirscope.gallery._decode",
    "ComposedQuery": "cirscope.query._composed",
    "Vocabulary": "cirscope.query._vocabulary",  # built-in datasets' vocabularies register below
    "NeighborIndex": "cirscope.neighbors._index",
    "Explorer": "cirscope.widgets",
    "MapView": "cirscope.widgets",
    "QueryPanel": "cirscope.widgets",
    "NeighborGrid": "cirscope.widgets",
    "DiagnosticsPanel": "cirscope.widgets",
    "to_html": "cirscope.widgets._standalone",
    "AnalysisView": "cirscope.widgets",
    "audit": "cirscope.diagnostics",
    "datasets": "cirscope.datasets",
    "diagnostics": "cirscope.diagnostics",
    "eval": "cirscope.eval",
    "export": "cirscope.curation._export",
    "ExplorerView": "cirscope.curation._views",
    "Tags": "cirscope.space._tags",
    "analysis": "cirscope.analysis",
    "compare": "cirscope.analysis._compare",
    "CompareView": "cirscope.widgets",
    "DetailView": "cirscope.widgets._detail",
    "FilterPanel": "cirscope.widgets",
}

__all__ = ["__version__", *sorted(_LAZY)]

# The shipped toy model registers itself through register_model, like any user model
# (a lazy loader string: nothing heavy is imported).
from cirscope import toy as _toy  # noqa: E402, F401

# The shapes world's vocabulary, found by name or as a shapes gallery's default even in a
# process that never imports cirscope.datasets (a lazy "module:function": nothing imported).
from cirscope.query._registry import register_lazy as _register_vocabulary  # noqa: E402

_register_vocabulary("shapes", "cirscope.datasets._vocabulary:shapes_vocabulary")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cirscope' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
