"""PSF blur ``y = k * x`` by FFT for motion blur and spatially varying blur: linear-light handling around
:func:`benchkit.ops.convolve`, which holds the convolution and padding code (also used by the
Real-ESRGAN filters and the deconvolution baselines). This module keeps the PSF-blur entry points.

- True convolution (not correlation), kernel centre = pixel ``(Kh // 2, Kw // 2)``; kernels must have
  odd sides. ``y[i, j] = sum_{a, b} k[a, b] x[i - a + Kh//2, j - b + Kw//2]`` with ``x`` extended
  beyond the image by the boundary rule.
- Boundary: ``reflect`` (default), ``symmetric``, ``edge``, ``constant``, ``circular``; the one
  vocabulary of :mod:`benchkit.ops.boundary` (its table maps each to numpy / OpenCV / torch /
  scipy.ndimage names). The image is padded by the kernel radius, convolved, and cropped back to H x W.
- FFT size: ``next_fast_len(H + 2 r)`` per axis suffices (the wrap-around of the circular FFT
  product only lands in the first ``2 r`` rows/cols, which the crop discards).
- ``linear_light``: ``"srgb"`` (IEC 61966-2-1 transfer curve) or ``"gamma2.2"``: decode to linear
  light, blur, re-encode (clipped to [0, 1]); this is what sensor exposure integration does.
  ``"none"`` blurs the stored (gamma-encoded) values.

Result equals direct spatial convolution (scipy.ndimage.convolve / cv2.filter2D with the flipped
kernel and matching border) to float rounding; an identity (delta) kernel is a no-op.
Paths: :func:`fft_blur` (``ops.convolve`` numpy/scipy.fft; float32 in -> float32 out) and
:func:`fft_blur_torch` (``ops.convolve`` torch fft, batched, per-image kernels). :func:`convolve_full` is
the full linear convolution used by the spatially varying blur (svblur) on windowed patches.
Re-exported from :mod:`benchkit.ops` for existing importers: ``pad_index``, ``pad_for_fft``, ``psf_otf``,
``is_identity``, ``stack_kernels``, ``BOUNDARIES``, ``NDIMAGE_MODE``.
"""

from __future__ import annotations

from benchkit.ops.boundary import BOUNDARIES, NDIMAGE_MODE  # noqa: F401  (re-exported; numpy only)

LINEAR_LIGHT = ("none", "srgb", "gamma2.2")


def _check(kernel, boundary, linear_light):
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides, got shape {tuple(kernel.shape)}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if linear_light not in LINEAR_LIGHT:
        raise ValueError(f"linear_light must be one of {LINEAR_LIGHT}, got {linear_light!r}")


# ------------------------------------------------------------------------------ transfer curves


def decode(x, curve: str):
    """Encoded values in [0, 1] -> linear light (``curve`` in LINEAR_LIGHT). Works on numpy and torch."""
    if curve == "none":
        return x
    xp = _xp(x)
    x = xp.clip(x, 0.0, 1.0)
    if curve == "gamma2.2":
        return x ** 2.2
    return xp.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def encode(x, curve: str):
    """Linear light -> encoded values in [0, 1] (inverse of :func:`decode`, clipped)."""
    if curve == "none":
        return x
    xp = _xp(x)
    x = xp.clip(x, 0.0, 1.0)
    if curve == "gamma2.2":
        return x ** (1.0 / 2.2)
    return xp.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


def _xp(x):
    import numpy as np

    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


# ------------------------------------------------------------------------------ re-exports (benchkit.ops)


def is_identity(kernel) -> bool:
    """True for a delta kernel (see :func:`benchkit.ops.is_identity`)."""
    from benchkit.ops import is_identity as f

    return f(kernel)


def pad_index(n: int, r: int, boundary: str):
    """Source indices (int64 [n + 2r]) of an axis padded by ``r`` (:func:`benchkit.ops.pad_index`)."""
    from benchkit.ops import pad_index as f

    return f(n, r, boundary)


def pad_image(img, ry: int, rx: int, boundary: str, axes=(0, 1)):
    """Pad the two ``axes`` (rows, cols) of ``img`` by (ry, rx): :func:`benchkit.ops.pad`."""
    from benchkit.ops import pad

    return pad(img, (ry, rx), boundary, axes=axes)


def pad_for_fft(img, kernel, boundary: str = "symmetric"):
    """:func:`benchkit.ops.pad_for_fft` (padding for the FFT deconvolutions)."""
    from benchkit.ops import pad_for_fft as f

    return f(img, kernel, boundary)


def psf_otf(kernel, shape):
    """:func:`benchkit.ops.psf_otf` (optical transfer function of a PSF on an H x W grid)."""
    from benchkit.ops import psf_otf as f

    return f(kernel, shape)


def stack_kernels(kernels):
    """Zero-pad odd kernels of different sizes, centred, to one [B, K, K] float64 array."""
    import numpy as np

    from benchkit.ops import stack_kernels as f

    ks = [np.asarray(k, np.float64) for k in kernels]
    for k in ks:
        _check(k, "reflect", "none")
    return f(ks)


# ------------------------------------------------------------------------------ PSF blur


