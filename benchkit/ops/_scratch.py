"""Per-thread reusable work buffers (no allocation, no page faults on repeated calls)."""

from __future__ import annotations

import threading

import numpy as np

_SCRATCH = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A per-thread work array of ``shape`` (contents undefined), reused across calls: a view of a flat
    buffer that only grows, so repeated calls at varying sizes do not allocate (and page-fault)."""
    dtype = np.dtype(dtype)
    key = name if dtype == np.float32 else f"{name}:{dtype.str}"
    n = int(np.prod(shape))
    store = _SCRATCH.__dict__
    buf = store.get(key)
    if buf is None or buf.size < n:
        buf = store[key] = np.empty(n, dtype)
    return buf[:n].reshape(shape)
