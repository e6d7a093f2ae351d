"""HAODiff (human-aware one-step diffusion with dual-prompt guidance; gobunu/HAODiff): x1 restoration of
human motion blur and generic degradation on SD-2.1-base.

Files under ``<weights root>/methods/haodiff/``: ``pytorch_lora_weights.safetensors`` (UNet LoRA, keys
``unet.<module>.lora_A/B.weight`` or legacy ``unet.<module>.lora.down/up.weight``) and
``img_encoder_weights.pth`` (``{model_state_dict, swinir_kwargs, performer_kwargs}``: the dual-prompt image
encoder with its configuration). Base: SD-2.1-base ``vae``, ``unet``, ``scheduler`` only (no text encoder).

The official repository has no licence file, so benchkit does not re-create its image encoder: the class
``SwinIRWithDualPerformerAdapter`` is imported from the user's checkout (``swin/swinir_feature_extractor.py``;
located by :mod:`benchkit.methods.checkout`: option ``code_dir`` > ``$BENCHKIT_HAODIFF_CODE`` >
``<weights root>/methods/haodiff/code``) and only given benchkit's strictly loaded weights. The LoRA merge,
the diffusion step, the tiling and the colour fix are benchkit's own (facts from ``run_inference.py``).

Per image (``run_inference.py`` ``OSDFaceTest.forward``, ``merge_unet``, defaults of its argument parser):

1. LQ (native size) -> ``[-1, 1]`` in the compute dtype; the encoder sees its bilinear 512x512 resize and
   returns the positive (main branch) and negative (auxiliary branches) prompt embeddings, each 77 x 1024.
2. VAE latent of the LQ (reflect-padded to a multiple of 8, cropped back after decoding) x ``scaling_factor``:
   ``latent_dist.mode()`` (``deterministic``) or ``.sample()`` from the per-image generator (``official``).
3. UNet at t = 199 with classifier-free guidance 3.5, one batched call per tile: latents twice, embeddings
   ``[negative, positive]``, ``eps = eps_neg + 3.5 (eps_pos - eps_neg)``; latent tiles 64 / overlap 5.
4. x0 in closed form (float64, the scheduler's ``alphas_cumprod``), decode, clamp, wavelet colour fix.

The LoRA is merged by hand as ``merge_unet`` does: ``W += (lora_alpha / lora_rank) * B @ A`` (16 / 16 by
default; conv LoRA: ``B (out, r, 1, 1)``, ``A (r, in, kh, kw)``). Unlike the official merge, every key of the
file must be used (a foreign, unpaired or unmatched key is a :class:`~benchkit.methods.onestep.core.CheckpointError`
naming the file and the keys). The official merge skips legacy ``lora.up``/``lora.down`` pairs whose UNet
weight is not 2-D (the conv layers) with a printed warning; benchkit does the same by default
(``legacy_conv_lora: skip``, the official default ``--merge_lora`` path) and merges them with ``merge`` (what the
official ``--no-merge_lora`` path, diffusers' own LoRA loading, does).
"""

from __future__ import annotations

import re

from benchkit.methods.onestep import core
from benchkit.methods.onestep.base import OneStepSR

REPO = "gobunu/HAODiff"
ENCODER_FILE = "img_encoder_weights.pth"
LORA_FILE = "pytorch_lora_weights.safetensors"
ENCODER_MODULE = "swin.swinir_feature_extractor"
ENCODER_CLASS = "SwinIRWithDualPerformerAdapter"
# files of the checkout that must exist (the encoder module imports its SwinIR blocks from the second)
CODE_FILES = ("swin/__init__.py", "swin/swinir_feature_extractor.py", "swin/network_swinir_multi_branchs.py")
ENCODER_SIZE = 512  # the encoder's input side (its Performer hard-codes a 128x128 token grid, downscale 4)
# heads built only with training=True (or add_text) that a training-time save holds; unused at inference
TRAINING_ONLY = ("embedding_changer1.", "embedding_changer2.", "fusion.")
LEGACY_CONV = ("skip", "merge")

FOREIGN = "keys in neither LoRA format (unet.<module>.lora_A/B.weight or unet.<module>.lora.down/up.weight)"
_PEFT_KEY = re.compile(r"^unet\.(?P<mod>.+)\.lora_(?P<part>[AB])\.weight$")
_LEGACY_KEY = re.compile(r"^unet\.(?P<mod>.+)\.lora\.(?P<part>down|up)\.weight$")


