"""The command line: embed a folder of real photos with broken files, caching, cache repair."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cirscope as cs
from cirscope.cli import main
from tests.sample_images import make_sample_folder


def _embed(capsys, folder, out, cache, model, ckpt, *extra):
    code = main(["embed", str(folder), "--model", model, "--pretrained", str(ckpt), "--out", str(out),
                 "--cache-dir", str(cache), "--quiet", "--json", *extra])
    assert code == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_embed_folder_cache_and_repair(tmp_path, capsys, tiny_model_name, tiny_checkpoint):
    folder = tmp_path / "photos"
    bad = make_sample_folder(folder, n=200, corrupt=3)
    cache = tmp_path / "cache"
    first = _embed(capsys, folder, tmp_path / "out1", cache, tiny_model_name, tiny_checkpoint)
    assert first["embedded"] == 200 and first["computed"] == 200 and first["skipped"] == 3
    assert sorted(p["id"] for p in first["problems"]) == sorted(bad)
    second = _embed(capsys, folder, tmp_path / "out2", cache, tiny_model_name, tiny_checkpoint)
    assert second["from_cache"] == 200 and second["computed"] == 0
    a = np.load(tmp_path / "out1" / "embeddings.npy")
    b = np.load(tmp_path / "out2" / "embeddings.npy")
    assert a.tobytes() == b.tobytes()  # bit-identical

    (folder / "sample_new.jpg").write_bytes((folder / "sample_001.jpg").read_bytes()[:-2] + b"\x00\xff\xd9")
    third = _embed(capsys, folder, tmp_path / "out3", cache, tiny_model_name, tiny_checkpoint)
    assert third["computed"] == 1 and third["from_cache"] == 200

    for shard in (cache).rglob("shard-*.npz"):
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.warns(UserWarning, match="damaged"):
        fourth = _embed(capsys, folder, tmp_path / "out4", cache, tiny_model_name, tiny_checkpoint)
    assert fourth["rebuilt_cache_files"] and fourth["computed"] == 201
    np.testing.assert_array_equal(np.load(tmp_path / "out4" / "embeddings.npy")[:200][:5], a[:5])
    space = cs.Space.load(tmp_path / "out4")
    assert len(space) == 201 and space.model["model"] == tiny_model_name


def test_embed_with_metadata_and_text_report(tmp_path, capsys, tiny_model_name, tiny_checkpoint):
    folder = tmp_path / "p"
    make_sample_folder(folder, n=6, corrupt=1)
    (tmp_path / "m.csv").write_text("file,label\nsample_000.png,a\nsample_001.jpg,b\n")
    code = main(["embed", str(folder), "--model", tiny_model_name, "--pretrained", str(tiny_checkpoint),
                 "--metadata", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), "--quiet"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0 and "Embedded 6 of 7 images" in out and "broken_truncated.jpg: truncated" in out
    assert "cirscope embed: warning: 5 of 7 images have no metadata row" in captured.err
    meta = cs.Space.load(tmp_path / "o").gallery.metadata.set_index("id")
    assert meta.loc["sample_001.jpg", "label"] == "b"


def test_embed_errors_are_one_line(tmp_path, capsys, tiny_model_name):
    assert main(["embed", str(tmp_path / "nope"), "--model", "cirscope-toy", "--out", str(tmp_path / "o")]) == 2
    assert "Folder not found" in capsys.readouterr().err
    make_sample_folder(tmp_path / "p", n=2, corrupt=0)
    assert main(["embed", str(tmp_path / "p"), "--model", tiny_model_name, "--pretrained", "no-such-tag",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "neither a file nor a pretrained tag" in capsys.readouterr().err


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "cirscope", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"cirscope {cs.__version__}"


def test_toy_eval_json(capsys):
    assert main(["toy-eval", "--n", "300", "--queries", "100", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["accuracy"]) == {"shape", "color", "background", "size"}
    assert min(report["accuracy"].values()) >= 0.9


def test_embed_prints_file_names_and_metadata_as_visible_escapes(tmp_path, capsys):
    folder = tmp_path / "p"
    make_sample_folder(folder, n=2, corrupt=0)
    hostile = "bad\x1b]0;owned\x07\r\u202eevil.jpg"
    (folder / hostile).write_bytes(b"not an image")
    (tmp_path / "m.csv").write_text("file,label\nsample_000.png,a\nghost\x1b[31m.jpg,b\n")
    code = main(["embed", str(folder), "--model", "cirscope-toy", "--metadata", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "o"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    for stream in (captured.out, captured.err):
        assert "\x1b" not in stream and "\x07" not in stream and "\r" not in stream and "\u202e" not in stream
    assert "\\x1b" in captured.out and "evil.jpg" in captured.out  # the name is still shown, escaped
    assert "\\x1b" in captured.err  # the metadata warning's example too


def test_help_lists_every_command_module_without_importing_torch():
    code = (
        "import sys, contextlib, io\n"
        "from cirscope.cli._main import COMMANDS, build_parser\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        build_parser().parse_args(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m.__name__ for m in COMMANDS))\n"
        "print(out.getvalue())\n"
        "print('HEAVY', [m for m in ('torch', 'open_clip', 'ray', 'umap', 'faiss') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules = ["cirscope.cli._audit", "cirscope.cli._bench", "cirscope.cli._demo", "cirscope.cli._embed",
               "cirscope.cli._eval", "cirscope.cli._export_page", "cirscope.cli._toy_eval"]
    assert str(modules) in out
    for command in ("embed", "toy-eval", "eval", "audit", "bench", "demo", "export"):
        assert f"    {command} " in out
    assert "HEAVY []" in out
