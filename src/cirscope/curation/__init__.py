"""Acting on findings: exports of rows and saved Explorer views.

* :func:`export` writes rows (a selection, results, a tag) to CSV, Parquet, a folder of
  links or copies, or a folder FiftyOne reads (``fo.types.CSVDataset``).
* :class:`ExplorerView`, :func:`write_view`, :func:`read_view`: an Explorer's state as a
  small checksummed JSON file.

Tags themselves belong to the space (:mod:`cirscope.space._tags`: ``space.tag(rows, name)``),
since the space reads and writes them beside its own files.
"""

from cirscope.curation._export import export, export_frame, fiftyone_script
from cirscope.curation._views import ExplorerView, read_view, write_view

__all__ = ["ExplorerView", "export", "export_frame", "fiftyone_script", "read_view", "write_view"]
