"""CPU operations of the Real-ESRGAN degradation (numpy + OpenCV), all deterministic.

Images are float32 RGB HxWx3 (values nominally in [0, 1]; blur/resize may overshoot, noise and JPEG
clip). Borders: reflect-101 (OpenCV's default, as BasicSR's ``cv2.filter2D``; benchkit ``reflect``).
Filtering goes through :func:`benchkit.ops.convolve` (cv2 backend). Resize uses
``cv2.resize`` with the target size (coordinate scale = in/out size ratio).
"""

from __future__ import annotations

import cv2
import numpy as np

from benchkit.ops import convolve
from benchkit.ops import scratch as _scratch
from benchkit.seeding import rng_from_seed

from .params import JpegParams, KernelParams, NoiseParams, ResizeParams

CV2_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
#: ITU-R BT.601 luma weights for RGB (what torchvision's rgb_to_grayscale uses).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: Guide-table resolution of the inverse-CDF Poisson sampler: 2^_GUIDE_BITS slices of [0, 1).
_GUIDE_BITS = 10
_GUIDE_BINS = 1 << _GUIDE_BITS
_LITTLE_ENDIAN = np.little_endian


def filter_kernel(img: np.ndarray, kp: KernelParams) -> np.ndarray:
    """Correlate ``img`` with the kernel of ``kp`` (reflect-101 border): :func:`benchkit.ops.convolve`,
    cv2 backend, ``method="auto"``.

    The kernel is applied unpadded (zero padding to 21 changes nothing but cost): exactly separable
    kernels (iso Gaussian) go through ``cv2.sepFilter2D``, others below 130 taps through ``cv2.filter2D``
    and larger ones through the ``cv2.dft`` correlation; the identity returns ``img`` unchanged.
    """
    if kp.is_identity:
        return img
    taps = kp.separable()
    if taps is not None:
        t = taps.astype(np.float32)
        return convolve(img, (t, t), mode="correlation", boundary="reflect", backend="cv2")
    k = kp.kernel().astype(np.float32)
    return convolve(img, k, mode="correlation", boundary="reflect", backend="cv2")


