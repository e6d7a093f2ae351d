"""CPU operations of Real-ESRGAN generator version 2: the same degradation with less work per image.

Version 1.1 (:mod:`.ops`) stays as it was, byte for byte, for datasets made with it; version 2 changes two
steps and nothing else (sampling, parameters and every other operation are version 1.1's):

- **USM target**: both 51 x 51 Gaussians (sigma 8, the OpenCV sigma rule) are computed at half resolution:
  reflect-101 pad of 28 px (the full-resolution border rule, exactly), ``cv2.pyrDown`` (5-tap binomial,
  variance 1 px^2), a separable Gaussian of ``(radius - 1) // 4 * 2 + 1`` taps with variance
  ``(sigma^2 - 2) / 4`` half-res px^2 (the two pyramid filters add 1 px^2 each), ``cv2.pyrUp``, crop. About
  1.5 ms instead of 4.4 ms (``cv2.GaussianBlur``) or 6 ms (the ``cv2.dft`` correlation of 1.1) per blur at
  512 x 512 x 3. The elementwise steps are numpy ufuncs (correctly rounded, no fused multiply-add), the
  DFT is gone: version 1.1's ``cv2.dft`` rounding differs between CPUs (an AVX-512 machine rounds one
  fixture pixel of benchkit 0.1.0's USM target differently than the machine that made it); separable
  filters and pyramids apply the same taps in the same order (no claim of bit-exactness across CPUs is made).
  How far it is from the exact Gaussian (radius 51): the worst-case L1 norm of the difference of the
  impulse responses (any sub-pixel phase) is 1.4e-3, so a blurred value moves by at most 1.4e-3
  (0.36 of an 8-bit level) for any image in [0, 1]; on the embedded photographs the blur moves by at most
  0.04 levels (rms 0.003) and the 8-bit USM target by at most 1 level in rare pixels (PSNR 76-80 dB
  against version 1.1). Radii below 31 (sigma < 5, where the half-resolution grid is too coarse: 6.7e-3 at
  25) use the exact separable ``cv2.GaussianBlur``.
- **Poisson noise tables**: one inverse-CDF table per ``vals`` over all 256 levels (at most 9 tables, built
  once per process) instead of one per (``vals``, highest level present) built for almost every image.
  Each row is the same Poisson CDF; only its truncation point moves (the tail beyond it holds < 1e-30 of
  the mass), so the counts drawn from a given uniform are the same except with probability < 1e-30.

Everything else (blur kernels, resize, Gaussian noise, JPEG, the 8-bit conversion) is :mod:`.ops`.
"""

from __future__ import annotations

import cv2
import numpy as np

from benchkit.ops import scratch

from . import ops
from .ops import (
    apply_first_blur,
    draw_counts,
    filter_kernel,
    jpeg,
    luma,
    resize,
    to_levels,
)
from .params import NoiseParams

#: smallest OpenCV-rule sigma (px) blurred on the half-resolution pyramid (ksize >= 31); below it the exact
#: separable Gaussian. Worst-case L1 of the impulse-response difference: 3.3e-3 at ksize 31, 1.4e-3 at 51,
#: 9.2e-4 at 101 (tests/test_realesrgan_v2.py); 6.7e-3 at 25, hence the threshold.
PYRAMID_MIN_SIGMA = 5.0
_R101 = cv2.BORDER_REFLECT_101


