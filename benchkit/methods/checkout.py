"""A user's local checkout of a method's official code, for code benchkit must not re-create.

HAODiff's repository has no licence file and SinSR's is CC BY-NC-SA: benchkit imports their classes from the
user's own clone instead of shipping a copy. Where the clone lives (first that is set wins):

1. the method option ``code_dir`` (``benchkit evaluate --config``: ``methods: {haodiff: {code_dir: ...}}``);
2. the environment variable ``BENCHKIT_<NAME>_CODE`` (``BENCHKIT_HAODIFF_CODE``, ``BENCHKIT_SINSR_CODE``);
3. ``<weights root>/methods/<name>/code`` (a symlink to the clone works).

:class:`Checkout` checks that the expected files are there (a clear error lists what is missing), imports modules
from it without leaving the clone on ``sys.path`` for longer than the import, refuses a module of the same name
found elsewhere (an installed package shadowing the clone), and reads the clone's git commit (from ``.git``
files, no subprocess) so results record exactly which code produced them.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

from benchkit.errors import BenchkitError


_IMPORT_LOCK = threading.Lock()  # sys.path is process-wide: multi-device runs load methods from several threads


class CheckoutError(BenchkitError):
    """The official code checkout is missing, incomplete or shadowed."""

    exit_code = 2


def env_var(method: str) -> str:
    """``BENCHKIT_<NAME>_CODE`` for a method name (non-alphanumerics become ``_``)."""
    return "BENCHKIT_" + re.sub(r"[^A-Za-z0-9]", "_", method).upper() + "_CODE"


def resolve_code_dir(method: str, option, weights_dir) -> tuple[Path | None, str]:
    """(folder, how it was chosen): option > ``$BENCHKIT_<NAME>_CODE`` > ``<weights_dir>/code``."""
    if option:
        return Path(os.path.expanduser(str(option))).resolve(), "option code_dir"
    env = os.environ.get(env_var(method))
    if env:
        return Path(os.path.expanduser(env)).resolve(), f"${env_var(method)}"
    if weights_dir:
        return (Path(weights_dir) / "code").resolve(), "<weights>/code"
    return None, "unset"


def git_commit(root: Path) -> str | None:
    """The checked-out commit of a git clone (40 hex), read from ``.git``; None when not a git clone."""
    git = Path(root) / ".git"
    if git.is_file():  # worktree / submodule: "gitdir: PATH"
        m = re.match(r"gitdir:\s*(.+)", git.read_text(encoding="utf-8", errors="replace").strip())
        if not m:
            return None
        git = (Path(root) / m.group(1).strip()).resolve()
    head = git / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text(encoding="utf-8", errors="replace").strip()
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    m = re.match(r"ref:\s*(\S+)", ref)
    if not m:
        return None
    common = git
    if (git / "commondir").is_file():
        common = (git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in (git, common):
        f = base / m.group(1)
        if f.is_file():
            sha = f.read_text(encoding="utf-8", errors="replace").strip()
            return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == m.group(1) and re.fullmatch(r"[0-9a-f]{40}", parts[0]):
                return parts[0]
    return None


class Checkout:
    """The official code of ``method`` at ``root``; ``required`` are paths relative to it (files) that must exist.

    ``repo`` names the official repository for error messages (``"openmmlab/haodiff"``).
    """

    def __init__(self, method: str, root: Path | None, required: tuple, repo: str, how: str = ""):
        self.method, self.root, self.required, self.repo, self.how = method, root, tuple(required), repo, how

    def fix(self) -> str:
        return (f"clone https://github.com/{self.repo} and point benchkit at it: the method option code_dir, "
                f"${env_var(self.method)}, or a folder/symlink <weights root>/methods/{self.method}/code")

    def missing(self) -> list[str]:
        if self.root is None or not self.root.is_dir():
            return ["(the folder itself)"]
        return [r for r in self.required if not (self.root / r).is_file()]

    def problem(self) -> str:
        """'' when usable, else a one-line reason naming the folder, what is missing and the fix."""
        lack = self.missing()
        if not lack:
            return ""
        where = self.root if self.root is not None else "no code_dir"
        what = "does not exist" if lack == ["(the folder itself)"] else f"lacks {', '.join(lack)}"
        return f"{self.method}: official code checkout {where} ({self.how or 'unset'}) {what} (fix: {self.fix()})"

    def commit(self) -> str | None:
        return git_commit(self.root) if self.root is not None and self.root.is_dir() else None

    def fingerprint(self, patterns, extra=()) -> str | None:
        """sha256 (16 hex) over the files matching ``patterns`` (globs relative to the clone) and ``extra`` paths:
        identifies the code when the clone has no ``.git``; None when the clone is absent."""
        import hashlib

        if self.root is None or not self.root.is_dir():
            return None
        files = sorted({p for g in patterns for p in self.root.glob(g) if p.is_file()})
        files += [Path(p) for p in extra if p is not None and Path(p).is_file()]
        h = hashlib.sha256()
        for p in files:
            h.update(p.relative_to(self.root).as_posix().encode() if p.is_relative_to(self.root) else str(p).encode())
            h.update(b"\0" + p.read_bytes() + b"\0")
        return h.hexdigest()[:16]

    def import_module(self, name: str):
        """Import ``name`` (dotted) from the checkout; CheckoutError if missing, broken or shadowed."""
        why = self.problem()
        if why:
            raise CheckoutError(why)
        with _IMPORT_LOCK:
            return self._import(name)

    def _import(self, name: str):
        import importlib

        root = str(self.root)
        top = name.split(".")[0]
        loaded = sys.modules.get(top)
        if loaded is not None and not _inside(getattr(loaded, "__file__", None) or _pkg_path(loaded), self.root):
            raise CheckoutError(f"{self.method}: module {top!r} is already imported from "
                                f"{getattr(loaded, '__file__', '?')}, not from the checkout {root} "
                                f"(fix: uninstall or rename the other {top!r}, or run in a fresh process)")
        added = root not in sys.path
        if added:
            sys.path.insert(0, root)
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            raise CheckoutError(f"{self.method}: importing {name} from the checkout {root} failed: {e} "
                                f"(fix: install the checkout's requirements, or {self.fix()})") from e
        finally:
            if added:
                try:
                    sys.path.remove(root)
                except ValueError:
                    pass
        if not _inside(getattr(mod, "__file__", None) or _pkg_path(mod), self.root):
            raise CheckoutError(f"{self.method}: {name} resolved to {getattr(mod, '__file__', '?')}, outside the "
                                f"checkout {root} (fix: remove the shadowing package)")
        return mod

    def status_row(self, owner: str, name: str, optional: str = "") -> dict:
        """A row for ``benchkit weights status`` (same fields as method weight rows); ``optional``: what the
        checkout adds when the method runs without it (its absence is then status 'optional', not 'missing')."""
        why = self.problem()
        commit = self.commit()
        if why and optional:
            why = f"optional ({optional}): {why}"
        return {"owner": owner, "name": name, "file": f"code checkout ({self.repo})",
                "path": str(self.root) if self.root is not None else "-",
                "status": ("optional" if optional else "missing") if why else "unverified",
                "detail": why or (f"commit {commit[:12]}" if commit else "not a git clone (commit not recorded)")}


def _pkg_path(mod):
    paths = list(getattr(mod, "__path__", []) or [])
    return paths[0] if paths else None


def _inside(path, root: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False
