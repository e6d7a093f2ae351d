"""Tiny random S3Diff weights for tests and ``benchkit bench adapters`` (no real weights involved).

:func:`write_s3diff_checkpoint` runs the official save recipe (``src/s3diff_tile.py`` ``S3Diff.save_model``)
on LoRA-injected copies of the tiny SD-Turbo-like models of :mod:`benchkit.methods.onestep.tiny`: the
official UNet target list and VAE-encoder regex, adapters ``default`` / ``vae_skip``, random LoRA weights,
a slightly perturbed ``conv_in``, random modulation MLPs, ``w`` saved as an ``nn.Parameter`` (as the official
``sd["w"] = self.W``) and the block embeddings; plus a random full-size ``de_net.pth`` (DEResNet,
2 x 64/64/64/128 channels: 9.4 MB).
"""

from __future__ import annotations

import os
from pathlib import Path

# src/s3diff_tile.py S3Diff.__init__
UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_shortcut", "conv_out",
                "proj_in", "proj_out", "ff.net.2", "ff.net.0.proj"]
VAE_TARGETS = r"^encoder\..*(conv1|conv2|conv_in|conv_shortcut|conv|conv_out|to_k|to_q|to_v|to_out\.0)$"


def _save_atomic(obj, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def write_de_net(path, seed: int = 0) -> Path:
    """A random DEResNet state dict (official architecture and key names) at ``path``."""
    import torch

    from benchkit.methods.onestep.s3diff import de_resnet

    with torch.random.fork_rng(devices=[]):  # default init from ``seed``; the global generator is restored
        torch.manual_seed(seed)
        net = de_resnet()
    return _save_atomic(net.state_dict(), Path(path))


def write_s3diff_checkpoint(base, out_dir, seed: int = 0, rank_unet: int = 8, rank_vae: int = 4) -> Path:
    """``s3diff.pkl`` (official save recipe) and a random ``de_net.pth`` in ``out_dir`` for the tiny SD-Turbo
    folder ``base``; returns ``out_dir``. Ranks are smaller than the official 32/16 (they travel in the file)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from benchkit.methods.onestep.core import lora_config
    from benchkit.methods.onestep.s3diff import modulation_net
    from benchkit.methods.onestep.tiny import _randomize_lora

    out_dir = Path(out_dir)
    gen = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=True)
    vae.add_adapter(lora_config(rank_vae, VAE_TARGETS), adapter_name="vae_skip")
    unet.add_adapter(lora_config(rank_unet, UNET_TARGETS))
    _randomize_lora(unet, gen, std=0.05)
    _randomize_lora(vae, gen, std=0.05)
    with torch.no_grad():
        unet.conv_in.weight.add_(torch.randn(unet.conv_in.weight.shape, generator=gen) * 0.01)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mod = modulation_net(rank_unet, rank_vae)
    with torch.no_grad():  # torch's default init, plus a spread that makes every block's matrix differ
        for n, p in mod.named_parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    w = torch.nn.Parameter(torch.randn(64, generator=gen), requires_grad=False)  # official: randn(64) Parameter
    sd = {"unet_lora_target_modules": UNET_TARGETS, "vae_lora_target_modules": VAE_TARGETS,
          "rank_unet": rank_unet, "rank_vae": rank_vae,
          "state_dict_unet": {k: v for k, v in unet.state_dict().items() if "lora" in k or "conv_in" in k},
          "state_dict_vae": {k: v for k, v in vae.state_dict().items() if "lora" in k or "skip_conv" in k}}
    for m in ("vae", "unet"):
        for k in ("de", "block", "fuse"):
            sd[f"state_dict_{m}_{k}_mlp"] = dict(getattr(mod, f"{m}_{k}_mlp").state_dict().items())
    sd["w"] = w
    sd["state_embeddings"] = {"state_dict_vae_block": mod.vae_block_embeddings.state_dict(),
                              "state_dict_unet_block": mod.unet_block_embeddings.state_dict()}
    _save_atomic(sd, out_dir / "s3diff.pkl")
    write_de_net(out_dir / "de_net.pth", seed=seed)
    return out_dir


def write_tiny_weights(weights_root) -> Path:
    """Tiny SD-Turbo folder (``<weights_root>/base-models/sd-turbo``, written if absent) and the S3Diff files
    (``<weights_root>/methods/s3diff/``); returns the method's weights folder."""
    from benchkit.methods.onestep import core, tiny

    weights_root = Path(weights_root)
    base = weights_root / "base-models" / core.BASE_FOLDERS["sd-turbo"]
    if core.missing_base_parts(base, ("vae", "unet", "text_encoder", "tokenizer", "scheduler")):
        tiny.write_tiny_base(base, "sd-turbo")
    return write_s3diff_checkpoint(base, weights_root / "methods" / "s3diff")