def gaussian_sigma(ksize: int) -> float:
    """OpenCV's sigma for a ``ksize`` Gaussian with sigma 0: ``0.3 ((ksize - 1) / 2 - 1) + 0.8`` (8.0 for 51)."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


_HALF_TAPS: dict[int, np.ndarray] = {}


def _half_taps(ksize: int) -> np.ndarray:
    """Half-resolution taps for a ``ksize`` Gaussian: variance (sigma^2 - 2) / 4, ``(ksize - 1) // 4 * 2 + 1`` taps
    (the same truncation radius, in full-resolution px, as the ``ksize`` kernel)."""
    t = _HALF_TAPS.get(ksize)
    if t is None:
        sigma = gaussian_sigma(ksize)
        n = (ksize - 1) // 4 * 2 + 1
        t = _HALF_TAPS[ksize] = cv2.getGaussianKernel(n, float(np.sqrt((sigma * sigma - 2.0) / 4.0)), ktype=cv2.CV_32F)
    return t


def gaussian_blur(img: np.ndarray, ksize: int) -> np.ndarray:
    """``cv2.GaussianBlur(img, (ksize, ksize), 0)`` (reflect-101) to within 1.4e-3 (L1 of the impulse-response
    difference at ``ksize`` 51): on a half-resolution Gaussian pyramid for sigma >= 5, exactly below.
    ``img``: float32 H x W or H x W x C; returns a new float32 array of the same shape."""
    return np.ascontiguousarray(_blur_view(img, ksize, "gb")).reshape(img.shape)


def _blur_view(img: np.ndarray, ksize: int, tag: str) -> np.ndarray:
    """:func:`gaussian_blur` as a (possibly strided) view into this thread's scratch buffers named ``tag``:
    valid until the next call with the same ``tag``."""
    if gaussian_sigma(ksize) < PYRAMID_MIN_SIGMA:
        return cv2.GaussianBlur(img, (ksize, ksize), 0, borderType=_R101).reshape(img.shape)
    h, w = img.shape[:2]
    c = img.shape[2:]
    p = ((ksize - 1) // 2 + 3 + 1) // 2 * 2  # even pad covering the kernel radius + the two pyramid filters
    ph, pw = h + 2 * p + h % 2, w + 2 * p + w % 2
    padded = cv2.copyMakeBorder(img, p, p + h % 2, p, p + w % 2, _R101, dst=scratch(tag + "/pad", (ph, pw) + c))
    t = _half_taps(ksize)
    down = cv2.pyrDown(padded, dst=scratch(tag + "/down", (ph // 2, pw // 2) + c))
    half = cv2.sepFilter2D(down, -1, t, t, borderType=_R101, dst=scratch(tag + "/half", (ph // 2, pw // 2) + c))
    up = cv2.pyrUp(half, dst=scratch(tag + "/up", (ph, pw) + c), dstsize=(pw, ph))
    return up.reshape((ph, pw) + c)[p: p + h, p: p + w]


def usm_sharpen(img: np.ndarray, weight: float = 0.5, radius: int = 51, threshold: float = 10.0) -> np.ndarray:
    """Unsharp masking of the target (Real-ESRGAN ``gt_usm``, BasicSR ``usm_sharp``) with :func:`gaussian_blur`:
    residual = I - blur(I); mask = |residual| > threshold / 255; soft = blur(mask);
    out = I + soft (clip(I + weight residual, 0, 1) - I). Float32 in, new float32 array out (the only
    allocation; the rest runs in per-thread scratch buffers)."""
    out = np.subtract(img, _blur_view(img, radius, "usm"))  # the residual, then the result, in place
    mask = np.abs(out, out=scratch("usm/mask", img.shape))
    cv2.threshold(mask, threshold / 255.0, 1.0, cv2.THRESH_BINARY, dst=mask)
    soft = _blur_view(mask, radius, "usm")
    out *= np.float32(weight)
    out += img
    np.clip(out, 0.0, 1.0, out=out)
    out -= img
    out *= soft
    out += img
    return out


# ----------------------------------------------------------------------------- Poisson noise

_TABLES: dict[float, tuple[np.ndarray, np.ndarray]] = {}


def poisson_tables(vals: float) -> tuple[np.ndarray, np.ndarray]:
    """(cdf, packed guide) over all 256 levels at ``vals`` (row L: rate L / 255 * vals): :func:`.ops._poisson_tables`
    with the highest level fixed at 255, so one table per ``vals`` (a power of two, at most 9 of them) serves
    every image; built once per process."""
    hit = _TABLES.get(vals)
    if hit is None:
        hit = _TABLES[vals] = ops._poisson_tables(vals, 255)
    return hit


def poisson_counts(levels: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """:func:`.ops.poisson_counts` (same uniforms, same guide-table rule, :func:`.ops.draw_counts`) with the
    per-``vals`` tables of :func:`poisson_tables`. Returns (float32 counts shaped like ``levels``, vals)."""
    flat = np.ascontiguousarray(levels).reshape(-1, 1)
    hist = cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel()
    vals = float(2.0 ** np.ceil(np.log2(np.count_nonzero(hist))))
    cdf, packed = poisson_tables(vals)
    return draw_counts(flat, seed, cdf, packed).reshape(levels.shape), vals


def add_noise(img: np.ndarray, npar: NoiseParams) -> np.ndarray:
    """:func:`.ops.add_noise` with version 2's Poisson tables (Gaussian noise: version 1.1's, the same field)."""
    if npar.kind != "poisson":
        return ops.add_noise(img, npar)
    levels = to_levels(luma(img))[..., None] if npar.gray else to_levels(img)
    noise, vals = poisson_counts(levels, npar.seed)
    base = levels.astype(np.float32)
    base /= np.float32(255.0)
    noise /= np.float32(vals)
    noise -= base
    noise *= np.float32(npar.scale)
    out = np.add(noise, img, out=noise) if noise.shape == img.shape else img + noise
    np.clip(out, 0.0, 1.0, out=out)
    return out


def degrade(img: np.ndarray, p) -> np.ndarray:
    """The two-order degradation (version 2) of a float32 RGB target; float32 result: version 1.1's order
    (:func:`.ops.degrade`) with this version's noise step."""
    return ops.degrade(img, p, add_noise=add_noise)

