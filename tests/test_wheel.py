"""Packaging: build the sdist and the wheel, install the wheel in a fresh virtual environment, use it offline.

The fresh environment reuses the dependencies already installed here (a ``.pth`` file pointing
at this environment's site-packages, added after the wheel is installed), so nothing is
downloaded; the checks make sure ``cirscope`` is imported from the installed wheel and not
from the source tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.test_notebooks import NOTEBOOKS, errors_in, execute_notebook

ROOT = Path(__file__).resolve().parent.parent
MAX_WHEEL_MB = 25
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: any download attempt fails at once


def _run(cmd: list, *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"PYTHONPATH", "NO_PROXY", "PYTHONHOME"}}
    env.update(
        HF_HUB_OFFLINE="1",
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        ALL_PROXY=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        all_proxy=DEAD_PROXY,
    )
    env.pop("no_proxy", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built from it (``python -m build``)."""
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--outdir", out]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-isolation")  # the build backend is here: no download
    _run([*cmd, ROOT], cwd=out)
    wheels, sdists = sorted(out.glob("cirscope-*.whl")), sorted(out.glob("cirscope-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def venv(tmp_path_factory, built) -> dict[str, Path]:
    """A fresh venv with the wheel installed, seeing this environment's packages through a .pth file."""
    root = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    bindir = root / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    # Install first, while the new venv sees nothing else: pip then never looks at this environment's
    # editable cirscope.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            built["wheel"],
        ],
        cwd=root.parent,
        env=_offline_env(),
    )
    purelib = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root.parent
        ).strip()
    )
    # Only the plain folder is added: its .pth files (the editable install's path hook) are not processed.
    outer = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (purelib / "_outer_env.pth").write_text("".join(f"{p}\n" for p in outer))
    return {"root": root, "python": python, "bin": bindir, "purelib": purelib}


@pytest.mark.slow
def test_wheel_contents(built):
    wheel = built["wheel"]
    assert wheel.stat().st_size <= MAX_WHEEL_MB * 1024 * 1024, (
        f"{wheel.name} is {wheel.stat().st_size / 2**20:.1f} MB"
    )
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cirscope/toy/cirscope-toy.npz" in names
    assert "cirscope/py.typed" in names
    static = {n for n in names if n.startswith("cirscope/_static/")}
    assert any(n.endswith(".js") for n in static), static
    assert {f"cirscope/_static/{p.name}" for p in (ROOT / "js").iterdir() if p.is_file()} <= static
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("cirscope/_notebooks/")}
    assert "quickstart.ipynb" in shipped
    assert shipped == {p.name for p in NOTEBOOKS.glob("*.ipynb")}, (
        "the wheel's notebooks differ from notebooks/"
    )
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "js/", "benchmarks/"))]
    assert not [n for n in names if ".ipynb_checkpoints" in n or "__pycache__" in n]


@pytest.mark.slow
def test_sdist_holds_what_the_wheel_is_built_from(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for required in (
        "pyproject.toml",
        "README.md",
        "notebooks/quickstart.ipynb",
        "src/cirscope/toy/cirscope-toy.npz",
    ):
        assert required in names
    assert any(n.startswith("js/") and n.endswith(".js") for n in names)


@pytest.mark.slow
def test_installed_wheel_imports_from_the_venv(venv, tmp_path):
    code = (
        "import json, sys, cirscope, importlib.metadata as md\n"
        "print(json.dumps({'file': cirscope.__file__, 'version': cirscope.__version__,"
        " 'dist': md.version('cirscope'), 'torch': 'torch' in sys.modules}))"
    )
    info = json.loads(_run([venv["python"], "-c", code], cwd=tmp_path, env=_offline_env()))
    root = venv["root"].resolve()
    assert Path(info["file"]).resolve().is_relative_to(root), f"cirscope was imported from {info['file']}"
    assert not Path(info["file"]).resolve().is_relative_to(ROOT)
    assert info["version"] == info["dist"]
    assert info["torch"] is False  # import cirscope stays light


@pytest.mark.slow
def test_installed_console_script(venv, tmp_path):
    exe = venv["bin"] / ("cirscope.exe" if os.name == "nt" else "cirscope")
    out = _run([exe, "--version"], cwd=tmp_path, env=_offline_env())
    assert out.startswith("cirscope ")
    # the demo finds the notebooks packed in the wheel (cirscope/_notebooks)
    out = _run([exe, "demo", "--no-lab", "--dir", tmp_path / "demo"], cwd=tmp_path, env=_offline_env())
    assert "copied quickstart.ipynb" in out
    shipped = venv["purelib"] / "cirscope" / "_notebooks" / "quickstart.ipynb"
    assert (tmp_path / "demo" / "quickstart.ipynb").read_bytes() == shipped.read_bytes()


@pytest.mark.slow
def test_toy_model_embeds_offline_from_the_wheel(venv, tmp_path):
    code = (
        "import cirscope as cs\n"
        "e = cs.Embedder.toy()\n"
        "t = e.encode_text(['a red star'])\n"
        "s = cs.Space(cs.datasets.shapes(16, seed=0), e, cache=False, progress=False)\n"
        "top = s.search('a red star', k=3)\n"
        "print(t.shape, s.image_embeddings.shape, len(top))\n"
    )
    env = _offline_env(CIRSCOPE_CACHE_DIR=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"))
    out = _run([venv["python"], "-c", code], cwd=tmp_path, env=env)
    assert out.split() == ["(1,", "128)", "(16,", "128)", "3"]


@pytest.mark.slow
def test_quickstart_runs_in_the_installed_wheel(venv, tmp_path):
    """The notebook shipped in the wheel runs headless in a kernel of the fresh venv, offline."""
    import nbformat

    shipped = venv["purelib"] / "cirscope" / "_notebooks" / "quickstart.ipynb"
    source = tmp_path / "quickstart.ipynb"
    nb = nbformat.read(shipped, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import cirscope\nprint('CIRSCOPE_FILE=' + cirscope.__file__)"))
    nbformat.write(nb, source)
    env = _offline_env(CIRSCOPE_CACHE_DIR=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"))
    executed, seconds = execute_notebook(source, tmp_path / "work", env=env, python=venv["python"])
    assert errors_in(executed) == []
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    path = printed.split("CIRSCOPE_FILE=", 1)[1].strip()
    assert Path(path).resolve().is_relative_to(venv["root"].resolve()), path
    print(f"quickstart in the installed wheel: {seconds:.1f} s")
