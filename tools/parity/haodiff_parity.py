"""Developer script (not CI): benchkit's HAODiff against the official inference code, end to end on CPU.

    git --git-dir=<mirror of gobunu/HAODiff> archive HEAD | tar -x -C /tmp/HAODiff
    pip install --target /tmp/hao_pkgs --no-deps performer-pytorch==1.1.4 local-attention==1.4.4 \\
        axial-positional-embedding==0.2.1        # a separate folder: the project's venv is not modified
    PYTHONPATH=$PWD:/tmp/hao_pkgs python tools/parity/haodiff_parity.py --official /tmp/HAODiff

With tiny random weights in the official formats (a tiny SD-2.1-like base from ``benchkit.methods.onestep.tiny``;
LoRA files r = alpha = 16 in the ``peft``, ``legacy`` and ``mixed`` key formats; an ``img_encoder_weights.pth``
written by the official ``SwinIRWithDualPerformerAdapter.save`` from the REAL official class at a tiny config:
SwinIR embed 12, depths [1, 1], window 8, 3 branches, Performer dim_head 8, depth 1, embed_dim 32 = the tiny
UNet's cross-attention dim), it runs

1. the official ``merge_unet`` against ``benchkit...haodiff.merge_lora`` (max |dW| over the UNet state dict);
2. the official ``OSDFaceTest`` (``--merge_lora``, fp32, t=199, CFG 3.5, tiles 64/5) and ``process_image``
   (wavelet fix on 8-bit PIL images) against benchkit's ``haodiff-official`` (``code_dir`` = the checkout)
   on the official test image ``test_set/LQ1.png`` (512x512: one UNet call) and LQ1|LQ2 cropped to 512x768
   (latent 64x96: tiled), the VAE sample drawn from the same seed (official: the global RNG after
   ``torch.manual_seed``; benchkit: a generator with that seed);

and prints the maximum absolute differences (images in [0, 1]), with a control (benchkit at CFG 3.0) that shows
the comparison is sensitive.

Shims (the official code is not modified): ``OSDFaceTest`` hard-codes ``torch.device(f"cuda:{gpu_id}")``; the
script gives ``run_inference`` a ``torch`` whose ``device`` returns the CPU (every other attribute is torch's own).
Nothing else is patched; the official ``main`` (which refuses to run without CUDA and spawns workers) is not used.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

SWINIR_KWARGS = {"img_size": 512, "patch_size": 1, "in_chans": 3, "embed_dim": 12, "depths": [1, 1],
                 "num_heads": [2, 2], "window_size": 8, "mlp_ratio": 2.0, "upscale": 4, "downsample": True,
                 "branch_num": 3, "skip_branch": [], "resi_connection": "1conv", "img_range": 1.0}
PERFORMER_KWARGS = {"dim_head": 8, "embed_dim": 32, "num_layers": 1, "num_heads_performer": 2,
                    "num_heads_pool": 2, "out_tokens": 77}


def _cpu_torch():
    import torch

    shim = types.ModuleType("torch")
    shim.__dict__.update({k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    shim.device = lambda *a, **k: torch.device("cpu")
    return shim


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="an extracted gobunu/HAODiff checkout")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=114)
    a = ap.parse_args()
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    from benchkit.methods.onestep.haodiff import HAODiffOfficial, merge_lora
    from benchkit.methods.onestep.tiny import write_tiny_base
    from benchkit.methods.onestep.tiny_haodiff import write_lora

    torch.set_num_threads(1)
    official = Path(a.official).resolve()
    work = Path(a.work or tempfile.mkdtemp(prefix="haodiff_parity_"))
    base = work / "w" / "base-models" / "stable-diffusion-2-1-base"
    if not (base / "unet" / "config.json").is_file():
        write_tiny_base(base, "sd21-base")
    wdir = work / "w" / "methods" / "haodiff"

    sys.path.insert(0, str(official))
    import run_inference as ri  # the official module, from the checkout
    from swin.swinir_feature_extractor import SwinIRWithDualPerformerAdapter as Official

    ri.torch = _cpu_torch()
    res = {}

    # 1. LoRA merge, every key format
    for fmt in ("peft", "legacy", "mixed"):
        d = work / f"lora_{fmt}"
        f = write_lora(base, d, fmt)
        args = argparse.Namespace(pretrained_model_name_or_path=str(base), ckpt_path=str(d), lora_rank=16,
                                  lora_alpha=16.0)
        off = ri.merge_unet(args).state_dict()
        from diffusers import UNet2DConditionModel

        mine = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
        rep = merge_lora(mine, load_file(str(f)), f)
        res[f"merge {fmt} (benchkit merged {rep['merged']}, skipped {len(rep['skipped'])})"] = max(
            (off[k].double() - v.double()).abs().max().item() for k, v in mine.state_dict().items())

    # 2. the whole pipeline, official mode (same seed), peft-format LoRA
    torch.manual_seed(0)
    enc = Official(SWINIR_KWARGS, PERFORMER_KWARGS, load_backbone=False, training=False)
    wdir.mkdir(parents=True, exist_ok=True)
    enc.save(str(wdir))  # the official save recipe
    write_lora(base, wdir, "peft")
    args = argparse.Namespace(
        pretrained_model_name_or_path=str(base), ckpt_path=str(wdir), timesteps=199, cfg_scale=3.5,
        mixed_precision="fp32", merge_lora=True, lora_rank=16, lora_alpha=16.0, vae_decoder_tiled_size=224,
        vae_encoder_tiled_size=1024, latent_tiled_size=64, latent_tiled_overlap=5, align_method="wavelet")
    model = ri.OSDFaceTest(args, 0, ri.merge_unet(args))
    m_raw = HAODiffOfficial(code_dir=str(official), color_fix="nofix")
    m_fix = HAODiffOfficial(code_dir=str(official))
    m_ctl = HAODiffOfficial(code_dir=str(official), color_fix="nofix", cfg_scale=3.0)  # control: must differ
    for m in (m_raw, m_fix, m_ctl):
        m.setup(weights_dir=wdir)
        ok, why = m.availability()
        assert ok, why
        m.load("cpu", "float32")
    lq1 = np.asarray(Image.open(official / "test_set" / "LQ1.png").convert("RGB"))
    lq2 = np.asarray(Image.open(official / "test_set" / "LQ2.png").convert("RGB"))
    images = {"LQ1 512x512": lq1, "LQ1|LQ2 512x768 (tiled)": np.concatenate([lq1, lq2[:, :256]], axis=1)}
    import torchvision.transforms.functional as tvf

    for label, img in images.items():
        p = work / f"in_{len(img[0])}.png"
        Image.fromarray(img).save(p)
        lq = tvf.to_tensor(Image.open(p).convert("RGB")).unsqueeze(0) * 2 - 1
        torch.manual_seed(a.seed)
        raw_off = model(lq)[0].permute(1, 2, 0).numpy()
        outdir = work / "official_out"
        outdir.mkdir(exist_ok=True)
        (outdir / p.name).unlink(missing_ok=True)
        torch.manual_seed(a.seed)
        ri.process_image(args, str(p), model, torch.float32, torch.device("cpu"), str(outdir))
        fixed_off = np.asarray(Image.open(outdir / p.name), dtype=np.float32) / 255.0
        x = img.astype(np.float32) / 255.0
        ctx = {"key": "k", "seed": a.seed, "generator": lambda: torch.Generator().manual_seed(a.seed)}
        raw_mine = m_raw.restore([x], [ctx], 1)[0]
        fixed_mine = m_fix.restore([x], [ctx], 1)[0]
        res[f"{label}: model output before the colour fix"] = float(np.abs(raw_off - raw_mine).max())
        res[f"{label}: control, benchkit with CFG 3.0 instead of 3.5 (must not be ~0)"] = float(
            np.abs(raw_off - m_ctl.restore([x], [ctx], 1)[0]).max())
        res[f"{label}: final image (official: 8-bit PIL wavelet fix; benchkit: float)"] = float(
            np.abs(fixed_off - fixed_mine).max())
        q = np.round(np.clip(fixed_mine, 0, 1) * 255) / 255
        res[f"{label}: final image, benchkit rounded to 8 bit, mean |diff|"] = float(np.abs(fixed_off - q).mean())
    for k, v in res.items():
        print(f"{k}: max |diff| = {v:.3g}" if "mean" not in k else f"{k} = {v:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
