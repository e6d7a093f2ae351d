"""Developer script (not CI): benchkit's SinSR adapter against the official inference path, on CPU.

    git --git-dir=<SinSR mirror> archive HEAD -- . ':!traindata' ':!testdata' | tar -x -C /tmp/sinsr-official
    /tmp/sinsr-venv/bin/python tools/parity/sinsr_parity.py --official /tmp/sinsr-official

Needs a checkout of wyf0912/SinSR and, beyond benchkit's environment, ``omegaconf`` and ``loguru`` (imported by
``sampler.py``/``inference.py``; install them in a separate venv). Both sides run the official classes
(``UNetModelSwin``, the ResShift diffusion, ``VQModelTorch``) at a tiny config (REFERENCE-wave2 1c: UNet
``model_channels`` 32, Swin embed 32, VQ ``ch`` 32; everything else as ``configs/SinSR.yaml``) with random
weights saved as flat state dicts; the official side is ``sampler.Sampler`` + ``Sampler.inference(one_step=True)``
with the config edits of ``inference.py get_configs`` (ckpt paths, ``timestep_respacing`` = 15, ``sf`` = 4).

CPU shims for the official side (it hard-codes CUDA): ``torch.cuda.device_count`` -> 1, ``Module.cuda`` /
``Tensor.cuda`` -> no-ops, ``torch.load`` -> ``map_location='cpu'``; ``datapipe.datasets`` (only used for batch
folders, bs > 1) is replaced by an empty stub because it imports ``scipy.interpolate.interp2d``, which SciPy
>= 1.14 removed. The official global seed is set right before sampling (``Sampler.setup_seed``), benchkit's
generator gets the same seed: the noise streams then coincide. Prints JSON with the max abs differences.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import types
from pathlib import Path


@contextlib.contextmanager
def cpu_shims():
    import torch

    saved = (torch.cuda.device_count, torch.nn.Module.cuda, torch.Tensor.cuda, torch.load)
    load = torch.load
    torch.cuda.device_count = lambda: 1
    torch.nn.Module.cuda = lambda self, device=None: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.load = lambda f, map_location=None, **kw: load(f, map_location="cpu", **kw)
    try:
        yield
    finally:
        torch.cuda.device_count, torch.nn.Module.cuda, torch.Tensor.cuda, torch.load = saved


def tiny_config(official: Path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(official / "configs" / "SinSR.yaml")
    cfg.model.params.model_channels = 32
    cfg.model.params.swin_embed_dim = 32  # num_head_channels 32 -> one head
    cfg.autoencoder.params.ddconfig.ch = 32
    return cfg


def random_weights(cfg, out: Path, seed: int = 0):
    """Official classes at ``cfg``, every parameter redrawn (buffers kept), saved as flat state dicts."""
    import torch
    from utils import util_common  # the checkout's

    from benchkit.methods.tiny_sinsr import random_entry

    g = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    for section, name in (("model", "SinSR_v1.pth"), ("autoencoder", "autoencoder_vq_f4.pth")):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = util_common.instantiate_from_config(cfg[section])
        params = dict(m.named_parameters())
        sd = {}
        for k, v in m.state_dict().items():
            if k in params:  # parameters random (benchkit's tiny-model rule), buffers as built
                v = random_entry(k, v, g).to(v.dtype)
            sd[k] = v.clone().contiguous()
        torch.save(sd, out / name)


def official_run(cfg, weights: Path, png: Path, work: Path, chop: int, stride: int, seed: int, fp16: bool):
    import copy

    from sampler import Sampler

    c = copy.deepcopy(cfg)
    c.model.ckpt_path = str(weights / "SinSR_v1.pth")  # inference.py get_configs
    c.diffusion.params.timestep_respacing = 15
    c.diffusion.params.sf = 4
    c.autoencoder.ckpt_path = str(weights / "autoencoder_vq_f4.pth")
    if not fp16:  # the config runs the VQ model in fp16 whatever Sampler's use_fp16: all-fp32 reference
        c.autoencoder.use_fp16 = False
    with cpu_shims():
        s = Sampler(c, chop_size=chop, chop_stride=stride, chop_bs=1, use_fp16=fp16, seed=seed)
        s.setup_seed(seed)  # reseed after the model construction consumed the global RNG
        res = s.inference(png, work / f"off_{chop}_{int(fp16)}", bs=1, noise_repeat=False, one_step=True,
                          return_tensor=True)
    return res[png.stem][0].permute(1, 2, 0).float().cpu().numpy()


def benchkit_run(official: Path, cfg_path: Path, weights: Path, lq, chop: int, stride: int, seed: int, fp16: bool):
    import torch

    from benchkit.methods.sinsr import SinSR

    m = SinSR(code_dir=str(official), config=str(cfg_path), chop_size=chop, chop_stride=stride)
    m.setup(weights_dir=weights)
    ok, why = m.availability()
    assert ok, why
    m.load("cpu", "float16" if fp16 else "float32")
    ctx = {"key": "x", "seed": seed, "generator": lambda: torch.Generator().manual_seed(seed)}
    t0 = time.perf_counter()
    out = m.restore([lq], [ctx], 4)[0]
    return out, time.perf_counter() - t0


def splitter_parity(seed: int = 0) -> float:
    """benchkit's chopped() against the official ImageSpliterTh with a patch-dependent function."""
    import torch
    from torch.nn import functional as F
    from utils.util_image import ImageSpliterTh

    from benchkit.methods.sinsr import chopped

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, 150, 97, generator=g)

    def fn(p):  # depends on the whole patch: overlap averaging matters
        return F.interpolate(p, scale_factor=4, mode="nearest") * p.mean() + p.std()

    sp = ImageSpliterTh(x, 64, stride=40, sf=4, extra_bs=1)
    for pch, idx in sp:
        sp.update(fn(pch), idx)
    return float((sp.gather() - chopped(x, 64, 40, 4, fn)).abs().max())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="checkout of wyf0912/SinSR (e.g. a git archive in /tmp)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args()
    import numpy as np
    import torch
    import yaml

    torch.set_num_threads(2)
    official = Path(a.official).resolve()
    sys.path.insert(0, str(official))
    sys.modules["datapipe.datasets"] = types.SimpleNamespace(create_dataset=None)  # see the module docstring
    work = Path(a.work or tempfile.mkdtemp(prefix="sinsr_parity_"))
    work.mkdir(parents=True, exist_ok=True)
    from omegaconf import OmegaConf

    from benchkit.images import encode_png, read_image
    from benchkit.methods.sinsr import read_config

    res = {}
    # benchkit reads the official YAML with yaml.safe_load: the same values as OmegaConf
    off_cfg = OmegaConf.to_container(OmegaConf.load(official / "configs" / "SinSR.yaml"))
    mine = read_config(official / "configs" / "SinSR.yaml")
    res["config_sections_equal"] = all(off_cfg[s] == mine[s] for s in ("model", "diffusion", "autoencoder"))

    cfg = tiny_config(official)
    cfg_path = work / "SinSR-tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(OmegaConf.to_container(cfg), sort_keys=False))
    weights = work / "weights" / "methods" / "sinsr"
    random_weights(cfg, weights)
    res["unet_params"] = sum(v.numel() for v in torch.load(weights / "SinSR_v1.pth", weights_only=True).values())

    from skimage import data
    import cv2

    lq_u8 = cv2.resize(data.astronaut(), (72, 80), interpolation=cv2.INTER_AREA)  # 80x72: padded to 128x128
    png = work / "lq.png"
    png.write_bytes(encode_png(lq_u8.astype(np.float32) / 255.0))
    lq = read_image(png)
    assert np.array_equal(np.rint(lq * 255).astype(np.uint8), lq_u8)

    for label, chop, stride, fp16 in (("single_fp32", 512, 448, False), ("chop64_fp32", 64, 48, False),
                                      ("single_fp16", 512, 448, True), ("chop64_fp16", 64, 48, True)):
        off = official_run(cfg, weights, png, work, chop, stride, a.seed, fp16)
        mine, secs = benchkit_run(official, cfg_path, weights, lq, chop, stride, a.seed, fp16)
        assert off.shape == mine.shape == (320, 288, 3), (off.shape, mine.shape)
        res[f"{label}_maxabs"] = float(np.abs(off - mine).max())
        res[f"{label}_png_equal"] = encode_png(np.clip(off, 0, 1)) == encode_png(mine)
        res[f"{label}_benchkit_s"] = round(secs, 2)
        if label == "single_fp32":
            other, _ = benchkit_run(official, cfg_path, weights, lq, chop, stride, a.seed + 1, fp16)
            res["other_seed_maxabs"] = float(np.abs(other - mine).max())  # the noise matters
            ref32 = mine
        if label == "single_fp16":
            res["fp16_vs_fp32_maxabs"] = float(np.abs(mine - ref32).max())
    res["splitter_maxabs"] = splitter_parity()
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
