"""Loading model weights: open_clip architectures, checkpoints, hub names, registered models.

Also what identifies weights in caches: the hash of the file they come from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from cirscope._core.atomic import atomic_write
from cirscope._core.errors import ModelLoadError
from cirscope.embedding._cache import default_root
from cirscope.embedding._models import registered_models

#: The explicit opt-in for randomly initialised weights (``pretrained=RANDOM_WEIGHTS``).
RANDOM_WEIGHTS = "random"
#: Names whose weights come with the name (no ``pretrained`` needed).
HUB_PREFIXES = ("hf-hub:", "local-dir:")


def which_weights(model: str | None) -> str:
    """The error text for a model given without weights: the ways to pass some."""
    arch = model or "ViT-B-32"
    head = f"No weights given for {model!r}" if model else "No model given"
    registered = "".join(
        f"  - a model registered with cirscope, which carries its weights"
        f"{': ' + spec.description if spec.description else ''}: "
        f"cs.Embedder({spec.name!r}), or --model {spec.name}.\n"
        for spec in registered_models()
    )
    return (
        f"{head}: cirscope does not embed with random weights unless asked to. Pass one of:\n"
        f"  - a pretrained tag: cs.Embedder({arch!r}, pretrained='laion2b_s34b_b79k') (downloaded once; "
        "tags: open_clip.list_pretrained()), or --model ViT-B-32 --pretrained laion2b_s34b_b79k;\n"
        f"  - a local checkpoint file: cs.Embedder({arch!r}, pretrained='/path/to/open_clip_pytorch_model.bin'), "
        "or --pretrained /path/to/file;\n"
        f"{registered}"
        f"Random weights (meaningless embeddings, for tests and timing only): pretrained={RANDOM_WEIGHTS!r} "
        f"(--pretrained {RANDOM_WEIGHTS})."
    )


def auto_device() -> str:
    """The best torch device available: ``"cuda"``, ``"mps"`` or ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def unreachable(url: str, timeout: float = 5.0) -> str | None:
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
def hub_offline_when_unreachable():
    """Switch huggingface_hub to offline mode while its host cannot be reached.

    Without a connection huggingface_hub retries for about a minute before failing; after a
    quick probe of the host, offline mode still loads cached weights and fails at once for
    missing ones. Yields the reason the host is unreachable, or ``None``.
    """
    import huggingface_hub.constants as hf_constants

    reason = None if hf_constants.HF_HUB_OFFLINE else unreachable(hf_constants.ENDPOINT)
    if reason is None:
        yield None
        return
    old = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield reason
    finally:
        hf_constants.HF_HUB_OFFLINE = old


def file_fingerprint(path: Path) -> str:
    """BLAKE2b of a weights file, remembered by path, size and modification time."""
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


def state_fingerprint(model: Any) -> str:
    """BLAKE2b of a loaded model's state dict (weights that do not come from one file)."""
    h = hashlib.blake2b(digest_size=16)
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def load_open_clip(name: str, pretrained: str | None, *, device: str, precision: str):
    """Create an open_clip model with its weights: ``(model, preprocess, tokenizer)``.

    ``pretrained`` is a tag, a local file, :data:`RANDOM_WEIGHTS` or ``None`` (hub names).
    Every failure is a :class:`ModelLoadError` that says what to do.
    """
    import open_clip

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
    if name not in open_clip.list_models() and not name.startswith(HUB_PREFIXES):
        raise ModelLoadError(
            f"Unknown open_clip model {name!r}. See open_clip.list_models(), or use 'hf-hub:org/repo'."
        )
    remote = name.startswith("hf-hub:") or (pretrained is not None and not is_file)
    try:
        with hub_offline_when_unreachable() if remote else contextlib.nullcontext() as offline:
            try:
                if pretrained is not None and not is_file and not name.startswith("hf-hub:"):
                    # Fetch (or find in the local cache) the tagged weights before building
                    # the model, so that being offline fails before model creation.
                    from open_clip import pretrained as oc_pretrained

                    oc_pretrained.download_pretrained(oc_pretrained.get_pretrained_cfg(name, pretrained))
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name,
                    pretrained=str(Path(pretrained).expanduser()) if is_file else pretrained,
                    device=device,
                    precision=precision,
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
