"""``cirscope demo``: copying the notebooks without overwriting, and a real JupyterLab serving them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from cirscope.cli import _demo as demo
from cirscope.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_sources_are_the_repository_notebooks_quickstart_first():
    sources = demo.notebook_sources()
    names = [s.name for s in sources]
    assert names[0] == "quickstart.ipynb"
    assert set(names) == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}


def test_copy_then_rerun_leaves_files_alone(tmp_path):
    first = demo.copy_notebooks(tmp_path / "demo")
    assert {r.action for r in first} == {"copied"}
    for r in first:
        assert r.path.read_bytes() == (ROOT / "notebooks" / r.name).read_bytes()
    again = demo.copy_notebooks(tmp_path / "demo")
    assert {r.action for r in again} == {"up to date"}
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(r.name for r in first)


def test_a_run_notebook_with_outputs_counts_as_unchanged(tmp_path):
    folder = tmp_path / "demo"
    demo.copy_notebooks(folder)
    path = folder / "quickstart.ipynb"
    nb = json.loads(path.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["cirscope 0.1.0\n"]}]
    code["execution_count"] = 1
    path.write_text(json.dumps(nb))
    results = {r.name: r for r in demo.copy_notebooks(folder)}
    assert results["quickstart.ipynb"].action == "up to date"
    assert json.loads(path.read_text())["cells"] == nb["cells"]  # the outputs are kept


def test_an_edited_notebook_is_kept_and_a_fresh_copy_written_beside_it(tmp_path):
    folder = tmp_path / "demo"
    demo.copy_notebooks(folder)
    mine = folder / "quickstart.ipynb"
    nb = json.loads(mine.read_text())
    nb["cells"][0]["source"] = "# my own notes"
    mine.write_text(json.dumps(nb))
    edited = mine.read_bytes()

    results = {r.name: r for r in demo.copy_notebooks(folder)}
    r = results["quickstart.ipynb"]
    assert r.action == "kept yours"
    assert r.path == mine and mine.read_bytes() == edited
    assert r.fresh == folder / "quickstart (1).ipynb"
    assert r.fresh.read_bytes() == (ROOT / "notebooks" / "quickstart.ipynb").read_bytes()
    assert "kept your edited quickstart.ipynb" in r.message()

    # a second run reuses the identical fresh copy instead of writing "(2)"
    again = {r.name: r for r in demo.copy_notebooks(folder)}
    assert again["quickstart.ipynb"].fresh == folder / "quickstart (1).ipynb"
    assert not (folder / "quickstart (2).ipynb").exists()

    # an edited fresh copy is kept too: the next free name is used
    r.fresh.write_text(json.dumps(nb))
    third = {r.name: r for r in demo.copy_notebooks(folder)}
    assert third["quickstart.ipynb"].fresh == folder / "quickstart (2).ipynb"
    assert r.fresh.read_text() == json.dumps(nb)


def test_an_unreadable_file_is_never_overwritten(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "quickstart.ipynb").write_text("not json")
    results = {r.name: r for r in demo.copy_notebooks(folder)}
    assert results["quickstart.ipynb"].action == "kept yours"
    assert (folder / "quickstart.ipynb").read_text() == "not json"


def test_dir_that_is_a_file_is_a_clean_error(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["demo", "--dir", str(target), "--no-lab"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_no_lab_reports_what_it_did(tmp_path, capsys):
    folder = tmp_path / "work"
    assert main(["demo", "--dir", str(folder), "--no-lab"]) == 0
    out = capsys.readouterr().out
    assert f"notebooks in {folder.resolve()}" in out
    assert "copied quickstart.ipynb" in out
    assert (folder / "quickstart.ipynb").is_file()
    assert main(["demo", "--dir", str(folder), "--no-lab"]) == 0
    assert "quickstart.ipynb is already there (unchanged)" in capsys.readouterr().out


def test_default_folder_is_cirscope_demo_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-lab"]) == 0
    assert (tmp_path / "cirscope-demo" / "quickstart.ipynb").is_file()


def test_bad_port_is_a_clean_error_before_copying(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path / "d"), "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_jupyter_command():
    cmd = demo.jupyter_command(
        Path("/x/demo"),
        Path("/x/demo/quickstart.ipynb"),
        port=8899,
        ip="127.0.0.1",
        no_browser=False,
        token="secret",
    )
    assert cmd[:4] == [sys.executable, "-m", "jupyter", "lab"]
    assert "--ServerApp.root_dir=/x/demo" in cmd
    assert "--ServerApp.port=8899" in cmd and "--ServerApp.ip=127.0.0.1" in cmd
    assert "--IdentityProvider.token=secret" in cmd
    assert "--ServerApp.port_retries=0" in cmd  # the printed address is the real one
    assert "--no-browser" not in cmd
    assert cmd[-1] == "/x/demo/quickstart.ipynb"


def test_notebook_url_opens_the_notebook_with_its_token():
    assert demo.notebook_url("127.0.0.1", 8890, "quickstart.ipynb", "t0k") == (
        "http://127.0.0.1:8890/lab/tree/quickstart.ipynb?token=t0k"
    )
    assert demo.notebook_url("0.0.0.0", 1, "quickstart.ipynb", "") == "http://127.0.0.1:1/lab/tree/quickstart.ipynb"
    assert demo.notebook_url("::1", 2, "a b#.ipynb", "x/y") == "http://[::1]:2/lab/tree/a%20b%23.ipynb?token=x%2Fy"


# A stand-in for JupyterLab at the process boundary: a real process that listens on the port
# it was given for a moment, then exits.
_LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def _fake_lab(monkeypatch, seconds: float = 1.0) -> list[list[str]]:
    commands: list[list[str]] = []
    real = demo.jupyter_command

    def fake(folder, open_file, *, port, **kw):
        commands.append(real(folder, open_file, port=port, **kw))
        return [sys.executable, "-c", _LISTENER, str(port), str(seconds)]

    monkeypatch.setattr(demo, "jupyter_command", fake)
    return commands


def _urls(text: str) -> list[str]:
    import re

    return re.findall(r"https?://\S+", text)


def test_demo_prints_one_url_last_opening_the_quickstart_with_the_token(tmp_path, monkeypatch, capsys):
    commands = _fake_lab(monkeypatch)
    port = demo.free_port()
    assert main(["demo", "--dir", str(tmp_path / "d"), "--no-browser", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    urls = _urls(out)
    assert len(urls) == 1, out
    assert out.rstrip().splitlines()[-1].strip() == urls[0]  # the address is the last thing printed
    (cmd,) = commands
    token = next(a.split("=", 1)[1] for a in cmd if a.startswith("--IdentityProvider.token="))
    assert len(token) >= 32  # made fresh, not Jupyter's printed one
    assert urls[0] == f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token={token}"
    assert "--ServerApp.log_level=WARN" in cmd  # Jupyter's own list of addresses is not printed

    # a token of the user's choosing is the one in the address; each run makes a new one otherwise
    assert main(["demo", "--dir", str(tmp_path / "d"), "--no-browser", "--port", str(port), "--token", "mine"]) == 0
    assert _urls(capsys.readouterr().out) == [f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token=mine"]
    assert main(["demo", "--dir", str(tmp_path / "d"), "--no-browser", "--port", str(port)]) == 0
    assert _urls(capsys.readouterr().out)[0] != urls[0]


def test_no_url_is_printed_when_the_server_never_listens(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "jupyter_command", lambda *a, **k: [sys.executable, "-c", "raise SystemExit(3)"])
    assert main(["demo", "--dir", str(tmp_path / "d"), "--no-browser"]) == 3
    captured = capsys.readouterr()
    assert _urls(captured.out) == []
    assert "exited with status 3" in captured.err


def _get(url: str, token: str, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_demo_serves_the_quickstart_in_jupyterlab(tmp_path):
    port, token = demo.free_port(), "cirscope-test-token"
    folder = tmp_path / "demo"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    cmd = [
        sys.executable,
        "-m",
        "cirscope",
        "demo",
        "--no-browser",
        "--port",
        str(port),
        "--dir",
        str(folder),
    ]  # no --token: cirscope makes one and prints it in the one address
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        lines = []
        while not lines or not lines[-1].strip().startswith("http"):
            assert time.monotonic() - start < 25, "no address printed within 25 s:\n" + "".join(lines)
            line = proc.stdout.readline()
            assert line, "cirscope demo exited early:\n" + "".join(lines)
            lines.append(line)
        printed = "".join(lines)
        (url,) = _urls(printed)  # one address, and nothing of Jupyter's before it
        assert "[I " not in printed, printed
        assert url.startswith(f"{base}/lab/tree/quickstart.ipynb?token=")
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
        with urllib.request.urlopen(url, timeout=5) as resp:  # the printed address itself opens the notebook
            assert resp.status == 200 and b"JupyterLab" in resp.read()
            assert urllib.parse.urlsplit(resp.url).path == "/lab/tree/quickstart.ipynb"
        status, body = _get(f"{base}/api/status", token)
        assert status == 200
        status, body = _get(f"{base}/api/contents/quickstart.ipynb", token)
        assert status == 200
        model = json.loads(body)
        assert model["type"] == "notebook" and model["name"] == "quickstart.ipynb"
        assert model["content"]["cells"][0]["source"].startswith("# cirscope quickstart")
        assert _get(f"{base}/api/contents/quickstart.ipynb", "wrong-token")[0] == 403  # the token is in force
        status, body = _get(f"{base}/api/contents", token)
        listed = {item["name"] for item in json.loads(body)["content"]}
        assert {"quickstart.ipynb", "composed_queries.ipynb", "your_own_images.ipynb"} <= listed

        os.kill(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=30)
        out = printed + proc.stdout.read()
        assert code == 0, out
        assert "copied quickstart.ipynb" in out and "JupyterLab stopped" in out
        assert len(_urls(out)) == 1, out
        assert not _port_open(port), "JupyterLab is still listening after cirscope demo stopped"
        assert time.monotonic() - start < 30
    finally:
        try:  # whatever is left of the process group this test started (cirscope and its JupyterLab)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_missing_jupyterlab_says_which_extra_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jupyterlab", None)  # `import jupyterlab` now fails, as when absent
    assert not demo.lab_installed()
    folder = tmp_path / "work"
    assert main(["demo", "--dir", str(folder), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert 'JupyterLab is not installed; install it with: pip install "cirscope[lab]"' in err
    assert (folder / "quickstart.ipynb").is_file()  # the notebooks were copied all the same
    monkeypatch.delitem(sys.modules, "jupyterlab")
    assert demo.lab_installed()


def test_jupyterlab_is_the_lab_extra_not_a_core_dependency():
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower() for r in reqs}  # noqa: E731
    assert "jupyterlab" not in names(project["dependencies"])
    assert "jupyterlab" in names(project["optional-dependencies"]["lab"])
    assert "jupyterlab" in names(project["optional-dependencies"]["dev"])
    assert demo.LAB_INSTALL == 'pip install "cirscope[lab]"'
