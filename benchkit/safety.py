"""Names and paths that are safe to write: every name that becomes a path is checked here.

API (foundation module: importable from any layer, standard library only):

- ``safe_name(kind, name, max_len=128) -> str``: returns ``name`` unchanged if it is one path
  component made of ASCII letters, digits and ``. _ -``, does not start with a dot, does not
  contain ``..`` and is 1..``max_len`` characters long; otherwise raises
  :class:`benchkit.errors.ConfigError` naming the kind (``"benchmark"``, ``"dataset"``,
  ``"method"``, ...), the value and the rule. Use it for benchmark, dataset and method names.
- ``safe_key(key, kind="sample key") -> str``: a relative path of safe names joined by ``/``
  (sample keys may hold subfolders); every part must pass :func:`safe_name`.
- ``contained(root, path, what="path") -> Path``: ``path`` (relative paths are taken below
  ``root``) resolved, symlinks followed; raises ConfigError unless it equals or lies inside
  ``root`` resolved. Returns the resolved path.
- ``overlaps(a, b) -> bool``: the two folders are equal or one contains the other (resolved).

Example::

    from benchkit.safety import contained, safe_name
    out = contained(run_dir, Path(run_dir) / safe_name("dataset", ds_name), "dataset folder")
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_NAME = 128
MAX_KEY = 1024
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
RULE = "letters, digits, '.', '_' and '-' only, no leading dot, no '..', at most {n} characters"


def _err(msg: str):
    from benchkit.errors import ConfigError

    return ConfigError(msg)


def safe_name(kind: str, name, max_len: int = MAX_NAME) -> str:
    """``name`` if it is a safe single path component, else ConfigError naming kind, value and rule."""
    rule = RULE.format(n=max_len)
    if not isinstance(name, str):
        raise _err(f"{kind} name {name!r} is not a string; use {rule}")
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > max_len:
        problem = f"is {len(name)} characters long"
    elif not _ALLOWED.fullmatch(name):
        bad = sorted({c for c in name if not _ALLOWED.fullmatch(c)})
        problem = f"contains {''.join(bad)!r}"
    elif name.startswith("."):
        problem = "starts with a dot"
    elif ".." in name:
        problem = "contains '..'"
    if problem:
        raise _err(f"{kind} name {name!r} {problem}: it becomes a file or folder name, so it must use "
                   f"{rule} (fix: rename it)")
    return name


def safe_key(key, kind: str = "sample key") -> str:
    """A relative path of parts joined by '/': no absolute path, no '.'/'..' part, no hidden or empty part,
    no control or Windows-reserved characters (spaces and non-ASCII letters are allowed)."""
    if not isinstance(key, str) or not key:
        raise _err(f"{kind} {key!r} is empty or not a string (fix: give every sample a non-empty key)")
    if len(key) > MAX_KEY:
        raise _err(f"{kind} {key[:60]!r}... is {len(key)} characters long (at most {MAX_KEY}; fix: shorten it)")
    if key.startswith("/") or "\\" in key:
        raise _err(f"{kind} {key!r} is absolute or holds a backslash; keys are relative paths with '/' "
                   f"between parts (fix: rename the source file)")
    for part in key.split("/"):  # file names people use (spaces, accents, brackets) are fine; escapes are not
        bad = (not part or part in (".", "..") or part.startswith(".") or len(part) > 255
               or any(ord(c) < 32 or c in '\x7f:*?"<>|' for c in part))
        if bad:
            raise _err(f"{kind} {key!r}: part {part!r} is not safe: each '/'-separated part must be non-empty, "
                       f"not start with '.', hold no control characters or any of :*?\"<>| and be at most 255 "
                       f"characters (fix: rename the source file or folder)")
    return key


def contained(root, path, what: str = "path") -> Path:
    """``path`` resolved (relative to ``root`` if relative); ConfigError unless inside ``root``."""
    root_r = Path(os.path.expanduser(str(root))).resolve()
    p = Path(os.path.expanduser(str(path)))
    p_r = (p if p.is_absolute() else root_r / p).resolve()
    if p_r != root_r and not p_r.is_relative_to(root_r):
        raise _err(f"{what} {str(path)!r} resolves to {p_r}, outside {root_r}; it must stay inside that "
                   f"folder (fix: use a relative path without '..' and without symlinks leaving the folder)")
    return p_r


def overlaps(a, b) -> bool:
    """True if folders ``a`` and ``b`` (resolved) are equal or one contains the other."""
    ra, rb = Path(a).resolve(), Path(b).resolve()
    return ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra)
