"""``cirscope demo``: copy the tutorial notebooks into a working folder and open JupyterLab on it."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cirscope.cli._errors import CliError

if TYPE_CHECKING:  # pragma: no cover
    from importlib.resources.abc import Traversable

__all__ = [
    "LAB_INSTALL", "CopyResult", "copy_notebooks", "free_port", "jupyter_command", "lab_installed",
    "notebook_sources", "notebook_url", "register",
]

FIRST_NOTEBOOK = "quickstart.ipynb"
DEFAULT_DIR = "cirscope-demo"
_MAX_COPIES = 100
#: What to install for ``cirscope demo`` to open JupyterLab (the ``lab`` extra).
LAB_INSTALL = 'pip install "cirscope[lab]"'


def lab_installed() -> bool:
    """Whether JupyterLab can be imported (it comes with the ``lab`` extra)."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return False
    return True


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``cirscope`` command line."""
    p = subparsers.add_parser(
        "demo",
        help="copy the tutorial notebooks into a folder and open JupyterLab on the quickstart",
        description=(
            "Copy cirscope's notebooks into a working folder (files you edited are never overwritten) "
            "and start JupyterLab there, opening quickstart.ipynb. Everything runs offline with the "
            "shipped toy model. Stop the server with Ctrl-C."
        ),
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(DEFAULT_DIR),
        help=f"working folder (default: ./{DEFAULT_DIR}, created if missing)",
    )
    p.add_argument("--port", type=int, default=0, help="port of the server (default 0: a free port)")
    p.add_argument("--ip", default="127.0.0.1", help="address the server listens on (default 127.0.0.1)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument(
        "--token",
        default=None,
        help="the server's access token (default: a fresh random one, shown in the printed address; "
        "an empty string turns token authentication off)",
    )
    p.add_argument("--no-lab", action="store_true", help="only copy the notebooks; do not start JupyterLab")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------- finding the notebooks
def notebook_sources() -> list[Traversable]:
    """The notebooks shipped with cirscope, ``quickstart.ipynb`` first.

    A wheel carries them in ``cirscope/_notebooks``; an editable install reads the source
    tree's ``notebooks/`` folder.

    Examples
    --------
    >>> notebook_sources()[0].name
    'quickstart.ipynb'
    """
    candidates: list[Traversable] = []
    try:
        candidates.append(resources.files("cirscope") / "_notebooks")
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - an unusual import setup
        pass
    candidates.append(Path(__file__).resolve().parents[3] / "notebooks")
    for folder in candidates:
        if not folder.is_dir():
            continue
        found = sorted((f for f in folder.iterdir() if f.name.endswith(".ipynb")), key=_order)
        if found:
            return found
    raise FileNotFoundError(
        "cirscope's notebooks are missing (neither cirscope/_notebooks in the installed package nor "
        "notebooks/ in a source checkout); reinstall cirscope: pip install --force-reinstall cirscope"
    )


def _order(item: Traversable) -> tuple[int, str]:
    return (item.name != FIRST_NOTEBOOK, item.name)


# ---------------------------------------------------------------------- copying
@dataclass(frozen=True)
class CopyResult:
    """What happened to one notebook: ``action`` is ``"copied"``, ``"up to date"`` or ``"kept yours"``.

    ``path`` is the file to open: the user's own file unless it was missing. For ``"kept
    yours"``, ``fresh`` is where this version's copy was written (``name (1).ipynb``...).
    """

    name: str
    action: str
    path: Path
    fresh: Path | None = None

    def message(self) -> str:
        if self.action == "copied":
            return f"copied {self.name}"
        if self.action == "up to date":
            return f"{self.name} is already there (unchanged)"
        assert self.fresh is not None
        return f"kept your edited {self.name}; this version's copy is {self.fresh.name}"


def _cell_sources(data: bytes) -> list[tuple[str, str]] | None:
    """The (type, source) of every cell, ignoring outputs and metadata; ``None`` if unreadable."""
    try:
        nb = json.loads(data.decode("utf-8"))
        cells = nb["cells"]
        return [
            (c.get("cell_type", ""), "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in cells
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _same_notebook(path: Path, data: bytes) -> bool:
    """True when ``path`` holds the same cells as ``data`` (running a notebook only adds outputs)."""
    try:
        mine = path.read_bytes()
    except OSError:
        return False
    if mine == data:
        return True
    theirs = _cell_sources(mine)
    return theirs is not None and theirs == _cell_sources(data)


def copy_notebooks(folder: str | os.PathLike, sources: list[Traversable] | None = None) -> list[CopyResult]:
    """Copy the notebooks into ``folder`` without ever overwriting a file.

    A missing notebook is copied. One with the same cells (perhaps run, with outputs) is
    left alone. One the user edited is kept, and this version's notebook is written
    next to it as ``name (1).ipynb`` (or the first free ``name (n).ipynb``; an identical
    existing copy is reused).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [r.action for r in copy_notebooks(tmp)][:1]
    ['copied']
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder: choose another --dir")
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for src in sources if sources is not None else notebook_sources():
        data = src.read_bytes()
        target = folder / src.name
        if not target.exists():
            _write_new(target, data)
            results.append(CopyResult(src.name, "copied", target))
            continue
        if _same_notebook(target, data):
            results.append(CopyResult(src.name, "up to date", target))
            continue
        stem, suffix = target.stem, target.suffix
        for n in range(1, _MAX_COPIES + 1):
            fresh = folder / f"{stem} ({n}){suffix}"
            if not fresh.exists():
                _write_new(fresh, data)
                break
            if _same_notebook(fresh, data):
                break
        else:
            raise FileExistsError(
                f"{folder} already holds {_MAX_COPIES} copies of {src.name}; "
                "remove some or choose another --dir"
            )
        results.append(CopyResult(src.name, "kept yours", target, fresh))
    return results


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:  # "x": never replace a file that appeared meanwhile
        fh.write(data)


