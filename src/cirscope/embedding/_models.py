"""The model registry: names that :class:`~cirscope.Embedder` loads with their own loader.

A registered model carries its weights (no ``pretrained`` needed) and says how to load
them: a loader function, or a lazy ``"module:function"`` string so that registering imports
nothing heavy. The toy model shipped with cirscope registers itself here like any other.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Loader = Callable[..., tuple[Any, Any, Any]]


@dataclass(frozen=True)
class RegisteredModel:
    """A model known to cirscope by name (see :func:`register_model`)."""

    name: str
    loader: Loader | str
    aliases: tuple[str, ...] = ()
    weights_file: Path | None = None
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The name and its aliases."""
        return (self.name, *self.aliases)

    def resolve_loader(self) -> Loader:
        """The loader function (a ``"module:function"`` string is imported now)."""
        if callable(self.loader):
            return self.loader
        module, _, attr = self.loader.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"The loader {self.loader!r} of model {self.name!r} cannot be imported: {exc}") from exc

    def load(self, device: str) -> tuple[Any, Any, Any]:
        """Call the loader: ``(model, preprocess, tokenizer)`` with the model on ``device``."""
        out = self.resolve_loader()(device=device)
        if not (isinstance(out, tuple) and len(out) == 3):
            raise TypeError(
                f"The loader of model {self.name!r} must return (model, preprocess, tokenizer), "
                f"got {type(out).__name__}"
            )
        return out


_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(
    name: str,
    loader: Loader | str,
    *,
    aliases: tuple[str, ...] | list[str] = (),
    weights_file: str | os.PathLike | None = None,
    description: str = "",
    replace: bool = False,
) -> RegisteredModel:
    """Make ``cs.Embedder(name)`` load a model with your own loader.

    Parameters
    ----------
    name
        The model's name; ``aliases`` are other names for it.
    loader
        A function ``loader(device=...) -> (model, preprocess, tokenizer)``, as open_clip's
        ``create_model_and_transforms`` and ``get_tokenizer`` give them: the model has
        ``encode_image`` and ``encode_text`` and is in eval mode. Or a lazy
        ``"package.module:function"`` string, imported on first use only.
    weights_file
        The file the weights come from. Embeddings are cached under a hash of this file,
        so a run whose images are all cached never loads the model; without it the hash
        of the loaded weights is used.
    description
        Shown in the error that lists the ways to pass weights.
    replace
        Replace an existing, different registration of one of the names (otherwise a
        :class:`ValueError`). Registering the same model again is harmless.

    Returns
    -------
    RegisteredModel

    Notes
    -----
    Registration lives in the process: with ``cs.embed(..., engine="ray")`` register the
    model in a module the workers import too.

    Examples
    --------
    >>> spec = cs.register_model("my-clip", "my_package.models:load_clip", weights_file=None)
    >>> spec.name, spec.loader
    ('my-clip', 'my_package.models:load_clip')
    >>> cs.Embedder("my-clip")  # no pretrained needed: the loader brings the weights
    Embedder('my-clip', pretrained=None, not loaded)
    >>> cs.register_model("toy", "other:loader")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'toy' is already registered (model 'cirscope-toy'); pass replace=True to replace it
    >>> from cirscope.embedding._models import unregister_model
    >>> unregister_model("my-clip")
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A model name must be a non-empty string, got {name!r}")
    if isinstance(loader, str):
        module, sep, attr = loader.partition(":")
        if not (sep and module and attr):
            raise ValueError(f"A loader string must read 'package.module:function', got {loader!r}")
    elif not callable(loader):
        raise TypeError(f"loader must be a function or a 'module:function' string, got {type(loader).__name__}")
    if isinstance(aliases, str):
        aliases = (aliases,)
    spec = RegisteredModel(
        name=name,
        loader=loader,
        aliases=tuple(str(a) for a in aliases if str(a) != name),
        weights_file=None if weights_file is None else Path(weights_file).expanduser(),
        description=str(description),
    )
    for key in spec.names:
        old = _REGISTRY.get(key)
        if old is not None and old != spec and not replace:
            raise ValueError(
                f"{key!r} is already registered (model {old.name!r}); pass replace=True to replace it"
            )
    for key in spec.names:
        old = _REGISTRY.get(key)
        if old is not None and old != spec:  # drop every name of the replaced model
            for other in old.names:
                _REGISTRY.pop(other, None)
    for key in spec.names:
        _REGISTRY[key] = spec
    return spec


def registered_model(name: str) -> RegisteredModel | None:
    """The registration of ``name`` (a name or an alias), or ``None``."""
    return _REGISTRY.get(name)


def registered_models() -> list[RegisteredModel]:
    """Every registered model once, in registration order."""
    return list({id(spec): spec for spec in _REGISTRY.values()}.values())


def unregister_model(name: str) -> None:
    """Forget the model registered as ``name`` (all its names)."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise KeyError(f"No model registered as {name!r}")
    for key in spec.names:
        _REGISTRY.pop(key, None)
