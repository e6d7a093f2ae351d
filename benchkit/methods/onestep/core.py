"""Shared machinery of the one-step diffusion SR adapters.

- Base models come only from local diffusers-layout folders under the *base-models root*
  (``--base-models`` flag > ``$BENCHKIT_BASE_MODELS`` > ``<weights root>/base-models``), loaded with
  ``local_files_only=True`` (Stability removed the SD-2.x repositories from the Hugging Face hub).
- Checkpoints load strictly (:func:`load_checkpoint`, :func:`check_state`): safetensors or
  ``torch.load(weights_only=True)``; a truncated, foreign or non-tensor pickle is a :class:`CheckpointError`
  naming the file and the offending keys.
- x0 in closed form ``x0 = (z - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` in float64 from the base scheduler's
  ``alphas_cumprod`` (never ``scheduler.step``: diffusers >= PR #9384 raises for t=999 on SD-2.1-base).
- The official latent tiling (OSEDiff / Hero-SR ``forward``): square tiles of ``min(tile, h, w)`` latent px,
  stride ``tile - overlap``, last tile flush with the border, Gaussian tile weights (var 0.01, x-midpoint
  ``(w-1)/2``, y-midpoint ``h/2`` as in the official code), weighted average.
- Colour fixes (``my_utils/wavelet_color_fix.py``): AdaIN (per-channel mean/std, unbiased var + 1e-5) and
  wavelet (5-level dilated 3x3 binomial blur, replicate padding), on float tensors in [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from benchkit.errors import BenchkitError

BASE_ENV = "BENCHKIT_BASE_MODELS"
# base model id -> folder name under the base-models root (a diffusers layout: vae/ unet/ scheduler/ ...)
BASE_FOLDERS = {"sd21-base": "stable-diffusion-2-1-base", "sd-turbo": "sd-turbo"}
BASE_SOURCES = {"sd21-base": "stabilityai/stable-diffusion-2-1-base (no longer on the hub: a local copy)",
                "sd-turbo": "stabilityai/sd-turbo"}
MODES = ("deterministic", "official")


class CheckpointError(BenchkitError):
    """A checkpoint file cannot be used (unreadable, foreign, wrong keys or shapes)."""

    def __init__(self, path, problem: str, fix: str = "use the unmodified official file"):
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem} (fix: {fix})")


def base_models_root(weights_dir=None, cli_value=None) -> Path:
    """The base-models root: ``cli_value`` > ``$BENCHKIT_BASE_MODELS`` > ``<weights root>/base-models``.

    ``weights_dir`` is a method's ``<weights root>/methods/<name>`` folder (what the harness passes)."""
    value = cli_value or os.environ.get(BASE_ENV)
    if value:
        return Path(os.path.expanduser(str(value))).absolute()
    if weights_dir is not None:
        return Path(weights_dir).absolute().parent.parent / "base-models"
    root = os.environ.get("BENCHKIT_WEIGHTS") or "~/.cache/benchkit/weights"  # as benchkit.metrics.weights_root
    return Path(os.path.expanduser(root)).absolute() / "base-models"


def base_model_dir(base: str, weights_dir=None) -> Path:
    return base_models_root(weights_dir) / BASE_FOLDERS[base]


def missing_base_parts(folder: Path, parts) -> list[str]:
    """Sub-folders of a diffusers layout that are absent or lack their config."""
    cfg = {"scheduler": "scheduler_config.json", "tokenizer": None}
    out = []
    for p in parts:
        d = Path(folder) / p
        want = cfg.get(p, "config.json")
        if not d.is_dir() or (want and not (d / want).is_file()):
            out.append(p)
    return out


def folder_fingerprint(folder: Path) -> str:
    """Cheap identity of a base-model folder: every file's relative path and size, config files' bytes."""
    h = hashlib.sha256()
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        h.update(f"{rel}\0{p.stat().st_size}\0".encode())
        if p.suffix in (".json", ".txt") and p.stat().st_size < 4 << 20:
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_base(folder: Path, parts, device, dtype):
    """Load the named parts (``vae``, ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler``) of a local
    diffusers folder onto ``device`` in ``dtype``; every part in eval mode without gradients."""
    from types import SimpleNamespace

    folder = Path(folder)
    missing = missing_base_parts(folder, parts)
    if missing:
        raise CheckpointError(folder, f"base model folder lacks {', '.join(missing)}",
                              "place a diffusers-layout copy of the base model there (see docs/adapters.md)")
    out = SimpleNamespace()
    kw = {"local_files_only": True}
    for p in parts:
        if p == "vae":
            from diffusers import AutoencoderKL

            out.vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **kw)
        elif p == "unet":
            from diffusers import UNet2DConditionModel

            out.unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **kw)
        elif p == "text_encoder":
            from transformers import CLIPTextModel

            out.text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **kw)
        elif p == "tokenizer":
            from transformers import CLIPTokenizer

            out.tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **kw)
        elif p == "scheduler":
            from diffusers import DDPMScheduler

            out.scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", **kw)
        else:
            raise ValueError(p)
    for p in ("vae", "unet", "text_encoder"):
        m = getattr(out, p, None)
        if m is not None:
            m.requires_grad_(False)
            m.eval()
    return out


