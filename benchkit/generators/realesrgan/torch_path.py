"""Batched torch implementation of the Real-ESRGAN degradation (CPU or CUDA), same Params as the CPU path.

No sampling happens here: ``apply_batch`` consumes the Params that ``RealESRGANGenerator.sample``
produced, and regenerates pixel noise from the stored seeds with numpy (then moves it to the
device), so noise fields are identical to the CPU path.

Batched: USM sharpening, stage-1 blur and the final sinc (per-sample kernels through one grouped
``conv2d``), and stage-2 blur for samples that share a shape. Per sample (shapes differ after the
first resize): resize, noise, JPEG.

Differences to the CPU path (``ops``), measured by ``tests/test_realesrgan_torch.py``:

- convolution/resize float rounding (~1e-5) can flip an 8-bit rounding before JPEG or Poisson noise;
  JPEG then spreads that to its 8x8 block. Tested tolerance: mean |lq diff| <= 0.5 levels and <= 2 % of
  LQ values differ by more than 8 levels; measured on CPU: mean <= 0.014 levels, max 6, none > 8.
- resize: bilinear/bicubic use ``F.interpolate(size=..., align_corners=False)``, which matches
  ``cv2.resize`` INTER_LINEAR/INTER_CUBIC to ~3e-5 (same half-pixel mapping, a = -0.75, clamped
  borders). ``F.interpolate(mode='area')`` (adaptive average pooling) equals cv2 INTER_AREA only for
  integer factors, so "area" here is a matrix product with OpenCV's INTER_AREA weights (fractional
  box overlaps when shrinking, OpenCV's area-upscale weights when enlarging): exact for any factor.
- JPEG: ``jpeg_backend="cv2"`` (default) runs the same OpenCV codec as the CPU path on the host;
  ``"torchvision"`` uses ``torchvision.io.encode_jpeg``/``decode_jpeg`` (on a CUDA tensor: nvJPEG, no
  host copy). On CPU both are libjpeg(-turbo) with 4:2:0 and give identical pixels (measured: 0 levels at
  q 30/60/95 on the embedded images); nvJPEG may differ. torchvision marks its image codecs deprecated
  since 0.29 (successor: TorchCodec).
- Poisson noise: the 8-bit levels are computed on the device, copied to the host, and the counts drawn
  by the CPU path's own inverse-CDF sampler (``ops.poisson_counts``): identical wherever levels agree.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from benchkit.ops import convolve, pad, pad_index, stack_kernels

from . import ops
from .params import KernelParams, NoiseParams, RealESRGANParams, ResizeParams
from .settings import RealESRGANConfig

_LUMA = tuple(float(v) for v in ops.LUMA)


# ----------------------------------------------------------------------------- borders / filtering


def reflect101_index(n: int, pad: int) -> np.ndarray:
    """Source indices of a reflect-101 padded axis (OpenCV BORDER_REFLECT_101), any ``pad`` vs ``n``
    (:func:`benchkit.ops.pad_index` with ``reflect``)."""
    return pad_index(n, pad, "reflect")


def pad_reflect101(x: torch.Tensor, pad_y: int, pad_x: int) -> torch.Tensor:
    """Reflect-101 padding of the last two dims (works for pads larger than the image): :func:`benchkit.ops.pad`."""
    return pad(x, (pad_y, pad_x), "reflect")


def filter_batch(x: torch.Tensor, kernels: list) -> torch.Tensor:
    """Correlate each sample of ``x`` [B, C, H, W] with its kernel (``KernelParams`` or None = identity)
    through one grouped conv2d (:func:`benchkit.ops.convolve`, torch direct, reflect-101); kernels are
    zero-padded to the largest size in the batch."""
    active = [k for k in kernels if k is not None and not k.is_identity]
    if not active:
        return x
    size = max(k.size for k in active)
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0  # identity inside a batch: exact (x * 1 + 0)
    ks = stack_kernels([delta if k is None or k.is_identity else k.kernel() for k in kernels])
    return convolve(x, ks.astype(np.float32), method="direct", mode="correlation", boundary="reflect",
                    backend="torch")


def filter_list(xs: list, kernels: list) -> list:
    """:func:`filter_batch` over a list of [C, H, W] tensors, batching those of equal shape."""
    out = list(xs)
    groups: dict = {}
    for i, (x, k) in enumerate(zip(xs, kernels)):
        if k is not None and not k.is_identity:
            groups.setdefault(tuple(x.shape), []).append(i)
    for idx in groups.values():
        res = filter_batch(torch.stack([xs[i] for i in idx]), [kernels[i] for i in idx])
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out


def usm_batch(x: torch.Tensor, weight: float = 0.5, radius: int = 51, threshold: float = 10.0) -> torch.Tensor:
    """Unsharp masking as in ``ops.usm_sharpen`` (separable OpenCV Gaussian taps, reflect-101; two 1-D
    passes of :func:`benchkit.ops.convolve`, torch direct)."""
    taps = cv2.getGaussianKernel(radius, 0).astype(np.float32).ravel()

    def gblur(t):
        return convolve(t, (taps, taps), method="direct", mode="correlation", boundary="reflect", backend="torch")

    blur = gblur(x)
    residual = x - blur
    mask = (residual.abs() > threshold / 255.0).to(x.dtype)
    soft = gblur(mask)
    sharp = (residual * weight + x).clamp_(0.0, 1.0)
    return (sharp - x) * soft + x


# ----------------------------------------------------------------------------- resize


def area_matrix(n_in: int, n_out: int, shrink: bool) -> np.ndarray:
    """(n_out, n_in) weights of OpenCV INTER_AREA along one axis.

    ``shrink`` (both axes shrink or keep): fractional box overlaps (OpenCV ``computeResizeAreaTab``);
    otherwise OpenCV's area-upscale rule (linear weights with ``fx`` from the pixel-area relation).
    """
    scale = n_in / n_out
    m = np.zeros((n_out, n_in))
    for d in range(n_out):
        if shrink:
            f1 = d * scale
            f2 = f1 + scale
            cell = min(scale, n_in - f1)
            s1 = int(np.ceil(f1))
            s2 = min(int(np.floor(f2)), n_in - 1)
            s1 = min(s1, s2)
            if s1 - f1 > 1e-3:
                m[d, s1 - 1] += (s1 - f1) / cell
            m[d, s1:s2] += 1.0 / cell
            if f2 - s2 > 1e-3:
                m[d, s2] += min(min(f2 - s2, 1.0), cell) / cell
        else:
            sx = int(np.floor(d * scale))
            fx = (d + 1) - (sx + 1) * (n_out / n_in)
            fx = 0.0 if fx <= 0 else fx - np.floor(fx)
            if sx < 0:
                sx, fx = 0, 0.0
            if sx >= n_in - 1:
                sx, fx = n_in - 1, 0.0
            m[d, sx] += 1.0 - fx
            if fx:
                m[d, sx + 1] += fx
    return m


def resize_t(x: torch.Tensor, rp: ResizeParams) -> torch.Tensor:
    """Resize one [C, H, W] image to (rp.height, rp.width) (see module docstring for the area mode)."""
    h, w = x.shape[-2:]
    if (h, w) == (rp.height, rp.width):
        return x
    if rp.mode == "area":
        shrink = h >= rp.height and w >= rp.width
        mh = torch.from_numpy(area_matrix(h, rp.height, shrink).astype(np.float32)).to(x.device, x.dtype)
        mw = torch.from_numpy(area_matrix(w, rp.width, shrink).astype(np.float32)).to(x.device, x.dtype)
        return torch.matmul(torch.matmul(mh, x), mw.T)
    return F.interpolate(x[None], size=(rp.height, rp.width), mode=rp.mode, align_corners=False)[0]


# ----------------------------------------------------------------------------- noise / JPEG


def _levels(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(x * 255.0), 0, 255)


def add_noise_t(x: torch.Tensor, npar: NoiseParams) -> torch.Tensor:
    """``ops.add_noise`` for one [C, H, W] tensor; fields come from numpy with the stored seed."""
    c, h, w = x.shape
    if npar.kind == "gaussian":
        field = ops.gaussian_field(npar.seed, h, w, npar.gray)
        noise = torch.from_numpy(np.ascontiguousarray(field.transpose(2, 0, 1))).to(x.device, x.dtype)
        noise = noise * float(np.float32(npar.sigma / 255.0))
    else:
        if npar.gray:
            g = x[0] * _LUMA[0] + x[1] * _LUMA[1] + x[2] * _LUMA[2]
            lv = _levels(g)[None]
        else:
            lv = _levels(x)
        lv_np = lv.to(torch.uint8).permute(1, 2, 0).cpu().numpy()  # HWC: the CPU path's uniform order
        counts, vals = ops.poisson_counts(lv_np, npar.seed)
        counts_t = torch.from_numpy(np.ascontiguousarray(counts.transpose(2, 0, 1))).to(x.device, x.dtype)
        noise = (counts_t / vals - lv / 255.0) * float(np.float32(npar.scale))
    return (x + noise).clamp_(0.0, 1.0)


def jpeg_t(x: torch.Tensor, quality: int, backend: str = "cv2") -> torch.Tensor:
    """Clip, round to 8 bit and JPEG round trip one [3, H, W] tensor; float result in [0, 1]."""
    u8 = _levels(x).to(torch.uint8)
    if backend == "cv2":
        out = ops.jpeg_u8(u8.permute(1, 2, 0).cpu().numpy(), quality)
        res = torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(x.device)
    elif backend == "torchvision":
        from torchvision.io import decode_jpeg, encode_jpeg

        data = encode_jpeg(u8.contiguous(), quality=int(quality))
        res = decode_jpeg(data.cpu(), device=x.device)  # encoded bytes live on the host
    else:
        raise ValueError(f"unknown jpeg_backend {backend!r}; use 'cv2' or 'torchvision'")
    return res.to(x.dtype) / 255.0


# ----------------------------------------------------------------------------- pipeline


IMPLS = ("auto", "torch", "host")


def apply_batch(imgs: torch.Tensor, params_list: list, config: RealESRGANConfig | None = None,
                jpeg_backend: str = "cv2", return_gt: bool = False, impl: str = "auto", version: str = "2"):
    """Degrade a batch ``imgs`` [B, 3, H, W] float in [0, 1] (CPU or CUDA) with per-sample Params.

    Returns the LQ batch [B, 3, H // scale, W // scale] quantised to 8-bit levels (k / 255), or
    ``(lq, gt)`` with ``return_gt`` (gt: the target cropped to multiples of scale, USM-sharpened, quantised).

    ``impl``: ``"torch"`` = the batched torch kernels on the tensors' device; ``"host"`` = the CPU path
    (numpy/OpenCV ``ops``, per sample) on host copies, results stacked back into tensors (pixels identical
    to ``RealESRGANGenerator.apply``; ``jpeg_backend`` ignored); ``"auto"`` = ``host`` for CPU tensors,
    ``torch`` otherwise. On a CPU the batched kernels do more work than OpenCV's (dense grouped
    convolutions, dense area-resize matrices, extra device <-> host hops for noise and JPEG): measured
    4-5x the CPU time per image of the numpy path at 512 px (``benchkit bench degrade``), so batching
    pays only on an accelerator.

    ``version``: the generator version whose CPU path ``host`` runs (``"2"``: :mod:`.ops_v2`, ``"1.1"``:
    :mod:`.ops`). The batched kernels compute the USM with exact Gaussians (version 1.1's arithmetic up to
    float rounding) for both; version 2's pyramid blur is within 1.4e-3 of it (see :mod:`.ops_v2`).
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "host" or (impl == "auto" and imgs.device.type == "cpu"):
        return _apply_host(imgs, params_list, config, return_gt, version)
    # TF32 convolutions (cuDNN's default on Ampere+) would round to 10-bit mantissas: keep float32.
    with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False):
        return _apply_batch(imgs, params_list, config, jpeg_backend, return_gt)


