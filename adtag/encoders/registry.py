"""One registry of encoders, as timm has for models: name -> kind, output dimension, weights, factory.

``create_encoder("visual/efficientnet-lite0")`` is the one way in; ``list_encoders("visual/*")`` finds
them. A name is ``KIND/MODEL`` where KIND is the role the encoder plays in the pipeline:
``visual`` (frames -> (N, D)), ``audio`` (16 kHz samples -> (T, D)), ``asr`` (samples -> text),
``ocr`` (BGR image -> lines) and ``text`` (strings -> (N, D)).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adtag.errors import AdtagError

KINDS = ("visual", "audio", "asr", "ocr", "text")


@dataclass(frozen=True)
class EncoderSpec:
    """What the registry knows about an encoder before it is built."""

    name: str
    kind: str
    dim: int | None  # output dimension; None for encoders that output text (asr, ocr)
    weights: str  # where the weights come from: a registry package, or "local path"
    factory: Callable[..., Any]
    needs_path: bool = False
    description: str = ""
    prepare: Callable[[], Any] | None = None  # builds derived files in the cache (run once, before workers)


_REGISTRY: dict[str, EncoderSpec] = {}
_BUILTIN = ("visual", "audio", "asr", "ocr", "text", "paper")


def register_encoder(
    name: str,
    dim: int | None,
    weights: str,
    needs_path: bool = False,
    description: str = "",
    prepare: Callable[[], Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``factory(threads=..., path=..., **options)`` under ``name``.

    ``prepare()``, if given, builds what the factory reads from the cache (an exported graph, an
    assembled model), so parallel workers do not each build it on first use.
    """
    kind = name.split("/", 1)[0]
    if kind not in KINDS or "/" not in name:
        raise ValueError(f"encoder name must be KIND/MODEL with KIND in {KINDS}: {name!r}")

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} registered twice")
        _REGISTRY[name] = EncoderSpec(name, kind, dim, weights, factory, needs_path, description, prepare)
        return factory

    return wrap


def _load_builtin() -> None:
    # Importing the modules registers their encoders; each imports its heavy library lazily.
    import importlib

    for module in _BUILTIN:
        importlib.import_module(f"adtag.encoders.{module}")


def list_encoders(pattern: str = "*") -> list[str]:
    """Registered encoder names matching a glob pattern, sorted."""
    _load_builtin()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def encoder_spec(name: str) -> EncoderSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AdtagError(f"unknown encoder {name!r}; registered: {', '.join(list_encoders())}") from None


def create_encoder(name: str, threads: int = 1, path: str | None = None, **options: Any) -> Any:
    """Build the encoder registered as ``name`` (``KIND/MODEL``, optionally ``KIND/MODEL:PATH``)."""
    if ":" in name and path is None:
        name, path = name.split(":", 1)
    spec = encoder_spec(name)
    if spec.needs_path and not path:
        raise AdtagError(f"encoder {name!r} loads weights from a local path: use '{name}:/path/to/model'")
    if path and not spec.needs_path:
        raise AdtagError(f"encoder {name!r} ships its weights ({spec.weights}); it takes no path")
    kwargs: dict[str, Any] = dict(options, threads=threads)
    if spec.needs_path:
        kwargs["path"] = path
    return spec.factory(**kwargs)


def prepare_encoder(name: str) -> None:
    """Build the cached files encoder ``name`` needs (a no-op when they exist or it needs none)."""
    spec = encoder_spec(name.split(":", 1)[0])
    if spec.prepare is not None:
        spec.prepare()