def _listing(items, n: int = 6) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def parse_lora_keys(keys) -> tuple[dict, list]:
    """``({(module, format): {"A": key, "B": key}}, keys in neither format)``; format ``peft``
    (``lora_A``/``lora_B``) or ``legacy`` (``lora.down`` = A, ``lora.up`` = B)."""
    pairs, foreign = {}, []
    for k in sorted(keys):
        m = _PEFT_KEY.match(k)
        fmt = "peft"
        if m is None:
            m, fmt = _LEGACY_KEY.match(k), "legacy"
        if m is None:
            foreign.append(k)
            continue
        part = {"down": "A", "up": "B"}.get(m["part"], m["part"])
        pairs.setdefault((m["mod"], fmt), {})[part] = k
    return pairs, foreign


def merge_lora(unet, lora: dict, path, rank: int = 16, alpha: float = 16.0, legacy_conv: str = "skip") -> dict:
    """Merge the LoRA state dict ``lora`` (read from ``path``) into ``unet``'s weights in place.

    Every key must be used: a key in neither format, a half without its pair, a module the UNet lacks, a module
    given in both formats, a rank other than ``rank`` or shapes that do not fit raise one
    :class:`~benchkit.methods.onestep.core.CheckpointError` listing them all (nothing is merged then).
    Returns ``{"format", "merged", "skipped"}`` (``skipped``: legacy non-2-D modules left as the official
    merge leaves them, when ``legacy_conv == "skip"``)."""
    import torch

    if legacy_conv not in LEGACY_CONV:
        raise ValueError(f"legacy_conv must be one of {LEGACY_CONV}")
    if not lora:
        raise core.CheckpointError(path, "holds no LoRA weights")
    bad_type = [k for k, v in lora.items() if not isinstance(v, torch.Tensor)]
    pairs, foreign = parse_lora_keys(k for k in lora if k not in bad_type)
    params = dict(unet.named_parameters())
    half, absent, shapes, ranks = [], [], [], []
    plan = []  # (module, format, A, B, W)
    mods = {}
    for (mod, fmt), slot in sorted(pairs.items()):
        mods.setdefault(mod, []).append(fmt)
        if len(slot) != 2:
            half.extend(slot.values())
            continue
        w = params.get(mod + ".weight")
        if w is None:
            absent.append(f"{mod} ({slot['A']})")
            continue
        a, b = lora[slot["A"]], lora[slot["B"]]
        r = a.shape[0] if a.ndim else -1
        if a.ndim != w.ndim or b.ndim != w.ndim or w.ndim not in (2, 4):
            ok = False
        elif w.ndim == 2:
            ok = tuple(a.shape) == (r, w.shape[1]) and tuple(b.shape) == (w.shape[0], r)
        else:
            ok = tuple(a.shape) == (r, *w.shape[1:]) and tuple(b.shape) == (w.shape[0], r, 1, 1)
        if not ok:
            shapes.append(f"{mod}: A {tuple(a.shape)}, B {tuple(b.shape)} for weight {tuple(w.shape)}")
            continue
        if r != rank:
            ranks.append(f"{mod} ({r})")
            continue
        plan.append((mod, fmt, a, b, w))
    twice = [m for m, fmts in mods.items() if len(fmts) > 1]
    problems = []
    for label, items in (("non-tensor values", bad_type),
                         (FOREIGN, foreign),
                         ("LoRA halves without their pair", half), ("modules the UNet lacks", absent),
                         ("modules given in both key formats", twice), ("shape mismatches", shapes),
                         (f"ranks other than lora_rank={rank}", ranks)):
        if items:
            problems.append(f"{len(items)} {label}: {_listing(items)}")
    if problems:
        raise core.CheckpointError(path, "LoRA weights do not fit the base UNet: " + "; ".join(problems),
                                   "use the unmodified official file with SD-2.1-base (and the options lora_rank/"
                                   "lora_alpha of its training, 16/16 for the release)")
    scale = float(alpha / rank)  # a Python float, as the official ``alpha``
    merged, skipped = 0, []
    with torch.no_grad():
        for mod, fmt, a, b, w in plan:
            if fmt == "legacy" and w.ndim != 2 and legacy_conv == "skip":
                skipped.append(mod)  # the official merge prints a warning and leaves the layer unchanged
                continue
            if a.dtype != b.dtype:
                a, b = a.to(torch.promote_types(a.dtype, b.dtype)), b.to(torch.promote_types(a.dtype, b.dtype))
            delta = torch.matmul(b.reshape(b.shape[0], -1), a.reshape(a.shape[0], -1)).reshape(w.shape)
            w.copy_(w + scale * delta.to(w.device))  # product in the file's dtype, sum in the UNet's, as official
            merged += 1
    fmts = sorted({fmt for _, fmt, *_ in plan})
    return {"format": "+".join(fmts), "merged": merged, "skipped": skipped}


