"""Embed images and texts with any open_clip model (torch and open_clip imported lazily)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope._core.atomic import atomic_write
from cirscope._core.errors import ModelLoadError
from cirscope.embedding._cache import EmbeddingCache
from cirscope.gallery._decode import ImageProblem, TransientReason
from cirscope.gallery._table import Gallery

TOY_NAMES = ("cirscope-toy", "toy")
#: The explicit opt-in for randomly initialised weights (``pretrained=RANDOM_WEIGHTS``).
RANDOM_WEIGHTS = "random"
#: Seconds between two writes to the embedding cache during a run (and every ``flush_every`` images).
FLUSH_SECONDS = 30.0


def _which_weights(model: str | None) -> str:
    """The error text for a model given without weights: the three ways to pass some."""
    arch = model or "ViT-B-32"
    head = f"No weights given for {model!r}" if model else "No model given"
    return (
        f"{head}: cirscope does not embed with random weights unless asked to. Pass one of:\n"
        f"  - a pretrained tag: cs.Embedder({arch!r}, pretrained='laion2b_s34b_b79k') (downloaded once; "
        "tags: open_clip.list_pretrained()), or --model ViT-B-32 --pretrained laion2b_s34b_b79k;\n"
        f"  - a local checkpoint file: cs.Embedder({arch!r}, pretrained='/path/to/open_clip_pytorch_model.bin'), "
        "or --pretrained /path/to/file;\n"
        "  - the toy model shipped with cirscope, for the shapes world: cs.Embedder.toy(), or --model cirscope-toy.\n"
        f"Random weights (meaningless embeddings, for tests and timing only): pretrained={RANDOM_WEIGHTS!r} "
        f"(--pretrained {RANDOM_WEIGHTS})."
    )


@dataclass
class EmbedResult:
    """What an embedding run produced."""

    embeddings: np.ndarray  # (n_ok, D) float32, L2-normalised
    rows: np.ndarray  # positional gallery rows of ``embeddings``
    problems: pd.DataFrame  # id, source, reason of skipped images
    n_cached: int = 0
    n_embedded: int = 0
    seconds: float = 0.0
    damaged_cache_files: list[str] = field(default_factory=list)
    decode: dict[str, Any] = field(default_factory=dict)  # how images were decoded (see _pipeline.DecodeStats)

    def summary(self) -> str:
        text = (
            f"{len(self.rows)} images embedded ({self.n_cached} from the cache, {self.n_embedded} computed) "
            f"in {self.seconds:.1f} s"
        )
        if len(self.problems):
            text += f"; {len(self.problems)} skipped (see .problems)"
        return text


def _auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why ``url``'s host cannot be reached (``None`` when it can, or when a proxy decides)."""
    import socket
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.getproxies().get(parts.scheme or "https"):
        return None
    try:
        socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout).close()
    except OSError as exc:
        return f"{parts.hostname} is unreachable ({exc})"
    return None


@contextlib.contextmanager
def _hub_offline_when_unreachable():
    """Switch huggingface_hub to offline mode while its host cannot be reached.

    Without a connection huggingface_hub retries for about a minute before failing; after a
    quick probe of the host, offline mode still loads cached weights and fails at once for
    missing ones. Yields the reason the host is unreachable, or ``None``.
    """
    import huggingface_hub.constants as hf_constants

    reason = None if hf_constants.HF_HUB_OFFLINE else _unreachable(hf_constants.ENDPOINT)
    if reason is None:
        yield None
        return
    old = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield reason
    finally:
        hf_constants.HF_HUB_OFFLINE = old


def _file_fingerprint(path: Path) -> str:
    """BLAKE2b of a weights file, remembered by path, size and modification time."""
    import json

    from cirscope.embedding._cache import default_root

    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = default_root() / "weights-fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo, dict) and isinstance(memo.get(key), str):
        return memo[key]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = "file-" + h.hexdigest()
    memo = {k: v for k, v in memo.items() if not k.startswith(f"{path.resolve()}|")} if isinstance(memo, dict) else {}
    memo[key] = digest
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(memo_path, "w") as fh:  # a unique temporary name per call: threads never collide
            fh.write(json.dumps(memo))
    except OSError:  # a read-only cache folder: hash again next time
        pass
    return digest


