"""The Real-ESRGAN two-order degradation as a benchkit generator (CPU path: numpy + OpenCV).

Order (REFERENCE section 1): optional USM sharpening of the target -> blur1 -> resize1 -> noise1 ->
JPEG1 -> [blur2] -> resize2 (target = ORIGINAL size / scale * factor) -> noise2 -> final stage,
(A) resize to original/scale -> final sinc -> JPEG or (B) JPEG -> resize -> final sinc; then clip and
round to 8 bit. Outputs: ``gt`` (the target, USM-sharpened if ``usm``) and ``lq`` (side // scale).

Sizes: the input is first cropped top-left to multiples of ``scale`` (BasicSR ``mod_crop``), so ``gt`` is
exactly ``scale`` x ``lq`` for any input size; ``sample`` and every size rule use that cropped size.
"""

from __future__ import annotations

import math

import numpy as np

from benchkit.generators.base import Generator, SampleContext

from . import ops
from .ops import apply_first_blur, degrade  # noqa: F401  (re-exported: their 0.1.0 home; version 1.1's degrade)
from .params import RealESRGANParams
from .sampling import sample_params
from .settings import RealESRGANConfig
from .versions import CURRENT, REPLAYED, cpu_ops


def mod_crop_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """(height, width) cropped down to multiples of ``scale``."""
    return height - height % scale, width - width % scale


def mod_crop(img, scale: int):
    """Top-left crop of an H x W[ x C] image to multiples of ``scale`` (a view, no copy)."""
    h, w = mod_crop_size(img.shape[0], img.shape[1], scale)
    return img[:h, :w]


class RealESRGANGenerator(Generator):
    """Real-ESRGAN two-order degradation; ``sample`` draws everything, ``apply`` draws nothing.

    Versions (``sample`` and the parameters are the same in both; only ``apply``'s arithmetic differs):

    - **2** (new builds): the USM target's two 51 x 51 Gaussians on a half-resolution pyramid and one
      Poisson table per ``vals`` (:mod:`.ops_v2`, which states the bounds): a blurred value moves by at most
      1.4e-3 (0.36 level) against the exact Gaussian. Against 1.1 on ``benchkit bench degrade``'s 32 images
      (512 px, x4, same params): gt max |diff| 1 level in 0.08 % of values, PSNR >= 75.8 dB; lq max |diff|
      22 levels, mean 0.12 levels, 6.3 % of values changed and 0.05 % by more than 8 levels, PSNR >= 44.9 dB
      (a float difference of ~1e-4 flips an 8-bit rounding before Poisson noise or JPEG, which spreads it
      over its 8 x 8 block): inside the tolerance benchkit states between its torch and CPU paths (mean
      <= 0.5 levels, <= 2 % beyond 8). Compute per image about 0.7x of 1.1's (28.7 vs 40.3 ms CPU there).
    - **1.1**: target cropped to multiples of scale (gt = scale x lq for any input size); the exact USM
      through a ``cv2.dft`` correlation (:mod:`.ops`). Kept byte for byte: datasets whose spec.json records
      1.1 replay (and resume) with it.
    """

    name = "realesrgan"
    version = CURRENT
    replay_versions = REPLAYED
    Config = RealESRGANConfig

    def sample(self, rng, ctx: SampleContext) -> RealESRGANParams:
        return sample_params(rng, self.config, *mod_crop_size(ctx.height, ctx.width, self.config.scale))

    @property
    def ops(self):
        """This instance's version's CPU operations module (``target``/``degrade``/``usm_sharpen``...)."""
        return cpu_ops(self.version)

    def target(self, img: np.ndarray) -> np.ndarray:
        """The float32 target image: the input cropped to multiples of ``scale``, USM-sharpened if ``config.usm``."""
        img = np.ascontiguousarray(mod_crop(img, self.config.scale), dtype=np.float32)
        c = self.config
        return self.ops.usm_sharpen(img, c.usm_weight, c.usm_radius, c.usm_threshold) if c.usm else img

    def apply(self, img, params: RealESRGANParams, ctx: SampleContext | None = None) -> dict:
        """``img``: float32 RGB HxWx3 in [0, 1] -> {"lq": uint8 (H//s)x(W//s)x3, "gt": uint8 (H//s*s)x(W//s*s)x3}."""
        gt = self.target(img)
        lq = self.ops.degrade(gt, params)
        return {"lq": ops.to_levels(lq), "gt": ops.to_levels(gt)}

    def apply_batch(self, imgs, params_list, jpeg_backend: str = "cv2", return_gt: bool = False):
        """Batched torch path (CPU or CUDA), see :func:`benchkit.generators.realesrgan.torch_path.apply_batch`."""
        from .torch_path import apply_batch

        return apply_batch(imgs, params_list, self.config, jpeg_backend=jpeg_backend, return_gt=return_gt,
                           version=self.version)

    def min_input_size(self) -> int:
        """Smallest input side (px): at least the padded kernel size, and large enough that every
        intermediate image keeps ``min_intermediate`` px at the smallest configured resize factors."""
        c = self.config
        need = max(c.kernel_pad_to, c.min_intermediate * c.scale)
        f1 = min(c.stage1.resize.down_range[0], 1.0) if c.stage1.resize.probs[1] > 0 else 1.0
        f2 = min(c.stage2.resize.down_range[0], 1.0) if c.stage2.resize.probs[1] > 0 else 1.0
        need = max(need, math.ceil(c.min_intermediate / f1), math.ceil(c.min_intermediate * c.scale / f2))
        return int(-(-need // c.scale) * c.scale)  # a multiple of scale: mod_crop keeps it whole
