"""InvSR's noise predictor, rebuilt by benchkit from diffusers 0.42 building blocks.

The official ``NoisePredictor`` (zsyOAOA/InvSR, ``src/diffusers/models/autoencoders/autoencoder_kl.py`` and
``vae.py`` ``TimeAwareEncoder``; NTU S-Lab licence, not copied here) is a VAE-style encoder whose ResNets take a
timestep embedding: sinusoidal ``Timesteps(max(128, c0), flip_sin_to_cos=True, shift 0)`` ->
``TimestepEmbedding(., temb)``; ``conv_in`` 3x3; per width one ``get_down_block`` (``AttnDownBlock2D``, eps 1e-6,
conv downsampling with padding 0 on all but the last); ``UNetMidBlock2D`` with attention; GroupNorm, SiLU,
``conv_out`` 3x3 to ``2 x latent`` channels (mean, log-variance). On an LR image in [-1, 1] of HxW it returns
(B, 8, H/2, W/2) moments for two widths - the SD latent size of the x4 image. State-dict keys start with
``encoder.`` exactly as in the official file (164 keys, 33,837,576 parameters for the released config).

Config from a state dict (:func:`infer_config`): widths, layers per block, block types (attention keys present
or not), timestep/embedding sizes, input/latent channels and mid-block attention are read from key names and
shapes. GroupNorm group count and attention head size leave no trace in a state dict; benchkit uses
``groups = min(32, gcd(widths))`` and ``head_dim = min(64, gcd(widths))`` - for the released 256/512 layout that
is exactly ``configs/sample-sd-turbo.yaml`` (32 groups, head dim 64), and benchkit's tiny test checkpoints are
written with the same rule.
"""

from __future__ import annotations

import math
import re

# configs/sample-sd-turbo.yaml ``model_start.params`` (the released noise_predictor_sd_turbo_v5.pth)
FULL_CONFIG = {
    "in_channels": 3, "block_out_channels": (256, 512), "layers_per_block": (3, 3),
    "down_block_types": ("AttnDownBlock2D", "AttnDownBlock2D"), "latent_channels": 4, "norm_num_groups": 32,
    "attention_head_dim": 64, "temb_channels": 512, "mid_block_add_attention": True,
}
FULL_PARAMS = 33_837_576  # counted on the official class (InvSR@609788c) and on this rebuild


def derived_groups_heads(widths) -> tuple[int, int]:
    """(GroupNorm groups, attention head size) benchkit assumes for channel ``widths`` (see module doc)."""
    g = 0
    for w in widths:
        g = math.gcd(g, int(w))
    return min(32, g), min(64, g)


def build(config: dict):
    """A predictor module for ``config`` (keys as :data:`FULL_CONFIG`); parameters use torch's default init."""
    import torch
    from diffusers.models.embeddings import TimestepEmbedding, Timesteps
    from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block
    from torch import nn

    c = {**FULL_CONFIG, **config}
    widths, layers = tuple(c["block_out_channels"]), tuple(c["layers_per_block"])
    groups, heads = c["norm_num_groups"], c["attention_head_dim"]
    temb = c["temb_channels"]

    class TimeAwareEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            t_dim = max(128, widths[0])
            self.time_proj = Timesteps(t_dim, True, 0)
            self.time_embedding = TimestepEmbedding(t_dim, temb)
            self.conv_in = nn.Conv2d(c["in_channels"], widths[0], 3, padding=1)
            self.down_blocks = nn.ModuleList()
            prev = widths[0]
            for i, kind in enumerate(c["down_block_types"]):
                self.down_blocks.append(get_down_block(
                    kind, num_layers=layers[i], in_channels=prev, out_channels=widths[i], temb_channels=temb,
                    add_downsample=i < len(widths) - 1, resnet_eps=1e-6, resnet_act_fn="silu",
                    resnet_groups=groups, downsample_padding=0, attention_head_dim=heads,
                    resnet_time_scale_shift="default"))
                prev = widths[i]
            self.mid_block = UNetMidBlock2D(
                in_channels=widths[-1], temb_channels=temb, resnet_eps=1e-6, resnet_act_fn="silu",
                output_scale_factor=1, attention_head_dim=heads, resnet_groups=groups,
                add_attention=c["mid_block_add_attention"], resnet_time_scale_shift="default")
            self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=1e-6)
            self.conv_act = nn.SiLU()
            self.conv_out = nn.Conv2d(widths[-1], 2 * c["latent_channels"], 3, padding=1)

        def forward(self, x, t):
            t = torch.as_tensor(t, device=x.device)
            t = (t.reshape(-1) * torch.ones(x.shape[0], dtype=t.dtype, device=x.device))
            emb = self.time_embedding(self.time_proj(t).to(self.time_embedding.linear_1.weight.dtype))
            h = self.conv_in(x)
            for blk in self.down_blocks:
                h, _ = blk(h, emb)
            h = self.mid_block(h, emb)
            return self.conv_out(self.conv_act(self.conv_norm_out(h)))

    class NoisePredictor(nn.Module):
        """``forward(x, t)``: x (B,3,H,W) in [-1, 1], t float timestep(s) -> (mean, logvar clamped to [-30, 20])."""

        def __init__(self):
            super().__init__()
            self.config = dict(c)
            self.encoder = TimeAwareEncoder()

        def forward(self, x, t):
            mean, logvar = self.encoder(x, t).chunk(2, dim=1)
            return mean, logvar.clamp(-30.0, 20.0)

    return NoisePredictor()