# ----------------------------------------------------------------------------------------------- checkpoints
def load_checkpoint(path) -> dict:
    """A checkpoint as a dict, read without executing code: ``.safetensors`` or ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found", f"place the official file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:
            raise CheckpointError(path, f"not a readable safetensors file ({type(e).__name__}: {e})") from e
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(path, "the pickle holds objects other than tensors/containers, refused without "
                              f"unpickling ({first[:200]})", "use the official checkpoint; benchkit never "
                              "unpickles arbitrary objects") from e
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError) as e:
        raise CheckpointError(path, f"truncated or not a torch checkpoint ({type(e).__name__}: "
                              f"{str(e).strip()[:200]})", "download the file again") from e
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, expected a dict of the official keys")
    return obj


def require_keys(path, ckpt: dict, keys, kinds: dict | None = None) -> None:
    """The top-level ``keys`` must all be present (a foreign file names what is missing)."""
    missing = [k for k in keys if k not in ckpt]
    if missing:
        have = ", ".join(sorted(map(str, ckpt))[:8])
        raise CheckpointError(path, f"missing top-level key(s) {missing} (file has: {have}); not this method's "
                              "checkpoint?")
    for k, t in (kinds or {}).items():
        if not isinstance(ckpt[k], t):
            raise CheckpointError(path, f"key {k!r} is a {type(ckpt[k]).__name__}, expected {t}")


def check_state(path, what: str, expected: dict, given) -> None:
    """``given`` (name -> tensor) must cover ``expected`` (name -> shape) exactly with the same shapes."""
    import torch

    if not isinstance(given, dict):
        raise CheckpointError(path, f"{what} is a {type(given).__name__}, expected a dict of tensors")
    bad_type = [k for k, v in given.items() if not isinstance(v, torch.Tensor)]
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    shapes = [f"{k} {tuple(given[k].shape)} != {tuple(expected[k])}" for k in sorted(set(expected) & set(given))
              if k not in bad_type and tuple(given[k].shape) != tuple(expected[k])]
    problems = []
    for label, items in (("non-tensor values", bad_type), ("missing keys", missing), ("unexpected keys", extra),
                         ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:6])}{more}")
    if problems:
        raise CheckpointError(path, f"{what} does not match the model: " + "; ".join(problems),
                              "use the unmodified official checkpoint with the matching base model")


def lora_config(rank: int, targets, **kw):
    """peft ``LoraConfig`` as the official scripts build it; ``lora_alpha=8`` passed explicitly (the peft
    default those checkpoints were trained with: scaling 8/r). ``targets``: module names, or one regex string
    (peft full-matches it against each module path, e.g. S3Diff's VAE targets)."""
    from peft import LoraConfig

    targets = targets if isinstance(targets, str) else list(targets)
    return LoraConfig(r=int(rank), lora_alpha=8, init_lora_weights="gaussian", target_modules=targets, **kw)


# ------------------------------------------------------------------------------------------------- the math
def x0_from_eps(z, eps, alphas_cumprod, t):
    """``(z - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` in float64; ``t`` int or LongTensor of shape (B,)."""
    import torch

    a = alphas_cumprod.to(device=z.device, dtype=torch.float64)[torch.as_tensor(t, device=z.device).long()]
    a = a.reshape(-1, 1, 1, 1)
    return ((z.double() - (1 - a).sqrt() * eps.double()) / a.sqrt())


def gaussian_weights(tile_w: int, tile_h: int):
    """Official Gaussian tile weights (var 0.01; x-midpoint (w-1)/2, y-midpoint h/2), float64 (h, w)."""
    import numpy as np

    var = 0.01
    x = np.arange(tile_w, dtype=np.float64)
    y = np.arange(tile_h, dtype=np.float64)
    mx, my = (tile_w - 1) / 2, tile_h / 2
    xp = np.exp(-(x - mx) ** 2 / (tile_w * tile_w) / (2 * var)) / np.sqrt(2 * np.pi * var)
    yp = np.exp(-(y - my) ** 2 / (tile_h * tile_h) / (2 * var)) / np.sqrt(2 * np.pi * var)
    return np.outer(yp, xp)


def tile_offsets(size: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis, as the official loop computes them (last tile flush with the border)."""
    n, cur = 0, 0
    while cur < size:
        cur = max(n * tile - overlap * n, 0) + tile
        n += 1
    offs = [max(i * tile - overlap * i, 0) for i in range(n)]
    offs[-1] = size - tile
    return offs


def tiled_eps(predict, z, tile: int, overlap: int):
    """``predict(z)`` directly when ``h*w <= tile^2``, else over official Gaussian-weighted square tiles."""
    import torch

    _, _, h, w = z.shape
    if h * w <= tile * tile:
        return predict(z)
    ts = min(tile, h, w)
    wt = torch.as_tensor(gaussian_weights(ts, ts), device=z.device, dtype=torch.float32)[None, None]
    acc = torch.zeros(z.shape, device=z.device, dtype=torch.float32)
    cnt = torch.zeros(z.shape, device=z.device, dtype=torch.float32)
    for x in tile_offsets(w, ts, overlap):
        for y in tile_offsets(h, ts, overlap):
            pred = predict(z[:, :, y:y + ts, x:x + ts]).float()
            acc[:, :, y:y + ts, x:x + ts] += pred * wt
            cnt[:, :, y:y + ts, x:x + ts] += wt
    return (acc / cnt).to(z.dtype)


def adain_fix(target, source):
    """AdaIN colour fix: ``target``'s per-channel mean/std replaced by ``source``'s (B,3,H,W float32)."""
    def stats(f):
        b, c = f.shape[:2]
        flat = f.reshape(b, c, -1)
        return flat.mean(2).reshape(b, c, 1, 1), (flat.var(2) + 1e-5).sqrt().reshape(b, c, 1, 1)

    sm, ss = stats(source)
    tm, tsd = stats(target)
    return ((target - tm) / tsd * ss + sm).clamp(0, 1)


def _wavelet_decompose(img, levels: int = 5):
    import torch
    import torch.nn.functional as F

    k = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]],
                     dtype=img.dtype, device=img.device)[None, None].repeat(img.shape[1], 1, 1, 1)
    high = torch.zeros_like(img)
    low = img
    for i in range(levels):
        r = 2 ** i
        low = F.conv2d(F.pad(img, (r, r, r, r), mode="replicate"), k, groups=img.shape[1], dilation=r)
        high = high + (img - low)
        img = low
    return high, low


def wavelet_fix(target, source):
    """Wavelet colour fix: ``target``'s high frequencies + ``source``'s low frequencies (5 levels)."""
    th, _ = _wavelet_decompose(target)
    _, sl = _wavelet_decompose(source)
    return (th + sl).clamp(0, 1)


COLOR_FIXES = ("adain", "wavelet", "nofix")


def color_fix(kind: str, target, source):
    if kind == "adain":
        return adain_fix(target, source)
    if kind == "wavelet":
        return wavelet_fix(target, source)
    return target.clamp(0, 1)


def pil_upscale(img, scale: int):
    """The official pre-upscaling: uint8 image -> PIL ``resize`` (default BICUBIC) by ``scale``; float32 out.

    benchkit inputs are float32 read from 8-bit files, so rounding recovers the official uint8 exactly."""
    import numpy as np
    from PIL import Image

    u8 = np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)
    h, w = u8.shape[:2]
    up = Image.fromarray(u8).resize((w * scale, h * scale), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 255.0


def pad_multiple(x, multiple: int, mode: str = "reflect"):
    """Pad (B,C,H,W) on the bottom/right to a multiple of ``multiple``; returns (padded, (h, w))."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def encode_prompt(tokenizer, text_encoder, prompt: str):
    """CLIP text embeddings of one prompt (max length, padded), as the official scripts compute them."""
    import torch

    ids = tokenizer(prompt, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids.to(text_encoder.device))[0]


def configure_vae_tiling(vae, h: int, w: int, enc_tile: int, dec_tile: int) -> bool:
    """Official VAEHook thresholds: tiling only when max(H, W) > tile + 2 pad (encoder 1024+64 px, decoder
    224+22 latent px). Above them benchkit uses diffusers' own VAE tiling (not VAEHook; see docs/adapters.md)."""
    on = max(h, w) > enc_tile + 64 or max(h, w) // 8 > dec_tile + 22
    if on:
        vae.enable_tiling()
        vae.tile_sample_min_size = int(enc_tile)
        vae.tile_latent_min_size = int(enc_tile) // 8
    else:
        vae.disable_tiling()
    return on
