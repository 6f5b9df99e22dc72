"""Error types shared by the modules that read files a user or a run wrote."""

from __future__ import annotations

import os

__all__ = ["DamagedFileError"]


class DamagedFileError(ValueError):
    """A file cirscope wrote earlier (a cache, a saved space) is damaged.

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
    >>> err = DamagedFileError("cache/problems.json", "not valid JSON", "delete the file")
    >>> str(err)
    'cache/problems.json is damaged: not valid JSON. Fix: delete the file.'
    >>> err.path
    'cache/problems.json'
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path} is damaged: {problem}. Fix: {fix}.")

    def __reduce__(self):  # keep pickling (multiprocessing, Ray) working
        return (type(self), (self.path, self.problem, self.fix))
