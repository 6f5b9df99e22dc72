"""``cs.embed(..., engine="ray")`` on a real local Ray runtime (2 CPUs, one per test module).

Ray's start-up costs most of the time here, so the checks share one runtime and two jobs:
a folder job during which a worker is killed (then a rerun), and a job over a glob of a
Parquet table of bytes and a WebDataset shard, run through the command line.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.space._embed import embed
from cirscope.space._space import Space
from tests.sample_images import make_sample_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_runtime():
    try:
        import ray
        import ray.data
    except ImportError:
        message = 'ray is not installed (pip install "cirscope[ray]"); the Ray engine tests need it'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from cirscope.embedding._ray_engine import connect

    connect(None, num_cpus=2)  # one local runtime for the module (retries a start-up that times out)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("ray") / "photos"
    bad = make_sample_folder(folder, n=160, corrupt=3)
    return folder, bad


def _aligned(space, ids) -> np.ndarray:
    row = {item: k for k, item in enumerate(space.gallery.ids)}
    return np.asarray(space.image_embeddings)[[row[i] for i in ids]]


def test_folder_job_survives_a_killed_worker_and_reruns_nothing(ray_runtime, photos, tmp_path):
    folder, bad = photos
    toy = cs.Embedder.toy(num_workers=0)
    marker = tmp_path / "killed"
    run = embed(folder, toy, out=tmp_path / "ray", engine="ray", shard_size=20, actors=2, progress=False,
                _chaos={"after": 2, "marker": str(marker)})
    assert marker.is_file(), "no worker was killed"
    assert run.complete and run.shards == 9 and len(run.computed) == 9
    assert run.rows == 160 and sorted(run.problems["id"]) == sorted(bad)

    # identical to the same shards computed in this process, without a kill ...
    local = embed(folder, toy, out=tmp_path / "local", shard_size=20, progress=False)
    ray_space, local_space = Space.from_parquet(tmp_path / "ray"), Space.from_parquet(tmp_path / "local")
    assert list(ray_space.gallery.ids) == list(local_space.gallery.ids)
    np.testing.assert_allclose(ray_space.image_embeddings, local_space.image_embeddings, atol=1e-6)
    assert sorted(local.problems["id"]) == sorted(run.problems["id"])
    # ... and to the in-process pipeline of cs.Space
    gallery = cs.Gallery.from_folder(folder)
    reference = toy.embed_gallery(gallery, cache=False, progress=False)
    ids = np.asarray(gallery.ids)[reference.rows]
    np.testing.assert_allclose(_aligned(ray_space, ids), reference.embeddings, atol=1e-5)

    # a rerun finds every shard finished: no Ray job, no file rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("shard-*.parquet")}
    again = embed(folder, toy, out=tmp_path / "ray", engine="ray", shard_size=20, progress=False)
    assert again.computed == [] and len(again.reused) == 9 and again.timings["job"] == 0.0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("shard-*.parquet")} == mtimes

    # a lost shard (deleted file) is the only one recomputed
    (tmp_path / "ray" / "shard-00004.parquet").unlink()
    third = embed(folder, toy, out=tmp_path / "ray", engine="ray", shard_size=20, progress=False)
    assert third.computed == ["shard-00004"] and third.rows == 160
    np.testing.assert_allclose(Space.from_parquet(tmp_path / "ray").image_embeddings,
                               local_space.image_embeddings, atol=1e-6)


def test_cli_job_over_a_table_of_bytes_and_a_webdataset_shard(ray_runtime, photos, tmp_path, capsys):
    from cirscope.cli import main

    folder, _ = photos
    files = sorted(folder.glob("sample_*.jpg"))[:50]
    blobs = [p.read_bytes() for p in files]
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"id": [f"t{i}" for i in range(51)], "image": [*blobs, b"\xff\xd8 broken jpeg"]}).to_parquet(
        data / "laion-000.parquet", row_group_size=16)
    with tarfile.open(data / "wds-000.tar", "w") as tar:
        members = [(f"w{i:03d}.jpg", blob) for i, blob in enumerate(blobs[:30])]
        members += [("w000.json", b'{"caption": "x"}'), ("w999.jpg", b"corrupt member")]
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

    code = main(["embed", str(data / "*"), "--engine", "ray", "--model", "cirscope-toy", "--out",
                 str(tmp_path / "out"), "--shard-size", "25", "--actors", "2", "--quiet", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["shards"] == 4 and report["embedded"] == 80 and report["skipped"] == 2
    assert {p["id"] for p in report["problems"]} == {"t50", "w999"}

    opened = Space.from_parquet(tmp_path / "out")
    reference = cs.Embedder.toy(num_workers=0).embed_gallery(cs.Gallery.from_paths(files), cache=False,
                                                              progress=False)
    np.testing.assert_allclose(_aligned(opened, [f"t{i}" for i in range(50)]), reference.embeddings, atol=1e-5)
    np.testing.assert_allclose(_aligned(opened, [f"w{i:03d}" for i in range(30)]), reference.embeddings[:30],
                               atol=1e-5)
    assert opened.model["model"] == "cirscope-toy"
