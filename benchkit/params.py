"""Frozen parameter dataclasses that round-trip through JSON.

Every generator's ``sample()`` returns a :class:`Params` subclass; every random
decision is a field. ``to_json()`` produces plain JSON types; ``from_json()``
rebuilds the exact object (floats round-trip exactly through ``repr``). Nested
Params, tuples, optional fields and lists of Params are supported.

Define params as::

    @dataclass(frozen=True)
    class BlurParams(Params):
        type_name: ClassVar[str] = "mygen.BlurParams"   # stable, unique; listed in registry.PARAMS
        sigma: float

``to_json`` stores the class's stable ``type_name`` as ``"__type__"`` (so a manifest line can be replayed
without knowing the generator in advance, and moving a class to another module does not break old
manifests); ``from_json`` resolves it through :data:`benchkit.registry.PARAMS`. The 0.1.0 form,
``"module:QualName"``, is still read (via :data:`LEGACY_TYPES`, then classes already defined, then an
import). A subclass that declares no ``type_name`` (ad-hoc/test classes) is written in that module form.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import types
import typing
from typing import Any, Union


# Module paths written by benchkit 0.1.0 -> stable type names (old manifests keep replaying after a move).
LEGACY_TYPES: dict[str, str] = {
    "benchkit.generators.realesrgan.params:KernelParams": "realesrgan.KernelParams",
    "benchkit.generators.realesrgan.params:ResizeParams": "realesrgan.ResizeParams",
    "benchkit.generators.realesrgan.params:NoiseParams": "realesrgan.NoiseParams",
    "benchkit.generators.realesrgan.params:JpegParams": "realesrgan.JpegParams",
    "benchkit.generators.realesrgan.params:RealESRGANParams": "realesrgan.RealESRGANParams",
    "benchkit.generators.motion.trajectory:TrajectoryParams": "motion.TrajectoryParams",
    "benchkit.generators.motion.pipeline:MotionBlurParams": "motion.MotionBlurParams",
    "benchkit.generators.motion.svblur:RadialFieldParams": "motion.RadialFieldParams",
}

_DECLARED: dict[str, type] = {}  # stable name -> class, filled as classes are defined (uniqueness check)
_BY_PATH: dict[str, type] = {}  # "module:QualName" -> class, for classes without a stable name


class Params:
    """Mixin for frozen dataclasses holding sampled parameters."""

    # Stable "__type__" name; declare one per class (see module doc). Not annotated here: get_type_hints of a
    # subclass evaluates base annotations in the subclass's module.
    type_name = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        path = f"{cls.__module__}:{cls.__qualname__}"
        _BY_PATH[path] = cls
        name = cls.__dict__.get("type_name")  # declared on this class, not inherited
        if name is None:
            return
        if not isinstance(name, str) or not name or ":" in name:
            raise TypeError(f"{path}: type_name must be a non-empty string without ':' (got {name!r})")
        other = _DECLARED.get(name)
        if other is not None and f"{other.__module__}:{other.__qualname__}" != path:
            raise TypeError(f"{path}: type_name {name!r} is already used by "
                            f"{other.__module__}:{other.__qualname__}; choose a unique name")
        _DECLARED[name] = cls

    @classmethod
    def stable_type(cls) -> str:
        """The ``"__type__"`` value written for this class."""
        return cls.__dict__.get("type_name") or f"{cls.__module__}:{cls.__qualname__}"

    def to_json(self) -> dict:
        out: dict[str, Any] = {"__type__": type(self).stable_type()}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @classmethod
    def from_json(cls, data: dict):
        data = dict(data)
        tname = data.pop("__type__", None)
        target = cls
        if tname is not None:
            target = _load_type(tname)
            if cls is not Params and not issubclass(target, cls):
                raise TypeError(f"JSON holds {tname}, expected {cls.__qualname__}")
        hints = typing.get_type_hints(target, vars(sys.modules[target.__module__]))
        names = {f.name for f in dataclasses.fields(target)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{target.__qualname__}: unknown fields {sorted(unknown)}")
        kwargs = {k: _decode(v, hints.get(k, Any)) for k, v in data.items()}
        return target(**kwargs)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str):
        return cls.from_json(json.loads(text))


def _load_type(tname: str) -> type:
    """The Params class for a ``"__type__"`` value: a stable name (registry.PARAMS, or a class already
    defined with that ``type_name``) or the 0.1.0 ``"module:QualName"`` form."""
    if not isinstance(tname, str):
        raise TypeError(f"bad params __type__ {tname!r}")
    if ":" in tname:  # benchkit 0.1.0 form (or an ad-hoc class without a stable name)
        if tname in LEGACY_TYPES:
            return _load_type(LEGACY_TYPES[tname])
        if tname in _BY_PATH:
            return _BY_PATH[tname]
        module, _, qual = tname.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    else:
        from benchkit.registry import PARAMS, load_object, suggest

        if tname in PARAMS:
            obj = load_object(PARAMS[tname])
        elif tname in _DECLARED:
            obj = _DECLARED[tname]
        else:
            known = sorted(set(PARAMS) | set(_DECLARED))
            raise TypeError(f"unknown params type {tname!r}.{suggest(tname, known)} Known: {', '.join(known)} "
                            f"(a newer benchkit, or a plugin that is not imported?)")
        if obj.__dict__.get("type_name") != tname:
            raise TypeError(f"params type {tname!r} resolves to {obj.__module__}:{obj.__qualname__}, whose "
                            f"type_name is {obj.__dict__.get('type_name')!r}: fix registry.PARAMS")
    if not (isinstance(obj, type) and issubclass(obj, Params)):
        raise TypeError(f"params __type__ {tname!r} is not a Params class")
    return obj


def _encode(v):
    if isinstance(v, Params):
        return v.to_json()
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in v.items()}
    if hasattr(v, "item") and hasattr(v, "dtype"):  # numpy scalar (checked like a Python one below)
        v = v.item()
    if isinstance(v, float) and v != v:
        raise ValueError("NaN is not allowed in Params")
    return v


def _decode(v, hint):
    if v is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if isinstance(v, dict) and "__type__" in v:
            return Params.from_json(v)
        return _decode(v, non_none[0]) if len(non_none) == 1 else v
    if isinstance(v, dict) and "__type__" in v:
        return Params.from_json(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(x, args[0]) for x in v)
        if args:
            return tuple(_decode(x, a) for x, a in zip(v, args))
        return tuple(v)
    if origin is list:
        return [_decode(x, args[0] if args else Any) for x in v]
    if hint is float and isinstance(v, int):
        return float(v)
    return v
