"""Sampled parameters of one Real-ESRGAN sample (every random choice is a field; JSON round-trip).

Kernels are stored as their parameters, never as arrays; :meth:`KernelParams.kernel` rebuilds them.
Pixel noise is stored as a 63-bit seed (drawn with ``benchkit.seeding.child_seed``) from which
``apply`` regenerates the noise field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchkit.params import Params

from .kernels import make_kernel, pad_kernel, separable_taps


@dataclass(frozen=True)
class KernelParams(Params):
    """One blur kernel. ``family``: one of kernels.KERNEL_FAMILIES, "sinc" or "delta" (identity).

    ``size``: odd side in px (unpadded); sigmas in px; ``theta`` in radians; ``omega`` (sinc cutoff)
    in radians/pixel; unused fields keep their defaults.
    """

    type_name: ClassVar[str] = "realesrgan.KernelParams"  # stable "__type__" (registry.PARAMS); never rename

    family: str
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0
    beta: float = 1.0
    omega: float = 0.0

    def kernel(self) -> np.ndarray:
        """The unpadded ``size`` x ``size`` float64 kernel (sums to 1)."""
        return make_kernel(self.family, self.size, self.sigma_x, self.sigma_y, self.theta, self.beta, self.omega)

    def padded(self, size: int = 21) -> np.ndarray:
        """The kernel zero-padded to ``size`` x ``size`` (Real-ESRGAN pads to 21)."""
        return pad_kernel(self.kernel(), size)

    def separable(self) -> np.ndarray | None:
        """1-D taps if the kernel is exactly separable (iso Gaussian, delta), else None."""
        return separable_taps(self.family, self.size, self.sigma_x)

    @property
    def is_identity(self) -> bool:
        return self.family == "delta"


@dataclass(frozen=True)
class ResizeParams(Params):
    """Resize to ``height`` x ``width`` px with ``mode`` in {area, bilinear, bicubic}.

    ``direction`` ("up", "down", "keep" or "final") and ``factor`` (the sampled relative factor; 1 for
    keep/final) are recorded for analysis; the target size is what ``apply`` uses.
    """

    type_name: ClassVar[str] = "realesrgan.ResizeParams"  # stable "__type__" (registry.PARAMS); never rename

    direction: str
    factor: float
    mode: str
    height: int
    width: int


@dataclass(frozen=True)
class NoiseParams(Params):
    """Additive noise. ``kind``: "gaussian" (``sigma`` in 8-bit levels) or "poisson" (``scale`` multiplies
    the shot-noise residual). ``gray``: one channel copied to RGB. ``seed``: PCG64 seed of the field."""

    type_name: ClassVar[str] = "realesrgan.NoiseParams"  # stable "__type__" (registry.PARAMS); never rename

    kind: str
    gray: bool
    sigma: float
    scale: float
    seed: int


@dataclass(frozen=True)
class JpegParams(Params):
    """Real JPEG round trip (OpenCV/libjpeg, 4:2:0) at integer ``quality`` in [1, 100]."""

    type_name: ClassVar[str] = "realesrgan.JpegParams"  # stable "__type__" (registry.PARAMS); never rename

    quality: int


@dataclass(frozen=True)
class RealESRGANParams(Params):
    """All sampled choices of one sample, in pipeline order.

    ``blur1`` is the stage-1 blur: a :class:`KernelParams` today; any Params type that
    ``pipeline.apply_first_blur`` knows (e.g. a spatially varying PSF field) can take its place.
    ``final_order``: "A" = resize -> final sinc -> JPEG, "B" = JPEG -> resize -> final sinc.
    """

    type_name: ClassVar[str] = "realesrgan.RealESRGANParams"  # stable "__type__" (registry.PARAMS); never rename

    blur1: Params
    resize1: ResizeParams
    noise1: NoiseParams
    jpeg1: JpegParams
    blur2_applied: bool
    blur2: KernelParams
    resize2: ResizeParams
    noise2: NoiseParams
    final_order: str
    final_resize: ResizeParams
    final_sinc: KernelParams
    jpeg2: JpegParams
