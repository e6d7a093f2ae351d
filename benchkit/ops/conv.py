"""One 2-D convolution API over numpy, OpenCV and torch, by FFT or directly.

:func:`convolve` (``mode="convolution"``, the default)::

    y[i, j] = sum_{a, b} k[a, b] x[i - a + Kh//2, j - b + Kw//2]

and ``mode="correlation"`` (``cv2.filter2D``'s operation)::

    y[i, j] = sum_{a, b} k[a, b] x[i + a - Kh//2, j + b - Kw//2]

Kernel centre (anchor) = pixel ``(Kh // 2, Kw // 2)`` in both modes, for odd and even sides (even sides:
the centre is the lower-right of the middle four; convolution = correlation with the kernel flipped
and the anchor at ``(Kh - 1 - Kh//2, Kw - 1 - Kw//2)``). ``x`` is extended beyond the image by
``boundary`` (:mod:`benchkit.ops.boundary`). ``output="full"``: the full linear result,
(H + Kh - 1) x (W + Kw - 1), zero extension (``boundary`` ignored).

Every path pads the image by the kernel footprint (``(Kh//2, Kh-1-Kh//2)`` rows for correlation,
mirrored for convolution) and takes the *valid* part, so FFT wrap-around never reaches the output:

- ``numpy``: ``fft`` = ``scipy.fft`` real transforms at ``next_fast_len(H + Kh - 1)`` per axis (one
  vectorised transform over all channels); ``direct`` = sum of shifted slices (one pass per tap,
  float64 accumulator; separable kernels: two 1-D passes).
- ``cv2``: ``direct`` = ``cv2.filter2D`` / ``cv2.sepFilter2D`` (for ``circular``, which filter2D
  rejects, the image is padded first); ``fft`` = ``cv2.dft`` per channel at
  ``cv2.getOptimalDFTSize(H + Kh - 1)`` (CCS-packed real transforms; float32), about 3x cheaper than
  filter2D's own DFT path (which tiles) for 512 px images. Per-thread scratch planes; ``out`` optional.
- ``torch``: ``direct`` = grouped ``conv2d`` (per-image kernels in one call); ``fft`` = ``torch.fft``
  real transforms. Batched: ``img`` [B, C, H, W] with one kernel per image.

``method="auto"``: separable kernels direct; cv2/torch: direct below 130 taps (OpenCV's own float32
direct/DFT switch), FFT from there; numpy: FFT. All paths agree to float rounding
(tests/test_ops.py states the tolerances).
"""

from __future__ import annotations

import numpy as np

from .boundary import check_boundary, cv2_border, pad
from ._scratch import scratch