# ---------------------------------------------------------------------- JupyterLab
def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``ip`` right now.

    Examples
    --------
    >>> 0 < free_port() < 65536
    True
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def jupyter_command(
    folder: Path,
    open_file: Path | None,
    *,
    port: int,
    ip: str,
    no_browser: bool,
    token: str | None,
    allow_root: bool = False,
) -> list[str]:
    """The command starting JupyterLab on ``folder`` with the current Python.

    ``allow_root`` passes ``--allow-root`` (JupyterLab refuses to start as root without it,
    as in many containers).

    Examples
    --------
    >>> cmd = jupyter_command(Path("/tmp/demo"), None, port=8890, ip="127.0.0.1", no_browser=True, token="")
    >>> cmd[1:4], "--no-browser" in cmd
    (['-m', 'jupyter', 'lab'], True)
    """
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # this port or none: the address printed stays right
        # Jupyter's own start-up lines (several addresses, none opening the quickstart) are
        # left out: ``cirscope demo`` prints the one address to open; warnings still show.
        "--ServerApp.log_level=WARN",
        "--LabApp.log_level=WARN",
    ]
    if no_browser:
        cmd.append("--no-browser")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if allow_root:
        cmd.append("--allow-root")
    if open_file is not None:
        cmd.append(str(open_file))
    return cmd


def notebook_url(ip: str, port: int, notebook: str, token: str) -> str:
    """The address that opens ``notebook`` in JupyterLab, with the access token.

    A wildcard ``ip`` (the server listens everywhere) is shown as this machine's loopback
    address, which a browser can open.

    Examples
    --------
    >>> notebook_url("127.0.0.1", 8890, "quickstart.ipynb", "abc")
    'http://127.0.0.1:8890/lab/tree/quickstart.ipynb?token=abc'
    >>> notebook_url("::", 8890, "my notes.ipynb", "")
    'http://[::1]:8890/lab/tree/my%20notes.ipynb'
    """
    host = _connect_host(ip)
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{port}/lab/tree/{urllib.parse.quote(notebook)}"
    return f"{url}?{urllib.parse.urlencode({'token': token})}" if token else url


def _connect_host(ip: str) -> str:
    """Where to reach a server listening on ``ip`` from this machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(ip, ip)


def _wait_until_listening(proc: subprocess.Popen, ip: str, port: int, poll: float = 0.2) -> bool:
    """Wait until something accepts connections on ``port`` (True) or ``proc`` exits (False)."""
    host = _connect_host(ip)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while proc.poll() is None:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(poll)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(poll)
    return False


def _stop(proc: subprocess.Popen) -> int:
    """Ask JupyterLab to shut down (SIGINT, then SIGTERM, then kill) and return its exit status."""
    steps = ((signal.SIGINT, 10), (signal.SIGTERM, 5)) if os.name != "nt" else ((signal.SIGTERM, 10),)
    for sig, wait in steps:
        if proc.poll() is not None:
            break
        try:
            proc.send_signal(sig)
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
    return proc.wait()


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope demo``."""

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {args.port}")
    folder = Path(args.dir).expanduser().resolve()
    try:
        results = copy_notebooks(folder)
    except (FileExistsError, PermissionError) as exc:
        raise CliError(str(exc)) from None
    print(f"cirscope demo: notebooks in {folder}")
    for r in results:
        print(f"  {r.message()}")
    if args.no_lab:
        return 0
    if not lab_installed():
        raise CliError(
            f"JupyterLab is not installed; install it with: {LAB_INSTALL} (or open {folder} "
            "in another Jupyter front end, such as VS Code)"
        )
    port = args.port or free_port(args.ip)
    first = next((r.path for r in results if r.name == FIRST_NOTEBOOK), None)
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:
        print("Running as root: passing --allow-root to JupyterLab.")
    token = secrets.token_hex(24) if args.token is None else args.token
    cmd = jupyter_command(
        folder, first, port=port, ip=args.ip, no_browser=args.no_browser, token=token, allow_root=as_root
    )
    print("Starting JupyterLab (stop it with Ctrl-C) ...", flush=True)
    try:
        proc = subprocess.Popen(cmd, cwd=folder)
    except OSError as exc:
        raise CliError(
            f"could not start JupyterLab ({exc}); install it with: {LAB_INSTALL}"
        ) from None

    def _terminate(signum, frame):  # SIGTERM: stop JupyterLab too, then leave
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if _wait_until_listening(proc, args.ip, port):
            what = "the quickstart" if first is not None else "JupyterLab"
            url = notebook_url(args.ip, port, first.name if first is not None else "", token)
            print(f"JupyterLab is running. Open {what} at:\n\n    {url}\n", flush=True)
        code = proc.wait()
    except KeyboardInterrupt:
        code = _stop(proc)
        print("cirscope demo: JupyterLab stopped.")
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code != 0:
        print(
            f"cirscope demo: JupyterLab exited with status {code} (its messages are above).", file=sys.stderr
        )
    return code
