"""Copies the front end's shared helpers (``js/_shared/*.js``) into each widget's ES module.

anywidget loads a widget's ES module as one file, so the helpers that the modules in ``js/``
share (array codec, thumbnails, DOM helpers, drawing a child widget) live once in ``js/_shared/<name>.js`` and are copied into each module between
marker lines::

    // shared:codec begin ...
    ... (the text of js/_shared/codec.js)
    // shared:codec end

After editing a shared file, run ``python -m cirscope.widgets._sync_js`` (in a source
checkout); ``--check`` only lists the modules whose copies are out of date and exits with 1
(the test suite runs the same check).

Examples
--------
>>> shared = {"dom": "function h() {}\\n"}
>>> print(synced("// shared:dom begin\\nold\\n// shared:dom end\\nrest\\n", shared), end="")
// shared:dom begin: copied from js/_shared/dom.js by `python -m cirscope.widgets._sync_js`; edit it there
function h() {}
// shared:dom end
rest
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["BLOCK", "blocks", "js_folder", "main", "shared_sources", "stale", "sync", "synced"]

#: A copied block: its name (the shared file's stem) and its body.
BLOCK = re.compile(r"^// shared:(?P<name>[\w-]+) begin\b.*\n(?P<body>(?:.*\n)*?)// shared:(?P=name) end$", re.M)
_BEGIN = "// shared:{name} begin: copied from js/_shared/{name}.js by `python -m cirscope.widgets._sync_js`; edit it there"


def js_folder() -> Path:
    """The source checkout's ``js/`` folder (where the widgets' front end is edited)."""
    path = Path(__file__).resolve().parents[3] / "js"
    if not (path / "_shared").is_dir():
        raise FileNotFoundError(f"No js/_shared folder at {path}: run this from a source checkout of cirscope")
    return path


def shared_sources(js: Path) -> dict[str, str]:
    """``{name: text}`` of every ``js/_shared/<name>.js``."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((js / "_shared").glob("*.js"))}


def blocks(text: str) -> dict[str, str]:
    """``{name: body}`` of the copied blocks in a module's text."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def synced(text: str, shared: dict[str, str]) -> str:
    """``text`` with every block's body replaced by its shared file (``KeyError``: no such file)."""

    def fill(m: re.Match) -> str:
        name = m["name"]
        if name not in shared:
            raise KeyError(f"A block names js/_shared/{name}.js, which does not exist; shared files: {sorted(shared)}")
        body = shared[name] if shared[name].endswith("\n") else shared[name] + "\n"
        return f"{_BEGIN.format(name=name)}\n{body}// shared:{name} end"

    return BLOCK.sub(fill, text)


def stale(js: Path) -> list[str]:
    """The modules in ``js`` whose copied blocks differ from ``js/_shared``."""
    shared = shared_sources(js)
    return [p.name for p in sorted(js.glob("*.js")) if synced(p.read_text(encoding="utf-8"), shared) != p.read_text(encoding="utf-8")]


def sync(js: Path) -> list[str]:
    """Rewrite the out-of-date modules in ``js``; returns their names."""
    shared = shared_sources(js)
    changed = []
    for path in sorted(js.glob("*.js")):
        old = path.read_text(encoding="utf-8")
        new = synced(old, shared)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m cirscope.widgets._sync_js [--check] [--js FOLDER]``."""
    parser = argparse.ArgumentParser(prog="python -m cirscope.widgets._sync_js", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list out-of-date modules (exit 1 if any)")
    parser.add_argument("--js", type=Path, default=None, help="the js/ folder (default: this checkout's)")
    args = parser.parse_args(argv)
    js = args.js or js_folder()
    names = stale(js) if args.check else sync(js)
    verb = "out of date" if args.check else "updated"
    for name in names:
        print(f"{name}: {verb}")
    return 1 if args.check and names else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