METHODS = ("auto", "fft", "direct")
BACKENDS = ("numpy", "cv2", "torch")
MODES = ("convolution", "correlation")
OUTPUTS = ("same", "full")
#: cv2/torch ``method="auto"``: kernels with fewer taps go direct (OpenCV's float32 switch: 11x11 direct).
DIRECT_MAX_TAPS = 130


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def is_identity(kernel) -> bool:
    """True for a delta kernel (1 at the centre ``(Kh//2, Kw//2)``, 0 elsewhere): a no-op in both modes."""
    k = np.asarray(kernel)
    c = (k.shape[0] // 2, k.shape[1] // 2)
    return bool(k[c] == 1 and np.count_nonzero(k) == 1)


def stack_kernels(kernels) -> np.ndarray:
    """Zero-pad kernels of different sizes, centred (centre ``K//2`` kept), to one [B, K, K] float64 array.

    All sides must have one parity (all odd or all even), else the centres cannot be aligned."""
    ks = [np.asarray(k, np.float64) for k in kernels]
    for k in ks:
        if k.ndim != 2:
            raise ValueError(f"kernels must be 2-D, got shape {k.shape}")
    size = max(max(k.shape) for k in ks)
    if any((size - s) % 2 for k in ks for s in k.shape):
        raise ValueError(f"kernel sides must share one parity to be stacked, got {[k.shape for k in ks]}")
    out = np.zeros((len(ks), size, size), np.float64)
    for i, k in enumerate(ks):
        oy, ox = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
        out[i, oy: oy + k.shape[0], ox: ox + k.shape[1]] = k
    return out


def _footprint(kh: int, kw: int, mode: str, output: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pads after which a *valid* correlation (kernel flipped for
    convolution) gives the requested output."""
    if output == "full":
        return kh - 1, kh - 1, kw - 1, kw - 1
    ay = kh // 2 if mode == "correlation" else kh - 1 - kh // 2
    ax = kw // 2 if mode == "correlation" else kw - 1 - kw // 2
    return ay, kh - 1 - ay, ax, kw - 1 - ax


def _kernel_shape(kernel, sep: bool) -> tuple[int, int]:
    if sep:
        return len(kernel[0]), len(kernel[1])
    return int(kernel.shape[-2]), int(kernel.shape[-1])


def convolve(img, kernel, *, method: str = "auto", boundary: str = "reflect", backend: str | None = None,
             mode: str = "convolution", output: str = "same", axes: tuple[int, int] | None = None, out=None,
             cache_spectrum: bool = False, workers: int | None = None):
    """Convolve (or correlate) the two spatial axes of ``img`` with ``kernel``; see the module docstring.

    ``img``: numpy float array H x W[ x C] (``axes``: its two spatial axes, default (0, 1); every other
    axis is a channel), or for ``backend="torch"`` a tensor [B, C, H, W] / [C, H, W] / [H, W] (spatial
    axes last; runs on its device). ``kernel``: 2-D array (any sides), a tuple ``(ky, kx)`` of 1-D taps
    (separable kernel ``outer(ky, kx)``), or (torch) [B, Kh, Kw] / a list of 2-D kernels, one per image.
    ``method``: ``"auto"``, ``"fft"``, ``"direct"``; ``boundary``: one of BOUNDARIES; ``backend``:
    ``"numpy"``, ``"cv2"``, ``"torch"`` (default: torch for tensors, else numpy); ``mode``:
    ``"convolution"`` or ``"correlation"``; ``output``: ``"same"`` or ``"full"``.
    ``out`` (cv2 fft path): float32 array of the result's shape to write into. ``cache_spectrum`` (cv2
    fft): keep the kernel's spectrum (last few kernels and sizes); cached spectra have values below
    1e-20 set to 0 (no float32 effect; avoids denormal arithmetic). ``workers``: scipy.fft threads.
    Returns the input's dtype; a channels-first numpy input with ``axes`` = the last two axes (or a
    torch input, fft path) may get a view of a larger work array.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    check_boundary(boundary)
    backend = backend or ("torch" if _is_torch(img) else "numpy")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    sep = isinstance(kernel, tuple)
    if sep and (len(kernel) != 2 or any(np.ndim(t) != 1 for t in kernel)):
        raise ValueError("a separable kernel is a tuple (ky, kx) of two 1-D arrays")
    if output == "full":
        boundary = "constant"
    if backend == "torch":
        return _torch(img, kernel, sep, method, boundary, mode, output)
    img = np.asarray(img)
    if img.dtype.kind != "f":
        raise TypeError(f"convolve expects a float image, got {img.dtype} (convert uint8 with /255 first)")
    if not sep:
        kernel = np.asarray(kernel)
        if kernel.ndim != 2:
            raise ValueError(f"kernel must be 2-D (or a (ky, kx) tuple of 1-D taps), got shape {kernel.shape}")
    if backend == "cv2":
        return _cv2(img, kernel, sep, method, boundary, mode, output, axes, out, cache_spectrum)
    return _numpy(img, kernel, sep, method, boundary, mode, output, axes, workers)


# ------------------------------------------------------------------------------ numpy