def load_encoder(cls, path):
    """Build ``cls`` (the checkout's ``SwinIRWithDualPerformerAdapter``) from ``path`` as the official
    ``load(..., training=False)`` does, but read with ``weights_only`` and loaded strictly: every parameter of the
    model must be in the file with its shape; extra keys only under the training-only heads
    (``embedding_changer1/2``, ``fusion``). Returns (model in eval mode, number of training-only keys ignored)."""
    import torch

    from benchkit.methods.checkout import CheckoutError

    ckpt = core.load_checkpoint(path)
    core.require_keys(path, ckpt, ["model_state_dict", "swinir_kwargs", "performer_kwargs"],
                      {"model_state_dict": dict, "swinir_kwargs": dict, "performer_kwargs": dict})
    with torch.random.fork_rng(devices=[]):  # the constructor's random init must not move the global RNG
        try:
            enc = cls(swinir_kwargs=ckpt["swinir_kwargs"], performer_kwargs=ckpt["performer_kwargs"],
                      load_backbone=False, training=False)
        except TypeError as e:
            raise CheckoutError(f"haodiff: {cls.__module__}.{cls.__name__} does not take (swinir_kwargs, "
                                f"performer_kwargs, load_backbone, training) like {REPO}@64f0bf8 ({e}) "
                                "(fix: use a checkout of the official repository)") from e
        except (KeyError, ValueError, RuntimeError, AssertionError, IndexError) as e:
            raise core.CheckpointError(path, f"its swinir_kwargs/performer_kwargs do not build the encoder "
                                       f"({type(e).__name__}: {e})") from e
    sd = ckpt["model_state_dict"]
    given = {k: v for k, v in sd.items() if not str(k).startswith(TRAINING_ONLY)}
    core.check_state(path, "model_state_dict", {k: v.shape for k, v in enc.state_dict().items()}, given)
    enc.load_state_dict(given, strict=True)
    enc.requires_grad_(False)
    enc.eval()
    return enc, len(sd) - len(given)


