"""The Embedder: a model that turns images and texts into unit vectors (torch imported lazily)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._core.errors import ModelLoadError
from cirscope.embedding._loading import (
    HUB_PREFIXES,
    RANDOM_WEIGHTS,
    auto_device,
    file_fingerprint,
    load_open_clip,
    state_fingerprint,
    which_weights,
)
from cirscope.embedding._models import RegisteredModel, registered_model
from cirscope.embedding._run import FLUSH_SECONDS, EmbedResult, embed_gallery
from cirscope.gallery._table import Gallery


class Embedder:
    """An open_clip model that turns images and texts into L2-normalised float32 vectors.

    Parameters
    ----------
    model
        An open_clip architecture name (``"ViT-B-32"``), an ``"hf-hub:org/repo"`` name, or
        the name of a registered model (:func:`cirscope.register_model`), such as
        ``"cirscope-toy"`` for the small model shipped with cirscope. There is no default.
    pretrained
        The weights of an open_clip architecture: a tag from ``open_clip.list_pretrained()``
        (needs internet the first time) or a local checkpoint file path. Required for an
        architecture name: without it a :class:`ModelLoadError` lists the ways to pass
        weights. ``"random"`` asks explicitly for randomly initialised weights, whose
        embeddings mean nothing (for tests and timing runs only). Not needed for
        ``hf-hub:`` names and registered models (``cirscope-toy``), which carry their weights.
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
    >>> emb.encode_text(["a red star"]).shape
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
            raise ModelLoadError(which_weights(None))
        self.name = str(model)
        self.pretrained = None if pretrained is None else str(pretrained)
        #: The registration of ``model`` (:func:`cirscope.register_model`), or ``None``.
        self.registered: RegisteredModel | None = registered_model(self.name)
        if self.pretrained is None and self.registered is None and not self.name.startswith(HUB_PREFIXES):
            raise ModelLoadError(which_weights(self.name))
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
    def random_weights(self) -> bool:
        """Whether the weights are randomly initialised (asked for with ``pretrained="random"``)."""
        return self.pretrained == RANDOM_WEIGHTS and self.registered is None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = auto_device()
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
        if self.registered is not None:
            model, preprocess, tokenizer = self.registered.load(self.device)
            if self.precision in ("fp16", "bf16"):
                import torch

                model = model.to({"fp16": torch.float16, "bf16": torch.bfloat16}[self.precision])
        else:
            model, preprocess, tokenizer = load_open_clip(
                self.name, self.pretrained, device=self.device, precision=self.precision
            )
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        return self

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
        """The file the weights come from (a local checkpoint, or a registered model's file)."""
        if self.registered is not None:
            return self.registered.weights_file
        if self.pretrained is not None and not self.random_weights:
            path = Path(self.pretrained).expanduser()
            if path.is_file():
                return path
        return None

    @property
    def fingerprint(self) -> str:
        """A hash of the model's weights (identifies the model in caches).

        Weights from a file (a local checkpoint, a registered model's ``weights_file`` such
        as the toy model's) are identified by a hash of the file, so a run whose images are
        all cached never loads the model; otherwise (tags, hub names, random weights) by a
        hash of the loaded state dict.
        """
        if self._fingerprint is None:
            path = self._weights_file()
            self._fingerprint = file_fingerprint(path) if path is not None else state_fingerprint(self.model)
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

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` the model does not know and ignores (always ``[]`` for open_clip models).

        Only registered models whose tokenizer reports them (the toy model) have any.
        """
        if self.registered is None:
            return []
        report = getattr(self.load()._tokenizer, "unknown_words", None)
        return [] if report is None else list(report(str(text)))

    def known_words(self, text: str) -> list[str]:
        """Words of ``text`` the model uses (for open_clip models: the text split on spaces)."""
        report = getattr(self.load()._tokenizer, "known_words", None) if self.registered is not None else None
        return str(text).split() if report is None else list(report(str(text)))

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

        Examples
        --------
        >>> res = Embedder.toy().embed_gallery(cs.datasets.shapes(8, seed=1), progress=False)
        >>> res.embeddings.shape, res.n_cached + res.n_embedded
        ((8, 128), 8)
        """
        return embed_gallery(
            self, gallery, cache=cache, cache_dir=cache_dir, progress=progress, flush_every=flush_every,
            flush_seconds=flush_seconds, max_file_bytes=max_file_bytes,
        )
