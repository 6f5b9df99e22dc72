"""ComposedQuery: where the reference and composed texts come from, and caching."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs
from cirscope.query._composed import ComposedQuery, fill_template
from cirscope.query._vocabulary import Vocabulary, zero_shot_captions

COLORS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")


class CountingEmbedder:
    """Texts map to fixed vectors; counts how many texts were encoded."""

    name = "counting"
    pretrained = None

    def __init__(self, table: dict[str, np.ndarray], dim: int):
        self.table, self.dim, self.calls, self.images = table, dim, 0, 0

    def encode_text(self, texts):
        self.calls += len(texts)
        rng = np.random.default_rng(len(self.table))
        out = [np.asarray(self.table[t], float) if t in self.table else rng.normal(size=self.dim) for t in texts]
        return np.asarray([v / np.linalg.norm(v) for v in out], dtype=np.float32)

    def encode_images(self, images):
        self.images += len(images)
        return np.asarray([[1.0, 0.0, 0.0]] * len(images), dtype=np.float32)


@pytest.fixture
def small():
    """Three items; the colour vocabulary's prompts point along the axes."""
    table = {"a photo of red": [1, 0, 0], "a photo of blue": [0, 1, 0], "a photo of green": [0, 0, 1]}
    emb = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.1], [0.0, 0.2, 0.9]])
    meta = pd.DataFrame({"color": ["red", "blue", "green"], "note": ["", "x", "y"]})
    g = cs.Gallery.from_images([Image.new("RGB", (4, 4))] * 3, metadata=meta, ids=["a", "b", "c"])
    embedder = CountingEmbedder(table, 3)
    return cs.Space.from_embeddings(g, emb, embedder=embedder), embedder


def swap_colour(reference_text: str, instruction: str) -> str:
    """A rule-based rewriter: put the instruction's colour word in place of the caption's."""
    new = next((c for c in COLORS if c in instruction.split()), None)
    if new is None:
        return f"{reference_text}, {instruction}"
    return re.sub(r"\b(" + "|".join(COLORS) + r")\b", new, reference_text, count=1)


def test_explicit_texts(small):
    space, _ = small
    r = ComposedQuery(0, "make it blue", reference_text="a red cube", composed_text="a blue cube").resolve(space)
    assert (r.reference_text, r.reference_text_source) == ("a red cube", "explicit")
    assert (r.composed_text, r.composed_text_source) == ("a blue cube", "explicit")
    assert r.reference_row == 0


def test_zero_shot_from_metadata_columns(small):
    space, _ = small
    r = ComposedQuery(1, "make it green", caption_column="note").resolve(space)
    assert r.reference_text_source == "caption"
    r = ComposedQuery(0, "make it green", caption_column="note").resolve(space)  # empty caption: zero-shot
    assert r.reference_text_source == "zero-shot"
    assert r.zero_shot == {"color": "red"}  # "note" is the caption column, so it is no family
    assert r.reference_text == "a photo of red"
    assert (r.composed_text, r.composed_text_source) == ("a photo of red, make it green", "template")


def test_neutral_when_nothing_describes_the_reference(small):
    space, _ = small
    r = ComposedQuery(2, "make it red", vocabulary={}).resolve(space)
    assert (r.reference_text, r.reference_text_source) == ("a photo", "neutral")
    r = ComposedQuery(2, "make it red", vocabulary={}, neutral="an image").resolve(space)
    assert r.reference_text == "an image"


def test_caption_column_is_configurable(small):
    space, _ = small
    r = ComposedQuery(1, "make it red", caption_column="note").resolve(space)
    assert (r.reference_text, r.reference_text_source) == ("x", "caption")
    r = ComposedQuery(1, "make it red", caption_column="missing").resolve(space)
    assert r.reference_text_source == "zero-shot"


def test_rewriter_replaces_the_colour(small):
    space, _ = small
    q = ComposedQuery(0, "make it blue", reference_text="a small red star", rewriter=swap_colour)
    r = q.resolve(space)
    assert (r.composed_text, r.composed_text_source) == ("a small blue star", "rewriter")
    with pytest.raises(TypeError, match="non-empty string"):
        ComposedQuery(0, "x", rewriter=lambda a, b: None).resolve(space)


