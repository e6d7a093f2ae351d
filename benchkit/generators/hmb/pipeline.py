"""Human motion blur (HMB, HAODiff Sec. 3.1 / Fig. 2) and the HAODiff degradation pipeline.

HMB of an HQ image ``I_H`` with a body-part label map (auxiliary pass ``segmenter``, Sapiens ids):

1. one part group (:mod:`benchkit.generators.hmb.parts`) among those PRESENT in the image (at least
   ``min_group_pixels`` px) is drawn (uniform, or ``group_weights`` renormalised over present groups);
2. ``W_s = Norm(G(D(E(mask))))`` (paper eq. 1): erosion then dilation with elliptical structuring elements of
   radius ``r_e``, ``r_d`` px (size ``2r+1``; 0 = none), Gaussian blur with std ``sigma`` px (kernel
   ``2*ceil(3 sigma)+1``, OpenCV, reflect-101 border), ``Norm``: divide by the maximum (W_s in [0, 1],
   background stays 0); all sizes drawn from configured ranges and recorded. W_s is quantised to 16 bit
   (the recorded ``hmb_weight`` PNG) and that quantised weight is what the blend uses;
3. ``I_B = PSF * I_H``: a random Markov camera-shake trajectory PSF (:mod:`benchkit.generators.motion`), FFT
   convolution through :func:`benchkit.ops.convolve` (``fft_blur``; optional linear-light blur);
4. ``I_HMB = W_s * I_B + (1 - W_s) * I_H`` (paper eq. 2), in float32, then rounded to 8 bit.

No person (no configured group present): ``no_person: none`` (default) leaves the image sharp (W_s = 0, group
``""``; HAODiff: the first order becomes "none"); ``no_person: error`` makes the sample a per-item failure.

HAODiff: the first order is ONE of ``none`` / ``hmb`` / ``realesrgan`` (Real-ESRGAN first order: blur, resize,
noise, JPEG) with probabilities ``first_order_probs`` (the paper gives none; ours: 0.2 / 0.5 / 0.3), then the
Real-ESRGAN second order and final stage (:mod:`benchkit.generators.realesrgan`), on the USM target as in
``realesrgan``. Outputs of both: ``gt``, ``lq``, ``hmb_weight`` (uint16, written as 16-bit PNG), ``psf``
(float32 .npy; 1x1 identity when no HMB); manifest ``meta``: group, case, HMB boxes (connected components of
W_s > ``box_threshold``, ``[x0, y0, x1, y1]`` exclusive, px) and the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from benchkit.generators.base import Generator, SampleContext
from benchkit.generators.hmb.parts import GROUP_NAMES
from benchkit.generators.motion.pipeline import MotionBlurConfig, MotionBlurParams
from benchkit.generators.realesrgan.settings import RealESRGANConfig
from benchkit.params import Params

SEGMENTERS = ("sapiens", "masks", "mediapipe")
FIRST_ORDER_CASES = ("none", "hmb", "realesrgan")


def _range(name, r, lo, hi, integer=False):
    if len(r) != 2 or not (lo <= r[0] <= r[1] <= hi) or (integer and any(int(v) != v for v in r)):
        raise ValueError(f"{name}: expected [low, high] with {lo} <= low <= high <= {hi}"
                         f"{' (integers)' if integer else ''}, got {list(r)}")


@dataclass(frozen=True)
class HMBConfig:
    segmenter: str = "sapiens"  # auxiliary pass giving the Sapiens-id label map: sapiens | masks | mediapipe (approximation)
    groups: tuple[str, ...] = GROUP_NAMES  # groups that may be drawn
    group_weights: tuple[float, ...] | None = None  # per entry of ``groups``; None = uniform over present
    min_group_pixels: int = 64  # a group is "present" with at least this many pixels
    no_person: Literal["none", "error"] = "none"
    erode_radius_range: tuple[int, int] = (0, 3)  # px
    dilate_radius_range: tuple[int, int] = (0, 8)  # px
    sigma_range: tuple[float, float] = (2.0, 8.0)  # Gaussian std, px
    box_threshold: float = 0.5  # HMB boxes: connected components of W_s > this
    motion: MotionBlurConfig = field(default_factory=MotionBlurConfig)

    def __post_init__(self):
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {self.segmenter!r}")
        bad = [g for g in self.groups if g not in GROUP_NAMES]
        if bad or not self.groups or len(set(self.groups)) != len(self.groups):
            raise ValueError(f"groups: distinct names from {GROUP_NAMES}, got {list(self.groups)}")
        if self.group_weights is not None and (len(self.group_weights) != len(self.groups)
                                               or min(self.group_weights) < 0 or sum(self.group_weights) <= 0):
            raise ValueError("group_weights: one non-negative weight per entry of groups, positive sum")
        if self.no_person not in ("none", "error"):
            raise ValueError(f"no_person must be 'none' or 'error', got {self.no_person!r}")
        if not (isinstance(self.min_group_pixels, int) and self.min_group_pixels >= 1):
            raise ValueError(f"min_group_pixels must be an integer >= 1, got {self.min_group_pixels!r}")
        _range("erode_radius_range", self.erode_radius_range, 0, 256, integer=True)
        _range("dilate_radius_range", self.dilate_radius_range, 0, 256, integer=True)
        _range("sigma_range", self.sigma_range, 0.1, 256.0)
        if not 0.0 <= self.box_threshold < 1.0:
            raise ValueError(f"box_threshold must be in [0, 1), got {self.box_threshold!r}")


@dataclass(frozen=True)
class HMBParams(Params):
    type_name: ClassVar[str] = "hmb.HMBParams"  # stable "__type__" (registry.PARAMS); never rename

    group: str  # part group, "" = no HMB (no person)
    erode_radius: int  # px
    dilate_radius: int  # px
    sigma: float  # px
    blur: MotionBlurParams


def sample_hmb(rng, cfg: HMBConfig, labels) -> HMBParams:
    """Every draw of one HMB sample (group among those present in ``labels``, morphology, PSF)."""
    import numpy as np

    from benchkit.errors import BenchkitError
    from benchkit.generators.hmb.parts import group_pixel_counts
    from benchkit.generators.motion.pipeline import MotionBlurGenerator

    counts = group_pixel_counts(labels)
    present = [i for i, g in enumerate(cfg.groups) if counts[g] >= cfg.min_group_pixels]
    w = np.asarray(cfg.group_weights if cfg.group_weights is not None else [1.0] * len(cfg.groups), np.float64)
    w = w[present] if present else w[:0]
    if not present or w.sum() <= 0:
        if cfg.no_person == "error":
            raise BenchkitError(f"no person: none of the groups {list(cfg.groups)} has {cfg.min_group_pixels}+ "
                                f"pixels in the {cfg.segmenter} label map (no_person: error; set no_person: none "
                                f"to keep such images sharp)")
        group = ""
    else:
        group = cfg.groups[present[int(rng.choice(len(present), p=w / w.sum()))]]
    er = int(rng.integers(cfg.erode_radius_range[0], cfg.erode_radius_range[1] + 1))
    dr = int(rng.integers(cfg.dilate_radius_range[0], cfg.dilate_radius_range[1] + 1))
    sigma = float(rng.uniform(*cfg.sigma_range))
    blur = MotionBlurGenerator(cfg.motion).sample(rng, None)
    return HMBParams(group, er, dr, sigma, blur)


def _ellipse(r: int):
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def gaussian_ksize(sigma: float) -> int:
    return 2 * math.ceil(3.0 * sigma) + 1


def hmb_weight(labels, p: HMBParams):
    """W_s as uint16 (65535 = 1): Norm(G(D(E(group mask)))); zeros without a group."""
    import cv2
    import numpy as np

    from benchkit.generators.hmb.parts import group_mask

    if not p.group:
        return np.zeros(np.asarray(labels).shape[:2], np.uint16)
    m = group_mask(labels, p.group)
    if p.erode_radius:
        m = cv2.erode(m, _ellipse(p.erode_radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if p.dilate_radius:
        m = cv2.dilate(m, _ellipse(p.dilate_radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    k = gaussian_ksize(p.sigma)
    g = cv2.GaussianBlur(m.astype(np.float32), (k, k), p.sigma, sigmaY=p.sigma, borderType=cv2.BORDER_REFLECT_101)
    top = float(g.max())
    if top <= 0:  # erosion removed the whole part: no blur
        return np.zeros(m.shape, np.uint16)
    return np.clip(np.rint(g / top * 65535.0), 0, 65535).astype(np.uint16)


def blend(img, blurred, w16):
    """Paper eq. 2 in float32: W * I_B + (1 - W) * I_H with W = w16 / 65535 (HxW)."""
    import numpy as np

    w = (w16.astype(np.float32) / np.float32(65535.0))[..., None]
    return w * blurred + (np.float32(1.0) - w) * img


def apply_hmb(img, labels, p: HMBParams, cfg: HMBConfig):
    """(float32 I_HMB, uint16 W_s, float32 PSF) of float32 RGB ``img`` (no draws)."""
    import numpy as np

    from benchkit.generators.motion.fftblur import fft_blur
    from benchkit.generators.motion.pipeline import psf_for

    w16 = hmb_weight(labels, p)
    psf = psf_for(p.blur, cfg.motion.psf)
    if not w16.any():
        return np.asarray(img, np.float32), w16, psf
    b = cfg.motion.blur
    blurred = fft_blur(np.asarray(img, np.float32), psf, boundary=b.boundary, linear_light=b.linear_light)
    return blend(np.asarray(img, np.float32), blurred.astype(np.float32), w16), w16, psf


def hmb_boxes(w16, threshold: float) -> list[list[int]]:
    """Boxes ``[x0, y0, x1, y1]`` (exclusive ends, px) of the 8-connected components of W_s > threshold."""
    import cv2
    import numpy as np

    binary = (w16.astype(np.float64) / 65535.0 > threshold).astype(np.uint8)
    n, _lab, stats, _c = cv2.connectedComponentsWithStats(binary, connectivity=8)
    out = []
    for i in range(1, n):  # one row per component, not per pixel
        x, y, w, h = (int(v) for v in stats[i, :4])
        out.append([x, y, x + w, y + h])
    return sorted(out)


class _HMBMixin:
    def _init_aux(self, seg: str):
        self.aux_passes = (seg,)  # instance-level: the configured segmenter

    @staticmethod
    def _to_u8(x):
        from benchkit.images import to_uint8

        return to_uint8(x)


class HMBGenerator(_HMBMixin, Generator):
    """HMB alone: ``lq`` is exactly the eq. 2 blend of ``gt`` (the input, 8 bit)."""

    name = "hmb"
    version = "1"
    Config = HMBConfig
    aux_passes = ("sapiens",)
    roles = {"lq": "input", "gt": "target", "hmb_weight": "aux", "psf": "aux"}
    metadata = {"group": "str", "hmb_boxes": "list[[x0,y0,x1,y1]] px", "box_threshold": "float"}

    def __init__(self, config=None):
        super().__init__(config)
        self._init_aux(self.config.segmenter)

    def sample(self, rng, ctx: SampleContext) -> HMBParams:
        return sample_hmb(rng, self.config, ctx.need(self.config.segmenter))

    def apply(self, img, params: HMBParams, ctx: SampleContext | None = None) -> dict:
        out, w16, psf = apply_hmb(img, ctx.need(self.config.segmenter), params, self.config)
        return {"gt": self._to_u8(img), "lq": self._to_u8(out), "hmb_weight": w16, "psf": psf}

    def sample_meta(self, params, outs, ctx=None) -> dict:
        return {"group": params.group, "hmb_boxes": hmb_boxes(outs["hmb_weight"], self.config.box_threshold),
                "box_threshold": self.config.box_threshold}

    def encode_outputs(self, outs: dict) -> dict:
        return encode_weight(outs)

    def min_input_size(self) -> int:
        return 64


def encode_weight(outs: dict) -> dict:
    """``hmb_weight`` (uint16) as a 16-bit PNG (runner.Encoded); the other outputs unchanged."""
    import cv2

    from benchkit.images import png_params
    from benchkit.runner import Encoded

    ok, buf = cv2.imencode(".png", outs["hmb_weight"], png_params())
    if not ok:
        raise RuntimeError("hmb_weight: PNG encoding failed")
    return {**outs, "hmb_weight": Encoded(".png", buf.tobytes())}


@dataclass(frozen=True)
class HAODiffConfig:
    first_order_probs: tuple[float, float, float] = (0.2, 0.5, 0.3)  # none, hmb, realesrgan (our choice)
    hmb: HMBConfig = field(default_factory=HMBConfig)
    realesrgan: RealESRGANConfig = field(default_factory=lambda: RealESRGANConfig(scale=1))

    def __post_init__(self):
        p = self.first_order_probs
        if len(p) != 3 or min(p) < 0 or abs(sum(p) - 1.0) > 1e-9:
            raise ValueError(f"first_order_probs: 3 probabilities (none, hmb, realesrgan) summing to 1, got {list(p)}")


@dataclass(frozen=True)
class HAODiffParams(Params):
    type_name: ClassVar[str] = "hmb.HAODiffParams"  # stable "__type__" (registry.PARAMS); never rename

    case_drawn: str  # none | hmb | realesrgan (drawn)
    case: str  # applied (hmb without a person -> none)
    hmb: HMBParams
    realesrgan: Params  # RealESRGANParams; the first-order fields are used only when case == realesrgan


def draw_case(rng, probs) -> str:
    """One first-order case: a single uniform draw against the cumulative probabilities."""
    u = float(rng.random())
    acc = 0.0
    for name, p in zip(FIRST_ORDER_CASES, probs):
        acc += p
        if u < acc:
            return name
    return FIRST_ORDER_CASES[[i for i, p in enumerate(probs) if p > 0][-1]]


class HAODiffGenerator(_HMBMixin, Generator):
    """HAODiff training degradation: first order in {none, HMB, Real-ESRGAN 1st order}, then Real-ESRGAN 2nd order."""

    name = "haodiff"
    version = "1"
    Config = HAODiffConfig
    aux_passes = ("sapiens",)
    roles = {"lq": "input", "gt": "target", "hmb_weight": "aux", "psf": "aux"}
    metadata = {"case": "str", "group": "str", "hmb_boxes": "list[[x0,y0,x1,y1]] px", "box_threshold": "float"}

    def __init__(self, config=None):
        super().__init__(config)
        self._init_aux(self.config.hmb.segmenter)
        from benchkit.generators.realesrgan.pipeline import RealESRGANGenerator

        self._resr = RealESRGANGenerator(self.config.realesrgan, version="1.1")  # haodiff v1's USM target

    def _labels(self, ctx):
        from benchkit.generators.realesrgan.pipeline import mod_crop

        return mod_crop(ctx.need(self.config.hmb.segmenter), self.config.realesrgan.scale)

    def sample(self, rng, ctx: SampleContext) -> HAODiffParams:
        drawn = draw_case(rng, self.config.first_order_probs)
        hp = sample_hmb(rng, self.config.hmb, self._labels(ctx))
        rp = self._resr.sample(rng, ctx)
        case = "none" if drawn == "hmb" and not hp.group else drawn
        return HAODiffParams(drawn, case, hp, rp)

    def apply(self, img, params: HAODiffParams, ctx: SampleContext | None = None) -> dict:
        import numpy as np

        from benchkit.generators.realesrgan import ops
        from benchkit.generators.realesrgan.pipeline import apply_first_blur

        gt = self._resr.target(img)
        labels = self._labels(ctx)
        p = params.realesrgan
        w16 = np.zeros(gt.shape[:2], np.uint16)
        psf = np.ones((1, 1), np.float32)
        x = gt
        if params.case == "hmb":
            x, w16, psf = apply_hmb(gt, labels, params.hmb, self.config.hmb)
        elif params.case == "realesrgan":
            x = apply_first_blur(x, p.blur1)
            x = ops.resize(x, p.resize1)
            x = ops.add_noise(x, p.noise1)
            x = ops.jpeg(x, p.jpeg1)
        if p.blur2_applied:
            x = ops.filter_kernel(x, p.blur2)
        x = ops.resize(x, p.resize2)
        x = ops.add_noise(x, p.noise2)
        if p.final_order == "A":
            x = ops.filter_kernel(ops.resize(x, p.final_resize), p.final_sinc)
            x = ops.jpeg(x, p.jpeg2)
        else:
            x = ops.filter_kernel(ops.resize(ops.jpeg(x, p.jpeg2), p.final_resize), p.final_sinc)
        return {"gt": ops.to_levels(gt), "lq": ops.to_levels(x), "hmb_weight": w16, "psf": psf}

    def sample_meta(self, params, outs, ctx=None) -> dict:
        return {"case": params.case, "group": params.hmb.group if params.case == "hmb" else "",
                "hmb_boxes": hmb_boxes(outs["hmb_weight"], self.config.hmb.box_threshold),
                "box_threshold": self.config.hmb.box_threshold}

    def encode_outputs(self, outs: dict) -> dict:
        return encode_weight(outs)

    def min_input_size(self) -> int:
        return max(64, self._resr.min_input_size())