def _apply_host(imgs, params_list, config, return_gt, version="2"):
    """The CPU path per sample (the same steps as ``RealESRGANGenerator.apply`` of ``version``) on host arrays."""
    from .versions import cpu_ops

    vops = cpu_ops(version)
    cfg = config or RealESRGANConfig()
    ps = list(params_list)
    if imgs.ndim != 4 or imgs.shape[1] != 3 or len(ps) != imgs.shape[0]:
        raise ValueError(f"expected imgs [B, 3, H, W] and B params, got {tuple(imgs.shape)} and {len(ps)}")
    if not all(isinstance(p.blur1, KernelParams) for p in ps):
        raise TypeError("the torch path supports kernel stage-1 blur (KernelParams) only")
    host = imgs.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()  # [B, H, W, 3] view when possible
    hc, wc = host.shape[1] - host.shape[1] % cfg.scale, host.shape[2] - host.shape[2] % cfg.scale  # mod_crop
    lqs, gts = [], []
    for img, p in zip(host, ps):
        gt = np.ascontiguousarray(img[:hc, :wc], dtype=np.float32)
        if cfg.usm:
            gt = vops.usm_sharpen(gt, cfg.usm_weight, cfg.usm_radius, cfg.usm_threshold)
        lqs.append(ops.to_levels(vops.degrade(gt, p)))
        if return_gt:
            gts.append(ops.to_levels(gt))

    def stack(arrs):
        t = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(torch.float32)
        return (t / 255.0).contiguous().to(imgs.device)

    lq = stack(lqs)
    return (lq, stack(gts)) if return_gt else lq


