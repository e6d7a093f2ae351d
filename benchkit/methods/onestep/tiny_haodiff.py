"""Tiny HAODiff stand-ins for tests and ``benchkit bench adapters`` (no real weights, no official code).

- :func:`write_stub_checkout` writes a STUB package in place of the user's gobunu/HAODiff clone: the same import
  path (``swin.swinir_feature_extractor``), class name (``SwinIRWithDualPerformerAdapter``) and signatures
  (``__init__(swinir_kwargs, performer_kwargs, load_backbone=True, training=True, add_text=None)``,
  ``forward(x, text_embedding=None)`` -> ``(positive, negative, None, None)`` in inference mode, ``save``,
  ``load``), but a network of benchkit's own invention: a strided conv stem, one 3x3 conv per branch, and per
  prompt a pooled token grid attended by 77 learned queries (LayerNorm) -> ``(B, 77, embed_dim)``. It is not the
  official encoder and shares no code with it.
- :func:`write_haodiff_weights` writes ``pytorch_lora_weights.safetensors`` (peft ``add_adapter`` r = alpha = 16
  on the tiny SD-2.1-like UNet of :mod:`benchkit.methods.onestep.tiny`, random A and B, saved with diffusers'
  ``save_lora_weights`` in the ``peft``, ``legacy`` or ``mixed`` key format, see :func:`write_lora`) and
  ``img_encoder_weights.pth`` in the official layout, from a stub model built in training mode (so the file also
  holds the training-only head, as a training-time save does).
- :func:`write_tiny_weights` writes all of it under a weights root.
"""

from __future__ import annotations

import types
from pathlib import Path

LORA_RANK = 16
KEY_FORMATS = ("peft", "legacy", "mixed")
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                "conv1", "conv2")
SWINIR_KWARGS = {"embed_dim": 12, "branch_num": 3, "skip_branch": [], "upscale": 4, "img_size": 512}

STUB_ENCODER = '''"""STUB written by benchkit (benchkit.methods.onestep.tiny_haodiff) for offline tests.

NOT the HAODiff image encoder: only the import path, class name and signatures of gobunu/HAODiff's
swin/swinir_feature_extractor.py are the same; the network is a tiny stand-in of benchkit's own design.
"""

import os

import torch
from torch import nn
from torch.nn import functional as F


class StubFeatureExtractor(nn.Module):
    """Strided conv stem (1/8 resolution) + one 3x3 conv per kept branch -> list of (B, HW, C) tokens."""

    def __init__(self, embed_dim=12, branch_num=3, skip_branch=(), **unused):
        super().__init__()
        self.stem = nn.Conv2d(3, embed_dim, 8, stride=8)
        self.heads = nn.ModuleList(nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
                                   for i in range(branch_num) if i not in list(skip_branch))

    def forward(self, x):
        f = F.gelu(self.stem(x))
        return [h(f).flatten(2).transpose(1, 2) for h in self.heads]


class StubPromptHead(nn.Module):
    """Tokens (B, N, C) -> 8x8 average-pooled grid -> linear -> 77 learned queries attend -> LayerNorm."""

    def __init__(self, in_dim, embed_dim=1024, out_tokens=77, grid=8, **unused):
        super().__init__()
        self.grid = grid
        self.proj = nn.Linear(in_dim, embed_dim)
        self.queries = nn.Parameter(torch.randn(1, out_tokens, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, tokens):
        b, n, c = tokens.shape
        side = int(round(n ** 0.5))
        grid = F.adaptive_avg_pool2d(tokens.transpose(1, 2).reshape(b, c, side, side), self.grid)
        keys = self.proj(grid.flatten(2).transpose(1, 2))
        weights = torch.softmax(self.queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5, dim=-1)
        return self.norm(weights @ keys)


class SwinIRWithDualPerformerAdapter(nn.Module):
    """Stand-in with the official constructor, forward, save and load signatures."""

    def __init__(self, swinir_kwargs: dict, performer_kwargs: dict, load_backbone=True, training: bool = True,
                 add_text: str = None):
        super().__init__()
        self.swinir_kwargs = swinir_kwargs
        self.performer_kwargs = performer_kwargs
        self.feature_extractor = StubFeatureExtractor(**swinir_kwargs)
        if load_backbone and swinir_kwargs.get("pretrained_swinir"):
            self.feature_extractor.load_state_dict(torch.load(swinir_kwargs["pretrained_swinir"],
                                                              map_location="cpu", weights_only=True))
        dim = swinir_kwargs.get("embed_dim", 12)
        kept = swinir_kwargs.get("branch_num", 3) - len(swinir_kwargs.get("skip_branch", []))
        self.main_performer = StubPromptHead(dim, **performer_kwargs)
        self.aux_performer = StubPromptHead(dim * (kept - 1), **performer_kwargs)
        if training:  # a training-only head, present in training-time saves
            self.embedding_changer1 = nn.Linear(performer_kwargs.get("embed_dim", 1024), 4)
        self.train(training)

    def forward(self, x, text_embedding=None):
        feats = self.feature_extractor(x)
        main = self.main_performer(feats[0])
        aux = self.aux_performer(torch.cat(feats[1:], dim=2)) if len(feats) > 1 else None
        if self.training:
            return main, aux, self.embedding_changer1(main), None
        return main, aux, None, None

    def save(self, path):
        os.makedirs(path, exist_ok=True)
        torch.save({"model_state_dict": self.state_dict(), "swinir_kwargs": self.swinir_kwargs,
                    "performer_kwargs": self.performer_kwargs}, os.path.join(path, "img_encoder_weights.pth"))

    @classmethod
    def load(cls, path, map_location=None, training=True, add_text=None):
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        model = cls(ckpt["swinir_kwargs"], ckpt["performer_kwargs"], load_backbone=False, training=training,
                    add_text=add_text)
        model.load_state_dict(ckpt["model_state_dict"], strict=False)
        return model
'''

