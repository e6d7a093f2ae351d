"""Strict config loading: YAML -> frozen dataclasses, unknown keys are errors.

A pipeline file ``benchkit/pipelines/<name>.yaml`` is ONE YAML mapping::

    name: realesrgan_x1          # must equal the file stem
    generator: realesrgan        # a key of benchkit.registry.GENERATORS
    description: "..."
    config: { ... }              # the generator's Config dataclass, every key checked

Pipelines are looked up in ``$BENCHKIT_PIPELINES`` (if set, ``os.pathsep``-separated folders), then the
package's own ``benchkit/pipelines/`` folder (package data: present in installed wheels too);
``--pipeline`` also accepts a path to a YAML file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Union

from benchkit.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
# The folder above the package: the repository root in a source checkout, ``site-packages`` when installed.
# Use :func:`source_checkout` to know which; never write below it.
REPO_ROOT = PACKAGE_DIR.parent
PIPELINES_DIR = PACKAGE_DIR / "pipelines"  # package data (pyproject: [tool.setuptools.package-data])
BENCHMARKS_DIR = PACKAGE_DIR / "benchmarks"
PIPELINE_KEYS = {"name", "generator", "description", "config"}


def source_checkout() -> Path | None:
    """The benchkit source tree this package runs from (the folder holding a ``pyproject.toml`` whose
    ``[project] name`` is ``benchkit``), or None for an installed copy. Reads one small file; no git."""
    pp = REPO_ROOT / "pyproject.toml"
    try:
        text = pp.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import tomllib  # Python >= 3.11

        name = (tomllib.loads(text).get("project") or {}).get("name")
    except ImportError:  # Python 3.10: the [project] table's name line
        import re

        m = re.search(r"^\[project\]\s*$(?:(?!^\[).)*?^name\s*=\s*[\"']([^\"']+)", text, re.M | re.S)
        name = m.group(1) if m else None
    except ValueError:  # not TOML
        return None
    return REPO_ROOT if name == "benchkit" else None


def pipeline_dirs() -> list[Path]:
    """``$BENCHKIT_PIPELINES`` folders (first wins on equal names), then the shipped ``benchkit/pipelines``."""
    dirs = []
    env = os.environ.get("BENCHKIT_PIPELINES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(PIPELINES_DIR)
    return dirs


def available_pipelines() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in pipeline_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def find_pipeline(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    found = available_pipelines()
    if name_or_path not in found:
        from benchkit.registry import suggest

        raise ConfigError(
            f"unknown pipeline {name_or_path!r}.{suggest(name_or_path, found)} "
            f"Known: {', '.join(sorted(found)) or '(none)'} (files in {', '.join(map(str, pipeline_dirs()))})"
        )
    return found[name_or_path]


def load_yaml(path) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e


def load_pipeline(name_or_path: str):
    """Return ``(pipeline_name, generator_instance, raw_block)`` for a pipeline name or YAML path."""
    from benchkit.registry import resolve

    path = find_pipeline(name_or_path)
    block = load_yaml(path)
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: expected one mapping with keys {sorted(PIPELINE_KEYS)}")
    unknown = set(block) - PIPELINE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; allowed {sorted(PIPELINE_KEYS)}")
    if "generator" not in block:
        raise ConfigError(f"{path}: missing 'generator'")
    gen_cls = resolve("generator", block["generator"])
    cfg = from_dict(gen_cls.Config, block.get("config") or {}, where=f"{path}: config")
    return block.get("name", path.stem), gen_cls(cfg), block


def from_dict(cls, data: Any, where: str = "config"):
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    if dataclasses.is_dataclass(data):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        from benchkit.registry import suggest

        hints = "".join(suggest(k, fields) for k in sorted(unknown))
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}.{hints} Allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    kwargs = {k: _coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e
    return obj


def _coerce(v, hint, where):
    if hint is Any:
        return v
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errs = []
        for a in non_none:
            try:
                return _coerce(v, a, where)
            except ConfigError as e:
                errs.append(str(e))
        raise ConfigError(errs[0] if errs else f"{where}: bad value {v!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, v, where)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {v!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(x, args[0], where) for x in v)
        if args and len(args) != len(v):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(v)}")
        return tuple(_coerce(x, a, where) for x, a in zip(v, args or [Any] * len(v)))
    if origin is list:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {v!r}")
        return [_coerce(x, args[0] if args else Any, where) for x in v]
    if origin is dict:
        if not isinstance(v, dict):
            raise ConfigError(f"{where}: expected a mapping, got {v!r}")
        return {k: _coerce(x, args[1] if args else Any, where) for k, x in v.items()}
    if origin is typing.Literal:
        if v not in args:
            raise ConfigError(f"{where}: {v!r} not one of {list(args)}")
        return v
    if hint is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {v!r}")
        return float(v)
    if hint is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: expected an integer, got {v!r}")
        return v
    if hint is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: expected true/false, got {v!r}")
        return v
    if hint is str:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: expected a string, got {v!r}")
        return v
    return v


def to_plain(obj) -> Any:
    """Dataclass -> JSON-able dict (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def fingerprint(obj) -> str:
    """sha256 of canonical JSON (sorted keys, compact) of ``obj``; first 16 hex chars."""
    text = json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