def test_templates():
    assert fill_template("{caption} but {modification}", "a cat", "black") == "a cat but black"
    with pytest.raises(ValueError, match="unknown field"):
        ComposedQuery(0, "x", template="{reference} {text}")


def test_reference_kinds(small, tmp_path):
    space, emb = small
    assert ComposedQuery("b", "x").resolve(space).reference_row == 1
    r = ComposedQuery(Image.new("RGB", (4, 4)), "x", vocabulary={}).resolve(space)
    assert r.reference_row is None and emb.images == 1 and r.reference == "<Image>"
    path = tmp_path / "ref.png"
    Image.new("RGB", (4, 4)).save(path)
    assert ComposedQuery(str(path), "x", vocabulary={}).resolve(space).reference_row is None
    with pytest.raises(KeyError, match="neither an id in the gallery nor an image file"):
        ComposedQuery("zzz", "x").resolve(space)
    with pytest.raises(IndexError, match="outside the gallery"):
        ComposedQuery(7, "x").resolve(space)
    with pytest.raises(TypeError, match="string"):
        ComposedQuery(0, 5)  # type: ignore[arg-type]


def test_resolution_is_cached_per_space(small):
    space, emb = small
    q = ComposedQuery(0, "make it blue")
    first = q.resolve(space)
    calls = emb.calls
    assert q.resolve(space) is first and emb.calls == calls
    for beta in (0.0, 0.3, 0.9):
        q.vector(space, "pdv", beta=beta)
    assert emb.calls == calls


def test_changing_the_query_resolves_again(small):
    space, _ = small
    q = ComposedQuery(0, "make it blue", reference_text="a red star")
    assert q.resolve(space).composed_text == "a red star, make it blue"
    q.text = "make it green"
    q.reference = 1
    resolved = q.resolve(space)
    assert resolved.composed_text == "a red star, make it green" and resolved.reference_row == 1


def test_repr_names_the_sources(small):
    space, _ = small
    q = ComposedQuery(0, "make it blue", reference_text="a red cube")
    assert repr(q) == "ComposedQuery(reference=0, text='make it blue', reference_text='a red cube')"
    text = repr(q.resolve(space))
    assert "[explicit]" in text and "[template]" in text and "a red cube, make it blue" in text
    assert q.resolve(space).info()["composed_text_source"] == "template"


def test_vocabulary_from_metadata_and_shapes():
    df = pd.DataFrame({"id": list("abcd"), "kind": ["x", "y", "x", "y"], "path": ["a/1", "b/2", "c/3", "d/4"],
                       "score": [1.0, 2.0, 3.0, 4.0], "caption": ["p", "q", "r", "s"], "one": ["z"] * 4})
    assert Vocabulary.from_metadata(df).families == {"kind": ("x", "y")}
    shapes = Vocabulary.from_metadata(cs.datasets.shapes(30).metadata)
    assert shapes.description == "a {size} {color} {shape} on a {background} background"
    with pytest.raises(ValueError, match="no words"):
        Vocabulary({"color": []})
    with pytest.raises(ValueError, match="needs a"):
        Vocabulary({"color": ["red"]}, prompts={"color": "red"})


def test_the_old_shapes_call_gives_the_vocabulary_datasets_defines():
    from cirscope.datasets import ATTRIBUTES

    old = Vocabulary(  # what Vocabulary.shapes() built before it moved to datasets
        {a: list(v) for a, v in ATTRIBUTES.items()},
        prompts={"shape": "a {}", "color": "a {} shape", "background": "a shape on a {} background",
                 "size": "a {} shape"},
        description="a {size} {color} {shape} on a {background} background",
    )
    assert cs.Vocabulary is Vocabulary
    assert Vocabulary.shapes() == old == cs.datasets.shapes_vocabulary() == Vocabulary.named("shapes")
    assert Vocabulary.registered()["shapes"] == old


