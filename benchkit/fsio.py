"""Atomic file writes and hashing.

Writers create ``<name>.<random>.tmp`` in the destination folder, fsync it and
``os.replace`` it over the final name, so a killed process never leaves a
half-written file under a final name (leftover ``*.tmp`` files are ignored and
cleaned by the runners).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file + ``os.replace``.

    ``fsync=False`` skips the flush to disk: the file is still never visible half-written to other
    processes (a killed process leaves only ``*.tmp``); only a power loss could lose it, which the
    runners detect because they re-verify every output's sha256 on resume.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def clean_tmp(folder) -> int:
    """Remove leftover ``*.tmp`` files below ``folder`` (from killed runs). Returns the count."""
    n = 0
    for p in Path(folder).rglob("*.tmp"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def inside(root, rel, what: str = "path") -> Path:
    """``root / rel`` resolved, required to stay inside ``root`` (no absolute paths, no ``..`` escapes,
    no symlink leaving it); otherwise a BenchkitError naming ``what``."""
    import os

    from benchkit.errors import BenchkitError

    rel_s = str(rel)
    if os.path.isabs(rel_s) or ".." in Path(rel_s).parts:
        raise BenchkitError(f"{what}: {rel_s!r} must be a relative path inside {root} (fix: rebuild or repair "
                            f"the file that lists it)")
    p = Path(root) / rel_s
    try:
        Path(os.path.realpath(p)).relative_to(os.path.realpath(root))
    except ValueError:
        raise BenchkitError(f"{what}: {rel_s!r} leaves {root} (through a symbolic link)") from None
    return p
