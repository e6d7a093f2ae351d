"""InvSR (Yue et al., CVPR 2025; zsyOAOA/InvSR@609788c, S-Lab License 1.0, non-commercial): one-step x4 SR on
SD-Turbo by diffusion inversion.

Checkpoint ``noise_predictor_sd_turbo_v5.pth``: the noise predictor's state dict, possibly under ``state_dict``
(the trainer's file; its other entries are bookkeeping) and with DDP ``module.`` / ``torch.compile``
``_orig_mod.`` prefixes - accepted as the official ``sampler_invsr.py`` + ``util_net.reload_model`` accept them,
then loaded strictly into benchkit's rebuild (:mod:`.invsr_predictor`; extra keys are errors here, the official
code ignores them).

Per image, as ``InvSamplerSR.sample_func`` with the default ``inference_invsr.py`` settings (one step,
``--chopping_size 128``, ``--chopping_bs 8``, no colour fix):

1. LR in [0, 1]. While a side is < 128: reflect-pad both sides by half the shortfall (at most side-1 per round).
   Exactly 128x128 -> one pass; otherwise reflect-pad bottom/right to a multiple of 16 (VAE x8 / sf 4 x UNet x8)
   and run 128x128 LR patches, stride 64 (last patch flush with the border), in batches of 8, blending the x4
   outputs with separable Gaussian weights (OpenCV ``getGaussianKernel`` of the patch size, sigma
   ``0.3((k-1)/2 - 1) + 0.8``; even sizes: kernel of k+1 without its first tap) in float64.
2. One pass on a batch of LR patches: torch bicubic x4 (``F.interpolate``, no antialias) -> [-1, 1] -> VAE latent
   z0 (x scaling factor); the predictor on the LR patch (2x - 1) at t -> noise; ``z_t = z0 + sigma_t noise``;
   UNet on ``z_t / sqrt(sigma_t^2 + 1)`` at t with the fixed prompt (CFG 1: one call); Euler to sigma 0:
   ``x0 = z_t - sigma_t eps``; decode; ``(x + 1) / 2`` clamped.
3. Crop the padding (x4), clamp to [0, 1].

Timestep: the command line's 200, but the pipeline's ``retrieve_timesteps`` subtracts 1, so predictor, sigma and
UNet all use **t = 199**; ``sigma_199 = sqrt((1 - abar_199) / abar_199) = 0.5693`` for SD-Turbo, computed here in
float32 from the scheduler's ``alphas_cumprod`` exactly as the Euler scheduler builds its sigma table.

Modes: ``deterministic`` (``invsr``) uses the predictor's mean and the VAE latent's mode. ``official``
(``invsr-official``) draws, per batch of patches and in the official order, the noise ~ N(mean, exp(logvar))
(logvar clamped to [-30, 20]), the VAE latent sample, and the unused noise the Euler ``step`` draws
(``noise = randn_tensor(...)`` before checking ``s_churn``), all from the context's generator.
"""

from __future__ import annotations

from typing import ClassVar

from benchkit.methods.base import Method
from benchkit.methods.onestep import core
from benchkit.methods.onestep import invsr_predictor as ip
from benchkit.methods.onestep.base import OneStepSR

PROMPT = ("Cinematic, high-contrast, photo-realistic, 8k, ultra HD, meticulous detailing, hyper sharpness, "
          "perfect without deformations")  # sampler_invsr.py ``_positive``
TIMESTEP = 200  # inference_invsr.py default for one step
EFFECTIVE_T = TIMESTEP - 1  # pipeline_stable_diffusion_inversion_sr.retrieve_timesteps: ``timesteps - 1``
SCALE = 4
VAE_TILE_PX, VAE_TILE_LATENT = 1024, 128  # sample-sd-turbo.yaml sample_tiled_size / latent_tiled_size
COLOR_FIXES = ("nofix", "wavelet", "ycbcr")


