"""S3Diff (Zhang et al., "Degradation-Guided One-Step Image Super-Resolution with Diffusion Priors";
ArcticHare105/S3Diff, Apache-2.0): one-step x4 SR on SD-Turbo with degradation-aware LoRA.

Files (``<weights root>/methods/s3diff/``): ``s3diff.pkl`` (``src/s3diff_tile.py`` ``save_model``):
``unet_lora_target_modules`` (list), ``vae_lora_target_modules`` (a regex on ``^encoder\\.``), ``rank_unet``
(32), ``rank_vae`` (16), ``state_dict_unet`` (LoRA weights + ``conv_in``), ``state_dict_vae`` (LoRA weights),
``state_dict_{vae,unet}_{de,block,fuse}_mlp``, ``w`` (64 Fourier frequencies), ``state_embeddings``
(``state_dict_vae_block`` 6x64, ``state_dict_unet_block`` 10x64); ``de_net.pth``: the DEResNet state dict.

Build (as ``S3Diff.__init__``): VAE adapter ``vae_skip`` and UNet adapter ``default`` (peft ``LoraConfig(r,
gaussian)`` without ``lora_alpha`` -> the peft default 8, passed explicitly: scaling 8/r), the file's weights
written over the model's state dicts (strict here: every LoRA key of the model in the file, no key the model
lacks). Every LoRA layer's forward becomes ``base(x) + B(A(drop(x)) . M_block) * scaling`` with ``M_block``
an r x r matrix per block (UNet: down 0-3, mid 4, up 5-8, other 9; VAE encoder: down 0-3, mid 4, other 5)::

    f = cat(sin, cos)(2 pi score_k W) for the two DEResNet scores          # (B, 256)
    M = fuse_mlp(cat(de_mlp(f), block_mlp(block_embedding)))              # (B, blocks, r*r)

Per image (``src/inference_s3diff.py``): DEResNet on the LR image -> 2 scores in (0, 1); LR bilinear x4
(``F.interpolate``, ``align_corners=False``) -> [-1, 1] -> reflect pad bottom/right to a multiple of 64 ->
VAE latent -> UNet at t=999 with the fixed positive and negative prompts, ``eps = neg + 1.07 (pos - neg)``
(two UNet calls, latent tiles 96/32) -> x0 -> decode -> crop to 4x the input -> wavelet colour fix against the
upscaled LR.
"""

from __future__ import annotations

import math
from typing import ClassVar

from benchkit.methods.onestep import core
from benchkit.methods.onestep.base import OneStepSR

# src/my_utils/testing_utils.py parse_args_paired_testing defaults
POS_PROMPT = ("A high-resolution, 8K, ultra-realistic image with sharp focus, vibrant colors, and natural "
              "lighting.")
NEG_PROMPT = ("oil painting, cartoon, blur, dirty, messy, low quality, deformation, low resolution, oversmooth")
GUIDANCE_SCALE = 1.07
TIMESTEP = 999
N_FOURIER = 64  # len(w)
BLOCK_EMBED_DIM = 64
VAE_BLOCKS, UNET_BLOCKS = 6, 10
DE_NET_FILE = "de_net.pth"
MLP_KEYS = tuple(f"state_dict_{m}_{k}_mlp" for k in ("de", "block", "fuse") for m in ("vae", "unet"))


def unet_block_id(name: str) -> int:
    """Modulation row of a UNet LoRA layer (S3Diff.forward): down_blocks.i -> i, mid_block -> 4,
    up_blocks.i -> 5 + i, anything else (conv_out) -> 9."""
    parts = name.split(".")
    if parts[0] == "down_blocks":
        return int(parts[1])
    if parts[0] == "mid_block":
        return 4
    if parts[0] == "up_blocks":
        return 5 + int(parts[1])
    return UNET_BLOCKS - 1


