"""A stub SinSR checkout and tiny random weights, for tests and ``benchkit bench adapters`` (no SinSR code).

:func:`write_stub_checkout` writes a package with the import paths, class/function names and call signatures
that :mod:`benchkit.methods.sinsr` uses from the official checkout (``models.unet.UNetModelSwin``,
``models.script_util.create_gaussian_diffusion`` and the diffusion object's ``encode_first_stage``,
``prior_sample``, ``p_mean_variance``, ``decode_first_stage``, ``num_timesteps``; ``ldm.models.autoencoder.
VQModelTorch``; ``configs/SinSR.yaml`` with the official sections and keys). The models behind them are tiny
stand-ins of benchkit's own (a few convolutions, a nearest-codebook quantiser, a geometric noise schedule),
not SinSR's networks; like the official tree, ``ldm`` has no ``__init__.py`` (a namespace package). The UNet
stand-in refuses latents that are not a multiple of ``window_size * 2**(levels-1)`` (64), as the official
Swin-UNet needs, so the adapter's padding is exercised.

:func:`write_sinsr_weights` writes ``SinSR_v1.pth`` and ``autoencoder_vq_f4.pth`` for the stub config as flat
state dicts (the layout the official ``Sampler.load_model`` reads), values drawn from a seeded generator.
"""

from __future__ import annotations

from pathlib import Path

STUB_CONFIG = {
    "model": {"target": "models.unet.UNetModelSwin", "ckpt_path": None, "params": {
        "image_size": 64, "in_channels": 6, "model_channels": 8, "out_channels": 3, "cond_lq": True,
        "attention_resolutions": [64, 32, 16, 8], "dropout": 0, "channel_mult": [1, 2, 2, 4],
        "num_res_blocks": [1, 1, 1, 1], "conv_resample": True, "dims": 2, "use_fp16": False,
        "num_head_channels": 8, "use_scale_shift_norm": True, "resblock_updown": False, "swin_depth": 1,
        "swin_embed_dim": 8, "window_size": 8, "mlp_ratio": 2}},
    "diffusion": {"target": "models.script_util.create_gaussian_diffusion", "params": {
        "sf": 4, "schedule_name": "exponential", "schedule_kwargs": {"power": 0.3}, "etas_end": 0.99, "steps": 15,
        "min_noise_level": 0.04, "kappa": 2.0, "weighted_mse": False, "predict_type": "xstart",
        "timestep_respacing": None, "scale_factor": 1.0, "normalize_input": True, "latent_flag": True}},
    "autoencoder": {"target": "ldm.models.autoencoder.VQModelTorch", "ckpt_path": None, "use_fp16": True,
                    "params": {"embed_dim": 3, "n_embed": 16, "ddconfig": {
                        "double_z": False, "z_channels": 3, "resolution": 256, "in_channels": 3, "out_ch": 3,
                        "ch": 8, "ch_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": [],
                        "dropout": 0.0, "padding_mode": "zeros"}}},
}

_HEADER = '"""benchkit test stub standing in for SinSR\'s {path}: same names and signatures, tiny model of ' \
          'benchkit\'s own."""\n'

UNET_SRC = '''
import math

import torch as th
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = th.exp(-math.log(10000.0) * th.arange(half, dtype=th.float32, device=t.device) / half)
    ang = t.float()[:, None] * freqs[None]
    return th.cat([th.cos(ang), th.sin(ang)], dim=1)


class UNetModelSwin(nn.Module):
    def __init__(self, image_size, in_channels, model_channels, out_channels, num_res_blocks,
                 attention_resolutions, cond_lq=True, dropout=0, channel_mult=(1, 2, 4, 8), conv_resample=True,
                 dims=2, use_fp16=False, num_heads=1, num_head_channels=-1, use_scale_shift_norm=False,
                 resblock_updown=False, swin_depth=2, swin_embed_dim=96, window_size=8, mlp_ratio=2.0,
                 patch_norm=False):
        super().__init__()
        self.dtype = th.float16 if use_fp16 else th.float32
        self.cond_lq = cond_lq
        self.model_channels = model_channels
        self.multiple = window_size * 2 ** (len(channel_mult) - 1)
        ch = model_channels
        self.time_embed = nn.Sequential(nn.Linear(ch, ch), nn.SiLU(), nn.Linear(ch, ch))
        self.input_blocks = nn.ModuleList([nn.Conv2d(in_channels, ch, 3, padding=1),
                                           nn.Conv2d(ch, ch, 3, stride=2, padding=1)])
        self.middle_block = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1)])
        self.output_blocks = nn.ModuleList([nn.Conv2d(2 * ch, ch, 3, padding=1)])
        self.out = nn.Sequential(nn.GroupNorm(1, ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    def forward(self, x, timesteps, lq=None):
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"stub UNet: latent {tuple(x.shape[-2:])} is not a multiple of {self.multiple}")
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels)).type(self.dtype)
        if lq is not None:
            assert self.cond_lq
            if lq.shape[2:] != x.shape[2:]:
                lq = F.interpolate(lq, size=x.shape[2:], mode="bilinear", align_corners=False)
            x = th.cat([x, lq], dim=1)
        h = x.type(self.dtype)
        h0 = F.silu(self.input_blocks[0](h) + emb[:, :, None, None])
        h1 = F.silu(self.middle_block[0](F.silu(self.input_blocks[1](h0))))
        h = F.silu(self.output_blocks[0](th.cat([F.interpolate(h1, scale_factor=2.0, mode="nearest"), h0], 1)))
        return self.out(h.type(x.dtype))

    def convert_to_fp16(self):
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            part.half()
'''

