"""Random weights only when asked for: no silent meaningless embeddings, from Python or the shell."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cirscope as cs
from cirscope._core.errors import ModelLoadError
from cirscope.cli._main import build_parser, main
from cirscope.embedding._loading import RANDOM_WEIGHTS
from tests.sample_images import make_sample_folder

THREE_WAYS = ("pretrained='laion2b_s34b_b79k'", "pretrained='/path/to/open_clip_pytorch_model.bin'", "cirscope-toy")


def test_an_architecture_without_weights_is_refused_with_the_three_ways():
    with pytest.raises(ModelLoadError) as info:
        cs.Embedder("ViT-B-32")
    text = str(info.value)
    assert text.startswith("No weights given for 'ViT-B-32'")
    assert all(way in text for way in THREE_WAYS)
    assert "pretrained='random'" in text
    with pytest.raises(ModelLoadError, match="No model given"):
        cs.Embedder()
    assert "pretrained" in (cs.Embedder.__doc__ or "") and "``\"random\"``" in cs.Embedder.__doc__


def test_models_that_carry_their_weights_need_no_pretrained():
    assert cs.Embedder("cirscope-toy").registered is not None
    assert cs.Embedder("hf-hub:org/repo").pretrained is None  # weights come with the hub name


def test_random_weights_only_by_explicit_opt_in(tiny_model_name):
    assert RANDOM_WEIGHTS == "random"
    a = cs.Embedder(tiny_model_name, pretrained="random", device="cpu")
    b = cs.Embedder(tiny_model_name, pretrained="random", device="cpu")
    assert a.random_weights and not cs.Embedder.toy().random_weights
    assert a.identity["pretrained"] == "random"
    out = a.encode_text(["a red star"])
    assert out.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert a.fingerprint != b.fingerprint  # two random initialisations are two models


def test_cli_embed_without_model_says_what_to_pass(tmp_path, capsys):
    folder = tmp_path / "p"
    make_sample_folder(folder, n=2, corrupt=0)
    assert main(["embed", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cirscope embed: error: No model given")
    assert "--model ViT-B-32 --pretrained laion2b_s34b_b79k" in err and "--model cirscope-toy" in err
    assert "--pretrained random" in err
    assert not (tmp_path / "o").exists()
    assert main(["embed", str(folder), "--model", "ViT-B-32", "--out", str(tmp_path / "o")]) == 2
    assert "No weights given for 'ViT-B-32'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_embed_with_explicit_random_weights(tmp_path, capsys, tiny_model_name):
    folder = tmp_path / "p"
    make_sample_folder(folder, n=4, corrupt=0)
    assert main(["embed", str(folder), "--model", tiny_model_name, "--pretrained", "random",
                 "--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "Embedded 4 of 4 images" in captured.out
    assert "warning: random weights (--pretrained random): the embeddings mean nothing" in captured.err
    assert cs.Space.load(tmp_path / "o").model["pretrained"] == "random"


def test_cli_embed_help_describes_every_option_and_says_there_is_no_default_model():
    out = subprocess.run([sys.executable, "-m", "cirscope", "embed", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "There is no default model" in " ".join(out.split())
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["embed"]
    for action in sub._actions:
        assert action.help, f"{action.dest} has no help text"
        assert action.default is None or action.dest != "model"
