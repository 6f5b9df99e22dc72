"""The embedding cache: lookups, atomic shards, damage detection, compaction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cirscope.embedding._cache import CacheDamaged, EmbeddingCache


def _vecs(n, d=4, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_and_lookup_across_instances(tmp_path):
    c = EmbeddingCache(tmp_path, "m-1")
    v = _vecs(3)
    c.add(["a", "b", "c"], v)
    again = EmbeddingCache(tmp_path, "m-1")
    got = again.lookup(["c", "a", "zzz"])
    assert set(got) == {"a", "c"}
    np.testing.assert_array_equal(got["c"], v[2])
    assert len(EmbeddingCache(tmp_path, "m-2")) == 0  # another model sees nothing


def test_truncated_shard_is_detected_removed_and_reported(tmp_path):
    c = EmbeddingCache(tmp_path, "m")
    c.add(["a"], _vecs(1))
    c.add(["b"], _vecs(1, seed=1))
    shard = sorted(c.folder.glob("shard-*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.warns(CacheDamaged, match="damaged"):
        fresh = EmbeddingCache(tmp_path, "m")
        assert len(fresh) == 1
    assert not shard.exists() and fresh.damaged == [shard.name]


def test_shard_of_another_model_or_corrupted_values_is_rejected(tmp_path):
    c = EmbeddingCache(tmp_path, "m")
    c.add(["a"], _vecs(1))
    shard = next(c.folder.glob("shard-*.npz"))
    with np.load(shard) as data:
        items = dict(data)
    items["emb"] = items["emb"] + 1.0  # contents no longer match the checksum
    np.savez(shard, **items)
    with pytest.warns(CacheDamaged):
        assert EmbeddingCache(tmp_path, "m").lookup(["a"]) == {}


def test_compaction_keeps_everything(tmp_path):
    c = EmbeddingCache(tmp_path, "m")
    v = _vecs(40)
    for i in range(40):
        c.add([f"k{i}"], v[i : i + 1])
    assert len(list(c.folder.glob("shard-*.npz"))) < 40
    got = EmbeddingCache(tmp_path, "m").lookup([f"k{i}" for i in range(40)])
    np.testing.assert_array_equal(np.stack([got[f"k{i}"] for i in range(40)]), v)


def test_shape_mismatch_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="expected"):
        EmbeddingCache(tmp_path, "m").add(["a", "b"], _vecs(3))


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"abc": 5}', b""],
    ids=["not-json", "not-utf8", "a-list", "not-strings", "empty"],
)
def test_damaged_problems_file_is_reported_and_rebuilt(tmp_path, content):
    c = EmbeddingCache(tmp_path, "m")
    c.folder.mkdir(parents=True)
    (c.folder / "problems.json").write_bytes(content)
    with pytest.warns(CacheDamaged, match=r"problems\.json is damaged: .*Fix: it was removed and is rebuilt"):
        assert c.known_problems(["abc"]) == {}
    assert "problems.json" in c.damaged
    c.add_problems({"h1": "not an image (unrecognised format)"})
    assert EmbeddingCache(tmp_path, "m").known_problems(["h1", "abc"]) == {"h1": "not an image (unrecognised format)"}


def test_damaged_problems_file_is_rebuilt_by_an_embedding_run(tmp_path, tiny_model_name, tiny_checkpoint,
                                                              image_folder):
    import cirscope as cs

    (image_folder / "junk.jpg").write_bytes(b"not a jpeg")
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path, progress=False)
    problems = EmbeddingCache(tmp_path, emb.cache_key).folder / "problems.json"
    assert json.loads(problems.read_text()) != {}
    problems.write_text('{"truncated": ')
    with pytest.warns(CacheDamaged, match=str(problems).replace(".", r"\.")):
        res = emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path, progress=False)
    assert res.damaged_cache_files == ["problems.json"] and res.problems["id"].tolist() == ["junk.jpg"]
    assert list(json.loads(problems.read_text()).values()) == ["not an image (unrecognised format)"]
