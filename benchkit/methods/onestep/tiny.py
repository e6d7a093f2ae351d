"""Tiny random stand-ins for tests and ``benchkit bench adapters`` (no real weights involved).

:func:`write_tiny_base` writes an SD-2.1-base-like or SD-Turbo-like diffusers folder (UNet 32/32/64/64
channels, 3 CrossAttnDown + Down, linear projection, cross-attention 32; AutoencoderKL 8/8/16/16 = x8 like
SD; a 2-layer CLIP text model; a byte-level CLIP tokenizer written from a 514-entry vocabulary with no merges;
the DDIM (leading, offset 1) or Euler (trailing) scheduler config) in well under a second.
:func:`write_osediff_checkpoint` / :func:`write_herosr_checkpoint` run the official *save* recipes
(``osediff.py`` ``save_model``; Hero-SR's pix2pix-turbo-style ``state_dict_unet`` of LoRA + ``conv_in``)
on LoRA-injected copies of those tiny models, with random LoRA weights.
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEDULERS = {
    "sd21-base": {"_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
                  "prediction_type": "epsilon", "set_alpha_to_one": False, "steps_offset": 1,
                  "timestep_spacing": "leading", "trained_betas": None},
    "sd-turbo": {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "beta_start": 0.00085, "interpolation_type": "linear", "num_train_timesteps": 1000,
                 "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "trailing",
                 "trained_betas": None},
}


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(folder: Path) -> int:
    """A byte-level CLIP tokenizer (no merges); returns the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
         "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "do_lower_case": True,
         "tokenizer_class": "CLIPTokenizer"}), encoding="utf-8")
    return len(vocab)


def _tiny_models(folder: Path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32, attention_head_dim=(2, 4, 8, 8), use_linear_projection=True, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=64, scaling_factor=0.18215)
    n_vocab = write_tokenizer(folder / "tokenizer")
    te = CLIPTextModel(CLIPTextConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=37,
                                      num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                      bos_token_id=512, eos_token_id=513, pad_token_id=513,
                                      hidden_act="gelu", projection_dim=32))
    return unet, vae, te


def _full_models(folder: Path):
    """SD-2.x-sized models (UNet 865 M, VAE 84 M, OpenCLIP-H text encoder 340 M), random: GPU timings only."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2, sample_size=768, scaling_factor=0.18215)
    n_vocab = write_tokenizer(folder / "tokenizer")
    te = CLIPTextModel(CLIPTextConfig(vocab_size=max(n_vocab, 49408), hidden_size=1024, intermediate_size=4096,
                                      num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77,
                                      bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_act="gelu",
                                      projection_dim=512))
    return unet, vae, te


def write_tiny_base(folder, kind: str = "sd21-base", seed: int = 0, full_size: bool = False) -> Path:
    """Write a tiny random diffusers folder of ``kind`` ('sd21-base' or 'sd-turbo') to ``folder``.

    ``full_size=True``: the real SD-2.x architecture with random weights (about 5 GB fp32; for GPU timings)."""
    import torch

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):  # random init from ``seed``; the global generator is restored
        torch.manual_seed(seed)
        unet, vae, te = (_full_models if full_size else _tiny_models)(folder)
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    te.save_pretrained(folder / "text_encoder")
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULERS[kind]), encoding="utf-8")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}),
                                             encoding="utf-8")
    return folder


def _randomize_lora(module, gen, std: float = 0.02) -> None:
    import torch

    with torch.no_grad():
        for n, p in module.named_parameters():
            if "lora" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def write_osediff_checkpoint(base, out, rank: int = 4, seed: int = 0) -> Path:
    """``osediff.pkl`` as ``OSEDiff_gen.save_model`` writes it, for the tiny base at ``base``."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from benchkit.methods.onestep.core import lora_config

    gen = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=True)
    # module selection as initialize_vae / initialize_unet
    v_grep = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "to_k", "to_q", "to_v", "to_out.0"]
    v_mods = []
    for n, _ in vae.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pat in v_grep:
            if pat in n and "encoder" in n:
                v_mods.append(n.replace(".weight", ""))
            elif "quant_conv" in n and "post_quant_conv" not in n:
                v_mods.append(n.replace(".weight", ""))
    u_grep = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out",
              "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]
    enc, dec, oth = [], [], []
    for n, _ in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pat in u_grep:
            if pat in n and ("down_blocks" in n or "conv_in" in n):
                enc.append(n.replace(".weight", ""))
                break
            elif pat in n and ("up_blocks" in n or "conv_out" in n):
                dec.append(n.replace(".weight", ""))
                break
            elif pat in n:
                oth.append(n.replace(".weight", ""))
                break
    vae.add_adapter(lora_config(rank, v_mods), adapter_name="default_encoder")
    for name, mods in (("encoder", enc), ("decoder", dec), ("others", oth)):
        unet.add_adapter(lora_config(rank, mods), adapter_name=f"default_{name}")
    _randomize_lora(unet, gen)
    _randomize_lora(vae, gen)
    with torch.no_grad():
        unet.conv_in.base_layer.weight.add_(torch.randn(unet.conv_in.base_layer.weight.shape, generator=gen) * 0.01)
    sd = {"vae_lora_encoder_modules": v_mods, "unet_lora_encoder_modules": enc, "unet_lora_decoder_modules": dec,
          "unet_lora_others_modules": oth, "rank_unet": rank, "rank_vae": rank,
          "state_dict_unet": {k: v for k, v in unet.state_dict().items() if "lora" in k or "conv_in" in k},
          "state_dict_vae": {k: v for k, v in vae.state_dict().items() if "lora" in k}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, out)
    return out