def test_query_code_never_imports_the_datasets():
    import ast
    from pathlib import Path

    import cirscope.query

    for path in Path(cirscope.query.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("cirscope.datasets") for n in names), f"{path.name} imports {names}"
    code = ("import sys, cirscope.query._search, cirscope.query._composed; "
            "print('cirscope.datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # the public name still finds the shapes vocabulary in a fresh process, without touching cs.datasets first
    code = "import cirscope as cs; print(cs.Vocabulary.shapes().describe(dict(shape='star', color='red', " \
           "background='black', size='large')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "a large red star on a black background"


@pytest.fixture
def registry(monkeypatch):
    """A scratch copy of the vocabulary registry (the built-in entries included)."""
    from cirscope.query import _vocabulary

    monkeypatch.setattr(_vocabulary, "_REGISTRY", dict(_vocabulary._REGISTRY))
    return _vocabulary


def test_a_registered_vocabulary_is_the_default_of_the_galleries_it_fits(registry):
    fruit = pd.DataFrame({"id": list("abc"), "fruit": ["apple", "pear", "apple"], "ripe": ["yes", "no", "no"]})
    generic = Vocabulary.from_metadata(fruit)
    assert generic.families == {"fruit": ("apple", "pear"), "ripe": ("no", "yes")} and generic.prompts == {}
    small = Vocabulary.register("fruit", Vocabulary({"fruit": ["apple", "pear", "plum"]}, prompts={"fruit": "a {}"}))
    assert Vocabulary.from_metadata(fruit) is small and Vocabulary.named("fruit") is small
    both = Vocabulary.register("fruit-ripe", {"fruit": ["apple", "pear"], "ripe": ["yes", "no"]})
    assert Vocabulary.from_metadata(fruit) is both  # the fitting vocabulary with most families wins
    other = fruit.assign(fruit=["apple", "kiwi", "pear"])  # a word outside both: no registered one fits
    assert Vocabulary.from_metadata(other).families == {"fruit": ("apple", "kiwi", "pear"), "ripe": ("no", "yes")}
    assert Vocabulary.from_metadata(cs.datasets.shapes(20).metadata) == Vocabulary.shapes()
    with pytest.raises(KeyError, match=r"registered: .*'fruit'"):
        Vocabulary.named("vegetables")
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.register("nothing", {})
    with pytest.raises(ValueError, match="non-empty string"):
        Vocabulary.register("", {"fruit": ["apple"]})


def test_a_registration_refreshes_the_default_vocabulary_of_a_space(registry, small):
    from cirscope.query._vocabulary import vocabulary_for

    space, _ = small
    before = vocabulary_for(space)
    assert before.families["color"] == ("blue", "green", "red") and before is vocabulary_for(space)  # cached
    registered = Vocabulary.register("scratch", Vocabulary({"color": ["red", "green", "blue"]},
                                                           prompts={"color": "a {} thing"}))
    assert vocabulary_for(space) is registered


def test_zero_shot_captions_pick_the_best_word_per_family():
    vocab = Vocabulary({"color": ["red", "blue"], "shape": ["ball", "box"]}, description="a {color} {shape}")
    vecs = {"a photo of red": [1, 0, 0, 0], "a photo of blue": [0, 1, 0, 0],
            "a photo of ball": [0, 0, 1, 0], "a photo of box": [0, 0, 0, 1]}
    enc = lambda texts: np.array([vecs[t] for t in texts], dtype=float)  # noqa: E731
    images = np.array([[0.9, 0.1, 0.1, 0.8], [0.1, 0.7, 0.9, 0.0]])
    assert [d for d, _ in zero_shot_captions(images, vocab, enc)] == ["a red box", "a blue ball"]


@pytest.mark.slow
def test_toy_zero_shot_captions_match_the_ground_truth(toy_space):
    meta = toy_space.gallery.metadata
    rows = list(range(40))
    got = [ComposedQuery(r, "x", caption_column=None).resolve(toy_space).reference_text for r in rows]
    agree = np.mean([g == c for g, c in zip(got, meta["caption"].iloc[rows], strict=False)])
    assert agree >= 0.8


def test_a_fresh_process_gets_the_shapes_vocabulary_without_importing_the_datasets():
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd, cirscope\n"
        "assert 'cirscope.datasets' not in sys.modules\n"
        "from cirscope.query._vocabulary import Vocabulary\n"
        "meta = pd.DataFrame({'shape': ['star', 'circle'], 'color': ['red', 'blue'],\n"
        "                     'background': ['white', 'black'], 'size': ['large', 'small']})\n"
        "v = Vocabulary.from_metadata(meta)\n"
        "print(v.describe({'shape': 'star', 'color': 'red', 'background': 'black', 'size': 'large'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a large red star on a black background"
