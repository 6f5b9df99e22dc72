"""The toy CLIP model trained on the shapes world and shipped with cirscope.

See ``MODEL_CARD.md`` beside this file for its recipe, quality and deliberate bias;
``python -m cirscope.toy.train`` retrains it; ``cirscope toy-eval`` measures it.

Importing this package registers the model as ``"cirscope-toy"`` (alias ``"toy"``) through
:func:`cirscope.register_model`, like any user model; ``import cirscope`` does it. The loader
is a lazy string, so registering imports neither numpy nor torch.
"""

from cirscope.embedding._models import register_model
from cirscope.toy._weights import CARD_PATH, CONFIG_PATH, MODEL_NAME, WEIGHTS_PATH, load_toy, read_meta

register_model(
    MODEL_NAME,
    "cirscope.toy._weights:load_toy",
    aliases=("toy",),
    weights_file=WEIGHTS_PATH,
    description="the toy model shipped with cirscope, for the shapes world (also cs.Embedder.toy())",
)

__all__ = ["CARD_PATH", "CONFIG_PATH", "MODEL_NAME", "WEIGHTS_PATH", "load_toy", "read_meta"]
