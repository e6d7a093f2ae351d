"""Spatially varying blur: a PSF field applied by Efficient Filter Flow, and a radial lens-blur preset.

PSF field: a ``gy x gx`` grid of odd-sized PSFs, node ``(j, i)`` at image position
``(j (H-1)/(gy-1), i (W-1)/(gx-1))`` px (a single node row/column covers the whole axis).

Efficient Filter Flow (Hirsch et al. 2010; REFERENCE section 6)::

    y = sum_j  k_j * (w_j . x)

with separable windows ``w_j`` centred on the nodes that sum to 1 everywhere (partition of unity):
``cosine`` = raised cosine cos^2(pi t / 2) over +-1 node spacing (smooth, C1), or ``bartlett`` =
triangle 1 - |t| (bilinear interpolation of the PSFs). The end windows stay 1 up to the image border.
The image is padded once by the largest kernel radius (:func:`benchkit.ops.pad`, ``boundary`` as in
:mod:`benchkit.ops.boundary`), each windowed patch is FFT-convolved with its node's PSF
(:func:`benchkit.ops.convolve` with ``output="full"``: the same convolution code as global blur) and the
results are overlap-added: cost O(N log p), no tile seams.

``normalize=True`` (default) divides by the same operator applied to an all-ones image, so flux is
conserved locally and a constant image stays exactly constant even where neighbouring PSFs differ
(without it the error is O(sigma^2 / spacing^2), ~1e-3 for the radial preset). A constant field
(every node the same PSF) reproduces global :func:`fftblur.fft_blur` exactly (to float rounding).

Radial preset (Face2Scene supplement 9.8 / Table 11, after Lin et al., "Learning Lens Blur Fields"):
anisotropic Gaussian PSFs, mild at the optical centre and stronger toward the corners, elongated
along the radial direction (sagittal/tangential astigmatism of real lenses)::

    r        = |p - c| / half-diagonal                  (0 at the centre, ~1 in the corners)
    sigma(r) = sigma_center + (sigma_corner - sigma_center) r^power          px, tangential
    sigma_radial(r) = sigma(r) (1 + (anisotropy - 1) r)                      px

Public API (used by the Real-ESRGAN pipeline's first blur stage): :class:`RadialFieldConfig`,
:class:`RadialFieldParams`, :func:`sample_radial_field` (all randomness), :func:`apply_radial_field`
(deterministic, float32 HxWx3 in/out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from benchkit.params import Params

WINDOWS = ("cosine", "bartlett")


def node_positions(n: int, size: int):
    """Node coordinates (px, float64 [n]) of ``n`` nodes spread over an axis of ``size`` pixels."""
    import numpy as np

    if n == 1:
        return np.array([(size - 1) / 2.0])
    return np.arange(n) * ((size - 1) / (n - 1))


def axis_windows(n: int, size: int, offset: int, length: int, window: str = "cosine"):
    """Windows [n, length] over padded coordinates ``u`` (image row ``u - offset``); columns sum to 1."""
    import numpy as np

    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    if n == 1:
        return np.ones((1, length))
    c = node_positions(n, size)
    s = c[1] - c[0]
    if s <= 0:  # a 1-px axis: all nodes coincide, share the weight equally (else 0/0 -> NaN)
        return np.full((n, length), 1.0 / n)
    u = np.arange(length, dtype=np.float64) - offset
    t = (u[None, :] - c[:, None]) / s
    t[0] = np.where(t[0] < 0, 0.0, t[0])  # first window stays 1 before the first node
    t[-1] = np.where(t[-1] > 0, 0.0, t[-1])  # last window stays 1 after the last node
    t = np.clip(np.abs(t), 0.0, 1.0)
    w = np.cos(0.5 * np.pi * t) ** 2 if window == "cosine" else 1.0 - t
    # exact partition of unity (removes float rounding of cos^2 + sin^2)
    return w / w.sum(axis=0, keepdims=True)


def eff_blur(img, field, boundary: str = "reflect", window: str = "cosine", normalize: bool = True,
             workers: int | None = None):
    """Apply a PSF field ``[gy, gx, K, K]`` (odd K) to a float image (H x W or H x W x C) by EFF.

    Returns the same shape and dtype. ``boundary`` as in :func:`fftblur.fft_blur`.
    """
    import numpy as np

    from benchkit.ops import BOUNDARIES, convolve, pad

    img = np.asarray(img)
    if img.dtype not in (np.float32, np.float64):
        raise TypeError(f"eff_blur expects a float image, got {img.dtype}")
    field = np.asarray(field)
    if field.ndim != 4 or field.shape[2] != field.shape[3] or field.shape[2] % 2 == 0:
        raise ValueError(f"field must be [gy, gx, K, K] with odd K, got {field.shape}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    gy, gx, k, _ = field.shape
    gray = img.ndim == 2
    x = img[..., None] if gray else img
    h, w, ch = x.shape
    r = k // 2
    work = np.float64 if img.dtype == np.float64 else np.float32  # FFT precision follows the input
    p = pad(x.astype(work), r, boundary)
    if normalize:
        p = np.concatenate([p, np.ones(p.shape[:2] + (1,), work)], axis=2)
    hp, wp = p.shape[:2]
    wy = axis_windows(gy, h, r, hp, window)
    wx = axis_windows(gx, w, r, wp, window)
    wy, wx = wy.astype(work), wx.astype(work)
    acc = np.zeros((hp + 2 * r, wp + 2 * r, p.shape[2]), np.float64)
    for j in range(gy):
        ys = np.flatnonzero(wy[j] > 0)
        if ys.size == 0:
            continue
        y0, y1 = int(ys[0]), int(ys[-1]) + 1
        for i in range(gx):
            xs = np.flatnonzero(wx[i] > 0)
            if xs.size == 0:
                continue
            x0, x1 = int(xs[0]), int(xs[-1]) + 1
            patch = p[y0:y1, x0:x1] * (wy[j, y0:y1, None, None] * wx[i, None, x0:x1, None])
            out = convolve(patch, field[j, i].astype(work), method="fft", backend="numpy", output="full",
                           workers=workers)
            acc[y0: y0 + out.shape[0], x0: x0 + out.shape[1]] += out
    y = acc[2 * r: 2 * r + h, 2 * r: 2 * r + w]
    if normalize:
        y = y[..., :ch] / y[..., ch:]
    y = y.astype(img.dtype)
    return y[..., 0] if gray else np.ascontiguousarray(y)


# ------------------------------------------------------------------------------ radial preset


@dataclass(frozen=True)
class RadialFieldConfig:
    """Sampling ranges of the radial lens-blur field (uniform ``U(lo, hi)``; sigmas in px)."""

    grid: int = 5  # PSF nodes per image axis (>= 1; odd puts a node on the centre)
    sigma_center_range: tuple[float, float] = (0.2, 1.0)  # Gaussian sigma at the optical centre (px)
    sigma_corner_range: tuple[float, float] = (1.5, 3.0)  # tangential sigma in the corners (px)
    power_range: tuple[float, float] = (1.5, 2.5)  # growth exponent of sigma with normalised radius
    anisotropy_range: tuple[float, float] = (1.0, 2.0)  # radial / tangential sigma ratio in the corners
    center_shift: float = 0.0  # optical centre offset, U(-s, s) in units of half width/height, in [0, 1)
    max_radius: int = 20  # kernel half-size cap (px); kernels are truncated at 3 sigma or this
    window: Literal["cosine", "bartlett"] = "cosine"
    boundary: Literal["reflect", "symmetric", "edge", "constant", "circular"] = "reflect"

    def __post_init__(self):
        from benchkit.config import check_number, check_pair

        check_number("grid", self.grid, 1, 64, integer=True)
        check_pair("sigma_center_range", self.sigma_center_range, 0.0, 100.0, lo_open=True)
        check_pair("sigma_corner_range", self.sigma_corner_range, 0.0, 100.0, lo_open=True)
        check_pair("power_range", self.power_range, 0.0, 10.0, lo_open=True)
        check_pair("anisotropy_range", self.anisotropy_range, 1.0, 10.0)
        check_number("center_shift", self.center_shift, 0.0, 1.0, hi_open=True)
        check_number("max_radius", self.max_radius, 1, 256, integer=True)
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {self.window!r}")


@dataclass(frozen=True)
class RadialFieldParams(Params):
    """One sampled radial PSF field (sizes in px; apply uses the image's own size for the geometry)."""

    type_name: ClassVar[str] = "motion.RadialFieldParams"  # stable "__type__" (registry.PARAMS); never rename

    height: int  # image size the field was sampled for
    width: int
    grid: int
    sigma_center: float
    sigma_corner: float
    power: float
    anisotropy: float
    center_y: float  # optical centre offset in units of half height, [-1, 1]
    center_x: float
    kernel_radius: int  # kernels are (2 r + 1)^2
    window: str = "cosine"
    boundary: str = "reflect"

    def apply_blur(self, img):
        """``apply_radial_field(img, self)``: the hook the Real-ESRGAN pipeline's stage-1 blur dispatches to."""
        return apply_radial_field(img, self)


def sample_radial_field(rng, cfg: RadialFieldConfig, height: int, width: int) -> RadialFieldParams:
    """Draw a radial field for an image of ``height`` x ``width`` px (all random draws happen here)."""
    import math

    sc = float(rng.uniform(*cfg.sigma_center_range))
    sk = float(rng.uniform(*cfg.sigma_corner_range))
    power = float(rng.uniform(*cfg.power_range))
    aniso = float(rng.uniform(*cfg.anisotropy_range))
    cy = float(rng.uniform(-cfg.center_shift, cfg.center_shift)) if cfg.center_shift > 0 else 0.0
    cx = float(rng.uniform(-cfg.center_shift, cfg.center_shift)) if cfg.center_shift > 0 else 0.0
    # largest sigma anywhere: radius up to ~1 + shift in the farthest corner
    rmax = (1.0 + cfg.center_shift) if cfg.center_shift > 0 else 1.0
    smax = max(sc, sc + (sk - sc) * rmax ** power) * (1.0 + (aniso - 1.0) * rmax)
    radius = int(min(cfg.max_radius, max(1, math.ceil(3.0 * smax))))
    return RadialFieldParams(int(height), int(width), int(cfg.grid), sc, sk, power, aniso, cy, cx, radius,
                             cfg.window, cfg.boundary)


def gaussian_psf(radius: int, sigma_a: float, sigma_b: float, theta: float):
    """Anisotropic Gaussian (2r+1)^2, sum 1: sigma_a along direction ``theta`` (rad, x towards y), sigma_b across."""
    import numpy as np

    yy, xx = np.mgrid[-radius: radius + 1, -radius: radius + 1].astype(np.float64)
    a = xx * np.cos(theta) + yy * np.sin(theta)
    b = -xx * np.sin(theta) + yy * np.cos(theta)
    k = np.exp(-0.5 * ((a / sigma_a) ** 2 + (b / sigma_b) ** 2))
    return k / k.sum()


def radial_field(params: RadialFieldParams, height: int, width: int):
    """The PSF field [grid, grid, K, K] (float64) of ``params`` for an image of ``height`` x ``width``."""
    import numpy as np

    g = params.grid
    ys = node_positions(g, height)
    xs = node_positions(g, width)
    cy = (height - 1) / 2.0 * (1.0 + params.center_y)
    cx = (width - 1) / 2.0 * (1.0 + params.center_x)
    half_diag = max(1e-9, float(np.hypot((height - 1) / 2.0, (width - 1) / 2.0)))
    k = 2 * params.kernel_radius + 1
    field = np.zeros((g, g, k, k))
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            dy, dx = y - cy, x - cx
            r = float(np.hypot(dy, dx)) / half_diag
            s_t = params.sigma_center + (params.sigma_corner - params.sigma_center) * r ** params.power
            s_r = s_t * (1.0 + (params.anisotropy - 1.0) * r)
            field[j, i] = gaussian_psf(params.kernel_radius, s_r, s_t, float(np.arctan2(dy, dx)))
    return field


def apply_radial_field(img, params: RadialFieldParams):
    """Blur a float32 RGB HxWx3 image (values in [0, 1]) with the radial field; float32 HxWx3 out."""
    import numpy as np

    img = np.asarray(img, np.float32)
    field = radial_field(params, img.shape[0], img.shape[1])
    return eff_blur(img, field, boundary=params.boundary, window=params.window, normalize=True)