def dft_correlate(img: np.ndarray, k: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``cv2.filter2D(img, -1, k, borderType=BORDER_REFLECT_101)`` via ``cv2.dft`` (kept name; the code is
    :func:`benchkit.ops.convolve` with ``backend="cv2", method="fft", mode="correlation"``)."""
    return convolve(img, k, method="fft", mode="correlation", boundary="reflect", backend="cv2", out=out)


def resize(img: np.ndarray, rp: ResizeParams) -> np.ndarray:
    """Resize to (rp.height, rp.width) with OpenCV area/bilinear/bicubic; same size returns ``img``."""
    if img.shape[:2] == (rp.height, rp.width):
        return img
    return cv2.resize(img, (rp.width, rp.height), interpolation=CV2_MODES[rp.mode])


_LEVEL_SCALES: dict[tuple, np.ndarray] = {}


def _level_scale(shape: tuple) -> np.ndarray:
    """A read-only float32 array of 255s of ``shape`` (small FIFO cache: sizes vary per stage)."""
    a = _LEVEL_SCALES.get(shape)
    if a is None:
        a = np.full(shape, 255.0, np.float32)
        a.flags.writeable = False
        while len(_LEVEL_SCALES) >= 8:
            try:
                _LEVEL_SCALES.pop(next(iter(_LEVEL_SCALES)), None)
            except (RuntimeError, StopIteration):  # another thread changed it meanwhile
                break
        _LEVEL_SCALES[shape] = a
    return a


def to_levels(img: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 levels (clip, round half to even).

    One ``cv2.multiply`` pass: the float32 product ``img * 255`` (as numpy rounds it), rounded half to
    even and saturated to [0, 255] on the way to uint8: the same bytes as ``clip(rint(img * 255))``
    (tests/test_perf_ops.py checks the .5 boundaries). Non-float32 input takes the numpy route."""
    if img.dtype != np.float32 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] > 4):
        t = np.multiply(img, np.float32(255.0), dtype=np.float32)
        np.rint(t, out=t)
        np.clip(t, 0, 255, out=t)
        return t.astype(np.uint8)
    out = cv2.multiply(img, _level_scale(img.shape), dtype=cv2.CV_8U)
    return out.reshape(img.shape)


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma (HxW float32) of an RGB float image."""
    return img[..., 0] * LUMA[0] + img[..., 1] * LUMA[1] + img[..., 2] * LUMA[2]


def gaussian_field(seed: int, h: int, w: int, gray: bool) -> np.ndarray:
    """Standard-normal float32 field (h, w, 1) if gray else (h, w, 3) from a stored seed."""
    return rng_from_seed(seed).standard_normal((h, w, 1 if gray else 3), dtype=np.float32)


def poisson_cdf_table(rates: np.ndarray) -> np.ndarray:
    """CDF rows ``P(N <= k)`` (float64, shape (len(rates), K)) for Poisson ``rates``; last column 1.

    K covers the rate plus > 12 standard deviations, so the truncated tail mass is < 1e-30.
    """
    from scipy.special import gammaln

    lam_max = float(rates.max()) if rates.size else 0.0
    n_k = int(np.ceil(lam_max + 12.0 * np.sqrt(lam_max) + 40.0))
    k = np.arange(n_k, dtype=np.float64)
    lam = rates.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = k[None, :] * np.log(lam) - lam - gammaln(k + 1.0)[None, :]
    zero = rates == 0
    logp[zero, :] = -np.inf
    logp[zero, 0] = 0.0
    cdf = np.cumsum(np.exp(logp), axis=1)
    cdf[:, -1] = 1.0
    return cdf


#: level -> first guide-table entry of its row (row of level L is L).
_ROW_BASE = (np.arange(256, dtype=np.int32) * _GUIDE_BINS).reshape(1, 256)
_POISSON_CACHE: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = {}
_POISSON_CACHE_SIZE = 4


def _poisson_tables(vals: float, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(cdf, packed guide) for levels 0..``top`` at ``vals``: row L is level L (rate L / 255 * vals).

    ``cdf`` is :func:`poisson_cdf_table` of those rates (its width K set by the rate of ``top``, the
    highest level present), so each row is exactly the row a table over only the present levels would
    have. ``packed[L * nb + b]``: lo = #{k : cdf[L, k] < b / nb} in the low 16 bits, hi - lo above
    (counts < K < 2^15), i.e. the bracket of the count of a uniform in slice b. Small FIFO cache.
    """
    key = (vals, top)
    hit = _POISSON_CACHE.get(key)
    if hit is not None:
        return hit
    n_rows = top + 1
    cdf = poisson_cdf_table(np.arange(n_rows, dtype=np.float64) / 255.0 * vals)
    nb = _GUIDE_BINS
    # guide[r, b] = #{k : cdf[r, k] < b / nb}: the smallest possible count for a uniform in slice b
    first_bin = np.minimum(np.floor(cdf * nb).astype(np.int64) + 1, nb + 1)
    width = nb + 2
    hits = np.bincount((first_bin + (np.arange(n_rows) * width)[:, None]).reshape(-1), minlength=n_rows * width)
    guide = np.cumsum(hits.reshape(n_rows, width), axis=1, dtype=np.int32)
    packed = (guide[:, :nb] | ((guide[:, 1 : nb + 1] - guide[:, :nb]) << 16)).reshape(-1)
    while len(_POISSON_CACHE) >= _POISSON_CACHE_SIZE:
        try:
            _POISSON_CACHE.pop(next(iter(_POISSON_CACHE)), None)
        except (RuntimeError, StopIteration):  # another thread changed it meanwhile
            break
    _POISSON_CACHE[key] = (cdf, packed)
    return cdf, packed


