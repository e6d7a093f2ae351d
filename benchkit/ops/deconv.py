"""FFT deconvolution under the :func:`benchkit.ops.convolve` blur model (``y = k * x``, centre ``k//2``).

Images are padded (``symmetric`` by default) by at least the kernel size up to fast real-FFT lengths
(:func:`pad_for_fft`) before the circular FFT model applies; all channels go through one vectorised
``scipy.fft`` transform over axes (0, 1).
"""

from __future__ import annotations

import numpy as np

from .boundary import pad


def pad_for_fft(img, kernel, boundary: str = "symmetric"):
    """Pad rows/cols of ``img`` (H x W[ x C]) by at least the kernel size, up to fast real-FFT lengths.

    Returns ``(padded, (row_slice, col_slice))``; the slices crop the padded result back to H x W.
    """
    import scipy.fft as sfft

    h, w = img.shape[:2]
    p = int(max(kernel.shape[:2]))
    ph, pw = sfft.next_fast_len(h + 2 * p, real=True), sfft.next_fast_len(w + 2 * p, real=True)
    top, left = (ph - h) // 2, (pw - w) // 2
    return pad(img, ((top, ph - h - top), (left, pw - w - left)), boundary), (slice(top, top + h),
                                                                            slice(left, left + w))


def psf_otf(kernel, shape):
    """Optical transfer function: ``rfft2`` of ``kernel`` (k x k, or k x k x C per channel; centre at k//2)
    placed on an ``shape`` (H, W) grid with its centre rolled to (0, 0). Shape (H, W//2+1, 1 or C):
    broadcasts against ``rfft2`` of an H x W x C image over axes (0, 1);
    ``irfft2(rfft2(x) * psf_otf(k)) = k * x`` (circular)."""
    import scipy.fft as sfft

    k = kernel if kernel.ndim == 3 else kernel[..., None]
    kh, kw = k.shape[:2]
    big = np.zeros((shape[0], shape[1], k.shape[2]), np.float32)
    big[:kh, :kw] = k
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return sfft.rfft2(big, axes=(0, 1))


def apply_otf(x, otf):
    """Circular convolution of ``x`` (H x W x C, axes (0, 1)) with a transfer function from :func:`psf_otf`
    (``otf.conj()`` gives the correlation, the adjoint)."""
    import scipy.fft as sfft

    return sfft.irfft2(sfft.rfft2(x, axes=(0, 1)) * otf, s=x.shape[:2], axes=(0, 1))


def wiener_deconvolve(img, psf, nsr: float):
    """Wiener deconvolution ``X = conj(H) Y / (|H|^2 + nsr)`` of a float32 H x W x C image; H x W x C out."""
    import scipy.fft as sfft

    padded, crop = pad_for_fft(img, psf)
    H = psf_otf(psf, padded.shape[:2])
    Y = sfft.rfft2(padded, axes=(0, 1))
    X = (H.conj() * Y) / (H.real ** 2 + H.imag ** 2 + nsr)
    out = sfft.irfft2(X, s=padded.shape[:2], axes=(0, 1))
    return out[crop]


def richardson_lucy(img, psf, iterations: int, eps: float = 1e-6):
    """Richardson-Lucy deconvolution (multiplicative updates, non-negative), ``iterations`` steps;
    input clipped to [0, 1], values floored at ``eps`` in the ratio."""
    padded, crop = pad_for_fft(np.clip(img, 0.0, 1.0).astype(np.float32), psf)
    H = psf_otf(psf, padded.shape[:2])
    Hc = H.conj()
    y = np.maximum(padded, eps)
    u = y.copy()
    for _ in range(int(iterations)):
        est = apply_otf(u, H)
        ratio = y / np.maximum(est, eps)
        u = u * apply_otf(ratio, Hc)
    return u[crop]
