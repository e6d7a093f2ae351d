"""Developer script (not CI): benchkit's S3Diff adapter against the official S3Diff code, end to end, on CPU.

    git --git-dir=<mirror> archive HEAD src utils basicsr/archs/arch_util.py | tar x -C /tmp/s3diff
    PYTHONPATH=. python tools/parity/s3diff_parity.py /tmp/s3diff

Needs a checkout of ArcticHare105/S3Diff (``src/``, ``utils/wavelet_color.py``, ``basicsr/archs/arch_util.py``).
Writes the tiny random SD-Turbo folder and S3Diff files (:mod:`benchkit.methods.onestep.tiny_s3diff`) to a
temporary folder, runs the official model (``src/s3diff_tile.py`` ``S3Diff``, ``src/de_net.py``
``DEResNet``, ``utils/wavelet_color.py``) and benchkit on the same input, and prints maximum differences.

Shims (the official code is otherwise run unmodified):
- ``src/s3diff_tile.py`` and ``src/model.py`` hard-code CUDA: they are imported from copies in which
  ``.cuda()`` reads ``.cpu()`` and ``"cuda"`` reads ``"cpu"`` (text substitution, nothing else changed).
- ``basicsr/__init__.py`` imports all of BasicSR (datasets, compiled ops...): ``basicsr``, ``basicsr.archs``,
  ``basicsr.ops.dcn`` and ``basicsr.utils`` are stub packages so that the real ``basicsr/archs/arch_util.py``
  (``ResidualBlockNoBN``, ``default_init_weights``) loads alone; the stubbed names are unused on this path.
- ``src/inference_s3diff.py`` ``main`` needs accelerate, pyiqa, lpips, clip and omegaconf: its per-image
  lines (bilinear x4, clamp, reflect pad to 64, ``net_de(im_lr)``, ``net_sr(...)``, crop, ``ToPILImage``,
  ``wavelet_color_fix``) are restated in :func:`official_restore`.
- Deterministic comparison: ``DiagonalGaussianDistribution.sample`` replaced by ``mode`` (benchkit's
  ``deterministic`` mode). Official-mode comparison: ``torch.manual_seed(s)`` before the official forward,
  a CPU generator seeded ``s`` for benchkit's ``s3diff-official`` (the latent sample is the first draw).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import types
from pathlib import Path


def import_official(root: Path, shim_dir: Path):
    """The official modules (de_net, s3diff_tile, wavelet_color) with the shims described above."""
    import importlib.util

    for name, attrs in (("basicsr", {}), ("basicsr.archs", {}),
                        ("basicsr.ops", {}), ("basicsr.ops.dcn", {"ModulatedDeformConvPack": object,
                                                                  "modulated_deform_conv": None}),
                        ("basicsr.utils", {"get_root_logger": lambda *a, **k: None})):
        mod = types.ModuleType(name)
        mod.__path__ = [str(root / name.replace(".", "/"))]
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
    shim_dir.mkdir(parents=True, exist_ok=True)
    for f in ("model.py", "s3diff_tile.py"):
        src = (root / "src" / f).read_text(encoding="utf-8")
        (shim_dir / f).write_text(src.replace(".cuda()", ".cpu()").replace('"cuda"', '"cpu"'), encoding="utf-8")
    sys.path[:0] = [str(shim_dir), str(root / "src")]
    import de_net
    import s3diff_tile

    spec = importlib.util.spec_from_file_location("official_wavelet_color", root / "utils" / "wavelet_color.py")
    wc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wc)
    return de_net, s3diff_tile, wc


def official_restore(net_sr, net_de, wc, im_lr, pos, neg, sf=4):
    """``src/inference_s3diff.py`` main, per image: returns (model output in [0, 1] (float), final uint8)."""
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torchvision import transforms

    ori_h, ori_w = im_lr.shape[2:]
    im_lr_resize = F.interpolate(im_lr, size=(ori_h * sf, ori_w * sf), mode="bilinear", align_corners=False)
    im_lr_resize = im_lr_resize.contiguous()
    norm = torch.clamp(im_lr_resize * 2 - 1.0, -1.0, 1.0)
    resize_h, resize_w = norm.shape[2:]
    pad_h = math.ceil(resize_h / 64) * 64 - resize_h
    pad_w = math.ceil(resize_w / 64) * 64 - resize_w
    norm = F.pad(norm, pad=(0, pad_w, 0, pad_h), mode="reflect")
    with torch.no_grad():
        deg_score = net_de(im_lr)
        pred = net_sr(norm, deg_score, pos_prompt=[pos], neg_prompt=[neg])
        pred = pred[:, :, :resize_h, :resize_w]
        out_img = (pred * 0.5 + 0.5).cpu().detach()
    output_pil = transforms.ToPILImage()(out_img[0])
    output_pil = wc.wavelet_color_fix(output_pil, transforms.ToPILImage()(im_lr_resize[0].cpu().detach()))
    return out_img[0].permute(1, 2, 0).numpy(), np.asarray(output_pil)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("official", help="checkout of ArcticHare105/S3Diff")
    ap.add_argument("--lr-size", type=int, nargs=2, default=(24, 20), metavar=("H", "W"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary weights folder")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="s3diff-parity-"))
    try:
        return _run(a, tmp)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(a, tmp: Path) -> int:
    import io

    import numpy as np
    import torch
    from diffusers.models.autoencoders import vae as dvae
    from PIL import Image

    from benchkit.harness.restore import _torch_generator
    from benchkit.images import encode_png
    from benchkit.methods.onestep import s3diff as bs
    from benchkit.methods.onestep import tiny_s3diff

    wdir = tiny_s3diff.write_tiny_weights(tmp / "weights")
    base = tmp / "weights" / "base-models" / "sd-turbo"
    de_net, s3t, wc = import_official(Path(a.official).absolute(), tmp / "shim")
    ckpt = torch.load(wdir / "s3diff.pkl", map_location="cpu", weights_only=True)
    h, w = a.lr_size
    lq = (np.random.default_rng(0).integers(0, 256, (h, w, 3)) / 255.0).astype(np.float32)  # as read from a PNG
    im_lr = torch.from_numpy(lq.transpose(2, 0, 1).copy())[None]

    net_de = de_net.DEResNet(num_in_ch=3, num_degradation=2)
    net_de.load_model(str(wdir / "de_net.pth"))
    net_de.eval()
    res = {}
    sample = dvae.DiagonalGaussianDistribution.sample
    for tile, overlap in ((96, 32), (8, 4)):  # 8/4: the latent tiling path (latent 16x16 of the 128 px pad)
        args = types.SimpleNamespace(latent_tiled_size=tile, latent_tiled_overlap=overlap,
                                     vae_encoder_tiled_size=1024, vae_decoder_tiled_size=224)
        net_sr = s3t.S3Diff(sd_path=str(base), pretrained_path=str(wdir / "s3diff.pkl"),
                            lora_rank_unet=ckpt["rank_unet"], lora_rank_vae=ckpt["rank_vae"], args=args)
        net_sr.set_eval()
        for mode in ("deterministic", "official"):
            name = "s3diff" if mode == "deterministic" else "s3diff-official"
            if mode == "deterministic":
                dvae.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mode()
            else:
                dvae.DiagonalGaussianDistribution.sample = sample
            torch.manual_seed(7)
            off_float, off_u8 = official_restore(net_sr, net_de, wc, im_lr, bs.POS_PROMPT, bs.NEG_PROMPT)
            dvae.DiagonalGaussianDistribution.sample = sample
            outs = {}
            for fix in ("nofix", "wavelet"):
                m = (bs.S3Diff if mode == "deterministic" else bs.S3DiffOfficial)(
                    color_fix=fix, latent_tile=tile, latent_overlap=overlap)
                m.setup(weights_dir=wdir.parent / name)
                m.load("cpu", "float32")
                ctx = {"key": "x", "seed": 7, "generator": lambda: _torch_generator("cpu", 7)}
                outs[fix] = m.restore([lq], [ctx], 4)[0]
                m.unload()
            mine_u8 = np.asarray(Image.open(io.BytesIO(encode_png(outs["wavelet"]))).convert("RGB"))
            k = f"tile{tile}_{mode}"
            res[f"{k}_model_output_maxdiff"] = float(np.abs(off_float - outs["nofix"]).max())
            res[f"{k}_final_maxdiff_vs_official_uint8"] = float(np.abs(off_u8 / 255.0 - outs["wavelet"]).max())
            res[f"{k}_final_png_maxdiff_levels"] = int(np.abs(off_u8.astype(int) - mine_u8.astype(int)).max())
        del net_sr
    print(f"input LR {h}x{w} -> {4 * h}x{4 * w}; tiny SD-Turbo-like weights in {tmp}"
          f"{'' if a.keep else ' (removed)'}")
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