# ------------------------------------------------------------------------------------------- chopping helpers
def pad_to_patch(x, pch: int):
    """The official small-input padding: while a side is < ``pch``, reflect-pad each side by half the shortfall,
    at most side-1 per round. Returns (padded, top, left). A side of 1 px (reflect impossible) is padded by
    replication instead (the official loop would never end)."""
    import torch.nn.functional as F

    top = left = 0
    while min(x.shape[-2:]) < pch:
        h, w = x.shape[-2:]
        up = max(min((pch - h) // 2, h - 1), 0)
        down = max(min(pch - h - up, h - 1), 0)
        lf = max(min((pch - w) // 2, w - 1), 0)
        rt = max(min(pch - w - lf, w - 1), 0)
        if up + down + lf + rt == 0:  # a 1-px side with the other already >= pch
            up, lf = max(pch - h, 0) // 2, max(pch - w, 0) // 2
            down, rt = max(pch - h - up, 0), max(pch - w - lf, 0)
            x = F.pad(x, (lf, rt, up, down), mode="replicate")
        else:
            x = F.pad(x, (lf, rt, up, down), mode="reflect")
        top, left = top + up, left + lf
    return x, top, left


def patch_starts(length: int, pch: int, stride: int) -> list[int]:
    """Patch starts along one axis (``ImageSpliterTh.extract_starts``): every ``stride``, clamped flush with
    the border, duplicates removed."""
    if length <= pch:
        return [0]
    return list(dict.fromkeys(min(s, length - pch) for s in range(0, length, stride)))


def gaussian_1d(n: int):
    """OpenCV ``getGaussianKernel(n, 0.3((n-1)/2 - 1) + 0.8)`` (odd n); even n: the n+1 kernel without tap 0."""
    import numpy as np

    sigma = 0.3 * ((n - 1) * 0.5 - 1) + 0.8
    m = n + 1 if n % 2 == 0 else n
    x = np.arange(m, dtype=np.float64) - (m - 1) / 2
    g = np.exp(-x * x / (2 * sigma * sigma))
    g /= g.sum()
    return g[1:] if n % 2 == 0 else g


def patch_weights(h: int, w: int):
    """Blending weights (h, w) float64 of one x4 output patch: outer product of :func:`gaussian_1d`."""
    import numpy as np

    return np.outer(gaussian_1d(h), gaussian_1d(w))


def chop_blend(x, pch: int, sf: int, batch: int, run):
    """Run ``run`` (B,C,pch,pch) -> (B,C,pch*sf,pch*sf) over the official patch grid of ``x`` (1,C,H,W), batches of
    ``batch`` patches in row-major order, and blend with :func:`patch_weights` in float64."""
    import torch

    _, c, h, w = x.shape
    stride = int(pch * 0.5)
    starts = [(i, j) for i in patch_starts(h, pch, stride) for j in patch_starts(w, pch, stride)]
    acc = torch.zeros((1, c, h * sf, w * sf), dtype=torch.float64, device=x.device)
    cnt = torch.zeros((1, 1, h * sf, w * sf), dtype=torch.float64, device=x.device)
    wt = torch.as_tensor(patch_weights(pch * sf, pch * sf), device=x.device)[None, None]
    for b in range(0, len(starts), batch):
        group = starts[b:b + batch]
        out = run(torch.cat([x[:, :, i:i + pch, j:j + pch] for i, j in group]))
        for k, (i, j) in enumerate(group):
            sl = (slice(None), slice(None), slice(i * sf, (i + pch) * sf), slice(j * sf, (j + pch) * sf))
            acc[sl] += out[k:k + 1].double() * wt
            cnt[sl] += wt
    return acc / cnt


def ycbcr_fix(target, source):
    """Y of ``target`` with Cb/Cr of ``source`` (ITU-R BT.601 studio range, as MATLAB ``rgb2ycbcr``), each
    conversion clamped to [0, 1] as the official ``ycbcr_color_replace``; float tensors (B,3,H,W) in [0, 1]."""
    import torch

    m = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                     dtype=torch.float64) / 255.0
    off = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0

    def to_ycc(x):
        return (torch.einsum("ij,bjhw->bihw", m.to(x.device), x.double()) + off.to(x.device)[None, :, None, None]
                ).clamp(0, 1)

    ycc = torch.cat([to_ycc(target)[:, :1], to_ycc(source)[:, 1:]], dim=1)
    inv = torch.linalg.inv(m).to(ycc.device)
    rgb = torch.einsum("ij,bjhw->bihw", inv, ycc - off.to(ycc.device)[None, :, None, None])
    return rgb.clamp(0, 1).to(target.dtype)


# ---------------------------------------------------------------------------------------------------- method
class InvSR(OneStepSR):
    name = "invsr"
    description = "InvSR one-step diffusion SR (SD-Turbo + learned noise predictor, t=199 Euler), no colour fix"
    weight_files = ("noise_predictor_sd_turbo_v5.pth",)
    checkpoint = "noise_predictor_sd_turbo_v5.pth"
    base = "sd-turbo"
    base_parts = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
    code_license = ("S-Lab License 1.0 (non-commercial; code and weights); base model: Stability AI Community "
                    "licence (sd-turbo)")
    default_color_fix = "nofix"
    default_mode: ClassVar[str] = "deterministic"

    def __init__(self, **options):
        Method.__init__(self, **options)  # OneStepSR's colour-fix list differs (InvSR: nofix/wavelet/ycbcr)
        from benchkit.errors import ConfigError

        o = self.options
        if o["mode"] not in core.MODES:
            raise ConfigError(f"method {self.name}: mode must be one of {core.MODES}, got {o['mode']!r}")
        if o["color_fix"] not in COLOR_FIXES:
            raise ConfigError(f"method {self.name}: color_fix must be one of {COLOR_FIXES}, got {o['color_fix']!r}")
        if not isinstance(o["chopping_size"], int) or o["chopping_size"] < 16 or o["chopping_size"] % 16:
            raise ConfigError(f"method {self.name}: chopping_size must be a multiple of 16 >= 16 (LR px), got "
                              f"{o['chopping_size']!r}")
        if not isinstance(o["chopping_bs"], int) or o["chopping_bs"] < 1:
            raise ConfigError(f"method {self.name}: chopping_bs must be an int >= 1, got {o['chopping_bs']!r}")
        self.model = None

    @classmethod
    def default_options(cls) -> dict:
        """``chopping_size`` (LR patch px, official ``--chopping_size``), ``chopping_bs`` (patches per pass,
        official ``--chopping_bs``), ``color_fix`` (official ``--color_fix``: none, wavelet or ycbcr)."""
        return {"mode": cls.default_mode, "color_fix": cls.default_color_fix, "chopping_size": 128,
                "chopping_bs": 8}

    def info(self) -> dict:
        d = super().info()
        d.update(timestep=EFFECTIVE_T, prompt=PROMPT, cfg=1.0)
        return d

    # ------------------------------------------------------------------------------------------------- load
    def _build(self, parts, ckpt, path) -> None:
        import torch

        state, _ = ip.unwrap_state(ckpt)
        if not isinstance(state, dict):
            raise core.CheckpointError(path, f"'state_dict' is a {type(state).__name__}, expected a dict of tensors")
        bad = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
        if bad:
            more = f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""
            raise core.CheckpointError(path, f"noise predictor state holds {len(bad)} non-tensor values: "
                                       f"{', '.join(bad[:6])}{more}")
        try:
            config = ip.infer_config(state)
            with torch.device("meta"):
                net = ip.build(config)
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise core.CheckpointError(path, f"not an InvSR noise predictor state dict ({e})") from e
        core.check_state(path, "noise predictor state dict", {k: v.shape for k, v in net.state_dict().items()},
                         state)
        net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True, assign=True)
        net.requires_grad_(False)
        net.eval()
        parts.predictor = net

    def _after_load(self) -> None:
        import torch

        m = self.model
        m.predictor.to(self.device)  # float32 weights, as the official sampler (fp16 via autocast on CUDA)
        self._emb = core.encode_prompt(m.tokenizer, m.text_encoder, PROMPT)
        ac = m.scheduler.alphas_cumprod.to(torch.float32)  # the Euler scheduler's sigma table, in float32
        self._sigma = (((1 - ac[EFFECTIVE_T]) / ac[EFFECTIVE_T]) ** 0.5).to(self.device)
        vae_sf = 2 ** (len(m.vae.config.block_out_channels) - 1)
        unet_sf = 2 ** (len(m.unet.config.block_out_channels) - 1)
        self._mod_lq = max(vae_sf // SCALE, 1) * unet_sf
        m.vae.enable_tiling()  # the official thresholds: active only above 1024 px / 128 latent px per pass
        m.vae.tile_sample_min_size = VAE_TILE_PX
        m.vae.tile_latent_min_size = VAE_TILE_LATENT

    def _unload(self) -> None:
        self.model = None
        self._emb = None

    # ---------------------------------------------------------------------------------------------- restore
    @property
    def sigma(self) -> float:
        return float(self._sigma)

    def predictor_autocast(self):
        import contextlib

        import torch

        if str(self.device).startswith("cuda") and self.dtype == "float16":
            return torch.autocast("cuda", dtype=torch.float16)  # the official ``torch.amp.autocast('cuda')``
        return contextlib.nullcontext()

    def run_patches(self, lr, gen):
        """One official pipeline call: LR patches (B,3,p,p) float32 in [0,1] -> x4 outputs (B,3,4p,4p) in [0,1]."""
        import torch
        import torch.nn.functional as F

        m, dt, official = self.model, self.torch_dtype(), self.options["mode"] == "official"
        n, _, p, q = lr.shape
        img = lr.to(dt)
        up = F.interpolate(img, size=(p * SCALE, q * SCALE), mode="bicubic") * 2 - 1
        t = torch.full((n,), float(EFFECTIVE_T), dtype=torch.float32, device=lr.device)
        cuda16 = str(self.device).startswith("cuda") and self.dtype == "float16"
        with self.predictor_autocast():
            x = img * 2 - 1 if cuda16 else (img * 2 - 1).float()  # CPU: float32 predictor, float32 input
            mean, logvar = m.predictor(x, t)
            if official:
                e = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)
                noise = mean + torch.exp(0.5 * logvar) * e
            else:
                noise = mean
        dist = m.vae.encode(up).latent_dist
        z0 = (dist.sample(generator=gen) if official else dist.mode()) * m.vae.config.scaling_factor
        sig = self._sigma.to(z0.dtype)
        zt = z0 + noise.to(z0.dtype) * sig
        x_in = zt / ((self._sigma ** 2 + 1) ** 0.5)
        eps = m.unet(x_in, t[0], encoder_hidden_states=self._emb.expand(n, -1, -1)).sample
        if official:  # the Euler step draws (and, with s_churn 0, ignores) a noise tensor: keep the stream aligned
            torch.randn(eps.shape, generator=gen, device=eps.device, dtype=eps.dtype)
        x0 = (zt.float() - self._sigma * eps.float()).to(eps.dtype)
        y = m.vae.decode(x0 / m.vae.config.scaling_factor).sample
        return (y.float() / 2 + 0.5).clamp(0, 1)

    def restore_lr(self, lr, ctx):
        """LR (1,3,h,w) float32 in [0,1] on the device -> x4 output (1,3,4h,4w) float32 in [0,1]."""
        import torch
        import torch.nn.functional as F

        gen = ctx["generator"]() if self.options["mode"] == "official" else None
        pch = self.options["chopping_size"]
        with torch.no_grad():
            h, w = lr.shape[-2:]
            x, top, left = pad_to_patch(lr, pch)
            if tuple(x.shape[-2:]) == (pch, pch):
                out = self.run_patches(x, gen)
            else:
                x, _ = core.pad_multiple(x, self._mod_lq, mode="reflect")
                out = chop_blend(x, pch, SCALE, self.options["chopping_bs"], lambda b: self.run_patches(b, gen))
            out = out[:, :, top * SCALE:(top + h) * SCALE, left * SCALE:(left + w) * SCALE].float()
            fix = self.options["color_fix"]
            if fix != "nofix":
                src = F.interpolate(lr, size=out.shape[-2:], mode="bicubic", align_corners=False, antialias=True)
                out = core.wavelet_fix(out, src) if fix == "wavelet" else ycbcr_fix(out, src)
            return out.clamp(0, 1)

    def restore(self, lq_batch, context, scale):
        self.require_loaded()
        return [self.to_image(self.restore_lr(self.to_tensor(lq), ctx)) for lq, ctx in zip(lq_batch, context)]


class InvSROfficial(InvSR):
    """InvSR with the official sampling (predictor noise, VAE latent, Euler noise), seeded per image."""

    name = "invsr-official"
    weights_name = "invsr"
    default_mode = "official"
