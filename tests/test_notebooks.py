"""Execute every notebook in notebooks/ headless (nbclient) and check the repository copies are clean.

Each notebook runs in a temporary working folder with its own embedding cache, in a kernel
running this interpreter (or, for the wheel test, another one). ``your_own_images.ipynb``
gets a folder of real photographs and a tiny random-initialised checkpoint instead of the
real CLIP weights, which cannot be downloaded offline.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CELL_TIMEOUT = 240
KERNEL = "cirscope-test-python"


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def kernel_manager(python: str | os.PathLike, folder: Path):
    """A KernelManager starting ``python -m ipykernel_launcher`` (a kernelspec written in ``folder``)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "cirscope test kernel",
                "language": "python",
            }
        )
    )
    ksm = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)


def execute_notebook(
    source: Path,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    python: str | os.PathLike = sys.executable,
    timeout: int = CELL_TIMEOUT,
):
    """Copy ``source`` into ``workdir`` and execute it there; returns ``(notebook, seconds)``.

    Raises nbclient's ``CellExecutionError`` when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / source.name
    shutil.copyfile(source, path)
    nb = nbformat.read(path, as_version=4)
    # the notebooks' own overrides (CIRSCOPE_NB_*) come only from ``env``, never from the calling shell
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CIRSCOPE_NB_") and k != "PYTHONPATH"}
    full_env.update({"PYDEVD_DISABLE_FILE_VALIDATION": "1", **(env or {})})
    km = kernel_manager(python, workdir / ".kernel")
    client = NotebookClient(
        nb, km=km, timeout=timeout, allow_errors=False, resources={"metadata": {"path": str(workdir)}}
    )
    start = time.perf_counter()
    client.execute(env=full_env)
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)  # the executed copy, for a look after a failure
    return nb, seconds


def errors_in(nb) -> list[str]:
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """About 30 real photographs (scikit-image samples) and one broken file."""
    from tests.sample_images import make_sample_folder

    folder = tmp_path_factory.mktemp("photos") / "my_photos"
    make_sample_folder(folder, n=30, corrupt=1, seed=0)
    return folder


@pytest.fixture
def notebook_env(tmp_path, request) -> dict[str, str]:
    """Per-notebook environment: an isolated cache; overrides for your_own_images."""
    env = {"CIRSCOPE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    if request.node.callspec.params["name"] == "your_own_images.ipynb":
        env.update(
            CIRSCOPE_NB_FOLDER=str(request.getfixturevalue("photo_folder")),
            CIRSCOPE_NB_MODEL=request.getfixturevalue("tiny_model_name"),
            CIRSCOPE_NB_PRETRAINED=str(request.getfixturevalue("tiny_checkpoint")),
            CIRSCOPE_NB_MODEL_CONFIG=str(FIXTURES / "cirscope-test-tiny.json"),
        )
    return env


def test_notebooks_exist():
    names = [p.name for p in notebook_paths()]
    for required in ("quickstart.ipynb", "composed_queries.ipynb", "your_own_images.ipynb"):
        assert required in names


@pytest.mark.parametrize("name", [p.name for p in notebook_paths()])
def test_notebook_is_clean(name):
    """Notebooks are kept without outputs; they run only in tests."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.cells, f"{name} is empty"
    assert "widgets" not in nb.metadata, f"{name} has saved widget state; clear it"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} has saved outputs; clear them"
            assert cell.execution_count is None, f"{name}: cell {i} has an execution count; clear it"


def _outputs(nb, mime: str) -> list:
    return [out for c in nb.cells for out in c.get("outputs", []) if mime in out.get("data", {})]


def _stream_text(nb) -> str:
    return "".join(out.get("text", "") for c in nb.cells for out in c.get("outputs", [])
                   if out.get("output_type") == "stream")


def _plotly_figures(nb) -> list[dict]:
    return [out["data"]["application/vnd.plotly.v1+json"] for out in _outputs(nb, "application/vnd.plotly.v1+json")]


def _check_quickstart(nb) -> None:
    """Search results appear as thumbnail tables, the map as a plotly figure, the Explorer as a widget.

    Recall is said as a share of the possible targets; the Explorer has a static picture beside it (the map with
    the reference and its 12 results); the bias section shows the noise floor and an exact p-value floor.
    """
    html = "\n".join(out["data"]["text/html"] for out in _outputs(nb, "text/html"))
    assert html.count("data:image/jpeg;base64,") >= 40
    assert _outputs(nb, "application/vnd.plotly.v1+json"), "the map cell displayed no plotly figure"
    assert _outputs(nb, "application/vnd.jupyter.widget-view+json"), "the Explorer cell displayed no widget"
    text = _stream_text(nb)
    for method in ("sum", "weimocir", "slerp", "pdv"):
        assert f"{method}: both targets found (R@10 = 1.0)" in text
    assert "image: 0 of the 2 targets found (R@10 = 0.0)" in text
    assert "of the top 10 are hits" not in text
    static = [fig for fig in _plotly_figures(nb) if {t.get("name") for t in fig["data"]} >= {"reference", "results"}]
    assert len(static) == 1, "one static picture of the Explorer's query"
    traces = {t["name"]: t for t in static[0]["data"]}
    assert len(traces["results"]["text"]) == 12 and traces["reference"]["marker"]["symbol"] == "star"
    assert "random 95th pct" in html and "beyond chance" in html, "the skew table shows the noise floor"
    assert "&lt;= 1/3,432 (the smallest possible)" in html, "an exact p-value at its floor is said as p <= 1/n"
    for step in ("UMAP map", "first text encoding", "skew of four queries"):
        assert step in html, f"the closing table times every slow step ({step!r} missing)"
    _check_export_keeps_pictures(nb, pictures=2, folded=2)


