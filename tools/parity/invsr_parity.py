"""Parity of benchkit's InvSR adapter with the official InvSR inference path (developer-run, not CI).

Runs, on the same tiny random weights (``benchkit.methods.onestep.tiny_invsr``) and the same 8-bit inputs, on
CPU in float32:

- benchkit: ``invsr`` (deterministic) and ``invsr-official`` (seeded);
- official: ``sampler_invsr.InvSamplerSR.sample_func`` of a local InvSR checkout (zsyOAOA/InvSR, S-Lab licence:
  imported from the user's checkout, never copied) with its vendored diffusers 0.32 ``src/diffusers``
  (``StableDiffusionInvEnhancePipeline``, ``NoisePredictor`` loaded by ``util_net.reload_model``), in a
  subprocess (the vendored diffusers shadows the installed one).

Official mode: the official code samples from the global torch RNG; the worker calls ``torch.manual_seed(s)``
and benchkit gets a CPU generator seeded with ``s`` - the same stream when both draw the same tensors in the
same order (predictor noise, VAE latent, Euler-step noise, per batch of patches).
Deterministic mode: the worker replaces ``DiagonalGaussianDistribution.sample`` by the mean (predictor noise
and VAE latent), which is what ``invsr`` computes.

Shims in the worker, and why:
- ``transformers.utils.FLAX_WEIGHTS_NAME`` (removed in transformers 5; the vendored diffusers imports it);
- stub modules ``loguru``, ``omegaconf``, ``datapipe.datasets`` (imported at the top of ``sampler_invsr.py``,
  unused by ``sample_func``);
- ``sampler_invsr.torch`` -> a proxy whose ``float16`` is ``float32``: ``sample_func`` casts the input to fp16
  for the CUDA fp16 pipeline; on CPU in fp32 that cast would feed half tensors into fp32 layers;
- ``BaseSampler.build_model`` (hard-codes ``.cuda()`` and hub downloads) is replaced by the same steps on CPU:
  pipeline from the tiny folder's parts, tiled VAE thresholds 1024/128, predictor from the yaml-style config,
  ``torch.load`` + ``state_dict`` unwrap + ``util_net.reload_model``.

Usage::

    git --git-dir=<mirror> archive HEAD src utils configs basicsr datapipe sampler_invsr.py | tar -x -C /tmp/invsr
    PYTHONPATH=. python tools/parity/invsr_parity.py --official /tmp/invsr [--keys]

``--keys`` also prints the official NoisePredictor key set for the released config (configs/sample-sd-turbo.yaml)
as JSON, the source of ``official_predictor`` in ``tests/fixtures/invsr_golden.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SEED = 1234
SIZES = {"single": (40, 52), "chopped": (150, 140)}


def inputs():
    import numpy as np

    rng = np.random.default_rng(7)
    out = {}
    for name, (h, w) in SIZES.items():
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        base = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1) * 0.35 + 0.5
        img = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
        out[name] = (np.rint(img * 255) / 255).astype(np.float32)  # values of an 8-bit file
    return out


# ------------------------------------------------------------------------------------------- official worker
class Cfg(dict):
    """An attribute dict with ``.get`` (what sample_func reads from its OmegaConf config)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e


def _shim_imports(official: Path):
    import types

    sys.path[:0] = [str(official / "src"), str(official)]
    import transformers.utils as tu

    if not hasattr(tu, "FLAX_WEIGHTS_NAME"):
        tu.FLAX_WEIGHTS_NAME = "flax_model.msgpack"
    import importlib.util

    for name, attrs in (("loguru", {"logger": None}), ("omegaconf", {"OmegaConf": None}),
                        ("datapipe.datasets", {"create_dataset": None})):
        if name != "datapipe.datasets" and importlib.util.find_spec(name) is not None:
            continue  # installed: use it; datapipe.datasets is always stubbed (it pulls in basicsr's data code)
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod


class _TorchFp32:
    """``torch`` with ``float16`` mapped to ``float32`` (sample_func's hard-coded fp16 casts, on CPU)."""

    def __getattr__(self, k):
        import torch

        return torch.float32 if k == "float16" else getattr(torch, k)


def worker(official: Path, weights: Path, in_npz: Path, out_npz: Path, mode: str):
    _shim_imports(official)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import diffusers
    import sampler_invsr
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from diffusers.models.autoencoders import NoisePredictor
    from diffusers.models.autoencoders import vae as vae_mod
    from transformers import CLIPTextModel, CLIPTokenizer
    from utils import util_net

    assert Path(diffusers.__file__).is_relative_to(official), diffusers.__file__
    base = weights / "base-models" / "sd-turbo"
    kw = {"local_files_only": True}
    pipe = sampler_invsr.StableDiffusionInvEnhancePipeline(
        vae=AutoencoderKL.from_pretrained(base, subfolder="vae", **kw),
        text_encoder=CLIPTextModel.from_pretrained(base, subfolder="text_encoder", **kw),
        tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", **kw),
        unet=UNet2DConditionModel.from_pretrained(base, subfolder="unet", **kw),
        scheduler=EulerDiscreteScheduler.from_pretrained(base, subfolder="scheduler", **kw),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    pipe.vae.tile_latent_min_size = 128
    pipe.vae.tile_sample_min_size = 1024
    from benchkit.methods.onestep.tiny_invsr import TINY_CONFIG

    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in TINY_CONFIG.items()}
    cfg.update(up_block_types=["AttnUpBlock2D"] * 2, act_fn="silu", sample_size=128,
               resnet_time_scale_shift="default", freq_shift=0, flip_sin_to_cos=True, double_z=True)
    net = NoisePredictor(**cfg)
    state = torch.load(weights / "methods" / "invsr" / "noise_predictor_sd_turbo_v5.pth", map_location="cpu")
    if "state_dict" in state:
        state = state["state_dict"]
    util_net.reload_model(net, state)
    net.eval()
    pipe.start_noise_predictor = net
    if mode == "deterministic":
        vae_mod.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mean
    sampler_invsr.torch = _TorchFp32()
    s = object.__new__(sampler_invsr.InvSamplerSR)
    s.sd_pipe = pipe
    s.configs = Cfg(basesr=Cfg(sf=4, chopping=Cfg(pch_size=128, weight_type="Gaussian", extra_bs=_bs(mode))),
                    cfg_scale=1.0, timesteps=[200], color_fix="")
    data = dict(np.load(in_npz))
    out = {}
    for name, img in data.items():
        torch.manual_seed(SEED)
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        out[name] = s.sample_func(x)[0]
    np.savez(out_npz, **out)