def fft_blur(img, kernel, boundary: str = "reflect", linear_light: str = "none", workers: int | None = None):
    """Blur a float image (H x W or H x W x C) with ``kernel`` by FFT; same dtype and shape out.

    ``boundary`` in BOUNDARIES, ``linear_light`` in LINEAR_LIGHT (see module docstring);
    ``workers``: scipy.fft threads (None = 1). A delta kernel returns an exact copy.
    """
    import numpy as np

    from benchkit.ops import convolve
    from benchkit.ops import is_identity as delta

    img = np.asarray(img)
    if img.dtype not in (np.float32, np.float64):
        raise TypeError(f"fft_blur expects a float image, got {img.dtype} (convert uint8 with /255 first)")
    kernel = np.asarray(kernel, img.dtype)
    _check(kernel, boundary, linear_light)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must be H x W or H x W x C, got shape {img.shape}")
    if delta(kernel):
        return img.copy()
    chw = np.moveaxis(img, 2, 0) if img.ndim == 3 else img[None]  # a view; the padding writes a contiguous copy
    y = convolve(decode(chw, linear_light), kernel, method="fft", boundary=boundary, backend="numpy",
                 axes=(1, 2), workers=workers)
    y = encode(y, linear_light)
    return _channels_last(y, img.ndim).astype(img.dtype, copy=False)


def _channels_last(y, ndim: int):
    """C x H x W (possibly a cropped view) -> contiguous H x W x C (``cv2.merge``: one interleaving pass, the same
    values as numpy's transposed copy) or H x W."""
    import numpy as np

    if ndim != 3:
        return np.ascontiguousarray(y[0])
    if 1 < y.shape[0] <= 4 and y.dtype in (np.float32, np.float64):
        import cv2

        return cv2.merge(list(y))
    return np.ascontiguousarray(np.moveaxis(y, 0, 2))


def convolve_full(a, kernel, workers: int | None = None):
    """Full linear convolution over axes (0, 1) of ``a`` (H x W or H x W x C): output (H + Kh - 1, W + Kw - 1[, C])."""
    import numpy as np

    from benchkit.ops import convolve

    a = np.asarray(a)
    return convolve(a, np.asarray(kernel, a.dtype), method="fft", backend="numpy", output="full", workers=workers)


def fft_blur_torch(imgs, kernels, boundary: str = "reflect", linear_light: str = "none", impl: str = "auto"):
    """Batched FFT blur in torch: ``imgs`` [B, C, H, W] (or [C, H, W]), ``kernels`` [B, K, K], [K, K] or a
    list of odd kernels (different sizes allowed; one per image). Same semantics as :func:`fft_blur`;
    returns a tensor of the input dtype and shape on the input's device.

    ``impl``: ``"torch"`` = batched ``torch.fft`` on the tensors' device; ``"host"`` = :func:`fft_blur`'s
    numpy/scipy.fft code per image on the (CPU) arrays, channels first as they are (the same pixels as
    :func:`fft_blur` of each image with its own kernel); ``"auto"`` = ``host`` for CPU tensors, ``torch``
    otherwise. On a CPU the batched torch.fft kernels cost about 1.8x the CPU time of the per-image numpy code
    (``benchkit bench blur``, 512 px, batch 8: 12.1 vs 6.9 ms CPU per image; spread over two threads, their
    wall time was 6.1 vs 6.9 ms on an idle 2-core machine), so batching pays only on an accelerator."""
    import numpy as np
    import torch

    from benchkit.ops import convolve

    if impl not in ("auto", "torch", "host"):
        raise ValueError(f"impl must be 'auto', 'torch' or 'host', got {impl!r}")
    squeeze = imgs.dim() == 3
    x = imgs[None] if squeeze else imgs
    if impl == "host" or (impl == "auto" and x.device.type == "cpu"):
        y = _blur_host(x, kernels, boundary, linear_light)
        return y[0] if squeeze else y
    if isinstance(kernels, (list, tuple)):
        kernels = torch.from_numpy(stack_kernels(kernels))
    elif not torch.is_tensor(kernels):
        kernels = torch.from_numpy(np.asarray(kernels, np.float64))
    k = kernels.to(device=x.device, dtype=x.dtype)
    if k.dim() == 2:
        k = k[None]
    _check(k[0], boundary, linear_light)
    y = convolve(decode(x, linear_light), k, method="fft", boundary=boundary, backend="torch")
    y = encode(y, linear_light).to(imgs.dtype).contiguous()
    return y[0] if squeeze else y


def _blur_host(x, kernels, boundary: str, linear_light: str):
    """:func:`fft_blur_torch`'s ``host`` path: x [B, C, H, W] (a float tensor) -> a new tensor, image by image
    through :func:`benchkit.ops.convolve` (numpy backend, spatial axes last: no transposition)."""
    import numpy as np
    import torch

    from benchkit.ops import convolve
    from benchkit.ops import is_identity as delta

    if not x.is_floating_point():
        raise TypeError(f"fft_blur_torch expects a float tensor, got {x.dtype}")
    arr = x.detach().to("cpu").numpy()
    if isinstance(kernels, (list, tuple)):
        ks = [np.asarray(k.detach().cpu().numpy() if torch.is_tensor(k) else k, arr.dtype) for k in kernels]
    else:
        k = kernels.detach().cpu().numpy() if torch.is_tensor(kernels) else np.asarray(kernels)
        k = np.asarray(k, arr.dtype)
        ks = [k] * arr.shape[0] if k.ndim == 2 else list(k)
    if len(ks) != arr.shape[0]:
        raise ValueError(f"{len(ks)} kernels for {arr.shape[0]} images")
    out = np.empty_like(arr)
    for i, k in enumerate(ks):
        _check(k, boundary, linear_light)
        if delta(k):
            out[i] = arr[i]
            continue
        y = convolve(decode(arr[i], linear_light), k, method="fft", boundary=boundary, backend="numpy", axes=(1, 2))
        out[i] = encode(y, linear_light)
    return torch.from_numpy(out).to(x.device)
