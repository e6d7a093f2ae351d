"""Tiny random InvSR weights for tests and ``benchkit bench adapters`` (no real weights involved).

:func:`write_invsr_checkpoint` saves a tiny noise predictor (widths 16/32, one layer per block, both blocks
``AttnDownBlock2D``, temb 32; GroupNorm groups and head size by benchkit's rule from the widths: 16 and 16) the
way InvSR's ``trainer.py`` ``save_ckpt`` saves it: ``{'iters_start', 'log_step', 'log_step_img', 'state_dict'}``
with the DDP + ``torch.compile`` key prefix ``module._orig_mod.``. :func:`write_tiny_weights` adds the tiny
SD-Turbo-like base model (:func:`benchkit.methods.onestep.tiny.write_tiny_base`).
"""

from __future__ import annotations

from pathlib import Path

TINY_CONFIG = {"in_channels": 3, "block_out_channels": (16, 32), "layers_per_block": (1, 1),
               "down_block_types": ("AttnDownBlock2D", "AttnDownBlock2D"), "latent_channels": 4,
               "norm_num_groups": 16, "attention_head_dim": 16, "temb_channels": 32,
               "mid_block_add_attention": True}
CHECKPOINT = "noise_predictor_sd_turbo_v5.pth"


def tiny_predictor(seed: int = 0):
    """The tiny predictor with torch's default init from ``seed`` plus a seeded perturbation (so that the
    logvar and mean channels are not degenerate); the global RNG is restored."""
    import torch

    from benchkit.methods.onestep import invsr_predictor as ip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ip.build(TINY_CONFIG)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
        net.encoder.conv_out.bias[4:].add_(-1.0)  # logvar around -1: std ~0.6, a visible official-mode spread
    return net


def write_invsr_checkpoint(out, seed: int = 0, prefix: str = "module._orig_mod.") -> Path:
    """Write the tiny predictor as the official trainer does (``{'state_dict': ...}`` + bookkeeping)."""
    import torch

    net = tiny_predictor(seed)
    ckpt = {"iters_start": 1000, "log_step": {"train": 10, "val": 0}, "log_step_img": {"train": 1, "val": 0},
            "state_dict": {prefix + k: v.clone() for k, v in net.state_dict().items()}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(out)
    return out


def write_tiny_weights(weights_root) -> Path:
    """Tiny SD-Turbo-like base (if absent) + the tiny checkpoint under ``weights_root``; returns
    ``<weights_root>/methods/invsr``."""
    from benchkit.methods.onestep import core, tiny

    weights_root = Path(weights_root)
    base = weights_root / "base-models" / core.BASE_FOLDERS["sd-turbo"]
    if core.missing_base_parts(base, ("vae", "unet", "text_encoder", "tokenizer", "scheduler")):
        tiny.write_tiny_base(base, "sd-turbo")
    d = weights_root / "methods" / "invsr"
    write_invsr_checkpoint(d / CHECKPOINT)
    return d
