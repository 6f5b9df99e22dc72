"""The shared hashes keep the values older cirscope versions wrote into saved files.

The hex digests below were computed by the code as it stood before the hashes moved to
``cirscope._core.hashing`` (``neighbors._index.embeddings_fingerprint``, ``space._files``'
``embeddings_fingerprint`` / ``sample_rows`` / ``_sample_hash`` / ``file_digest`` and the
index's sampled block digest). A change in any of them would make every saved space, index
and shard cache look damaged.
"""

from __future__ import annotations

import numpy as np
import pytest

from cirscope._core.hashing import embeddings_fingerprint, file_digest, read_rows, sample_hash, sample_rows
from cirscope.neighbors._persist import sampled_digest


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    return np.random.default_rng(1234).normal(size=(300, 8)).astype(np.float32)


def test_fingerprints_match_the_values_saved_files_carry(matrix):
    assert embeddings_fingerprint(matrix) == "51a6cd986ca85db6ab0f35f68372b8e8"
    as_float64 = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert embeddings_fingerprint(as_float64) == "bcc6bcee3be3c4820b6aca3d9c796f4b"
    assert embeddings_fingerprint(as_float64.tolist()) == "bcc6bcee3be3c4820b6aca3d9c796f4b"
    # hashed block by block: the same value as one contiguous copy, also for a strided view
    assert embeddings_fingerprint(np.asfortranarray(matrix)) == embeddings_fingerprint(matrix)
    assert embeddings_fingerprint(matrix[:-1]) != embeddings_fingerprint(matrix)


def test_sampled_rows_and_their_hash_match_the_saved_values(matrix):
    rows = sample_rows(300, 7)
    assert rows.size == 258 and rows[:5].tolist() == [0, 1, 2, 3, 4] and rows[-3:].tolist() == [297, 298, 299]
    assert sample_hash(rows, matrix[rows]) == "6f222bb4b01ef356a22ed58f9d8beeac"
    small = sample_rows(5, 0)
    assert sample_hash(small, matrix[small]) == "f11519b6b81345e8db86c4b0d354d5ab"
    big = sample_rows(100_000, 3)
    values = np.random.default_rng(5).normal(size=(big.size, 4)).astype(np.float32)
    assert big.size == 258 and sample_hash(big, values) == "ead3087cdce8028c22a3dd8a154cbb8a"


def test_rows_read_from_a_memory_map_equal_the_array_and_a_truncated_file_is_an_error(matrix, tmp_path):
    path = tmp_path / "e.npy"
    np.save(path, matrix)
    mapped = np.load(path, mmap_mode="r")
    rows = sample_rows(300, 7)
    assert np.array_equal(read_rows(mapped, rows), matrix[rows])
    assert sample_hash(rows, read_rows(mapped, rows)) == "6f222bb4b01ef356a22ed58f9d8beeac"
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 4)
    with pytest.raises(OSError, match="short read at row 299"):
        read_rows(mapped, rows)


def test_file_digests_match_the_saved_values(tmp_path):
    rng = np.random.default_rng(1234)
    rng.normal(size=(300, 8))  # the stream the anchors were computed from continued after the matrix
    blob = tmp_path / "blob"
    blob.write_bytes(rng.integers(0, 256, size=5 * (1 << 16) + 123, dtype=np.uint8).tobytes())
    assert file_digest(blob) == "cce2eb90bfc4ff53868922dd40655168"
    assert sampled_digest(blob) == "eecc550c04756fa54272fbbe02768aeb"  # 6 blocks: hashed whole, with the size
    big = tmp_path / "big"
    big.write_bytes(np.random.default_rng(9).integers(0, 256, size=70 * (1 << 16) + 5, dtype=np.uint8).tobytes())
    assert sampled_digest(big) == "b57e6105e7da43d008a6857efb7417d2"  # 70 blocks: sampled, not whole
