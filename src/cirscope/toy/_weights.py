"""Store and load the toy model's weights compactly.

Only the rows of the 49,408-token embedding table that the toy world's texts use are
trained, so the file keeps those rows (and their token ids) and every other tensor, all
floating tensors in float16. Loading rebuilds the full open_clip model: the model is
created by ``open_clip.create_model`` from the registered ``cirscope-toy`` config and the
state is loaded into it; unused token rows are zero.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

HERE = Path(__file__).resolve().parent
CONFIG_PATH = HERE / "cirscope-toy.json"
WEIGHTS_PATH = HERE / "cirscope-toy.npz"
CARD_PATH = HERE / "MODEL_CARD.md"
MODEL_NAME = "cirscope-toy"
_TABLE = "token_embedding.weight"


def register_config() -> None:
    """Register the toy architecture with open_clip (idempotent)."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_PATH)


def save_weights(
    state: dict[str, torch.Tensor], token_ids: np.ndarray, path: Path, meta: dict[str, Any]
) -> None:
    """Write ``state`` (a full-vocabulary state dict) keeping only rows ``token_ids``."""
    import numpy as np

    arrays: dict[str, np.ndarray] = {}
    for name, tensor in state.items():
        arr = tensor.detach().cpu().numpy()
        if name == _TABLE:
            arrays["__token_ids__"] = np.asarray(token_ids, dtype=np.int32)
            arr = arr[token_ids]
        if np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float16)
        arrays[name] = arr
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def read_meta(path: Path = WEIGHTS_PATH) -> dict[str, Any]:
    """The training metadata stored with the weights."""
    import numpy as np

    with np.load(path) as data:
        return json.loads(bytes(data["__meta__"]).decode())


def load_toy(path: Path | str = WEIGHTS_PATH, device: str = "cpu"):
    """Create the toy model with open_clip and load the shipped weights.

    Returns ``(model, preprocess, tokenizer)`` with the model in eval mode; the tokenizer
    (:class:`~cirscope.toy._tokenizer.ToyTokenizer`) ignores, and can name, the words
    whose tokens the model was never trained on.
    """
    import numpy as np
    import open_clip
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"The toy model's weights are missing ({path.name}). Reinstall cirscope, or train "
            "them with `python -m cirscope.toy.train`."
        )
    register_config()
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns that no pretrained weights were loaded
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, device="cpu")
    finally:
        logger.setLevel(level)
    state = model.state_dict()
    with np.load(path) as data:
        ids = torch.from_numpy(data["__token_ids__"].astype(np.int64))
        for name in state:
            if name not in data:
                raise ValueError(f"{path.name} has no tensor {name!r}: it was not saved from {MODEL_NAME}")
            value = torch.from_numpy(data[name].astype(np.float32) if data[name].dtype == np.float16 else data[name])
            if name == _TABLE:
                table = torch.zeros_like(state[name])
                table[ids] = value
                value = table
            state[name] = value.to(state[name].dtype)
    model.load_state_dict(state)
    model.eval().to(device)
    from cirscope.toy._tokenizer import ToyTokenizer

    return model, preprocess, ToyTokenizer(open_clip.get_tokenizer(MODEL_NAME), ids.tolist())
