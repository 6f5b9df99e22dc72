"""The toy CLIP model trained on the shapes world and shipped with cirscope.

See ``MODEL_CARD.md`` beside this file for its recipe, quality and deliberate bias;
``python -m cirscope.toy.train`` retrains it; ``cirscope toy-eval`` measures it.
"""

from cirscope.toy._weights import CARD_PATH, CONFIG_PATH, MODEL_NAME, WEIGHTS_PATH, load_toy, read_meta

__all__ = ["CARD_PATH", "CONFIG_PATH", "MODEL_NAME", "WEIGHTS_PATH", "load_toy", "read_meta"]