DIFFUSION_SRC = '''
import numpy as np
import torch as th
import torch.nn.functional as F


class GaussianDiffusion:
    def __init__(self, *, sqrt_etas, kappa, sf=4, scale_factor=None, normalize_input=True):
        self.sqrt_etas = np.asarray(sqrt_etas, dtype=np.float64)
        self.etas = self.sqrt_etas ** 2
        self.kappa, self.sf, self.normalize_input = kappa, sf, normalize_input
        self.scale_factor = 1.0 if scale_factor is None else scale_factor
        self.num_timesteps = len(self.sqrt_etas)

    def _at(self, arr, t, like):
        return th.from_numpy(np.asarray(arr)).to(like.device)[t].float().view(-1, 1, 1, 1)

    def prior_sample(self, y, noise=None):
        if noise is None:
            noise = th.randn_like(y)
        t = th.full((y.shape[0],), self.num_timesteps - 1, dtype=th.long, device=y.device)
        return y + self._at(self.kappa * self.sqrt_etas, t, y) * noise

    def p_mean_variance(self, model, x_t, y, t, clip_denoised=True, denoised_fn=None, model_kwargs=None):
        x_in = x_t
        if self.normalize_input:
            x_in = x_t / th.sqrt(self._at(self.etas, t, x_t) * self.kappa ** 2 + 1)
        out = model(x_in, t, **(model_kwargs or {}))
        if denoised_fn is not None:
            out = denoised_fn(out)
        if clip_denoised:
            out = out.clamp(-1, 1)
        return {"pred_xstart": out}

    def encode_first_stage(self, y, first_stage_model, up_sample=False):
        dtype = y.dtype
        if up_sample:
            y = F.interpolate(y, scale_factor=self.sf, mode="bicubic")
        if first_stage_model is None:
            return y
        with th.no_grad():
            z = first_stage_model.encode(y.type(next(first_stage_model.parameters()).dtype))
        return (z * self.scale_factor).type(dtype)

    def decode_first_stage(self, z_sample, first_stage_model=None):
        if first_stage_model is None:
            return z_sample
        dtype = z_sample.dtype
        with th.no_grad():
            z = (z_sample / self.scale_factor).type(next(first_stage_model.parameters()).dtype)
            return first_stage_model.decode(z).type(dtype)
'''

SCRIPT_UTIL_SRC = '''
import math

import numpy as np

from . import gaussian_diffusion as gd


def create_gaussian_diffusion(*, normalize_input, schedule_name, sf=4, min_noise_level=0.01, steps=1000, kappa=1,
                              etas_end=0.99, schedule_kwargs=None, weighted_mse=False, predict_type="xstart",
                              timestep_respacing=None, scale_factor=None, latent_flag=True):
    if predict_type != "xstart":
        raise ValueError("stub: predict_type xstart only")
    if timestep_respacing not in (None, steps):
        raise ValueError("stub: no timestep respacing")
    sqrt_etas = np.geomspace(min(min_noise_level / kappa, min_noise_level), math.sqrt(etas_end), steps)
    return gd.GaussianDiffusion(sqrt_etas=sqrt_etas, kappa=kappa, sf=sf, scale_factor=scale_factor,
                                normalize_input=normalize_input)
'''

