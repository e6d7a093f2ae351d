"""Provenance recorded with every run and leaderboard: versions, git sha, device."""

from __future__ import annotations


def git_sha(repo=None) -> str | None:
    """``git rev-parse HEAD`` (``+dirty`` if tracked files changed) of the benchkit checkout this package runs
    from, or of ``repo`` if given. None when benchkit is not running from its own checkout (an installed copy,
    even one inside some other project's git work tree), or when git is missing or fails: the sha of an
    unrelated repository must never be recorded as benchkit's."""
    import subprocess
    from pathlib import Path

    from benchkit.config import PACKAGE_DIR, source_checkout

    def git(*args, cwd):
        try:
            r = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None

    if repo is None:
        root = source_checkout()  # the package's parent holds benchkit's own pyproject.toml
        if root is None:
            return None
        top = git("rev-parse", "--show-toplevel", cwd=PACKAGE_DIR)
        if top is None or Path(top).resolve() != root.resolve():
            return None
        repo = root
    sha = git("rev-parse", "HEAD", cwd=repo)
    if sha is None:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=repo)
    return sha + ("+dirty" if dirty else "")


def _version(pkg: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str = "cpu") -> dict:
    """Python/platform and package versions (read from metadata: nothing heavy is imported)."""
    import platform

    from benchkit import __version__

    env = {
        "benchkit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "cpu_count": __import__("os").cpu_count(),
        "opencv_ipp": __import__("os").environ.get("OPENCV_IPP", ""),  # pinned by benchkit/__init__.py
    }
    for pkg in ("numpy", "scipy", "opencv-python", "torch", "torchvision", "pyiqa", "scikit-image", "pandas"):
        env[pkg] = _version(pkg)
    if str(device).startswith("cuda"):
        try:
            import torch

            env["gpu"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
        except Exception as e:  # record, never fail the run over provenance
            env["gpu"] = f"unknown ({type(e).__name__})"
    return env