class Embedder:
    """An open_clip model that turns images and texts into L2-normalised float32 vectors.

    Parameters
    ----------
    model
        An open_clip architecture name (``"ViT-B-32"``), an ``"hf-hub:org/repo"`` name, or
        ``"cirscope-toy"`` for the small model shipped with cirscope. There is no default.
    pretrained
        The weights of an open_clip architecture: a tag from ``open_clip.list_pretrained()``
        (needs internet the first time) or a local checkpoint file path. Required for an
        architecture name: without it a :class:`ModelLoadError` lists the ways to pass
        weights. ``"random"`` asks explicitly for randomly initialised weights, whose
        embeddings mean nothing (for tests and timing runs only). Not needed for
        ``hf-hub:`` names and ``cirscope-toy``, which carry their weights.
    device
        ``"cuda"``, ``"mps"`` or ``"cpu"``; by default the best available.
    precision
        ``"fp32"``, ``"fp16"`` or ``"bf16"``; by default fp16 on CUDA, else fp32.
    batch_size
        Images per forward pass (default 64; 256 on CUDA).
    num_workers
        Image-decoding worker processes (default: one per core, none for small runs).
    fast_jpeg
        Fast image decoding (default): on CUDA, JPEGs are decoded and preprocessed in
        batches on the GPU; on the CPU, JPEGs decode at a reduced scale when at least twice
        the model's input size (Pillow's draft mode) and resizing uses torch's vectorised
        kernel. Embeddings agree with open_clip's own PIL preprocessing within a small
        tolerance; ``False`` runs exactly that preprocessing.
    gpu_decode
        Decode JPEGs on the GPU (default: on CUDA, when ``fast_jpeg``). ``False`` keeps
        decoding in the CPU workers, e.g. on a GPU without a hardware JPEG decoder and a
        machine with many cores.

    The model is loaded on first use, so creating an Embedder is free.

    Raises
    ------
    ModelLoadError
        When ``model`` is an open_clip architecture and ``pretrained`` is missing.

    Examples
    --------
    >>> emb = Embedder.toy()
    >>> emb.encode_text(["a red star"]).shape  # doctest: +SKIP
    (1, 128)
    >>> Embedder("ViT-B-32", pretrained="laion2b_s34b_b79k")  # loads (downloads) on first use
    Embedder('ViT-B-32', pretrained='laion2b_s34b_b79k', not loaded)
    >>> Embedder("ViT-B-32", pretrained="random")  # meaningless embeddings: tests and timings only
    Embedder('ViT-B-32', pretrained='random', not loaded)
    >>> Embedder("ViT-B-32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cirscope._core.errors.ModelLoadError: No weights given for 'ViT-B-32': cirscope does not embed with random ...
    """

    def __init__(
        self,
        model: str | None = None,
        pretrained: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        precision: str | None = None,
        batch_size: int | None = None,
        num_workers: int | None = None,
        fast_jpeg: bool = True,
        gpu_decode: bool | None = None,
    ):
        if model is None:
            raise ModelLoadError(_which_weights(None))
        self.name = str(model)
        self.pretrained = None if pretrained is None else str(pretrained)
        if self.pretrained is None and not self.is_toy and not self.name.startswith(("hf-hub:", "local-dir:")):
            raise ModelLoadError(_which_weights(self.name))
        self._device = device
        self._precision = precision
        self._batch_size = batch_size
        self.num_workers = num_workers
        self.fast_jpeg = fast_jpeg
        self.gpu_decode = gpu_decode
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._fingerprint: str | None = None

    @classmethod
    def toy(cls, **kwargs: Any) -> Embedder:
        """The toy CLIP trained on the shapes world, shipped in the package (no download)."""
        return cls("cirscope-toy", **kwargs)

    def __repr__(self) -> str:
        state = "loaded" if self._model is not None else "not loaded"
        return f"Embedder({self.name!r}, pretrained={self.pretrained!r}, {state})"

    # ------------------------------------------------------------------ loading
    @property
    def is_toy(self) -> bool:
        return self.name in TOY_NAMES

    @property
    def random_weights(self) -> bool:
        """Whether the weights are randomly initialised (asked for with ``pretrained="random"``)."""
        return self.pretrained == RANDOM_WEIGHTS and not self.is_toy

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = _auto_device()
        return self._device

    @property
    def precision(self) -> str:
        if self._precision is None:
            self._precision = "fp16" if self.device == "cuda" else "fp32"
        return self._precision

    @property
    def batch_size(self) -> int:
        return self._batch_size or (256 if self.device == "cuda" else 64)

    def load(self) -> Embedder:
        """Load the model now (otherwise it loads on first use)."""
        if self._model is not None:
            return self
        if self.is_toy:
            from cirscope.toy._weights import load_toy

            model, preprocess, tokenizer = load_toy(device=self.device)
            if self.precision == "fp16":
                model = model.half()
        else:
            model, preprocess, tokenizer = self._load_open_clip()
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        return self

    def _load_open_clip(self):
        import open_clip

        name, pretrained = self.name, self.pretrained
        if pretrained == RANDOM_WEIGHTS:
            pretrained = None
        is_file = pretrained is not None and Path(pretrained).expanduser().is_file()
        if pretrained is not None and not is_file and not name.startswith("hf-hub:"):
            known = [tag for arch, tag in open_clip.list_pretrained() if arch == name]
            if pretrained not in known:
                looks_like_path = any(ch in pretrained for ch in "/\\.") or pretrained.startswith("~")
                if looks_like_path:
                    raise ModelLoadError(f"Checkpoint file not found: {pretrained}. Check the path.")
                raise ModelLoadError(
                    f"{pretrained!r} is neither a file nor a pretrained tag of {name!r}. Known tags: "
                    f"{known or 'none'}; list them with open_clip.list_pretrained()."
                )
        if name not in open_clip.list_models() and not name.startswith(("hf-hub:", "local-dir:")):
            raise ModelLoadError(
                f"Unknown open_clip model {name!r}. See open_clip.list_models(), or use 'hf-hub:org/repo'."
            )
        remote = name.startswith("hf-hub:") or (pretrained is not None and not is_file)
        try:
            with _hub_offline_when_unreachable() if remote else contextlib.nullcontext() as offline:
                try:
                    if pretrained is not None and not is_file and not name.startswith("hf-hub:"):
                        # Fetch (or find in the local cache) the tagged weights before building
                        # the model, so that being offline fails before model creation.
                        from open_clip import pretrained as oc_pretrained

                        oc_pretrained.download_pretrained(oc_pretrained.get_pretrained_cfg(name, pretrained))
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        name,
                        pretrained=str(Path(pretrained).expanduser()) if is_file else pretrained,
                        device=self.device,
                        precision=self.precision,
                    )
                except Exception as exc:
                    if offline:
                        raise OSError(f"offline: {offline}, and the weights are not in the local cache") from exc
                    raise
        except ModelLoadError:
            raise
        except Exception as exc:
            if is_file:
                raise ModelLoadError(
                    f"Could not load the checkpoint {pretrained} into {name!r} ({type(exc).__name__}: {exc}). "
                    "Is it a checkpoint of this architecture?"
                ) from exc
            if pretrained is not None or name.startswith("hf-hub:"):
                what = f"{name!r} with pretrained={pretrained!r}" if pretrained else repr(name)
                raise ModelLoadError(
                    f"Could not download the weights of {what} ({type(exc).__name__}: {exc}). Without internet, "
                    "download the checkpoint on a machine that has it (e.g. open_clip_pytorch_model.bin from the "
                    "model's Hugging Face page) and pass the local file: "
                    f"cs.Embedder({name!r}, pretrained='/path/to/open_clip_pytorch_model.bin'), or from a shell "
                    "--pretrained /path/to/file."
                ) from exc
            raise
        model.eval()
        return model, preprocess, open_clip.get_tokenizer(name)

    @property
    def model(self):
        return self.load()._model

    @property
    def preprocess(self):
        return self.load()._preprocess

    @property
    def image_size(self) -> int:
        size = getattr(self.model.visual, "image_size", 224)
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def dim(self) -> int:
        return int(self.encode_text(["a"]).shape[1])

    def _weights_file(self) -> Path | None:
        """The file the weights come from (a local checkpoint or the shipped toy weights)."""
        if self.is_toy:
            from cirscope.toy._weights import WEIGHTS_PATH

            return Path(WEIGHTS_PATH)
        if self.pretrained is not None and not self.random_weights:
            path = Path(self.pretrained).expanduser()
            if path.is_file():
                return path
        return None

    @property
    def fingerprint(self) -> str:
        """A hash of the model's weights (identifies the model in caches).

        Weights from a file (a local checkpoint, the toy model) are identified by a hash of
        the file, so a run whose images are all cached never loads the model; otherwise
        (tags, hub names, random weights) by a hash of the loaded state dict.
        """
        if self._fingerprint is None:
            path = self._weights_file()
            if path is not None:
                self._fingerprint = _file_fingerprint(path)
                return self._fingerprint
            h = hashlib.blake2b(digest_size=16)
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().float().cpu().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def identity(self) -> dict[str, Any]:
        """Name, weights source and weights fingerprint of the model."""
        return {"model": self.name, "pretrained": self.pretrained, "fingerprint": self.fingerprint}

    @property
    def cache_key(self) -> str:
        return f"{self.name}-{self.fingerprint[:20]}-{self.precision}-{'draft' if self.fast_jpeg else 'full'}"

    # ------------------------------------------------------------------ encoding
    def encode_text(self, texts: list[str] | str, batch_size: int = 256) -> np.ndarray:
        """Encode texts into an ``(n, D)`` float32 array of L2-normalised rows."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("encode_text needs at least one text")
        self.load()
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                tokens = self._tokenizer(texts[i : i + batch_size]).to(self.device)
                feats = self._model.encode_text(tokens)
                out.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def encode_pixels(self, batch) -> np.ndarray:
        """Encode a preprocessed ``(n, 3, H, W)`` tensor batch."""
        import torch

        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)
        with torch.no_grad():
            feats = self.model.encode_image(batch.to(self.device, dtype=dtype, non_blocking=True))
            return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy().astype(np.float32)

    def encode_images(self, images: list[Any]) -> np.ndarray:
        """Encode PIL images, arrays, paths or bytes (in memory, no cache) into ``(n, D)``."""
        import torch

        from cirscope.gallery._decode import decode

        if not images:
            raise ValueError("encode_images needs at least one image")
        pixels = torch.stack([self.preprocess(decode(img)) for img in images])
        return np.concatenate(
            [self.encode_pixels(pixels[i : i + self.batch_size]) for i in range(0, len(pixels), self.batch_size)]
        )

    def embed_gallery(
        self,
        gallery: Gallery,
        *,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        flush_every: int = 2048,
        flush_seconds: float = FLUSH_SECONDS,
        max_file_bytes: int | None = None,
    ) -> EmbedResult:
        """Embed every image of ``gallery``, skipping (and reporting) the ones that fail.

        With ``cache=True`` embeddings are looked up by image content hash first and every
        new result is written to the cache as the run goes (every ``flush_every`` images or
        every ``flush_seconds`` seconds, whichever comes first), so an interrupted run
        resumes where it stopped. Images that failed because of what they contain (not an
        image, corrupt or truncated data, too large, not a regular file) are remembered in
        the cache and reported again without loading the model; failures of the run itself
        (out of memory, I/O errors, time-outs) are reported for this run only and retried
        the next time.

        Parameters
        ----------
        gallery
            The images.
        cache, cache_dir
            Use the embedding cache, and where it is (see :class:`EmbeddingCache`).
        progress
            Show progress bars.
        flush_every, flush_seconds
            Write new embeddings to the cache after this many images or seconds.
        max_file_bytes
            Largest image file read, in bytes (default: the gallery's ``max_file_bytes``,
            256 MiB unless set; a value given here is set on the gallery too); larger files
            are skipped as problems.
        """
        import torch
        from tqdm.auto import tqdm

        from cirscope.embedding._pipeline import DecodeStats, iterate_batches

        start = time.perf_counter()
        n = len(gallery)
        if max_file_bytes is not None:
            gallery.max_file_bytes = int(max_file_bytes)
        max_bytes = gallery.max_file_bytes
        store = EmbeddingCache(cache_dir, self.cache_key) if cache else None
        hashes: dict[int, str] = {}
        problems: dict[int, str] = {}
        if store is not None:

            def _hash(row: int) -> tuple[int, str | None, str | None]:
                try:
                    return row, gallery.content_hash(row), None
                except ImageProblem as exc:
                    return row, None, exc.reason

            with ThreadPoolExecutor(max_workers=8) as pool:
                it = pool.map(_hash, range(n))
                for row, h, reason in tqdm(it, total=n, desc="Hashing images", disable=not progress or n < 2000):
                    if h is None:
                        problems[row] = reason or "unreadable"
                    else:
                        hashes[row] = h
        found = store.lookup(list(hashes.values())) if store is not None else {}
        result: dict[int, np.ndarray] = {row: found[h] for row, h in hashes.items() if h in found}
        n_cached = len(result)
        if store is not None:  # files that failed before fail again: no need to load the model for them
            known = store.known_problems([h for row, h in hashes.items() if row not in result])
            problems.update({row: known[h] for row, h in hashes.items() if h in known and row not in result})
        todo = [r for r in range(n) if r not in result and r not in problems]
        pending_keys: list[str] = []
        pending_vecs: list[np.ndarray] = []
        pending_problems: dict[str, str] = {}
        decode_stats = DecodeStats()
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if store is not None:
                if pending_keys:
                    store.add(pending_keys, np.stack(pending_vecs))
                store.add_problems(pending_problems)
            pending_keys.clear()
            pending_vecs.clear()
            pending_problems.clear()
            last_flush = time.monotonic()

        if todo:
            self.load()
            bar = tqdm(total=len(todo), desc=f"Embedding images ({self.name}, {self.device})", unit="img",
                       disable=not progress)
            try:
                for rows, batch, bad in iterate_batches(
                    gallery.sources,
                    todo,
                    self.preprocess,
                    batch_size=self.batch_size,
                    num_workers=self.num_workers,
                    pin_memory=self.device == "cuda",
                    draft_size=self.image_size if self.fast_jpeg else None,
                    device=self.device,
                    dtype={"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32),
                    fast=self.fast_jpeg,
                    gpu_decode=self.gpu_decode,
                    stats=decode_stats,
                    max_file_bytes=max_bytes,
                ):
                    for row, reason in bad:
                        problems[row] = reason
                        # only what the file itself causes is remembered; a failure of this run is retried
                        if row in hashes and not isinstance(reason, TransientReason):
                            pending_problems[hashes[row]] = str(reason)
                    if batch is not None:
                        vecs = self.encode_pixels(batch)
                        for row, vec in zip(rows, vecs, strict=False):
                            result[row] = vec
                            key = hashes.get(row)
                            if key is None and store is not None:
                                key = gallery.content_hash(row)
                            if key is not None:
                                pending_keys.append(key)
                                pending_vecs.append(vec)
                    if len(pending_keys) >= flush_every or time.monotonic() - last_flush >= flush_seconds:
                        flush()
                    bar.update(len(rows) + len(bad))
            finally:
                flush()
                bar.close()
        for row, reason in problems.items():
            gallery.record_problem(row, reason)
        ok = np.array(sorted(result), dtype=np.int64)
        dim = next(iter(result.values())).shape[0] if result else 0
        emb = np.stack([result[r] for r in ok]).astype(np.float32) if len(ok) else np.zeros((0, dim), np.float32)
        ids, sources = (gallery.ids, gallery.sources) if problems else ((), ())  # each an O(n) copy: once
        prob = pd.DataFrame(
            [(ids[r], sources[r] if isinstance(sources[r], str) else "<in memory>", reason)
             for r, reason in sorted(problems.items())],
            columns=["id", "source", "reason"],
        )
        out = EmbedResult(
            embeddings=emb, rows=ok, problems=prob, n_cached=n_cached, n_embedded=len(ok) - n_cached,
            seconds=time.perf_counter() - start, damaged_cache_files=list(store.damaged) if store else [],
            decode=decode_stats.as_dict() if todo else {},
        )
        if progress and (len(prob) or out.damaged_cache_files):
            msg = out.summary()
            if out.damaged_cache_files:
                msg += f"; rebuilt damaged cache files {out.damaged_cache_files}"
            print(msg, file=sys.stderr)
        return out