AUTOENCODER_SRC = '''
import torch as th
import torch.nn as nn


class VectorQuantizer(nn.Module):
    def __init__(self, n_e, e_dim):
        super().__init__()
        self.embedding = nn.Embedding(n_e, e_dim)

    def forward(self, z):
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c).float()
        codes = self.embedding.weight.float()
        idx = ((flat[:, None, :] - codes[None]) ** 2).sum(-1).argmin(1)
        return codes[idx].view(b, h, w, c).permute(0, 3, 1, 2).to(z.dtype)


class VQModelTorch(nn.Module):
    def __init__(self, ddconfig, n_embed, embed_dim, remap=None, sane_index_shape=False):
        super().__init__()
        f = 2 ** (len(ddconfig["ch_mult"]) - 1)
        ch, zc = ddconfig["ch"], ddconfig["z_channels"]
        self.encoder = nn.Sequential(nn.Conv2d(ddconfig["in_channels"], ch, f, stride=f), nn.SiLU(),
                                     nn.Conv2d(ch, zc, 1))
        self.decoder = nn.Sequential(nn.Conv2d(zc, ch, 3, padding=1), nn.SiLU(),
                                     nn.Conv2d(ch, ddconfig["out_ch"] * f * f, 1), nn.PixelShuffle(f))
        self.quantize = VectorQuantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(zc, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, zc, 1)

    def encode(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, h, force_not_quantize=False, grad_forward=False):
        quant = h if force_not_quantize else self.quantize(h)
        return self.decoder(self.post_quant_conv(quant))
'''

FILES = {  # path in the checkout -> source
    "models/__init__.py": "",
    "models/unet.py": UNET_SRC,
    "models/gaussian_diffusion.py": DIFFUSION_SRC,
    "models/script_util.py": SCRIPT_UTIL_SRC,
    "ldm/models/autoencoder.py": AUTOENCODER_SRC,
}


def write_stub_checkout(folder) -> Path:
    """Write the stub package and ``configs/SinSR.yaml`` (:data:`STUB_CONFIG`) into ``folder``; returns it."""
    import yaml

    from benchkit.fsio import atomic_write_text

    folder = Path(folder)
    for rel, src in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / rel, _HEADER.format(path=rel) + src if src else "")
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "configs" / "SinSR.yaml", "# benchkit stub config (tiny), official sections/keys\n"
                      + yaml.safe_dump(STUB_CONFIG, sort_keys=False))
    atomic_write_text(folder / "README.md", "benchkit test stub of the SinSR checkout layout; not SinSR's code.\n")
    return folder


def _stub_module(name: str, src: str):
    import types

    mod = types.ModuleType(f"_benchkit_sinsr_stub_{name}")
    exec(compile(src, f"<benchkit sinsr stub {name}>", "exec"), mod.__dict__)  # benchkit's own constant source
    return mod


def random_entry(key: str, like, gen):
    """Seeded float32 random values shaped as the state-dict entry ``key`` (tensor ``like``): biases N(0, 0.05^2),
    other 1-D (norm) weights 1 + N(0, 0.1^2), embeddings N(0, 1), the rest N(0, 1) / sqrt(fan-in).
    Also used by ``tools/parity/sinsr_parity.py`` for the official models' weights."""
    import math

    import torch

    r = torch.randn(like.shape, generator=gen, dtype=torch.float32)
    if key.endswith("bias"):
        return 0.05 * r
    if like.ndim == 1:
        return 1.0 + 0.1 * r
    if "embedding" not in key:
        return r / math.sqrt(max(1, like[0].numel()))
    return r


def _random_state(module, gen) -> dict:
    """Seeded random values (:func:`random_entry`) for every float tensor of ``module``'s state dict."""
    out = {}
    for k, v in module.state_dict().items():
        out[k] = random_entry(k, v, gen).to(v.dtype).contiguous() if v.dtype.is_floating_point else v.clone()
    return out


def write_sinsr_weights(out_dir, seed: int = 0) -> Path:
    """``SinSR_v1.pth`` + ``autoencoder_vq_f4.pth`` for :data:`STUB_CONFIG` in ``out_dir`` (flat state dicts)."""
    import io

    import torch

    from benchkit.fsio import atomic_write_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # module construction draws default inits: keep the global RNG
        unet = _stub_module("unet", UNET_SRC).UNetModelSwin(**STUB_CONFIG["model"]["params"])
        vq = _stub_module("autoencoder", AUTOENCODER_SRC).VQModelTorch(**STUB_CONFIG["autoencoder"]["params"])
    for name, module in (("SinSR_v1.pth", unet), ("autoencoder_vq_f4.pth", vq)):
        buf = io.BytesIO()
        torch.save(_random_state(module, gen), buf)
        atomic_write_bytes(out_dir / name, buf.getvalue())
    return out_dir


def write_tiny_weights(weights_root) -> Path:
    """Tiny weights in ``<weights_root>/methods/sinsr/`` and the stub checkout in its ``code/``; returns the
    weights folder (the default code location of :class:`benchkit.methods.sinsr.SinSR`)."""
    d = Path(weights_root) / "methods" / "sinsr"
    write_sinsr_weights(d)
    write_stub_checkout(d / "code")
    return d
