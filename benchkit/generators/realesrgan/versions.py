"""Versions of the Real-ESRGAN generator's ``apply`` and the CPU operations module each one runs.

- ``"2"`` (new builds): :mod:`.ops_v2` (half-resolution pyramid USM Gaussians, one Poisson table per ``vals``);
- ``"1.1"`` (benchkit 0.1.0 datasets): :mod:`.ops`, kept byte for byte.
"""

from __future__ import annotations

CURRENT = "2"
REPLAYED = ("1.1",)


def cpu_ops(version: str):
    """The CPU operations module of a generator version (``usm_sharpen``, ``degrade``, ...)."""
    if version == "2":
        from . import ops_v2

        return ops_v2
    if version == "1.1":
        from . import ops

        return ops
    raise ValueError(f"realesrgan has no version {version!r} (known: {', '.join((CURRENT, *REPLAYED))})")
