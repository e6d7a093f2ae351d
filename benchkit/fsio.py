"""Atomic file writes and hashing.

Writers create ``.benchkit-tmp-<pid>-<random>-<name>`` in the destination folder, fsync it
and ``os.replace`` it over the final name, so a killed process never leaves a half-written
file under a final name. Leftovers carry that benchkit-unique prefix (:data:`TMP_PREFIX`) and
are removed by :func:`clean_tmp` only inside folders holding benchkit's own ``spec.json``:
user files (``*.tmp`` or any other name) are never deleted.

Written files get the permissions any other tool would give them: ``0o666 & ~umask`` (``mkstemp`` alone
creates 0600, which made datasets on shared clusters unreadable by colleagues). An ``OSError`` while
writing (a full disk, a read-only folder) names the destination file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".benchkit-tmp-"


def tmp_name(name: str) -> str:
    """A benchkit-unique temporary name for ``name``: ``.benchkit-tmp-<pid>-<random>-<name>``."""
    return f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{name}"


def is_tmp_name(name: str) -> bool:
    """True for names made by :func:`tmp_name` (benchkit's own temporary files and folders)."""
    return name.startswith(TMP_PREFIX)


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


_UMASK: int | None = None


def current_umask() -> int:
    """The process umask (read once; from /proc on Linux, which does not change it even briefly)."""
    global _UMASK
    if _UMASK is None:
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Umask:"):
                        _UMASK = int(line.split()[1], 8)
                        break
        except (OSError, ValueError):
            pass
        if _UMASK is None:
            _UMASK = os.umask(0o022)
            os.umask(_UMASK)
    return _UMASK


def file_mode() -> int:
    """Mode of a newly written file: ``0o666 & ~umask`` (what ``open(path, "w")`` would give)."""
    return 0o666 & ~current_umask()


def mkstemp_honouring_umask(path: Path, suffix: str = ".tmp"):
    """``tempfile.mkstemp`` next to ``path`` with the mode set to :func:`file_mode` (mkstemp alone makes 0600).

    Returns ``(fd, tmp_path)`` like ``mkstemp``.
    """
    fd, tmp = tempfile.mkstemp(prefix=tmp_name(path.name)[:200] + ".", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def atomic_write_bytes(path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file + ``os.replace``.

    ``fsync=False`` skips the flush to disk: the file is still never visible half-written to other
    processes (a killed process leaves only ``*.tmp``); only a power loss could lose it, which the
    runners detect because they re-verify every output's sha256 on resume.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp_honouring_umask(path)
    except OSError as e:
        named = _named(e, path.parent)
        if named is e:
            raise
        raise named from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        named = _named(e, path) if isinstance(e, OSError) else e
        if named is e:
            raise
        raise named from e


def _named(e: OSError, path) -> OSError:
    """``e`` itself when it names a file, else the same error (same class and errno) naming ``path``."""
    if e.filename is not None or e.errno is None:
        return e
    return type(e)(e.errno, e.strerror, str(path))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def clean_tmp(folder, spec_name: str = "spec.json") -> int:
    """Remove benchkit's leftover temporary files (:data:`TMP_PREFIX`) below ``folder``.

    Does nothing unless ``folder`` holds benchkit's ``spec_name`` (a folder benchkit owns);
    never descends into sub-folders that hold their own ``spec_name`` (another dataset) and
    never follows symlinks; only names made by :func:`tmp_name` are removed, so user files
    (``*.tmp`` included) are never touched. Returns the count removed.
    """
    folder = Path(folder)
    if not (folder / spec_name).is_file():
        return 0
    n = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames
                       if not (here / d).is_symlink() and not (here / d / spec_name).exists()]
        for f in filenames:
            if is_tmp_name(f):
                try:
                    (here / f).unlink()
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
    parts = Path(rel_s).parts
    if os.path.isabs(rel_s) or ".." in parts:
        raise BenchkitError(f"{what}: {rel_s!r} must be a relative path inside {root} (fix: rebuild or repair "
                            f"the file that lists it)")
    p = Path(root) / rel_s
    # Fast path (one lstat per component of rel, not two realpath walks): with no ``..`` and no symbolic link
    # below root, realpath(root / rel) is realpath(root) / rel, inside root. Any link: the full check below.
    q = os.fspath(root)
    for part in parts:
        q = os.path.join(q, part)
        if os.path.islink(q):
            break
    else:
        return p
    try:
        Path(os.path.realpath(p)).relative_to(os.path.realpath(root))
    except ValueError:
        raise BenchkitError(f"{what}: {rel_s!r} leaves {root} (through a symbolic link)") from None
    return p
