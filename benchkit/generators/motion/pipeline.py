"""The ``motion_blur`` generator: random camera-shake trajectory -> centred PSF -> FFT blur.

``sample`` draws the trajectory parameters (+ its noise seed) and the exposure fraction;
``apply`` regenerates the trajectory from them, renders the PSF and blurs the image (no randomness).
Outputs: ``gt`` (uint8 input), ``lq`` (uint8 blurred), ``psf`` (float32 kernel, written as .npy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from benchkit.generators.base import Generator, SampleContext
from benchkit.generators.motion.psf import PSFConfig
from benchkit.generators.motion.trajectory import TrajectoryConfig, TrajectoryParams
from benchkit.params import Params


@dataclass(frozen=True)
class BlurConfig:
    """How the PSF is applied (see benchkit.generators.motion.fftblur)."""

    boundary: Literal["reflect", "symmetric", "edge", "constant", "circular"] = "reflect"
    linear_light: Literal["none", "srgb", "gamma2.2"] = "none"  # blur in linear light (decode, blur, encode)

    def __post_init__(self):
        from benchkit.generators.motion.fftblur import BOUNDARIES, LINEAR_LIGHT

        if self.boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {self.boundary!r}")
        if self.linear_light not in LINEAR_LIGHT:
            raise ValueError(f"linear_light must be one of {LINEAR_LIGHT}, got {self.linear_light!r}")


@dataclass(frozen=True)
class MotionBlurConfig:
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    psf: PSFConfig = field(default_factory=PSFConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)


@dataclass(frozen=True)
class MotionBlurParams(Params):
    type_name: ClassVar[str] = "motion.MotionBlurParams"  # stable "__type__" (registry.PARAMS); never rename

    trajectory: TrajectoryParams
    exposure: float  # fraction of the trajectory integrated into the PSF, (0, 1]


def psf_for(params: MotionBlurParams, cfg: PSFConfig):
    """The float32 PSF of one sample (deterministic in ``params`` and ``cfg``)."""
    from benchkit.generators.motion.psf import canvas_size, render_psf
    from benchkit.generators.motion.trajectory import generate_trajectory

    size = canvas_size(params.trajectory.canvas) if cfg.size_mode == "canvas" else None
    x = generate_trajectory(params.trajectory)
    return render_psf(x, params.exposure, centre=cfg.centre, margin=cfg.margin, size=size)


class MotionBlurGenerator(Generator):
    """Uniform camera-shake blur y = k * x with a random Boracchi & Foi trajectory kernel."""

    name = "motion_blur"
    version = "1"
    Config = MotionBlurConfig
    roles = {"lq": "input", "gt": "target", "psf": "aux"}

    def sample(self, rng, ctx: SampleContext) -> MotionBlurParams:
        from benchkit.generators.motion.trajectory import sample_trajectory

        traj = sample_trajectory(rng, self.config.trajectory)
        choices = self.config.psf.exposure_choices
        exposure = float(choices[int(rng.integers(len(choices)))])
        return MotionBlurParams(traj, exposure)

    def apply(self, img, params: MotionBlurParams, ctx: SampleContext | None = None) -> dict:
        from benchkit.generators.motion.fftblur import fft_blur
        from benchkit.images import to_uint8

        psf = psf_for(params, self.config.psf)
        blurred = fft_blur(img, psf, boundary=self.config.blur.boundary, linear_light=self.config.blur.linear_light)
        return {"gt": to_uint8(img), "lq": to_uint8(blurred), "psf": psf}