def _numpy(img, kernel, sep, method, boundary, mode, output, axes, workers):
    ax = tuple(a % img.ndim for a in (axes or (0, 1)))
    if img.ndim == 2:
        lead = img[None]
    else:
        lead = np.moveaxis(img, ax, (-2, -1))  # a view, channels first
    if method == "auto":
        method = "direct" if sep else "fft"
    if method == "fft":
        if sep:
            kernel = np.outer(kernel[0], kernel[1])
        y = _fft_numpy(lead, np.asarray(kernel, img.dtype), boundary, mode, output, workers)
    else:
        y = _direct_numpy(lead, kernel, sep, boundary, mode, output)
    if img.ndim == 2:
        return np.ascontiguousarray(y[0]).astype(img.dtype, copy=False)
    if ax == (img.ndim - 2, img.ndim - 1):
        return y.astype(img.dtype, copy=False)
    return np.ascontiguousarray(np.moveaxis(y, (-2, -1), ax)).astype(img.dtype, copy=False)


def _fft_product(a, kernel, shape, workers=None, crop=None):
    """Circular convolution over the last two axes of ``a`` (zero-padded to ``shape``) with ``kernel``
    (origin at [0, 0]), cropped to ``crop = (y0, y1, x0, x1)``."""
    from scipy import fft

    fa = fft.rfft2(a, s=shape, workers=workers)
    # the kernel's spectrum by axes, as rfft2 does it (r2c on the last axis, then c2c on the first), but
    # the r2c only over the kernel's own rows: the zero rows' transforms are exact zeros anyway
    kr = fft.rfft(kernel, n=shape[1], axis=-1, workers=workers)
    fa *= fft.fft(kr, n=shape[0], axis=-2, overwrite_x=True, workers=workers)
    return irfft2_crop(fa, shape, crop, workers)


def irfft2_crop(fa, shape, crop=None, workers=None):
    """``scipy.fft.irfft2(fa, s=shape)[..., y0:y1, x0:x1]`` (``crop``), bit for bit, with less work.

    The same two passes pocketfft's multi-axis c2r makes (inverse c2c over the rows axis, then c2r over the
    last) and its one scaling by ``1 / (N0 N1)`` at the end, but the c2r runs only over the kept rows and the
    scaling only over the kept block; scipy's ``irfft2`` also spends about as long again on an internal copy
    (5.3 vs 2.4 ms for 3 x 576 x 576 float32 here). The scale is pocketfft's ``T(1 / long double(N0 N1))``
    (a double quotient rounds float64 results differently for some sizes). ``fa`` is overwritten.
    tests/test_perf_ops.py holds it equal to ``irfft2``."""
    from scipy import fft

    y0, y1, x0, x1 = crop if crop is not None else (0, shape[0], 0, shape[1])
    g = fft.ifft(fa, n=shape[0], axis=-2, norm="forward", overwrite_x=True, workers=workers)
    y = fft.irfft(g[..., y0:y1, :], n=shape[1], axis=-1, norm="forward", workers=workers)[..., x0:x1]
    y *= y.dtype.type(np.longdouble(1) / np.longdouble(shape[0] * shape[1]))
    return y


def _fft_numpy(lead, kernel, boundary, mode, output, workers):
    """FFT convolution over the last two axes of ``lead`` ([..., H, W]); kernel already in its dtype."""
    from scipy.fft import next_fast_len

    k = kernel if mode == "convolution" else kernel[::-1, ::-1]
    kh, kw = k.shape
    h, w = lead.shape[-2:]
    if output == "full":  # zero extension: no explicit padding, the transform size holds the full result
        size = (h + kh - 1, w + kw - 1)
        shape = (next_fast_len(size[0], real=True), next_fast_len(size[1], real=True))
        return _fft_product(np.ascontiguousarray(lead), k, shape, workers, (0, size[0], 0, size[1]))
    t, b, l, r = _footprint(kh, kw, mode, output)
    p = pad(lead, ((t, b), (l, r)), boundary, axes=(-2, -1))  # np.pad writes a C-contiguous copy
    shape = (next_fast_len(p.shape[-2], real=True), next_fast_len(p.shape[-1], real=True))
    return _fft_product(p, k, shape, workers, (kh - 1, kh - 1 + h, kw - 1, kw - 1 + w))