class HAODiff(OneStepSR):
    name = "haodiff"
    task, scales = "restore", (1,)
    description = ("HAODiff one-step human-motion-blur restoration (SD-2.1-base + merged LoRA, dual image prompts, "
                   "CFG 3.5, t=199), wavelet colour fix")
    weight_files = (ENCODER_FILE, LORA_FILE)
    checkpoint = LORA_FILE
    base = "sd21-base"
    base_parts = ("vae", "unet", "scheduler")
    default_color_fix = "wavelet"
    code_license = ("none: gobunu/HAODiff has no licence file (benchkit imports its image encoder from the user's "
                    "checkout, never ships it); base model: CreativeML Open RAIL++-M")

    def __init__(self, **options):
        super().__init__(**options)
        from benchkit.errors import ConfigError

        o = self.options
        if o["legacy_conv_lora"] not in LEGACY_CONV:
            raise ConfigError(f"method {self.name}: legacy_conv_lora must be one of {LEGACY_CONV}")
        if not (isinstance(o["timestep"], int) and 0 <= o["timestep"] <= 999):
            raise ConfigError(f"method {self.name}: timestep must be an integer in [0, 999]")
        if not (isinstance(o["lora_rank"], int) and o["lora_rank"] > 0):
            raise ConfigError(f"method {self.name}: lora_rank must be a positive integer")
        for k in ("cfg_scale", "lora_alpha"):
            if isinstance(o[k], bool) or not isinstance(o[k], (int, float)):
                raise ConfigError(f"method {self.name}: {k} must be a number")
        if o["code_dir"] is not None and not isinstance(o["code_dir"], str):
            raise ConfigError(f"method {self.name}: code_dir must be a path (string)")

    @classmethod
    def default_options(cls) -> dict:
        return {**super().default_options(), "latent_tile": 64, "latent_overlap": 5, "timestep": 199,
                "cfg_scale": 3.5, "lora_rank": 16, "lora_alpha": 16.0, "legacy_conv_lora": "skip",
                "code_dir": None}

    # ----------------------------------------------------------------------------------- the user's checkout
    def checkout(self):
        """The user's clone of gobunu/HAODiff (option ``code_dir`` > ``$BENCHKIT_HAODIFF_CODE`` > ``<weights>/code``)."""
        from benchkit.methods.checkout import Checkout, resolve_code_dir

        root, how = resolve_code_dir("haodiff", self.options["code_dir"], self.weights_dir)
        return Checkout("haodiff", root, CODE_FILES, REPO, how)

    def availability(self):
        ok, why = super().availability()
        if not ok:
            return ok, why
        why = self.checkout().problem()
        return (False, why) if why else (True, "")

    def info(self) -> dict:
        d = super().info()
        co = self.checkout()
        d["commit"] = co.commit()
        # the encoder's source files identify the code when the clone has no .git
        d["code_fingerprint"] = None if co.missing() else co.fingerprint(CODE_FILES)
        return d

    # ------------------------------------------------------------------------------------------------- load
    def _build(self, parts, ckpt, path):
        mod = self.checkout().import_module(ENCODER_MODULE)  # first: a missing checkout fails before the merge
        cls = getattr(mod, ENCODER_CLASS, None)
        if cls is None:
            from benchkit.methods.checkout import CheckoutError

            raise CheckoutError(f"haodiff: {mod.__file__} defines no {ENCODER_CLASS} (fix: use a checkout of {REPO})")
        o = self.options
        self.lora_report = merge_lora(parts.unet, ckpt, path, o["lora_rank"], o["lora_alpha"], o["legacy_conv_lora"])
        if self.lora_report["skipped"]:
            import warnings

            warnings.warn(f"haodiff: {len(self.lora_report['skipped'])} legacy conv LoRA layer(s) of {path} left "
                          "unmerged, as the official merge does (option legacy_conv_lora: merge to apply them)",
                          stacklevel=2)
        parts.img_encoder, self.encoder_ignored_keys = load_encoder(cls, self.weights_dir / ENCODER_FILE)

    def _after_load(self):
        import torch

        self.model.img_encoder.to(self.device, dtype=self.torch_dtype())  # as the official: in the weight dtype
        with torch.no_grad():  # prompts of the right shape, or a load error rather than one per image
            try:
                self.prompt_embeddings(torch.zeros(1, 3, 8, 8, device=self.device, dtype=self.torch_dtype()))
            except (ValueError, RuntimeError) as e:
                raise core.CheckpointError(self.weights_dir / ENCODER_FILE, str(e),
                                           "use the official img_encoder_weights.pth with SD-2.1-base") from e

    # ---------------------------------------------------------------------------------------------- restore
    def upscale(self, lq, scale: int):
        """x1: the input itself (float32; the official reads the 8-bit file, identical for 8-bit inputs)."""
        import numpy as np

        return np.ascontiguousarray(lq, dtype=np.float32)

    def prompt_embeddings(self, lq):
        """(positive, negative) embeddings (1, 77, cross-attention dim) of the LQ in [-1, 1] (compute dtype)."""
        from torch.nn import functional as F

        resized = F.interpolate(lq, size=(ENCODER_SIZE, ENCODER_SIZE), mode="bilinear")
        out = self.model.img_encoder(resized)
        pos, neg = out[0], out[1]
        want = (lq.shape[0], 77, self.model.unet.config.cross_attention_dim)
        for what, e in (("positive", pos), ("negative", neg)):
            if e is None or tuple(e.shape) != want:
                got = None if e is None else tuple(e.shape)
                raise ValueError(f"the image encoder's {what} prompt is {got}, expected {want} "
                                 "(img_encoder_weights.pth and the UNet do not belong together)")
        return pos, neg

    def predict_eps(self, z, t, pos, neg):
        """CFG noise prediction as the official ``predict_noise``: one batched call, negative first."""
        import torch

        unet, cfg = self.model.unet, float(self.options["cfg_scale"])
        z = z.to(self.torch_dtype())
        if cfg > 1:
            out = unet(torch.cat([z, z]), torch.cat([t, t]), torch.cat([neg, pos])).sample
            eps_neg, eps_pos = out.chunk(2)
            return eps_neg + cfg * (eps_pos - eps_neg)
        return unet(z, t, pos).sample

    def restore_tensor(self, up, ctx):
        """The LQ (1,3,H,W) float32 in [0,1] on the device -> output (1,3,H,W) float32 in [0,1]."""
        import torch

        dt = self.torch_dtype()
        gen = ctx["generator"]() if self.options["mode"] == "official" else None
        with torch.no_grad():
            lq = up.to(dt) * 2 - 1  # official: to_tensor(img).to(weight_dtype) * 2 - 1
            pos, neg = self.prompt_embeddings(lq)  # from the unpadded image
            x, (h, w) = core.pad_multiple(lq, self.pad_multiple)
            z = self.encode_latent(x, gen)
            t = torch.full((1,), int(self.options["timestep"]), device=z.device, dtype=torch.long)
            eps = core.tiled_eps(lambda zt: self.predict_eps(zt, t, pos, neg), z, self.options["latent_tile"],
                                 self.options["latent_overlap"])
            x0 = core.x0_from_eps(z, eps, self.alphas_cumprod, t).float()
            vae = self.model.vae
            img = vae.decode(x0.to(dt) / vae.config.scaling_factor).sample
            out = (img.clamp(-1, 1) * 0.5 + 0.5).clamp(0, 1)[:, :, :h, :w].float()
            return core.color_fix(self.options["color_fix"], out, up)

    def _forward(self, x, ctx, gen):  # pragma: no cover - restore_tensor is overridden
        raise NotImplementedError


class HAODiffOfficial(HAODiff):
    """HAODiff with the official sampling (VAE latent sampled, seeded per image by the harness)."""

    name = "haodiff-official"
    weights_name = "haodiff"
    default_mode = "official"
