"""Ready to release: the distributions pass ``twine check --strict``, the wheel holds every file the
package reads at run time, its metadata is complete, the changelog and the release workflow are in shape.

Building takes about as long as the installed-wheel tests' build (``tests/test_wheel.py``), which goes on
to install it in a fresh environment; this module stops at what a package index checks.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "cirscope"
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("twine") is None,
    reason="needs the dev extra (build, twine): pip install -e '.[dev]'",
)


def _version() -> str:
    tree = ast.parse((PACKAGE / "_version.py").read_text(encoding="utf-8"))
    return next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and node.targets[0].id == "__version__")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built from it, as ``python -m build`` makes them."""
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--outdir", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-isolation")  # the build backend is here: nothing downloaded
    proc = subprocess.run([*cmd, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels, sdists = sorted(out.glob("cirscope-*.whl")), sorted(out.glob("cirscope-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_twine_check_strict_passes(dist):
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def _static_files_read() -> set[str]:
    """Every ``static_file("<name>")`` the package's code asks for."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r'static_file\("([^"]+)"\)', path.read_text(encoding="utf-8")))
    names.discard("<name>")
    return names


def test_wheel_holds_every_file_the_package_reads(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    read = _static_files_read()
    assert {"map_view.js", "explorer.js", "cirscope.css", "standalone.css"} <= read
    assert {f"cirscope/_static/{name}" for name in read} <= names, sorted(read)
    toy = {"cirscope/toy/cirscope-toy.npz", "cirscope/toy/cirscope-toy.json", "cirscope/toy/MODEL_CARD.md"}
    assert toy <= names
    notebooks = {f"cirscope/_notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert "cirscope/_notebooks/quickstart.ipynb" in notebooks and notebooks <= names
    assert "cirscope/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the licence text ships"


def test_wheel_metadata_is_complete(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(wheel.read(meta_name).decode("utf-8"))
    assert meta["Name"] == "cirscope" and meta["Version"] == _version()
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "pip install" in meta.get_payload(), "the README is the long description"
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and any(c.startswith("Development Status") for c in classifiers)
    assert {"lab", "ray", "dev"} <= set(meta.get_all("Provides-Extra"))


def test_sdist_holds_the_release_files(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "src/cirscope/_version.py"} <= names


def test_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, flags=re.MULTILINE)
    assert headings and headings[0][0] == "Unreleased", "the newest section is Unreleased"
    for name, rest in headings[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", name), name
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}] needs ' - YYYY-MM-DD'"
    sections = set(re.findall(r"^### (\w+)$", text, flags=re.MULTILINE))
    assert sections and sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    assert "### Added" in unreleased and unreleased.count("\n- ") >= 5


def test_release_workflow_publishes_through_trusted_publishing():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert triggers["release"]["types"] == ["published"] and triggers["push"]["tags"] == ["v*"]
    jobs = flow["jobs"]
    build = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "python -m build" in build and "twine check --strict" in build
    assert 'test "${GITHUB_REF_NAME}" = "v${version}"' in build, "a tag must match the package version"
    tested = "\n".join(step.get("run", "") for step in jobs["test-wheel"]["steps"])
    assert "python -m venv" in tested and "pip install dist/*.whl" in tested and "import cirscope" in tested
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"build", "test-wheel"}
    assert publish["permissions"] == {"id-token": "write"}, "trusted publishing, no other permission"
    assert publish["environment"]["name"] == "pypi"
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in uses)
    assert not any("password" in step.get("with", {}) for step in publish["steps"]), "no API token"
    assert flow["permissions"] == {"contents": "read"}
