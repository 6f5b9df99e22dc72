"""Run a JupyterLab server and Debian's Chromium for browser tests (and the widget benchmark).

The server runs from ``sys.executable``'s environment on 127.0.0.1 (a free port, no
token) with its own config, data, runtime, settings and workspace folders, so nothing of
the user's Jupyter setup leaks in; its ``python3`` kernel is this interpreter. Chromium is
driven by Python playwright through ``executable_path`` (never ``playwright install``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

#: the notebook on display (hidden tabs of a restored workspace stay in the DOM)
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"

_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_path() -> str | None:
    """Debian's chromium executable, or ``None``."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def notebook(cells: list[str]) -> dict[str, Any]:
    """A minimal nbformat-4 notebook of code cells for the ``python3`` kernel."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
             "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, cells: list[str]) -> Path:
    path.write_text(json.dumps(notebook(cells), indent=1))
    return path


class JupyterServer:
    """A JupyterLab server (also serving Notebook 7 under ``/notebooks``) in a temporary home.

    Examples
    --------
    >>> server = JupyterServer(tmp_path).start()  # doctest: +SKIP
    >>> server.url                                 # doctest: +SKIP
    'http://127.0.0.1:41234'
    >>> server.stop()                              # doctest: +SKIP
    """

    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.home = Path(home)
        self.root = self.home / "notebooks"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "jupyter.log"

    def _prepare(self) -> dict[str, str]:
        for sub in ("notebooks", "config", "data", "runtime", "settings", "workspaces"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        kernel = self.home / "data" / "kernels" / "python3"
        kernel.mkdir(parents=True, exist_ok=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3",
            "language": "python",
        }))
        for name, value in _SETTINGS.items():
            path = self.home / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        })
        env.pop("JUPYTER_PATH", None)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> JupyterServer:
        env = self._prepare()
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--ServerApp.root_dir={self.root}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--LabApp.news_url=None",
            "--ServerApp.allow_root=True",
            "--ServerApp.log_level=WARN",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early (code {self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not start within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None


def launch_chromium(playwright: Any, executable: str) -> Any:
    """Debian's Chromium, headless, with the arguments that work on the project's machines."""
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


def widget_errors(errors: list[str]) -> list[str]:
    """The page errors raised in widget code (anywidget modules load from ``blob:`` URLs).

    Jupyter's own bundles throw a few harmless errors of their own while loading (e.g.
    Notebook 7: "Command 'filebrowser:open-path' not registered"); those are not ours.
    """
    marks = ("blob:", "anywidget", "cirscope", "jupyter-widgets", "@jupyter-widgets")
    return [e for e in errors if any(m in e for m in marks)]


def accept_dialogs(page: Any) -> list[str]:
    """Accept any Jupyter dialog in the way (e.g. a kernel choice offered while the server is slow).

    Returns the texts of the dialogs accepted.
    """
    texts = []
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() == 0:
            break
        texts.append(dialog.first.inner_text())
        accept = dialog.first.locator("button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(300)
    return texts


def run_cell(page: Any, index: int, attempts: int = 3) -> None:
    """Run code cell ``index`` of the open notebook (click into it, Ctrl+Enter: run, stay there).

    Waits until the cell's prompt shows that it ran or is running, and tries again when a
    keystroke was lost (a notebook still connecting to its kernel ignores it).
    """
    cell = page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.inner_text()
    for attempt in range(attempts):
        accept_dialogs(page)
        try:
            cell.locator(".jp-InputArea-editor").click(timeout=10_000)
        except Exception:
            if attempt == attempts - 1:
                raise
            continue
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(
                """([notebook, index, before]) => {
                    const cell = document.querySelectorAll(`${notebook} .jp-Cell`)[index];
                    const p = cell && cell.querySelector('.jp-InputPrompt');
                    return p && p.innerText !== before && /\\[(\\*|\\d+)\\]/.test(p.innerText);
                }""",
                arg=[NOTEBOOK, index, before],
                timeout=10_000,
            )
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def cell_output(page: Any, index: int) -> str:
    """The text output of code cell ``index``."""
    return page.locator(f"{NOTEBOOK} .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()


def wait_for_kernel(page: Any, timeout: float = 60_000) -> None:
    """Wait until the notebook's kernel is idle."""
    page.wait_for_function(
        """() => {
            const s = document.querySelector('.jp-Notebook-ExecutionIndicator');
            if (s) return s.getAttribute('data-status') === 'idle';
            const t = document.querySelector('.jp-KernelStatus, #jp-KernelStatus');
            return !!t && /Idle/.test(t.textContent || '');
        }""",
        timeout=timeout,
    )