def official_keys(official: Path):
    _shim_imports(official)
    import torch
    from diffusers.models.autoencoders import NoisePredictor

    cfg = {"in_channels": 3, "down_block_types": ["AttnDownBlock2D"] * 2, "up_block_types": ["AttnUpBlock2D"] * 2,
           "block_out_channels": [256, 512], "layers_per_block": [3, 3], "act_fn": "silu", "latent_channels": 4,
           "norm_num_groups": 32, "sample_size": 128, "mid_block_add_attention": True,
           "resnet_time_scale_shift": "default", "temb_channels": 512, "attention_head_dim": 64, "freq_shift": 0,
           "flip_sin_to_cos": True, "double_z": True}
    with torch.device("meta"):
        net = NoisePredictor(**cfg)
    sd = net.state_dict()
    print(json.dumps({"source": "zsyOAOA/InvSR@609788c src/diffusers/models/autoencoders NoisePredictor with "
                                "configs/sample-sd-turbo.yaml model_start.params (meta device)",
                      "params": sum(v.numel() for v in sd.values()),
                      "keys": [f"{k} {list(v.shape)}" for k, v in sd.items()]}, indent=1))


# ------------------------------------------------------------------------------------------------ benchkit
def _env():
    return {**os.environ, "PYTHONPATH": str(Path.cwd())}


def _bs(mode: str) -> int:
    """Patches per pipeline call: the official default 8, or 3 (``official-bs3``: uneven batches 3 + 1, so
    the second batch's draws follow the first batch's Euler-step draw)."""
    return 3 if mode.endswith("-bs3") else 8


def run_benchkit(weights: Path, data: dict, mode: str) -> dict:
    import torch

    from benchkit.registry import resolve

    torch.set_num_threads(1)
    name = "invsr" if mode == "deterministic" else "invsr-official"
    m = resolve("method", name)(chopping_bs=_bs(mode))
    m.setup(weights_dir=weights / "methods" / name)
    m.load("cpu", "float32")
    out = {}
    for k, img in data.items():
        ctx = {"key": k, "seed": SEED, "generator": lambda: torch.Generator("cpu").manual_seed(SEED)}
        out[k] = m.restore([img], [ctx], 4)[0]
    m.unload()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, default=Path(os.environ.get("INVSR_OFFICIAL", "/tmp/invsr-official")),
                    help="local checkout of zsyOAOA/InvSR (needs src/, utils/, sampler_invsr.py)")
    ap.add_argument("--keys", action="store_true", help="print the official key set of the released config")
    ap.add_argument("--keys-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=4, metavar=("WEIGHTS", "IN", "OUT", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.official, Path(a.worker[0]), Path(a.worker[1]), Path(a.worker[2]), a.worker[3])
        return 0
    if a.keys_worker:
        official_keys(a.official)
        return 0
    if a.keys:
        r = subprocess.run([sys.executable, __file__, "--official", str(a.official), "--keys-worker"],
                           check=False, capture_output=True, text=True, env=_env())
        sys.stdout.write(r.stdout)
        if r.returncode:
            sys.stderr.write(r.stderr)
        return r.returncode
    if not (a.official / "sampler_invsr.py").is_file() or not (a.official / "src" / "diffusers").is_dir():
        print(f"no InvSR checkout at {a.official} (needs sampler_invsr.py and src/diffusers/)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="invsr-parity-"))
    try:
        return _compare(a.official, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compare(official: Path, tmp: Path) -> int:
    import numpy as np

    from benchkit.methods.onestep.tiny_invsr import write_tiny_weights

    write_tiny_weights(tmp / "w")
    data = inputs()
    np.savez(tmp / "in.npz", **data)
    worst = 0.0
    for mode in ("deterministic", "official", "official-bs3"):
        r = subprocess.run([sys.executable, __file__, "--official", str(official), "--worker", str(tmp / "w"),
                            str(tmp / "in.npz"), str(tmp / f"off_{mode}.npz"), mode],
                           check=False, capture_output=True, text=True, env=_env())
        if r.returncode:
            print(r.stdout + r.stderr, file=sys.stderr)
            return r.returncode
        off = dict(np.load(tmp / f"off_{mode}.npz"))
        ours = run_benchkit(tmp / "w", data, mode)
        for k in data:
            o, b = off[k], ours[k]
            assert o.shape == b.shape, (k, o.shape, b.shape)
            d = float(np.abs(o.astype(np.float64) - b).max())
            worst = max(worst, d)
            print(f"{mode:13s} {k:8s} LR {data[k].shape[0]}x{data[k].shape[1]} -> {b.shape[0]}x{b.shape[1]}: "
                  f"max |official - benchkit| = {d:.3g} (mean {float(np.abs(o - b).mean()):.3g})")
    print(f"worst max abs difference: {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
