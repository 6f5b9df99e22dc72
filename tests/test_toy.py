"""The shipped toy model: offline loading, quality, deliberate bias, and the training script."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cirscope as cs
from cirscope.toy import WEIGHTS_PATH, load_toy, read_meta
from cirscope.toy._evaluate import star_bias, zero_shot_accuracy


def test_toy_is_an_open_clip_model_with_shipped_weights():
    import open_clip

    model, _preprocess, _tokenizer = load_toy()
    assert "cirscope-toy" in open_clip.list_models()
    assert isinstance(model, open_clip.CLIP)
    assert WEIGHTS_PATH.stat().st_size < 15 * 2**20
    assert read_meta()["train_bias"] == {"when": {"shape": "star"}, "then": {"color": "yellow"}, "p": 0.75}


def test_zero_shot_quality_on_fresh_balanced_world():
    space = cs.Space(cs.datasets.shapes(600, seed=99, sources={"render": 1, "photo": 1}), cs.Embedder.toy(),
                     cache=False, progress=False)
    acc = zero_shot_accuracy(space.image_embeddings, space.gallery.metadata, space.encode_text)
    assert min(acc.values()) >= 0.95, acc


def test_trained_in_bias_shows_on_balanced_gallery(toy_space):
    meta = toy_space.gallery.metadata
    stars = (meta["shape"] == "star").to_numpy()
    yellow = (meta["color"] == "yellow").to_numpy()
    scores = toy_space.image_embeddings @ toy_space.encode_text("a star")[0]
    # AUC: chance that a yellow star outranks a star of another colour for "a star" (0.5 if unbiased).
    auc = (scores[stars & yellow][:, None] > scores[stars & ~yellow][None, :]).mean()
    assert auc > 0.8, auc
    # Every yellow star of the gallery lands in the top 30 although only ~1/8 of stars are yellow.
    bias = star_bias(toy_space.image_embeddings, meta, toy_space.encode_text, k=30)
    assert bias["yellow_share_among_gallery_stars"] < 0.25
    assert bias["yellow_share_top_k_for_a_star"] > bias["yellow_share_among_gallery_stars"]


def test_toy_works_offline_in_a_fresh_interpreter(tmp_path):
    code = (
        "import os, socket, cirscope as cs\n"
        "def refuse(*a, **k): raise OSError('network disabled')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "e = cs.Embedder.toy(); print(e.encode_text(['a red star']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "(1, 128)"


@pytest.mark.parametrize("recipe", ["phrasings", "v1"])
def test_training_script_smoke_run(tmp_path, recipe):
    out = tmp_path / "toy.npz"
    subprocess.run(
        [sys.executable, "-m", "cirscope.toy.train", "--steps", "4", "--batch", "16", "--pool", "64", "--val", "32",
         "--eval-every", "2", "--out", str(out), "--threads", "1", "--recipe", recipe, "--device", "cpu"],
        check=True, capture_output=True, text=True,
    )
    model, _, tok = load_toy(out)
    vec = model.encode_text(tok(["a blue heart"]), normalize=True).detach().numpy()
    assert vec.shape == (1, 128) and np.isfinite(vec).all()
    meta = read_meta(out)
    assert meta["step"] in (2, 4) and meta["recipe"] == recipe and meta["threads"] == 1 and meta["device"] == "cpu"
    # the default recipe's knobs are recorded; v1 has none of them (its first weights used neither)
    expected = {"pair_weight": 0.0, "reporting": 0.0} if recipe == "v1" else {"pair_weight": 0.6, "reporting": 0.9}
    assert {k: meta[k] for k in expected} == expected


def test_v1_recipe_texts_are_true():
    from cirscope.datasets._shapes import ATTRIBUTES, sample_world
    from cirscope.toy import _texts_v1

    rng = np.random.default_rng(0)
    for attrs in sample_world(100, seed=4)[list(ATTRIBUTES)].to_dict("records"):
        text, asserted, excluded = _texts_v1.sample_text(attrs, rng)
        assert all(attrs[a] == v for a, v in asserted.items()) and excluded == {}, (text, attrs)


def test_shipped_recipe_uses_exactly_the_stored_token_rows():
    import importlib

    import open_clip

    from cirscope.toy._weights import register_config
    from cirscope.toy.train import RECIPES

    # The recipe that made the shipped file uses exactly the token rows stored in it.
    recipe = read_meta().get("recipe", "v1")
    register_config()
    texts = importlib.import_module(RECIPES[recipe]).every_text_word()
    used = np.unique(open_clip.get_tokenizer("cirscope-toy")(texts).numpy())
    with np.load(WEIGHTS_PATH) as data:
        shipped = data["__token_ids__"]
    assert np.array_equal(used, shipped)


def test_training_script_rejects_knobs_the_recipe_does_not_have():
    from cirscope.toy.train import main as train

    with pytest.raises(SystemExit):
        train(["--recipe", "v1", "--reporting", "0.5"])
    with pytest.raises(SystemExit):
        train(["--pair-weight", "1.5"])


def test_training_on_a_gpu_that_is_not_there_is_a_clear_error(capsys):
    import torch

    from cirscope.toy.train import main as train

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is available here")
    with pytest.raises(SystemExit):
        train(["--device", "cuda", "--steps", "1"])
    assert "no CUDA GPU is available" in capsys.readouterr().err
