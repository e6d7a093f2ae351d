"""Blur kernels of the Real-ESRGAN degradation (facts from BasicSR ``degradations.py``).

All functions are pure, vectorised numpy and return float64 kernels that sum to 1.
Coordinates: a centred integer grid, ``x`` = column offset, ``y`` = row offset, so a
``size`` x ``size`` kernel has offsets ``-(size-1)/2 .. (size-1)/2``.

Anisotropic shapes use ``Sigma = R(theta) diag(sx^2, sy^2) R(theta)^T`` and the quadratic
form ``q = [x, y] Sigma^-1 [x, y]^T``:

- Gaussian ``exp(-q / 2)``; generalized Gaussian ``exp(-0.5 q^beta)``; plateau ``1 / (1 + q^beta)``.
- Isotropic variants use ``sy = sx`` and ``theta = 0``.
- Circular low-pass (sinc) ``omega J1(omega r) / (2 pi r)``, centre ``omega^2 / (4 pi)``; has
  negative lobes.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from benchkit.ops import pad

#: The six Gaussian-like families, in Real-ESRGAN's order.
KERNEL_FAMILIES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
#: Families besides the six: the sinc low-pass and the identity ("delta", e.g. no final sinc).
SPECIAL_FAMILIES = ("sinc", "delta")


def offsets(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) offset grids of shape (size, size); x varies along columns, y along rows."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    return np.meshgrid(ax, ax, indexing="xy")


def sigma_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Covariance ``R(theta) diag(sx^2, sy^2) R(theta)^T`` (2x2, pixels^2)."""
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T


def quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``q = x^T Sigma^-1 x`` on the centred grid (dimensionless, >= 0)."""
    inv = np.linalg.inv(sigma_matrix(sigma_x, sigma_y, theta))
    x, y = offsets(size)
    return inv[0, 0] * x * x + (inv[0, 1] + inv[1, 0]) * x * y + inv[1, 1] * y * y


def _normalised(k: np.ndarray) -> np.ndarray:
    return k / k.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Anisotropic Gaussian ``exp(-q/2)``, normalised (iso: ``sigma_y = sigma_x``, ``theta = 0``)."""
    return _normalised(np.exp(-0.5 * quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Generalized Gaussian ``exp(-0.5 q^beta)``, normalised; beta > 0 (Real-ESRGAN: [0.5, 4])."""
    return _normalised(np.exp(-0.5 * np.power(quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped ``1 / (1 + q^beta)``, normalised; beta > 0 (Real-ESRGAN: [1, 2])."""
    return _normalised(1.0 / (1.0 + np.power(quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def sinc_kernel(size: int, omega: float) -> np.ndarray:
    """Circular low-pass ``omega J1(omega r) / (2 pi r)`` with centre ``omega^2/(4 pi)``, normalised.

    ``omega`` is the cutoff in radians/pixel, (0, pi].
    """
    x, y = offsets(size)
    r = np.hypot(x, y)
    centre = r == 0
    r_safe = np.where(centre, 1.0, r)
    k = omega * special.j1(omega * r_safe) / (2.0 * np.pi * r_safe)
    k = np.where(centre, omega**2 / (4.0 * np.pi), k)
    return _normalised(k)


def delta_kernel(size: int = 1) -> np.ndarray:
    """Identity kernel (1 at the centre)."""
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


def pad_kernel(k: np.ndarray, size: int = 21) -> np.ndarray:
    """Zero-pad an odd square kernel symmetrically to ``size`` x ``size`` (no-op if already that size)."""
    n = k.shape[0]
    if n > size or (size - n) % 2:
        raise ValueError(f"cannot pad a {n}x{n} kernel to {size}x{size}")
    p = (size - n) // 2
    return pad(k, p, "constant") if p else k


def make_kernel(family: str, size: int, sigma_x: float = 0.0, sigma_y: float = 0.0, theta: float = 0.0,
                beta: float = 1.0, omega: float = 0.0) -> np.ndarray:
    """The unpadded ``size`` x ``size`` kernel of ``family`` (float64, sums to 1)."""
    if family == "delta":
        return delta_kernel(size)
    if family == "sinc":
        return sinc_kernel(size, omega)
    if family.endswith("iso") and not family.endswith("aniso"):
        sigma_y, theta = sigma_x, 0.0
    if family in ("iso", "aniso"):
        return gaussian_kernel(size, sigma_x, sigma_y, theta)
    if family.startswith("generalized"):
        return generalized_kernel(size, sigma_x, sigma_y, theta, beta)
    if family.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, beta)
    raise ValueError(f"unknown kernel family {family!r}; known: {KERNEL_FAMILIES + SPECIAL_FAMILIES}")


def separable_taps(family: str, size: int, sigma_x: float) -> np.ndarray | None:
    """1-D taps ``t`` with ``outer(t, t) == make_kernel(...)`` for separable kernels (iso Gaussian, delta), else None.

    The isotropic Gaussian ``exp(-(x^2 + y^2) / (2 s^2))`` factors exactly into two 1-D Gaussians,
    which lets the CPU path filter in O(size) instead of O(size^2) per pixel.
    """
    if family == "delta":
        t = np.zeros(size)
        t[size // 2] = 1.0
        return t
    if family == "iso":
        ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
        t = np.exp(-0.5 * ax * ax / (sigma_x * sigma_x))
        return t / t.sum()
    return None