def _apply_batch(imgs, params_list, config, jpeg_backend, return_gt):
    cfg = config or RealESRGANConfig()
    ps: list[RealESRGANParams] = list(params_list)
    if imgs.ndim != 4 or imgs.shape[1] != 3 or len(ps) != imgs.shape[0]:
        raise ValueError(f"expected imgs [B, 3, H, W] and B params, got {tuple(imgs.shape)} and {len(ps)}")
    if not all(isinstance(p.blur1, KernelParams) for p in ps):
        raise TypeError("the torch path supports kernel stage-1 blur (KernelParams) only")
    h, w = imgs.shape[-2:]
    x = imgs[..., : h - h % cfg.scale, : w - w % cfg.scale].to(torch.float32)  # mod_crop, as the CPU path
    gt = usm_batch(x, cfg.usm_weight, cfg.usm_radius, cfg.usm_threshold) if cfg.usm else x
    x = filter_batch(gt, [p.blur1 for p in ps])
    xs = [resize_t(xi, p.resize1) for xi, p in zip(x.unbind(0), ps)]
    xs = [add_noise_t(xi, p.noise1) for xi, p in zip(xs, ps)]
    xs = [jpeg_t(xi, p.jpeg1.quality, jpeg_backend) for xi, p in zip(xs, ps)]
    xs = filter_list(xs, [p.blur2 if p.blur2_applied else None for p in ps])
    xs = [resize_t(xi, p.resize2) for xi, p in zip(xs, ps)]
    xs = [add_noise_t(xi, p.noise2) for xi, p in zip(xs, ps)]
    xs = [jpeg_t(xi, p.jpeg2.quality, jpeg_backend) if p.final_order == "B" else xi for xi, p in zip(xs, ps)]
    x = torch.stack([resize_t(xi, p.final_resize) for xi, p in zip(xs, ps)])
    x = filter_batch(x, [p.final_sinc for p in ps])
    x = torch.stack([jpeg_t(xi, p.jpeg2.quality, jpeg_backend) if p.final_order == "A" else xi
                     for xi, p in zip(x.unbind(0), ps)])
    lq = _levels(x) / 255.0
    if return_gt:
        return lq, _levels(gt) / 255.0
    return lq
