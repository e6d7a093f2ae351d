"""One boundary vocabulary and one padding helper for every backend.

A boundary rule says how an image is extended beyond its edges (example row ``abcd``):

============  ================  =============  ====================  ==================  =================
benchkit      extension         numpy np.pad   OpenCV border          torch F.pad         scipy.ndimage
============  ================  =============  ====================  ==================  =================
reflect       ``dcb|abcd|cba``  ``reflect``    BORDER_REFLECT_101    ``reflect`` [1]_    ``mirror``
symmetric     ``cba|abcd|dcb``  ``symmetric``  BORDER_REFLECT        (none) [2]_         ``reflect``
edge          ``aaa|abcd|ddd``  ``edge``       BORDER_REPLICATE      ``replicate``       ``nearest``
constant      ``000|abcd|000``  ``constant``   BORDER_CONSTANT (0)   ``constant``        ``constant``
circular      ``bcd|abcd|abc``  ``wrap``       BORDER_WRAP [3]_      ``circular`` [1]_   ``wrap``
============  ================  =============  ====================  ==================  =================

.. [1] torch pads must be smaller than the padded axis for ``reflect``/``circular``; wider pads (and
   ``symmetric``) are gathered with the numpy index maps of :func:`pad_index` (same values).
.. [2] torch has no ``symmetric`` mode: gathered with :func:`pad_index`.
.. [3] ``cv2.filter2D`` rejects BORDER_WRAP; the cv2 convolution pads explicitly for ``circular``.

Note the name clash: numpy/torch ``reflect`` is OpenCV's REFLECT_101 and ndimage's ``mirror``;
ndimage's ``reflect`` is numpy's ``symmetric``. ``constant`` always pads with zeros. ``circular`` is
what a plain FFT product does (content leaving one side re-enters the other): only physically right
for periodic images.
"""

from __future__ import annotations

BOUNDARIES = ("reflect", "symmetric", "edge", "constant", "circular")
#: benchkit boundary -> ``np.pad`` mode
NP_PAD_MODE = {"reflect": "reflect", "symmetric": "symmetric", "edge": "edge", "constant": "constant",
               "circular": "wrap"}
#: benchkit boundary -> ``scipy.ndimage`` mode with the same extension (for tests and users comparing)
NDIMAGE_MODE = {"reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "constant": "constant",
                "circular": "wrap"}
#: benchkit boundary -> ``torch.nn.functional.pad`` mode (``symmetric`` has none)
TORCH_PAD_MODE = {"reflect": "reflect", "edge": "replicate", "constant": "constant", "circular": "circular"}
#: benchkit boundary -> name of the OpenCV border constant (``getattr(cv2, name)``)
CV2_BORDER_NAME = {"reflect": "BORDER_REFLECT_101", "symmetric": "BORDER_REFLECT", "edge": "BORDER_REPLICATE",
                   "constant": "BORDER_CONSTANT", "circular": "BORDER_WRAP"}


def check_boundary(boundary: str) -> str:
    """Return ``boundary`` if it is in :data:`BOUNDARIES`, else raise ValueError naming the choices."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    return boundary


def cv2_border(boundary: str) -> int:
    """The OpenCV border constant of ``boundary``."""
    import cv2

    return getattr(cv2, CV2_BORDER_NAME[check_boundary(boundary)])


def pad_index(n: int, before: int, boundary: str, after: int | None = None):
    """Source indices (int64 [before + n + after]) of an axis of length ``n`` padded by the rule
    (any pad width, also wider than the axis). Not for ``constant`` (no source index)."""
    import numpy as np

    if check_boundary(boundary) == "constant":
        raise ValueError("pad_index: 'constant' padding has no source indices")
    after = before if after is None else after
    return np.pad(np.arange(n), (before, after), mode=NP_PAD_MODE[boundary])


def _widths(pads) -> tuple[tuple[int, int], tuple[int, int]]:
    """``pads``: r | (ry, rx) | ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""
    import numpy as np

    if np.isscalar(pads):
        r = int(pads)
        return (r, r), (r, r)
    py, px = pads
    py = (int(py), int(py)) if np.isscalar(py) else (int(py[0]), int(py[1]))
    px = (int(px), int(px)) if np.isscalar(px) else (int(px[0]), int(px[1]))
    if min(py + px) < 0:
        raise ValueError(f"pad widths must be >= 0, got {pads!r}")
    return py, px


def pad(img, pads, boundary: str, *, axes: tuple[int, int] | None = None, backend: str | None = None, dst=None):
    """Pad the two spatial axes of ``img`` by ``pads`` with the boundary rule; every other axis untouched.

    ``pads``: ``r`` (all four sides), ``(ry, rx)`` or ``((top, bottom), (left, right))`` in px.
    ``img``: numpy array (spatial ``axes`` default (0, 1): H x W[ x C]) or torch tensor (spatial axes are
    the last two: [..., H, W]). ``backend``: ``"numpy"`` (``np.pad``, the reference), ``"cv2"``
    (``cv2.copyMakeBorder``; 2-D or H x W x C arrays, axes (0, 1); ``dst`` optional output buffer) or
    ``"torch"``; default: torch for tensors, else numpy. All backends give the same values.
    """
    check_boundary(boundary)
    (t, b), (l, r) = _widths(pads)
    is_torch = type(img).__module__.startswith("torch")
    backend = backend or ("torch" if is_torch else "numpy")
    if backend == "torch":
        return _pad_torch(img, t, b, l, r, boundary)
    if backend == "cv2":
        import cv2

        if axes not in (None, (0, 1)):
            raise ValueError("pad(backend='cv2') pads axes (0, 1) only")
        return cv2.copyMakeBorder(img, t, b, l, r, cv2_border(boundary), dst=dst)
    if backend != "numpy":
        raise ValueError(f"pad backend must be 'numpy', 'cv2' or 'torch', got {backend!r}")
    import numpy as np

    ay, ax = axes or (0, 1)
    widths = [(0, 0)] * img.ndim
    widths[ay], widths[ax] = (t, b), (l, r)
    return np.pad(img, widths, mode=NP_PAD_MODE[boundary])


def _pad_torch(x, t: int, b: int, l: int, r: int, boundary: str):
    """Pad the last two dims of a tensor: ``F.pad`` where it supports the rule and width, else a gather."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    fits = max(t, b) < h and max(l, r) < w  # torch's reflect/circular need pad < size
    if boundary in TORCH_PAD_MODE and (fits or boundary in ("constant", "edge")):
        if x.dim() < 3 or (boundary != "constant" and x.dim() < 4):  # non-constant F.pad needs a batch dim
            shape = x.shape
            y = F.pad(x.reshape((1,) * (4 - x.dim()) + tuple(shape)), (l, r, t, b), mode=TORCH_PAD_MODE[boundary])
            return y.reshape(tuple(shape[:-2]) + tuple(y.shape[-2:]))
        return F.pad(x, (l, r, t, b), mode=TORCH_PAD_MODE[boundary])
    iy = torch.from_numpy(pad_index(h, t, boundary, b)).to(x.device)
    ix = torch.from_numpy(pad_index(w, l, boundary, r)).to(x.device)
    return x.index_select(-2, iy).index_select(-1, ix)