def param_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


_DOWN = re.compile(r"^encoder\.down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.")


def infer_config(state: dict) -> dict:
    """The predictor config of an (unprefixed) state dict; ValueError naming the key it cannot read."""
    def shape(k):
        if k not in state:
            raise ValueError(f"missing key {k!r}: not an InvSR noise predictor")
        return tuple(state[k].shape)

    in_ch = shape("encoder.conv_in.weight")[1]
    n_blocks = 1 + max((int(m.group(1)) for m in map(_DOWN.match, state) if m), default=-1)
    if n_blocks < 1:
        raise ValueError("no encoder.down_blocks.* keys: not an InvSR noise predictor")
    widths, layers, kinds = [], [], []
    for i in range(n_blocks):
        widths.append(shape(f"encoder.down_blocks.{i}.resnets.0.conv1.weight")[0])
        idx = {int(m.group(3)) for m in map(_DOWN.match, state) if m and int(m.group(1)) == i
               and m.group(2) == "resnets"}
        layers.append(len(idx))
        has_attn = any(k.startswith(f"encoder.down_blocks.{i}.attentions.") for k in state)
        kinds.append("AttnDownBlock2D" if has_attn else "DownBlock2D")
    temb = shape("encoder.time_embedding.linear_1.weight")[0]
    out = shape("encoder.conv_out.weight")[0]
    if out % 2:
        raise ValueError(f"encoder.conv_out has {out} output channels: expected 2 x latent channels (mean, logvar)")
    groups, heads = derived_groups_heads(widths)
    return {"in_channels": in_ch, "block_out_channels": tuple(widths), "layers_per_block": tuple(layers),
            "down_block_types": tuple(kinds), "latent_channels": out // 2, "norm_num_groups": groups,
            "attention_head_dim": heads, "temb_channels": temb,
            "mid_block_add_attention": any(k.startswith("encoder.mid_block.attentions.") for k in state)}


PREFIXES = ("module.", "_orig_mod.")


def unwrap_state(obj: dict) -> tuple[dict, str]:
    """The predictor's state dict from a checkpoint as the official sampler reads it: under ``state_dict`` when
    that key exists (the trainer's file: other top-level entries are training bookkeeping, ignored), with the
    DDP ``module.`` / ``torch.compile`` ``_orig_mod.`` prefixes removed. Returns (state, removed prefix)."""
    if "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        return obj, ""
    first = next(iter(obj), "")
    prefix = ""
    while isinstance(first, str) and first[len(prefix):].startswith(PREFIXES):
        prefix += next(p for p in PREFIXES if first[len(prefix):].startswith(p))
    if not prefix:
        return obj, ""
    return {(k[len(prefix):] if isinstance(k, str) and k.startswith(prefix) else k): v for k, v in obj.items()}, prefix
