"""Where the widgets' front-end files live (installed wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_file"]

_PACKAGE = Path(__file__).resolve().parent.parent


def static_file(name: str) -> Path:
    """The path of a front-end file: ``cirscope/_static/<name>`` in a wheel, else ``js/<name>``.

    The wheel copies the repository's ``js/`` folder to ``cirscope/_static/``; an editable
    install reads ``js/`` directly, where ``ANYWIDGET_HMR=1`` reloads edits live.

    Examples
    --------
    >>> static_file("map_view.js").name
    'map_view.js'
    """
    for folder in (_PACKAGE / "_static", _PACKAGE.parent.parent / "js"):
        path = folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"The widget front-end file {name!r} is missing from cirscope/_static and from the source tree's js/ "
        "folder; reinstall cirscope (pip install --force-reinstall cirscope)."
    )