STUB_FILES = {
    "swin/__init__.py": '"""STUB package written by benchkit for offline tests (not gobunu/HAODiff)."""\n',
    "swin/swinir_feature_extractor.py": STUB_ENCODER,
    "swin/network_swinir_multi_branchs.py": '"""STUB written by benchkit: the stand-in keeps its layers in '
                                            'swinir_feature_extractor.py."""\n',
    "STUB.txt": "A stand-in for a gobunu/HAODiff checkout, written by benchkit for offline tests.\n",
}


def write_stub_checkout(folder) -> Path:
    """Write the stub package to ``folder`` (created); returns it."""
    folder = Path(folder)
    for rel, text in STUB_FILES.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return folder


def stub_module():
    """The stub encoder module, executed in a private namespace (not put in ``sys.modules``)."""
    mod = types.ModuleType("benchkit_haodiff_stub")
    exec(compile(STUB_ENCODER, "<benchkit haodiff stub>", "exec"), mod.__dict__)  # noqa: S102 - our source above
    return mod


def write_lora(base, out_dir, key_format: str = "peft", seed: int = 0, targets=LORA_TARGETS,
               rank: int = LORA_RANK) -> Path:
    """``pytorch_lora_weights.safetensors`` for the UNet at ``base``: peft ``add_adapter`` (r = alpha = ``rank``),
    random A/B, ``get_peft_model_state_dict``, written by diffusers' ``save_lora_weights`` (prefix ``unet.``).

    ``key_format``: ``peft`` (``<module>.lora_A/B.weight``), ``legacy`` (every key ``<module>.lora.down/up.weight``:
    the pre-peft diffusers format of ``LoRACompatibleLinear/Conv``, conv layers included) or ``mixed`` (diffusers'
    ``convert_state_dict_to_diffusers``, as its training scripts save: attention projections legacy, the rest
    peft)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from benchkit.methods.onestep.tiny import _randomize_lora

    if key_format not in KEY_FORMATS:
        raise ValueError(f"key_format must be one of {KEY_FORMATS}")
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=list(targets)))
    _randomize_lora(unet, torch.Generator().manual_seed(seed))
    sd = get_peft_model_state_dict(unet)
    if key_format == "mixed":
        sd = convert_state_dict_to_diffusers(sd)
    elif key_format == "legacy":
        sd = {k.replace(".lora_A.", ".lora.down.").replace(".lora_B.", ".lora.up."): v for k, v in sd.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(str(out_dir), unet_lora_layers=sd, safe_serialization=True)
    return out_dir / "pytorch_lora_weights.safetensors"


def write_encoder(out_dir, cross_attention_dim: int, seed: int = 0) -> Path:
    """``img_encoder_weights.pth`` (official layout) of a stub encoder whose prompts are (B, 77,
    ``cross_attention_dim``)."""
    import torch

    mod = stub_module()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = mod.SwinIRWithDualPerformerAdapter(dict(SWINIR_KWARGS), {"embed_dim": int(cross_attention_dim),
                                                 "out_tokens": 77}, load_backbone=False, training=True)
    out_dir = Path(out_dir)
    enc.save(str(out_dir))
    return out_dir / "img_encoder_weights.pth"


def write_haodiff_weights(base, out_dir, key_format: str = "peft", seed: int = 0) -> Path:
    """Both HAODiff files for the tiny SD-2.1-like folder ``base`` into ``out_dir``; returns ``out_dir``."""
    import json

    cfg = json.loads((Path(base) / "unet" / "config.json").read_text(encoding="utf-8"))
    write_lora(base, out_dir, key_format, seed)
    write_encoder(out_dir, cfg["cross_attention_dim"], seed)
    return Path(out_dir)


def write_tiny_weights(weights_root) -> Path:
    """Tiny base (if absent), HAODiff weights and the stub checkout (``methods/haodiff/code``) under
    ``weights_root``; returns ``<weights_root>/methods/haodiff``."""
    from benchkit.methods.onestep.core import BASE_FOLDERS
    from benchkit.methods.onestep.tiny import write_tiny_base

    root = Path(weights_root)
    base = root / "base-models" / BASE_FOLDERS["sd21-base"]
    if not (base / "unet" / "config.json").is_file():
        write_tiny_base(base, "sd21-base")
    out = root / "methods" / "haodiff"
    write_haodiff_weights(base, out)
    write_stub_checkout(out / "code")
    return out
