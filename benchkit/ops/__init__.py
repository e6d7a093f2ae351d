"""Pure math layer (numpy, OpenCV, torch; imports nothing else from benchkit).

- :func:`convolve`: the one 2-D convolution/correlation API (FFT or direct; numpy, cv2 or torch
  backends, batched torch path) -- :mod:`benchkit.ops.conv`.
- :func:`pad` and the boundary vocabulary (``reflect``, ``symmetric``, ``edge``, ``constant``,
  ``circular``) with its table of numpy / OpenCV / torch / scipy.ndimage names -- :mod:`benchkit.ops.boundary`.
- FFT deconvolution helpers (OTF, padding for FFT, Wiener, Richardson-Lucy) -- :mod:`benchkit.ops.deconv`.

Names resolve lazily: ``import benchkit.ops`` loads nothing heavy.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "BOUNDARIES": "boundary", "NDIMAGE_MODE": "boundary", "NP_PAD_MODE": "boundary", "TORCH_PAD_MODE": "boundary",
    "CV2_BORDER_NAME": "boundary", "check_boundary": "boundary", "cv2_border": "boundary", "pad": "boundary",
    "pad_index": "boundary",
    "BACKENDS": "conv", "METHODS": "conv", "MODES": "conv", "OUTPUTS": "conv", "DIRECT_MAX_TAPS": "conv",
    "convolve": "conv", "is_identity": "conv", "stack_kernels": "conv",
    "scratch": "_scratch",
    "apply_otf": "deconv", "pad_for_fft": "deconv", "psf_otf": "deconv", "richardson_lucy": "deconv",
    "wiener_deconvolve": "deconv",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'benchkit.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
