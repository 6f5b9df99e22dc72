"""Error types shared by the modules that read files a user or a run wrote."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DamagedFileError", "ModelLoadError"]


class DamagedFileError(ValueError):
    """A file cirscope wrote earlier (a cache, a saved space) is damaged, truncated or mixed.

    Parameters
    ----------
    path
        The damaged file.
    problem
        What is wrong with it, in a few words.
    fix
        What the user can do about it.

    Examples
    --------
    >>> err = DamagedFileError("out/space.json", "it is not valid JSON", "Save the space again.")
    >>> str(err)
    'out/space.json is damaged: it is not valid JSON. Fix: Save the space again.'
    >>> err.path.name
    'space.json'
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        end = "" if fix.endswith((".", "!", "?")) else "."
        super().__init__(f"{os.fspath(path)} is damaged: {problem}. Fix: {fix}{end}")

    def __reduce__(self):  # keep pickling (multiprocessing, Ray) working
        return (type(self), (self.path, self.problem, self.fix))


class ModelLoadError(RuntimeError):
    """A model or its weights could not be loaded; the message says how to fix it."""