def write_herosr_checkpoint(base, out, rank_unet: int = 4, rank_vae: int = 4, seed: int = 0) -> Path:
    """``hero_sr_model.pkl`` with the keys ``src/hero_sr.py`` reads (pix2pix-turbo-style save recipe:
    UNet LoRA + ``conv_in``, VAE LoRA, the TimeAdaptive state dict), for the tiny base at ``base``."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from benchkit.methods.onestep.core import lora_config
    from benchkit.methods.onestep.herosr import time_adaptive_module

    gen = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=True)
    u_mods = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_shortcut", "conv_out",
              "proj_in", "proj_out", "ff.net.2", "ff.net.0.proj"]
    v_mods = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "to_k", "to_q", "to_v", "to_out.0"]
    unet.add_adapter(lora_config(rank_unet, u_mods))
    vae.add_adapter(lora_config(rank_vae, v_mods), adapter_name="vae")
    _randomize_lora(unet, gen)
    _randomize_lora(vae, gen)
    with torch.random.fork_rng(devices=[]):  # default init from ``seed``; the global generator is restored
        torch.manual_seed(seed)
        ta = time_adaptive_module()
    with torch.no_grad():
        for n, p in ta.named_parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        for mname, m in ta.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(1 + torch.rand(m.running_var.shape, generator=gen))
    sd = {"rank_unet": rank_unet, "unet_lora_target_modules": u_mods, "rank_vae": rank_vae,
          "vae_lora_target_modules": v_mods,
          "state_dict_unet": {k: v for k, v in unet.state_dict().items() if "lora" in k or "conv_in" in k},
          "state_dict_vae": {k: v for k, v in vae.state_dict().items() if "lora" in k},
          "state_dict_time_adaptive": ta.state_dict()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, out)
    return out


def _base(weights_root, kind: str) -> Path:
    from benchkit.methods.onestep.core import BASE_FOLDERS

    folder = Path(weights_root) / "base-models" / BASE_FOLDERS[kind]
    if not (folder / "model_index.json").is_file():
        write_tiny_base(folder, kind)
    return folder


def write_osediff_tiny(weights_root) -> Path:
    """Tiny SD-2.1-base-like base (if absent) + ``osediff.pkl`` under ``weights_root``; the weights dir."""
    out = Path(weights_root) / "methods" / "osediff"
    write_osediff_checkpoint(_base(weights_root, "sd21-base"), out / "osediff.pkl")
    return out


def write_herosr_tiny(weights_root) -> Path:
    """Tiny SD-Turbo-like base (if absent) + ``hero_sr_model.pkl`` under ``weights_root``; the weights dir."""
    out = Path(weights_root) / "methods" / "hero-sr"
    write_herosr_checkpoint(_base(weights_root, "sd-turbo"), out / "hero_sr_model.pkl")
    return out