def _direct_numpy(lead, kernel, sep, boundary, mode, output):
    """Valid correlation of the padded image, one vectorised pass per tap (float64 accumulator)."""
    kh, kw = _kernel_shape(kernel, sep)
    t, b, l, r = _footprint(kh, kw, mode, output)
    p = pad(lead, ((t, b), (l, r)), boundary, axes=(-2, -1))
    h, w = p.shape[-2] - kh + 1, p.shape[-1] - kw + 1
    flip = mode == "convolution"
    if sep:
        ky, kx = (np.asarray(v, np.float64) for v in kernel)
        ky, kx = (ky[::-1], kx[::-1]) if flip else (ky, kx)
        rows = np.zeros(p.shape[:-2] + (h, p.shape[-1]), np.float64)
        for a in range(kh):
            if ky[a] != 0:
                rows += ky[a] * p[..., a: a + h, :]
        acc = np.zeros(p.shape[:-2] + (h, w), np.float64)
        for c in range(kw):
            if kx[c] != 0:
                acc += kx[c] * rows[..., c: c + w]
        return acc
    k = np.asarray(kernel, np.float64)
    k = k[::-1, ::-1] if flip else k
    acc = np.zeros(p.shape[:-2] + (h, w), np.float64)
    for a, c in zip(*np.nonzero(k)):
        acc += k[a, c] * p[..., a: a + h, c: c + w]
    return acc


# ------------------------------------------------------------------------------ OpenCV


def _cv2(img, kernel, sep, method, boundary, mode, output, axes, out, cache_spectrum):
    import cv2

    if axes not in (None, (0, 1)) or img.ndim not in (2, 3):
        raise ValueError("backend='cv2' takes an H x W or H x W x C array (axes (0, 1))")
    kh, kw = _kernel_shape(kernel, sep)
    if method == "auto":
        method = "direct" if sep or kh * kw < DIRECT_MAX_TAPS else "fft"
    kdtype = img.dtype if img.dtype in (np.float32, np.float64) else np.float32
    flip = mode == "convolution"
    t, b, l, r = _footprint(kh, kw, mode, output)
    if method == "fft":
        k = np.outer(kernel[0], kernel[1]) if sep else kernel
        k = np.asarray(k, np.float32)
        return _dft_correlate(img, k[::-1, ::-1] if flip else k, (t, l), boundary, output, out, cache_spectrum)
    src, odd = img, kh % 2 == 1 and kw % 2 == 1
    if output == "full" or boundary == "circular":  # filter2D cannot wrap, nor grow the output: pad first
        src = pad(img, ((t, b), (l, r)), boundary, backend="cv2")
        border, anchor = cv2.BORDER_CONSTANT, (l, t)  # the pad makes the border rule irrelevant here
    else:
        border = cv2_border(boundary)
        anchor = (-1, -1) if odd else (l, t)  # odd: the centre in both modes, OpenCV's default
    if sep:
        ky, kx = (np.asarray(v, kdtype) for v in kernel)
        ky, kx = (ky[::-1].copy(), kx[::-1].copy()) if flip else (ky, kx)
        res = cv2.sepFilter2D(src, -1, kx, ky, anchor=anchor, borderType=border)
    else:
        k = np.asarray(kernel, kdtype)
        k = k[::-1, ::-1].copy() if flip else k
        res = cv2.filter2D(src, -1, k, anchor=anchor, borderType=border)
    if src is not img:
        hh, ww = src.shape[0] - kh + 1, src.shape[1] - kw + 1
        res = res[t: t + hh, l: l + ww]
    if res.ndim < img.ndim:  # OpenCV drops a single trailing channel
        res = res[..., None]
    res = np.ascontiguousarray(res)
    if out is not None:
        np.copyto(out, res)
        return out
    return res