def vae_block_id(name: str) -> int:
    """Modulation row of a VAE LoRA layer (``encoder.<...>``): down_blocks.i -> i, mid_block -> 4 (the
    official -2 of 6), anything else (conv_in, conv_out) -> 5 (-1)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1] == "down_blocks":
        return int(parts[2])
    if len(parts) > 1 and parts[1] == "mid_block":
        return VAE_BLOCKS - 2
    return VAE_BLOCKS - 1


def de_resnet(num_in_ch: int = 3, num_degradation: int = 2, num_feats=(64, 64, 64, 128), num_blocks=(2, 2, 2, 2),
              downscales=(1, 1, 2, 1)):
    """A module with the parameter names of S3Diff's ``DEResNet`` (``src/de_net.py``; written for benchkit).

    ``forward(x)``: (B,3,H,W) LR image in [0, 1] -> (B, num_degradation) sigmoid scores (blur, noise)."""
    import torch
    from torch import nn

    class ResBlock(nn.Module):  # basicsr ResidualBlockNoBN (res_scale 1)
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
            self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return x + self.conv2(self.relu(self.conv1(x)))

    class DEResNet(nn.Module):
        def __init__(self):
            super().__init__()
            n = len(num_feats)
            self.num_degradation = num_degradation
            self.conv_first = nn.ModuleList(nn.Conv2d(num_in_ch, num_feats[0], 3, 1, 1)
                                            for _ in range(num_degradation))
            self.body = nn.ModuleList()
            for _ in range(num_degradation):
                layers = []
                for s in range(n):
                    layers += [ResBlock(num_feats[s]) for _ in range(num_blocks[s])]
                    if downscales[s] == 1:
                        if s < n - 1 and num_feats[s] != num_feats[s + 1]:
                            layers.append(nn.Conv2d(num_feats[s], num_feats[s + 1], 3, 1, 1))
                    elif downscales[s] == 2:
                        layers.append(nn.Conv2d(num_feats[s], num_feats[min(s + 1, n - 1)], 3, 2, 1))
                    else:
                        raise ValueError(f"downscale {downscales[s]}")
                self.body.append(nn.Sequential(*layers))
            self.fc_degree = nn.ModuleList(
                nn.Sequential(nn.Linear(num_feats[-1], 512), nn.ReLU(inplace=True), nn.Linear(512, 1), nn.Sigmoid())
                for _ in range(num_degradation))
            self.avg_pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            out = []
            for i in range(self.num_degradation):
                feat = self.avg_pool(self.body[i](self.conv_first[i](x))).flatten(1)
                out.append(self.fc_degree[i](feat).squeeze(-1))
            return torch.stack(out, dim=1)

    return DEResNet()


def modulation_net(rank_unet: int, rank_vae: int):
    """The degradation -> LoRA modulation networks of S3Diff (names as the checkpoint's sub-dicts).

    ``forward(scores)``: (B, 2) DEResNet scores -> (vae (B, 6, r_vae, r_vae), unet (B, 10, r_unet, r_unet))."""
    import torch
    from torch import nn

    class Modulation(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.zeros(N_FOURIER))
            for m in ("vae", "unet"):
                setattr(self, f"{m}_de_mlp", nn.Sequential(nn.Linear(N_FOURIER * 4, 256), nn.ReLU(True)))
                setattr(self, f"{m}_block_mlp", nn.Sequential(nn.Linear(BLOCK_EMBED_DIM, 64), nn.ReLU(True)))
            self.vae_fuse_mlp = nn.Linear(256 + 64, rank_vae ** 2)
            self.unet_fuse_mlp = nn.Linear(256 + 64, rank_unet ** 2)
            self.vae_block_embeddings = nn.Embedding(VAE_BLOCKS, BLOCK_EMBED_DIM)
            self.unet_block_embeddings = nn.Embedding(UNET_BLOCKS, BLOCK_EMBED_DIM)
            self.ranks = {"vae": rank_vae, "unet": rank_unet}

        def forward(self, scores):
            proj = scores[..., None] * self.w[None, None, :] * 2 * math.pi  # the official order of operations
            proj = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
            proj = torch.cat([proj[:, 0], proj[:, 1]], dim=-1)
            out = []
            for m in ("vae", "unet"):
                de = getattr(self, f"{m}_de_mlp")(proj)
                blk = getattr(self, f"{m}_block_mlp")(getattr(self, f"{m}_block_embeddings").weight)
                cat = torch.cat([de[:, None].expand(-1, blk.shape[0], -1), blk[None].expand(de.shape[0], -1, -1)], -1)
                r = self.ranks[m]
                out.append(getattr(self, f"{m}_fuse_mlp")(cat).reshape(de.shape[0], blk.shape[0], r, r))
            return tuple(out)

    return Modulation()


class ModulatedLoRAForward:
    """The forward of one peft LoRA layer with S3Diff's modulation (``src/model.py`` ``my_lora_fwd``),
    written with peft's public layer attributes only (``base_layer, lora_A, lora_B, lora_dropout, scaling,
    active_adapters``)::

        out = base(x) + sum_adapters lora_B(einsum(lora_A(dropout(x)), M)) * scaling

    ``M = store[key][:, block]`` (B, r, r); the einsum contracts the rank axis (conv: ``...khw,...kr->...rhw``,
    linear: ``...lk,...kr->...lr``). Installed as the layer's ``forward`` (see :func:`install_modulation`)."""

    def __init__(self, layer, store: dict, key: str, block: int):
        self.layer, self.store, self.key, self.block = layer, store, key, int(block)

    def __call__(self, x, *args, **kwargs):
        import torch

        layer = self.layer
        result = layer.base_layer(x, *args, **kwargs)
        dtype = result.dtype
        mod = self.store[self.key][:, self.block]
        for name in layer.active_adapters:
            if name not in layer.lora_A:
                continue
            lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
            h = lora_a(layer.lora_dropout[name](x.to(lora_a.weight.dtype)))
            m = mod.to(h.dtype)
            if isinstance(lora_a, torch.nn.Conv2d):
                h = torch.einsum("...khw,...kr->...rhw", h, m)
            else:
                h = torch.einsum("...lk,...kr->...lr", h, m)
            result = result + lora_b(h) * layer.scaling[name]
        return result.to(dtype)


