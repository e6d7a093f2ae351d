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
PIPELINE_KEYS = {"name", "generator", "description", "config", "version"}  # version: pin a generator version


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
    """Parse a YAML config with ``yaml.safe_load`` (plain data only: no ``!!python/...`` tags, no code).

    Every failure (missing or unreadable file, binary or non-UTF-8 content, syntax error, a disallowed tag)
    is a one-line :class:`ConfigError` naming the file, the line and the fix.
    """
    import yaml

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError as e:
        raise ConfigError(f"{path}: is a folder, not a YAML file; fix: pass the path of a .yaml file") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror}); fix: check the path and its permissions") from e
    binary = f"{path}: is a binary file, not a YAML text file; fix: pass a YAML config (see pipelines/*.yaml)"
    if b"\0" in raw:
        raise ConfigError(binary)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{binary} (invalid UTF-8 at byte {e.start}; save it as UTF-8)") from e
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        tag = getattr(e, "problem", "") or ""
        where = _yaml_where(e)
        if "python" in tag or "constructor for the tag" in tag:
            raise ConfigError(f"{path}{where}: {_one_line(tag)}: benchkit reads plain YAML only (mappings, lists, "
                              "strings, numbers); fix: remove the !!tag") from e
        raise ConfigError(f"{path}{where}: invalid YAML: {_one_line(tag or str(e))}; fix: correct the YAML syntax") from e
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e)
        ctx = getattr(e, "context", None)
        what = f"{ctx} ... {problem}" if ctx else problem
        raise ConfigError(f"{path}{_yaml_where(e)}: invalid YAML: {_one_line(what)}; fix: correct the YAML syntax") from e


def _yaml_where(e) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is not None and getattr(mark, "line", None) is not None:
        return f": line {mark.line + 1}, column {mark.column + 1}"
    pos = getattr(e, "position", None)  # ReaderError (a control character)
    return f": character {pos}" if pos is not None else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
    if block.get("version") is None:
        return block.get("name", path.stem), gen_cls(cfg), block
    try:  # e.g. resume a dataset begun with an earlier version the generator still runs
        gen = gen_cls(cfg, version=str(block["version"]))
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"{path}: version: {e}") from None
    return block.get("name", path.stem), gen, block


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
    except (TypeError, ValueError, ConfigError) as e:
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


# ------------------------------------------------------------------------- value validation
# Shared checks for the config dataclasses' ``__post_init__``. Each raises ConfigValueError (a ConfigError
# and a ValueError) naming the key, the value and the allowed range; ``from_dict`` prefixes the file/section.


def _fmt(v) -> str:
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        if v == float("-inf"):
            return "-inf"
        return f"{v:.6g}"
    return repr(v) if isinstance(v, str) else str(v)


def _interval(lo, hi, lo_open=False, hi_open=False) -> str:
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else _fmt(lo)}, {'inf' if hi is None else _fmt(hi)}{right}"


def _bad(key, value, allowed: str, fix: str = ""):
    from benchkit.errors import ConfigValueError

    shown = [_fmt(x) for x in value] if isinstance(value, (list, tuple)) else _fmt(value)
    if isinstance(shown, list):
        shown = "[" + ", ".join(shown) + "]"
    return ConfigValueError(f"{key} = {shown}: {allowed}" + (f"; fix: {fix}" if fix else f"; fix: set {key} "
                                                                                          f"within that range"))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(key: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False, integer=False,
                 odd=False) -> None:
    """``value`` is a finite number (an integer when ``integer``; odd when ``odd``) inside ``[lo, hi]``
    (open ends as flagged; ``None`` = unbounded)."""
    import math

    span = _interval(lo, hi, lo_open, hi_open)
    kind = "an odd integer" if odd else ("an integer" if integer else "a finite number")
    if not _is_number(value):
        raise _bad(key, value, f"must be {kind} in {span}")
    if not math.isfinite(value):
        raise _bad(key, value, f"must be {kind} in {span} (NaN and infinity are not allowed)")
    if (integer or odd) and not float(value).is_integer():
        raise _bad(key, value, f"must be {kind} in {span}")
    if (lo is not None and (value < lo or (lo_open and value == lo))) or \
            (hi is not None and (value > hi or (hi_open and value == hi))):
        raise _bad(key, value, f"must be {kind} in {span}")
    if odd and int(value) % 2 == 0:
        raise _bad(key, value, f"must be {kind} in {span}")


def check_probability(key: str, value) -> None:
    """A probability: finite, in [0, 1]."""
    check_number(key, value, 0.0, 1.0)


def check_pair(key: str, pair, lo=None, hi=None, *, lo_open=False, hi_open=False, integer=False) -> None:
    """A ``(low, high)`` range: two finite numbers with ``low <= high``, both inside ``[lo, hi]``."""
    span = _interval(lo, hi, lo_open, hi_open)
    need = f"must be [low, high] with low <= high, both {'integers' if integer else 'finite numbers'} in {span}"
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise _bad(key, pair, need)
    for v in pair:
        try:
            check_number(key, v, lo, hi, lo_open=lo_open, hi_open=hi_open, integer=integer)
        except ValueError:
            raise _bad(key, pair, need) from None
    if pair[0] > pair[1]:
        raise _bad(key, pair, need, f"swap the values to [{_fmt(pair[1])}, {_fmt(pair[0])}]")


def check_distribution(key: str, probs, n: int | None = None, tol: float = 1e-6) -> None:
    """Probabilities of a categorical choice: each finite in [0, 1], ``n`` of them (when given), sum 1."""
    import math

    need = (f"must be {n if n is not None else 'one or more'} probabilities, each in [0, 1], summing to 1")
    if not isinstance(probs, (list, tuple)) or not probs or (n is not None and len(probs) != n):
        raise _bad(key, probs, need, f"give {n} values" if n is not None else "")
    if any(not _is_number(p) or not math.isfinite(p) or not 0.0 <= p <= 1.0 for p in probs):
        raise _bad(key, probs, need, "use values in [0, 1] that add up to 1")
    if abs(math.fsum(probs) - 1.0) > tol:
        raise _bad(key, probs, need + f" (they sum to {_fmt(math.fsum(probs))})", "make them add up to 1")


def check_sizes(key: str, sizes, lo: int, hi: int, *, odd: bool = False) -> None:
    """A non-empty list of integers in ``[lo, hi]`` (odd when ``odd``)."""
    kind = "odd integers" if odd else "integers"
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise _bad(key, sizes, f"must be a non-empty list of {kind} in [{lo}, {hi}]")
    for s in sizes:
        try:
            check_number(key, s, lo, hi, integer=True, odd=odd)
        except ValueError:
            raise _bad(key, sizes, f"must be a non-empty list of {kind} in [{lo}, {hi}]") from None