def _kernel_spectrum(k: np.ndarray, nh: int, nw: int) -> np.ndarray:
    """CCS spectrum (float32, nh x nw) of the kernel ``k`` zero-padded at the top-left corner."""
    import cv2

    kpad = scratch("kpad", (nh, nw))
    kpad.fill(0.0)
    kpad[: k.shape[0], : k.shape[1]] = k
    return cv2.dft(kpad)


_SPECTRA: dict = {}
_SPECTRA_SIZE = 4


def _cached_spectrum(k: np.ndarray, nh: int, nw: int) -> np.ndarray:
    key = (k.shape, k.tobytes(), nh, nw)
    kf = _SPECTRA.get(key)
    if kf is None:
        kf = _kernel_spectrum(k, nh, nw).copy()
        kf[np.abs(kf) < 1e-20] = 0.0
        while len(_SPECTRA) >= _SPECTRA_SIZE:  # small FIFO: input sizes may vary
            try:
                _SPECTRA.pop(next(iter(_SPECTRA)), None)
            except (RuntimeError, StopIteration):  # another thread changed it meanwhile
                break
        _SPECTRA[key] = kf
    return kf


def _dft_correlate(img, k, anchor, boundary, output, out, cache_spectrum):
    """Valid correlation of the padded image with ``k`` (anchor = (top, left) pad) via ``cv2.dft``.

    Each channel is padded (``copyMakeBorder``) to the transform size (at least the kernel footprint);
    the circular correlation equals the linear one on the output block (no wrap-around reaches it).
    Work planes are per-thread scratch buffers: the only allocation is the result (none with ``out``).
    """
    import cv2

    if img.dtype != np.float32:
        return _dft_correlate(img.astype(np.float32), k, anchor, boundary, output, None,
                              cache_spectrum).astype(img.dtype)
    kh, kw = k.shape
    ty, tx = anchor
    h, w = img.shape[:2]
    oh, ow = (h + kh - 1, w + kw - 1) if output == "full" else (h, w)
    ch = img.shape[2] if img.ndim == 3 else 1
    nh = cv2.getOptimalDFTSize(oh + kh - 1)
    nw = cv2.getOptimalDFTSize(ow + kw - 1)
    kf = _cached_spectrum(k, nh, nw) if cache_spectrum else _kernel_spectrum(k, nh, nw)
    border = cv2_border(boundary)
    plane = scratch("plane", (h, w))
    padded = scratch("padded", (nh, nw))
    spec = scratch("spec", (nh, nw))
    res = scratch("res", (nh, nw))
    if out is None:
        out = np.empty((oh, ow, ch), np.float32)
    dst = out if out.ndim == 3 else out[..., None]
    for c in range(ch):
        src = cv2.extractChannel(img, c, dst=plane) if ch > 1 else img.reshape(h, w)
        padded = cv2.copyMakeBorder(src, ty, nh - h - ty, tx, nw - w - tx, border, dst=padded)
        spec = cv2.dft(padded, dst=spec)
        spec = cv2.mulSpectrums(spec, kf, 0, spec, conjB=True)
        res = cv2.idft(spec, dst=res, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
        if ch > 1:
            cv2.insertChannel(res[:oh, :ow], dst, c)
        else:
            dst[..., 0] = res[:oh, :ow]
    return out if (img.ndim == 3 or out.ndim == 2) else out[..., 0]


# ------------------------------------------------------------------------------ torch


def _torch(img, kernel, sep, method, boundary, mode, output):
    import torch

    if not torch.is_tensor(img):
        img = torch.as_tensor(np.asarray(img))
    if not img.is_floating_point():
        raise TypeError(f"convolve expects a float tensor, got {img.dtype}")
    dims = img.dim()
    if dims < 2:
        raise ValueError(f"a torch image needs at least [H, W], got shape {tuple(img.shape)}")
    x = img.reshape((1,) * max(0, 4 - dims) + tuple(img.shape)) if dims < 4 else img
    if x.dim() > 4:
        x = x.reshape((-1,) + tuple(x.shape[-3:]))

    def as_t(v):
        if torch.is_tensor(v):
            return v.to(device=x.device, dtype=x.dtype)
        return torch.from_numpy(np.asarray(v, np.float64) if np.asarray(v).dtype.kind != "f"
                                else np.asarray(v)).to(device=x.device, dtype=x.dtype)

    if sep:
        ks = (as_t(kernel[0]).reshape(-1), as_t(kernel[1]).reshape(-1))
        kh, kw = ks[0].numel(), ks[1].numel()
    else:
        if isinstance(kernel, list):
            kernel = stack_kernels(kernel)
        ks = as_t(kernel)
        if ks.dim() == 2:
            ks = ks[None]
        if ks.dim() != 3 or ks.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"kernels must be [K, K] or [B, K, K] with B = {x.shape[0]}, got {tuple(ks.shape)}")
        kh, kw = ks.shape[-2:]
    if method == "auto":
        method = "direct" if sep or kh * kw < DIRECT_MAX_TAPS else "fft"
    t, b, l, r = _footprint(kh, kw, mode, output)
    if method == "fft":
        k = ks if not sep else (ks[0][:, None] * ks[1][None, :])[None]
        y = _fft_torch(x, k, (t, b, l, r), boundary, mode)
    else:
        y = _direct_torch(x, ks, sep, (t, b, l, r), boundary, mode)
    return y.reshape(tuple(img.shape[:-2]) + tuple(y.shape[-2:]))