def poisson_counts(levels: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Shot-noise counts for an 8-bit image, Real-ESRGAN style, and the ``vals`` used.

    ``vals = 2^ceil(log2(#distinct levels))``; each pixel's count ~ Poisson(level / 255 * vals), drawn by
    inverse CDF from its own uniform ``u = (r >> 11) 2^-53`` with ``r`` the C-order field
    ``rng_from_seed(seed).bit_generator.random_raw(levels.size)`` (numpy's ``random()`` rule), so a
    pixel's count depends only on its level and its uniform (the torch path reproduces it exactly).
    A guide table over ``_GUIDE_BINS`` equal slices of [0, 1) brackets each count in [lo, hi] (lo == hi
    for ~95 % of pixels); the rest are resolved by a vectorised binary search in their CDF row.
    The tables depend only on (vals, highest level) and are cached (see :func:`_poisson_tables`).
    Returns (float32 counts shaped like ``levels``, vals).
    """
    flat = np.ascontiguousarray(levels).reshape(-1, 1)
    hist = cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel()
    present = np.flatnonzero(hist)
    n_rows = len(present)
    vals = float(2.0 ** np.ceil(np.log2(n_rows)))
    cdf, packed = _poisson_tables(vals, int(present[-1]))
    return draw_counts(flat, seed, cdf, packed).reshape(levels.shape), vals


def draw_counts(flat: np.ndarray, seed: int, cdf: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Float32 Poisson counts of the uint8 levels ``flat`` ([N, 1]) from the seed's uniforms, by the guide table
    ``packed`` and the CDF rows ``cdf`` (row L = level L) of :func:`_poisson_tables`: for each pixel, the
    smallest k in its guide bracket [lo, hi] with ``cdf[L, k] >= u``. The answer is unique, so how the
    brackets are searched does not change it: one comparison settles a bracket of width 1 (almost all of
    them), a bisection over the shrinking set of open brackets the rest."""
    n_k = cdf.shape[1]
    raw = rng_from_seed(seed).bit_generator.random_raw(flat.shape[0])
    idx = cv2.LUT(flat, _ROW_BASE).reshape(-1)  # row of level L is L
    # slice = floor(u * nb) = raw >> (64 - bits): from the high 32-bit words (little-endian layout)
    hi32 = raw.view(np.uint32)[1::2] if _LITTLE_ENDIAN else (raw >> np.uint64(32)).astype(np.uint32)
    idx += np.right_shift(hi32, np.uint32(32 - _GUIDE_BITS)).view(np.int32)
    k = packed.take(idx)
    todo = np.flatnonzero(k > 0xFFFF)
    width = k[todo] >> 16
    np.bitwise_and(k, 0xFFFF, out=k)
    if todo.size:  # smallest k in [lo, hi] with cdf[k] >= u (cdf[hi] >= u holds by construction)
        cdf_flat = cdf.reshape(-1)
        lo = k[todo]
        hi = lo + width
        base = flat[todo, 0].astype(np.int64) * n_k
        ut = (raw[todo] >> np.uint64(11)).astype(np.float64) * (2.0**-53)
        while todo.size:
            mid = (lo + hi) >> 1
            right = cdf_flat[base + mid] < ut
            lo = np.where(right, mid + 1, lo)
            hi = np.where(right, hi, mid)
            done = lo >= hi
            if done.any():
                k[todo[done]] = lo[done]
                keep = ~done
                todo, lo, hi, base, ut = todo[keep], lo[keep], hi[keep], base[keep], ut[keep]
    return k.astype(np.float32)


def add_noise(img: np.ndarray, npar: NoiseParams) -> np.ndarray:
    """Add Gaussian or Poisson noise (see :class:`NoiseParams`), then clip to [0, 1]."""
    h, w = img.shape[:2]
    if npar.kind == "gaussian":
        noise = gaussian_field(npar.seed, h, w, npar.gray)
        noise *= np.float32(npar.sigma / 255.0)
    elif npar.kind == "poisson":
        levels = to_levels(luma(img))[..., None] if npar.gray else to_levels(img)
        noise, vals = poisson_counts(levels, npar.seed)  # fresh float32 counts, reused in place as the noise
        base = levels.astype(np.float32)
        base /= np.float32(255.0)
        noise /= np.float32(vals)
        noise -= base
        noise *= np.float32(npar.scale)
    else:
        raise ValueError(f"unknown noise kind {npar.kind!r}")
    # img + noise (same float32 sums); in the fresh noise array unless the noise is one gray channel
    out = np.add(noise, img, out=noise) if noise.shape == img.shape else img + noise
    np.clip(out, 0.0, 1.0, out=out)
    return out


def jpeg_u8(u8_rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (OpenCV/libjpeg, 4:2:0) of a uint8 RGB image; returns uint8 RGB."""
    bgr = cv2.cvtColor(u8_rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    if _IMREAD_RGB is not None:  # libjpeg writes RGB directly: no reversed view, no extra pass
        return cv2.imdecode(buf, _IMREAD_RGB)
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


#: OpenCV >= 4.10 decodes straight to RGB (same bytes as BGR decode + channel swap)
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


def jpeg(img: np.ndarray, jp: JpegParams) -> np.ndarray:
    """Clip, round to 8 bit, JPEG round trip at ``jp.quality``; float32 result in [0, 1]."""
    # one pass: float32(level) * float32(1/255), the same product as astype + in-place multiply
    return np.multiply(jpeg_u8(to_levels(img), jp.quality), np.float32(1.0 / 255.0), dtype=np.float32)


def usm_sharpen(img: np.ndarray, weight: float = 0.5, radius: int = 51, threshold: float = 10.0) -> np.ndarray:
    """Unsharp masking of the target (Real-ESRGAN ``gt_usm``; BasicSR ``usm_sharp``).

    ``blur`` = ``radius`` x ``radius`` Gaussian (OpenCV sigma rule: 8.0 for 51), reflect-101 border;
    sharp = clip(I + weight (I - blur), 0, 1); mask = |I - blur| > threshold / 255, blurred with the same
    Gaussian; out = I + mask (sharp - I)  (= mask sharp + (1 - mask) I).

    Both Gaussians go through the ``cv2.dft`` correlation of :func:`benchkit.ops.convolve` with a cached
    kernel spectrum (OpenCV's float32 taps, as ``cv2.GaussianBlur`` uses): about 3.4 ms each instead of 4.8 ms at 512 px, equal to
    ``cv2.GaussianBlur`` up to float32 FFT rounding (<= ~5e-7). The elementwise steps run in place.
    """
    resid = _usm_blur(img, radius, np.empty_like(img))
    np.subtract(img, resid, out=resid)  # residual = I - blur
    mask = np.abs(resid, out=_scratch("usm_mask", img.shape))
    cv2.threshold(mask, threshold / 255.0, 1.0, cv2.THRESH_BINARY, dst=mask)
    soft = _usm_blur(mask, radius, _scratch("usm_soft", img.shape))
    out = cv2.scaleAdd(resid, weight, img, dst=resid)
    np.clip(out, 0.0, 1.0, out=out)
    out -= img
    out *= soft
    out += img
    return out


_GAUSS_KERNELS: dict[int, np.ndarray] = {}


def _usm_blur(img: np.ndarray, ksize: int, out: np.ndarray) -> np.ndarray:
    """``ksize`` x ``ksize`` Gaussian (sigma 0 rule, reflect-101) by the ``cv2.dft`` correlation of
    :func:`benchkit.ops.convolve`, its spectrum cached per transform size (``cache_spectrum``)."""
    return convolve(img, _gaussian_kernel(ksize), method="fft", mode="correlation", boundary="reflect",
                    backend="cv2", out=out, cache_spectrum=True)


def _gaussian_kernel(ksize: int) -> np.ndarray:
    """2-D ``t t^T`` of OpenCV's float32 Gaussian taps ``t`` for ``ksize``, sigma 0 (``cv2.GaussianBlur``'s)."""
    k = _GAUSS_KERNELS.get(ksize)
    if k is None:
        t = cv2.getGaussianKernel(ksize, 0, ktype=cv2.CV_32F)
        k = _GAUSS_KERNELS[ksize] = t * t.T
    return k


def apply_first_blur(img: np.ndarray, blur1) -> np.ndarray:
    """Stage-1 blur. Dispatches on the params type so a spatially varying PSF field can replace the
    single kernel without touching the rest of the pipeline."""
    if isinstance(blur1, KernelParams):
        return filter_kernel(img, blur1)
    apply_fn = getattr(blur1, "apply_blur", None)
    if apply_fn is None:
        raise TypeError(f"stage-1 blur params {type(blur1).__qualname__} have no apply_blur(img) method")
    return apply_fn(img)


def degrade(img: np.ndarray, p, add_noise=None) -> np.ndarray:
    """The two-order degradation of a float32 RGB image (already sharpened if USM is on); float32 result.

    ``add_noise``: the noise step (default this module's :func:`add_noise`; generator version 2 passes its own)."""
    add_noise = add_noise or globals()["add_noise"]
    x = apply_first_blur(img, p.blur1)
    x = resize(x, p.resize1)
    x = add_noise(x, p.noise1)
    x = jpeg(x, p.jpeg1)
    if p.blur2_applied:
        x = filter_kernel(x, p.blur2)
    x = resize(x, p.resize2)
    x = add_noise(x, p.noise2)
    if p.final_order == "A":
        x = resize(x, p.final_resize)
        x = filter_kernel(x, p.final_sinc)
        x = jpeg(x, p.jpeg2)
    else:
        x = jpeg(x, p.jpeg2)
        x = resize(x, p.final_resize)
        x = filter_kernel(x, p.final_sinc)
    return x