def install_modulation(model, store: dict, key: str, block_id) -> dict:
    """Replace the forward of every peft LoRA layer of ``model`` by :class:`ModulatedLoRAForward`; returns
    {layer name: block id}. Only Linear/Conv2d LoRA layers are supported (as the official forward)."""
    import torch
    from peft.tuners.lora import LoraLayer

    ids = {}
    for name, m in model.named_modules():
        if not isinstance(m, LoraLayer):
            continue
        for a in m.lora_A.values():
            if not isinstance(a, (torch.nn.Linear, torch.nn.Conv2d)):
                raise TypeError(f"LoRA layer {name}: {type(a).__name__} is not supported (Linear, Conv2d only)")
        ids[name] = block_id(name)
        m.forward = ModulatedLoRAForward(m, store, key, ids[name])
    return ids


def _module_shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


class S3Diff(OneStepSR):
    name = "s3diff"
    description = ("S3Diff one-step diffusion SR (SD-Turbo + degradation-modulated LoRA), CFG 1.07, wavelet "
                   "colour fix")
    weight_files = ("s3diff.pkl", DE_NET_FILE)
    checkpoint = "s3diff.pkl"
    base = "sd-turbo"
    code_license = ("Apache-2.0 (code and weights); base model: Stability AI Community licence (sd-turbo)")
    default_color_fix = "wavelet"
    pad_multiple = 64
    upscale_mode: ClassVar[str] = "bilinear"

    @classmethod
    def default_options(cls) -> dict:
        return {**super().default_options(), "pos_prompt": POS_PROMPT, "neg_prompt": NEG_PROMPT,
                "guidance_scale": GUIDANCE_SCALE}

    # ------------------------------------------------------------------------------------------------- build
    def _build(self, parts, ckpt, path):
        import torch

        de_path = self.weights_dir / DE_NET_FILE
        de_sd = core.load_checkpoint(de_path)
        de_net = de_resnet()
        core.check_state(de_path, "de_net.pth", _module_shapes(de_net), de_sd)
        de_net.load_state_dict(de_sd, strict=True)

        core.require_keys(path, ckpt, ["unet_lora_target_modules", "vae_lora_target_modules", "rank_unet",
                                       "rank_vae", "state_dict_unet", "state_dict_vae", *MLP_KEYS, "w",
                                       "state_embeddings"],
                          {"rank_unet": int, "rank_vae": int, "w": torch.Tensor, "state_embeddings": dict,
                           "vae_lora_target_modules": (str, list, tuple),
                           "unet_lora_target_modules": (str, list, tuple)})
        try:
            parts.vae.add_adapter(core.lora_config(ckpt["rank_vae"], ckpt["vae_lora_target_modules"]),
                                  adapter_name="vae_skip")
            parts.unet.add_adapter(core.lora_config(ckpt["rank_unet"], ckpt["unet_lora_target_modules"]))
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise core.CheckpointError(path, f"its LoRA target modules do not fit the base model ({e})") from e
        from benchkit.methods.onestep.herosr import merge_strict

        merge_strict(path, "state_dict_unet", parts.unet, ckpt["state_dict_unet"])
        merge_strict(path, "state_dict_vae", parts.vae, ckpt["state_dict_vae"])

        mod = modulation_net(ckpt["rank_unet"], ckpt["rank_vae"])
        for key in MLP_KEYS:
            sub = getattr(mod, key[len("state_dict_"):])
            core.check_state(path, key, _module_shapes(sub), ckpt[key])
            sub.load_state_dict(ckpt[key], strict=True)
        core.check_state(path, "w", {"w": (N_FOURIER,)}, {"w": ckpt["w"]})
        emb = ckpt["state_embeddings"]
        core.require_keys(path, emb, ["state_dict_vae_block", "state_dict_unet_block"])
        for m in ("vae", "unet"):
            sub = getattr(mod, f"{m}_block_embeddings")
            core.check_state(path, f"state_embeddings.state_dict_{m}_block", _module_shapes(sub),
                             emb[f"state_dict_{m}_block"])
            sub.load_state_dict(emb[f"state_dict_{m}_block"], strict=True)
        with torch.no_grad():
            mod.w.copy_(ckpt["w"].detach())
        for m in (de_net, mod):
            m.requires_grad_(False)
            m.eval()

        store = {"vae": None, "unet": None}
        try:
            parts.vae_layers = install_modulation(parts.vae, store, "vae", vae_block_id)
            parts.unet_layers = install_modulation(parts.unet, store, "unet", unet_block_id)
        except (TypeError, ValueError, IndexError) as e:
            raise core.CheckpointError(path, f"cannot modulate its LoRA layers ({e})") from e
        parts.de_net, parts.modulation, parts.mod_store = de_net, mod, store

    def _after_load(self):
        m = self.model
        m.de_net.to(self.device)  # float32, like the LR input the official script feeds it
        m.modulation.to(self.device)
        self._pos = core.encode_prompt(m.tokenizer, m.text_encoder, self.options["pos_prompt"])
        self._neg = core.encode_prompt(m.tokenizer, m.text_encoder, self.options["neg_prompt"])
        sch = m.scheduler.config
        # DDPMScheduler.step (the official x0) clips x0 when the scheduler config asks for it
        self._clip = float(sch.get("clip_sample_range", 1.0)) if sch.get("clip_sample", False) else None

    # --------------------------------------------------------------------------------------------- restore
    def set_degradation(self, lr):
        """DEResNet scores of the LR batch (B,3,h,w) in [0, 1] -> the per-block LoRA modulations; returns the
        scores (B, 2) float32."""
        import torch

        with torch.no_grad():
            scores = self.model.de_net(lr.float())
            vae_m, unet_m = self.model.modulation(scores)
        store = self.model.mod_store
        store["vae"], store["unet"] = vae_m.to(self.torch_dtype()), unet_m.to(self.torch_dtype())
        return scores

    def _forward(self, x, ctx, gen):
        import torch

        z = self.encode_latent(x, gen)
        t = torch.tensor([TIMESTEP], device=z.device, dtype=torch.long)
        unet, g = self.model.unet, float(self.options["guidance_scale"])

        def cfg(zt):
            pos = unet(zt, t, encoder_hidden_states=self._pos).sample
            neg = unet(zt, t, encoder_hidden_states=self._neg).sample
            return neg + g * (pos - neg)

        eps = core.tiled_eps(cfg, z, self.options["latent_tile"], self.options["latent_overlap"])
        x0 = core.x0_from_eps(z, eps, self.alphas_cumprod, t)
        if self._clip is not None:
            x0 = x0.clamp(-self._clip, self._clip)
        return self.decode_latent(x0)

    def restore(self, lq_batch, context, scale):
        """Per image: DEResNet on the LR, bilinear upscale (torch, as the official script), then the shared
        one-step path (:meth:`restore_tensor`: pad to 64, model, crop, colour fix)."""
        from torch.nn import functional as F

        self.require_loaded()
        outs = []
        for lq, ctx in zip(lq_batch, context):
            lr = self.to_tensor(lq)
            self.set_degradation(lr)
            h, w = lr.shape[-2:]
            up = F.interpolate(lr, size=(h * scale, w * scale), mode=self.upscale_mode, align_corners=False)
            outs.append(self.to_image(self.restore_tensor(up, ctx)))
        return outs


class S3DiffOfficial(S3Diff):
    """S3Diff with the official sampling (VAE latent sampled, seeded per image by the harness)."""

    name = "s3diff-official"
    weights_name = "s3diff"
    default_mode = "official"