def _check_export_keeps_pictures(nb, pictures: int, folded: int = 0) -> None:
    """Each map is a plotly figure with a PNG twin in the same output, and the HTML export shows the PNGs."""
    from nbconvert import HTMLExporter

    twins = [out for out in _outputs(nb, "application/vnd.plotly.v1+json") if "image/png" in out["data"]]
    assert len(twins) >= pictures
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count('src="data:image/png;base64,') >= pictures
    assert body.count("<details><summary>Answer</summary>") == folded


def _check_composed_queries(nb) -> None:
    assert len(_outputs(nb, "application/vnd.plotly.v1+json")) >= 3, (
        "expected the PCA picture and two heatmaps"
    )
    html = "\n".join(out["data"]["text/html"] for out in _outputs(nb, "text/html"))
    # static pictures beside the interactive ones: the heatmaps as HTML tables with the plateau framed
    assert html.count("(framed: within noise of the best)") >= 2
    # three exercises, each answer in a closed <details> box (hidden until asked, in exported HTML too)
    assert html.count("<details><summary><b>Solution: exercise") == 3 and "<details open" not in html
    assert _outputs(nb, "application/vnd.jupyter.widget-view+json"), "the Explorer cell displayed no widget"
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) == 3 and all(c.metadata["jupyter"]["source_hidden"] for c in solutions)


def _check_your_own_images(nb) -> None:
    """Labels from a CSV join (the unlabelled image is reported), the map is coloured by them, zero-shot labels are
    computed, and the composed query is resolved by template and by a written target description."""
    text = _stream_text(nb)
    assert "label columns: ['orientation']" in text
    assert "MetadataWarning: 1 of 31 images have no metadata row" in text, "the broken file has no label row"
    assert "[template]" in text and "[explicit]" in text and "[zero-shot]" in text
    assert "of the images get no word with probability 0.5 or more" in text
    colored = [fig for fig in _plotly_figures(nb) if "coloured by orientation" in str(fig["layout"].get("title"))]
    assert colored and {t["name"] for t in colored[0]["data"]} >= {"landscape"}
    _check_export_keeps_pictures(nb, pictures=1)


CHECKS = {"quickstart.ipynb": _check_quickstart, "composed_queries.ipynb": _check_composed_queries,
          "your_own_images.ipynb": _check_your_own_images}


def _markdown(name: str) -> list[str]:
    import nbformat

    return [c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells if c.cell_type == "markdown"]


def _headings(name: str) -> set[str]:
    return {line.lstrip("#").strip() for src in _markdown(name) for line in src.splitlines() if line.startswith("#")}


def test_quickstart_questions_stay_folded_in_an_html_export():
    """Each Predict question has a folded answer, and an HTML export keeps the fold (a <details> element)."""
    import nbformat
    from nbconvert import HTMLExporter

    cells = _markdown("quickstart.ipynb")
    assert "### Learning objectives" in cells[0]
    predicts = [src for src in cells if "**Predict.**" in src]
    assert len(predicts) >= 2
    assert all(src.index("**Predict.**") < src.index("<details><summary>Answer</summary>") for src in predicts)
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4))
    assert body.count("<details><summary>Answer</summary>") == len(predicts)
    assert "&lt;details" not in body


def test_lesson_plan_covers_45_minutes_with_existing_notebooks_and_sections():
    """The quickstart's lesson plan: consecutive slots from 0 to 45 minutes, each naming a notebook that exists;
    the sections it names in quickstart and your_own_images are their headings (the other two are named by topic)."""
    plan = next(src for src in _markdown("quickstart.ipynb") if src.startswith("## For teachers"))
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in plan.splitlines()
            if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) >= 5
    bounds = [tuple(int(m) for m in row[0].split("–")) for row in rows]
    assert bounds[0][0] == 0 and bounds[-1][1] == 45
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds)), bounds
    existing = {p.name for p in notebook_paths()}
    assert {"quickstart.ipynb", "composed_queries.ipynb", "audit.ipynb", "your_own_images.ipynb"} <= {
        row[1] for row in rows}
    for row in rows:
        assert row[1] in existing, row
        if row[1] in ("quickstart.ipynb", "your_own_images.ipynb"):
            missing = [s for s in row[2].split("; ") if s not in _headings(row[1])]
            assert not missing, f"{row[1]} has no section {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in notebook_paths()])
def test_notebook_runs(name, tmp_path, notebook_env, capsys):
    nb, seconds = execute_notebook(NOTEBOOKS / name, tmp_path / "work", env=notebook_env)
    assert errors_in(nb) == []
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
    if name in CHECKS:
        CHECKS[name](nb)
    with capsys.disabled():
        print(f"\n{name}: executed in {seconds:.1f} s")


@pytest.mark.slow
def test_your_own_images_offline_fails_with_the_embedder_message(tmp_path, photo_folder):
    """Offline and without a local checkpoint, the tagged model fails with a ModelLoadError naming the fix."""
    from nbclient.exceptions import CellExecutionError

    env = {
        "CIRSCOPE_CACHE_DIR": str(tmp_path / "cache"),
        "CIRSCOPE_NB_FOLDER": str(photo_folder),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # no weights cached from an earlier online run
    }
    with pytest.raises(CellExecutionError) as info:
        execute_notebook(NOTEBOOKS / "your_own_images.ipynb", tmp_path / "work", env=env)
    assert info.value.ename == "ModelLoadError"
    assert "pretrained='/path/to/" in info.value.evalue