def _fft_torch(x, k, pads, boundary, mode):
    """FFT convolution of x [B, C, H, W] with k [1 or B, Kh, Kw]; returns the cropped (view) result."""
    import torch
    from scipy.fft import next_fast_len

    t, b, l, r = pads
    kh, kw = k.shape[-2:]
    if mode == "correlation":
        k = torch.flip(k, dims=(-2, -1))
    p = pad(x, ((t, b), (l, r)), boundary)
    oh, ow = p.shape[-2] - kh + 1, p.shape[-1] - kw + 1
    shape = (next_fast_len(p.shape[-2], real=True), next_fast_len(p.shape[-1], real=True))
    fp = torch.fft.rfft2(p, s=shape)
    fk = torch.fft.rfft2(k, s=shape)[:, None]
    return torch.fft.irfft2(fp * fk, s=shape)[..., kh - 1: kh - 1 + oh, kw - 1: kw - 1 + ow]


def _direct_torch(x, ks, sep, pads, boundary, mode):
    """Valid correlation of the padded x [B, C, H, W] through grouped ``conv2d`` (one call per pass)."""
    import torch
    import torch.nn.functional as F

    t, b, l, r = pads
    bsz, c = x.shape[:2]
    p = pad(x, ((t, b), (l, r)), boundary)
    hp, wp = p.shape[-2:]
    p = p.reshape(1, bsz * c, hp, wp)
    flip = mode == "convolution"
    if sep:
        ky, kx = (torch.flip(v, dims=(0,)) for v in ks) if flip else ks
        p = F.conv2d(p, kx.view(1, 1, 1, -1).expand(bsz * c, 1, 1, kx.numel()), groups=bsz * c)
        p = F.conv2d(p, ky.view(1, 1, -1, 1).expand(bsz * c, 1, ky.numel(), 1), groups=bsz * c)
    else:
        k = torch.flip(ks, dims=(-2, -1)) if flip else ks
        if k.shape[0] != bsz:
            k = k.expand(bsz, -1, -1)
        weight = k.repeat_interleave(c, dim=0)[:, None]  # [B*C, 1, Kh, Kw]
        p = F.conv2d(p, weight, groups=bsz * c)
    return p.reshape(bsz, c, p.shape[-2], p.shape[-1])
