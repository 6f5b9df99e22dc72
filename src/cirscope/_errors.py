"""Error types shared across cirscope."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DamagedFileError"]


class DamagedFileError(ValueError):
    """A saved file is damaged, truncated, tampered with or belongs to another save.

    Parameters
    ----------
    path
        The damaged file.
    problem
        What is wrong with it.
    fix
        What the user can do.

    Examples
    --------
    >>> err = DamagedFileError("out/space.json", "it is not valid JSON", "Save the space again.")
    >>> str(err)
    'out/space.json is damaged: it is not valid JSON. Save the space again.'
    """

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path} is damaged: {problem}. {fix}")
