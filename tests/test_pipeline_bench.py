"""``cirscope bench embed`` runs end to end on the CPU and reports what it measured."""

from __future__ import annotations

import json

import pytest

from cirscope.cli import main
from tests.conftest import FIXTURES, TINY

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


def test_bench_embed_prints_speeds_and_ratios(capsys):
    code = main(["bench", "embed", "--model", str(FIXTURES / f"{TINY}.json"), "--n", "12", "--repeats", "2",
                 "--batch-size", "4", "--size", "60x50", "--no-decode-check"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == TINY and report["n"] == 12 and report["device"] == "cpu"
    assert len(report["runs"]) == 2
    for run in report["runs"]:
        assert run["ours_img_s"] > 0 and run["plain_dataloader_img_s"] > 0 and run["model_only_img_s"] > 0
        assert run["ours_over_plain"] == pytest.approx(run["ours_img_s"] / run["plain_dataloader_img_s"], rel=0.01)
    assert report["decode_path"]["path"] == "cpu-fast" and report["decode_path"]["fast"] == 12
    assert report["agreement_with_pil_path"]["images"] == 12
    assert report["agreement_with_pil_path"]["max_abs_diff"] < 5e-4  # 60x50 to 32 px: no draft decoding


def test_bench_embed_decode_check_and_bad_input(capsys):
    import numpy as np

    from cirscope.cli._bench import decode_check, synthetic_photo
    from cirscope.toy._weights import load_toy

    _, preprocess, _ = load_toy()
    photos = [synthetic_photo(np.random.default_rng(i), 300, 200) for i in range(3)]
    out = decode_check(preprocess, photos, repeats=1)
    assert set(out) >= {"pil_reference_img_s", "fast_no_draft_img_s", "fast_draft_img_s", "draft_speedup"}
    assert main(["bench", "embed", "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
