"""Strict configuration of the Real-ESRGAN degradation; defaults = Real-ESRGAN ``train_realesrgan_x4plus.yml``.

Every number of the reference pipeline is a field (see REFERENCE section 1). Ranges are
``(low, high)`` pairs sampled uniformly; a collapsed range ``(v, v)`` always yields ``v``.
Probabilities 0 or 1 make a choice deterministic (the Face2Scene d1-d4 presets use that).

Mapping to Real-ESRGAN option names: ``stage1.kernel`` <- kernel_list/kernel_prob/blur_sigma/
betag_range/betap_range/sinc_prob; ``stage1.resize.probs`` <- resize_prob, ``up_range``/``down_range``
<- resize_range split at 1 (up: U(1, max), down: U(min, 1)); ``stage1.noise`` <- gaussian_noise_prob/
noise_range/poisson_scale_range/gray_noise_prob; ``stage1.jpeg_range`` <- jpeg_range; ``stage2.*`` <-
the ``*2`` options (``stage2.jpeg_range`` <- jpeg_range2 is used by the final JPEG); ``final`` <-
final_sinc_prob and the 0.5 order coin of ``realesrgan_model.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from benchkit.errors import ConfigError
from benchkit.generators.motion.svblur import RadialFieldConfig

from .kernels import KERNEL_FAMILIES

KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
RESIZE_MODES = ("area", "bilinear", "bicubic")


MAX_KERNEL = 101  # px, largest kernel_pad_to (the reference uses 21)
MAX_SIGMA = 100.0  # px, blur sigmas
MAX_SCALE = 16  # SR factor


def _check_range(name, r, lo=-math.inf, hi=math.inf):
    """(low, high), finite, ordered, inside [lo, hi]; the message names the key, the value and the range."""
    from benchkit.config import check_pair

    check_pair(name, r, None if lo == -math.inf else lo, None if hi == math.inf else hi)


def _check_prob(name, p):
    from benchkit.config import check_probability

    check_probability(name, p)


def _check_probs(name, probs, n):
    from benchkit.config import check_distribution

    check_distribution(name, probs, n)


def _check_sizes(name, sizes, pad_to):
    from benchkit.config import check_sizes

    check_sizes(name, sizes, 1, pad_to, odd=True)


@dataclass(frozen=True)
class KernelConfig:
    """Random blur kernel of one stage (sizes in pixels, sigmas in pixels, angles in radians)."""

    sizes: tuple[int, ...] = KERNEL_SIZES  # uniform choice; odd, <= pad_to
    families: tuple[str, ...] = KERNEL_FAMILIES
    family_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma_range: tuple[float, float] = (0.2, 3.0)  # sx ~ U(range); also sy unless sigma_y_range is set
    sigma_y_range: Optional[tuple[float, float]] = None  # sy range of anisotropic kernels; None = sigma_range
    rotation_range: tuple[float, float] = (-math.pi, math.pi)  # theta of anisotropic kernels
    betag_range: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape
    betap_range: tuple[float, float] = (1.0, 2.0)  # plateau shape
    beta_low_prob: float = 0.5  # beta ~ U(low, 1) with this prob, else U(1, high) (clamped to the range)
    sinc_prob: float = 0.1  # the kernel is replaced by a sinc (circular low-pass) kernel
    sinc_omega_small: tuple[float, float] = (math.pi / 3, math.pi)  # cutoff for size < sinc_size_split
    sinc_omega_large: tuple[float, float] = (math.pi / 5, math.pi)  # cutoff for size >= sinc_size_split
    sinc_size_split: int = 13

    def validate(self, where: str, pad_to: int) -> None:
        _check_sizes(f"{where}.sizes", self.sizes, pad_to)
        bad = [f for f in self.families if f not in KERNEL_FAMILIES]
        if bad:
            raise ConfigError(f"{where}.families: unknown {bad}; known {list(KERNEL_FAMILIES)}")
        _check_probs(f"{where}.family_probs", self.family_probs, len(self.families))
        _check_range(f"{where}.sigma_range", self.sigma_range, 1e-6, MAX_SIGMA)
        if self.sigma_y_range is not None:
            _check_range(f"{where}.sigma_y_range", self.sigma_y_range, 1e-6, MAX_SIGMA)
        _check_range(f"{where}.rotation_range", self.rotation_range, -2 * math.pi, 2 * math.pi)
        _check_range(f"{where}.betag_range", self.betag_range, 1e-6, 100.0)
        _check_range(f"{where}.betap_range", self.betap_range, 1e-6, 100.0)
        _check_prob(f"{where}.beta_low_prob", self.beta_low_prob)
        _check_prob(f"{where}.sinc_prob", self.sinc_prob)
        _check_range(f"{where}.sinc_omega_small", self.sinc_omega_small, 1e-6, math.pi)
        _check_range(f"{where}.sinc_omega_large", self.sinc_omega_large, 1e-6, math.pi)
        from benchkit.config import check_number

        check_number(f"{where}.sinc_size_split", self.sinc_size_split, 1, MAX_KERNEL, integer=True)


@dataclass(frozen=True)
class ResizeConfig:
    """Random rescale of one stage. Scale factors are relative (stage 1: to the current image;
    stage 2: to the ORIGINAL size / scale)."""

    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # (up, down, keep)
    up_range: tuple[float, float] = (1.0, 1.5)
    down_range: tuple[float, float] = (0.15, 1.0)
    modes: tuple[str, ...] = RESIZE_MODES  # uniform choice

    def validate(self, where: str) -> None:
        _check_probs(f"{where}.probs", self.probs, 3)
        _check_range(f"{where}.up_range", self.up_range, 1.0, float(MAX_SCALE))
        _check_range(f"{where}.down_range", self.down_range, 1e-3, 1.0)
        bad = [m for m in self.modes if m not in RESIZE_MODES]
        if not self.modes or bad:
            raise ConfigError(f"{where}.modes: expected a non-empty subset of {list(RESIZE_MODES)}, got {list(self.modes)}")


@dataclass(frozen=True)
class NoiseConfig:
    """Additive noise of one stage: Gaussian (sigma in 8-bit levels, i.e. /255 units) or Poisson."""

    gaussian_prob: float = 0.5  # else Poisson
    sigma_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4  # one noise channel copied to RGB (Poisson: from the luma)

    def validate(self, where: str) -> None:
        _check_prob(f"{where}.gaussian_prob", self.gaussian_prob)
        _check_range(f"{where}.sigma_range", self.sigma_range, 0.0, 255.0)
        _check_range(f"{where}.poisson_scale_range", self.poisson_scale_range, 0.0, 100.0)
        _check_prob(f"{where}.gray_prob", self.gray_prob)


@dataclass(frozen=True)
class StageConfig:
    """One order of the degradation: blur -> resize -> noise -> JPEG."""

    blur_prob: float = 1.0
    kernel: KernelConfig = field(default_factory=KernelConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    jpeg_range: tuple[int, int] = (30, 95)  # integer quality, uniform inclusive

    def validate(self, where: str, pad_to: int) -> None:
        _check_prob(f"{where}.blur_prob", self.blur_prob)
        self.kernel.validate(f"{where}.kernel", pad_to)
        self.resize.validate(f"{where}.resize")
        self.noise.validate(f"{where}.noise")
        from benchkit.config import check_pair

        check_pair(f"{where}.jpeg_range", self.jpeg_range, 1, 100, integer=True)


def _stage2() -> StageConfig:
    return StageConfig(
        blur_prob=0.8,
        kernel=KernelConfig(sigma_range=(0.2, 1.5)),
        resize=ResizeConfig(probs=(0.3, 0.4, 0.3), up_range=(1.0, 1.2), down_range=(0.3, 1.0)),
        noise=NoiseConfig(sigma_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5)),
    )


@dataclass(frozen=True)
class FinalConfig:
    """Final stage: (A) resize -> sinc -> JPEG with ``order_a_prob``, else (B) JPEG -> resize -> sinc."""

    order_a_prob: float = 0.5
    sinc_prob: float = 0.8  # else a delta (identity) kernel
    sinc_sizes: tuple[int, ...] = KERNEL_SIZES
    sinc_omega_range: tuple[float, float] = (math.pi / 3, math.pi)
    resize_modes: tuple[str, ...] = RESIZE_MODES

    def validate(self, where: str, pad_to: int) -> None:
        _check_prob(f"{where}.order_a_prob", self.order_a_prob)
        _check_prob(f"{where}.sinc_prob", self.sinc_prob)
        _check_sizes(f"{where}.sinc_sizes", self.sinc_sizes, pad_to)
        _check_range(f"{where}.sinc_omega_range", self.sinc_omega_range, 1e-6, math.pi)
        bad = [m for m in self.resize_modes if m not in RESIZE_MODES]
        if not self.resize_modes or bad:
            raise ConfigError(f"{where}.resize_modes: expected a subset of {list(RESIZE_MODES)}, got {list(self.resize_modes)}")


@dataclass(frozen=True)
class RealESRGANConfig:
    """All settings of the two-order pipeline. ``scale``: LQ side = input side // scale (4 for SR, 1 for
    same-size restoration). USM: unsharp masking of the target before degrading (Real-ESRGAN's gt_usm)."""

    scale: int = 4
    usm: bool = True
    usm_weight: float = 0.5
    usm_radius: int = 51  # odd Gaussian size (px); sigma from OpenCV's rule (8.0 for 51)
    usm_threshold: float = 10.0  # in 8-bit levels
    kernel_pad_to: int = 21  # kernels are zero-padded to this size (px) for batching
    min_intermediate: int = 8  # smallest side (px) any intermediate image may have; sets min_input_size()
    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: StageConfig = field(default_factory=_stage2)
    final: FinalConfig = field(default_factory=FinalConfig)
    # When set, a spatially varying radial PSF field (mild at the centre, stronger toward the corners)
    # REPLACES the stage-1 kernel blur (Face2Scene supplement 9.8 / Table 11); see
    # benchkit.generators.motion.svblur. ``stage1.kernel`` is then unused.
    stage1_field: Optional[RadialFieldConfig] = None

    def __post_init__(self):
        from benchkit.config import check_number

        check_number("scale", self.scale, 1, MAX_SCALE, integer=True)
        check_number("usm_weight", self.usm_weight, 0.0, 10.0)
        check_number("usm_radius", self.usm_radius, 1, 255, odd=True)
        check_number("usm_threshold", self.usm_threshold, 0.0, 255.0)
        check_number("kernel_pad_to", self.kernel_pad_to, 1, MAX_KERNEL, odd=True)
        check_number("min_intermediate", self.min_intermediate, 1, 4096, integer=True)
        self.stage1.validate("stage1", self.kernel_pad_to)
        self.stage2.validate("stage2", self.kernel_pad_to)
        self.final.validate("final", self.kernel_pad_to)
