"""The batched torch path agrees with the CPU (numpy/OpenCV) path on the same Params.

Stated tolerance (8-bit LQ levels, per batch): mean |torch - cpu| <= 0.5 and at most 2 % of values
differ by more than 8 levels. Measured with CPU torch on the 8 embedded images at 128 px (x4, x1 and
the Face2Scene presets): mean 0 to 0.014 levels, max 6 levels, no value off by more than 8 (float rounding
of convolution/resize occasionally flips one 8-bit rounding before a JPEG step, which spreads within its
8x8 block). Noise fields are regenerated from the stored seeds with numpy, so they are identical.
"""

import numpy as np
import pytest
import torch

from benchkit.embedded import materialize_images
from benchkit.generators.base import SampleContext
from benchkit.generators.realesrgan import ops, torch_path
from benchkit.generators.realesrgan.pipeline import RealESRGANGenerator
from benchkit.generators.realesrgan.settings import RealESRGANConfig
from benchkit.generators.realesrgan.torch_path import apply_batch as torch_apply_batch
from benchkit.images import read_image
from benchkit.seeding import rng_for

MEAN_TOL = 0.5  # levels
FRAC_TOL = 0.02  # fraction of values differing by more than BIG levels
BIG = 8
# Every available device is checked (CUDA too, when present: TF32 is disabled inside apply_batch).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def images():
    return [read_image(p) for p in sorted(materialize_images(size=128).glob("*.png"))]


def _agree(gen, images, seed, jpeg_backend="cv2", device="cpu"):
    params = [gen.sample(rng_for(seed, f"k{i}"), SampleContext(f"k{i}", 128, 128)) for i in range(len(images))]
    cpu = np.stack([gen.apply(im, p, SampleContext(f"k{i}", 128, 128))["lq"] for i, (im, p) in enumerate(zip(images, params))]).astype(int)
    cpu_gt = np.stack([gen.apply(im, p, SampleContext(f"k{i}", 128, 128))["gt"] for i, (im, p) in enumerate(zip(images, params))]).astype(int)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)
    # the batched torch kernels themselves (apply_batch's "auto" runs the CPU path for CPU tensors)
    lq, gt = torch_apply_batch(x, params, gen.config, jpeg_backend=jpeg_backend, return_gt=True, impl="torch")
    assert lq.device.type == device
    lq = torch.round(lq * 255).to(torch.int64).permute(0, 2, 3, 1).cpu().numpy()
    gt = torch.round(gt * 255).to(torch.int64).permute(0, 2, 3, 1).cpu().numpy()
    assert lq.shape == cpu.shape
    return np.abs(lq - cpu), np.abs(gt - cpu_gt), params


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale,seed", [(4, 0), (1, 1), (4, 2)])
def test_cpu_and_torch_paths_agree(images, scale, seed, device):
    gen = RealESRGANGenerator(RealESRGANConfig(scale=scale))
    d, dgt, params = _agree(gen, images, seed, device=device)
    assert d.mean() <= MEAN_TOL, d.mean()
    assert (d > BIG).mean() <= FRAC_TOL, (d > BIG).mean()
    assert dgt.max() <= 1  # USM target: float rounding only
    kinds = {p.noise1.kind for p in params} | {p.noise2.kind for p in params}
    assert kinds == {"gaussian", "poisson"}  # both noise paths exercised


def test_face2scene_preset_agrees(images):
    from benchkit.config import load_pipeline

    for name in ("f2s_d1", "f2s_d4"):
        d, _dgt, _ = _agree(load_pipeline(name)[1], images[:4], 5)
        assert d.mean() <= MEAN_TOL and (d > BIG).mean() <= FRAC_TOL


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchvision_jpeg_backend_matches_opencv_codec(images):
    """Codec difference cv2 vs torchvision.io (both libjpeg, 4:2:0, CPU): measured 0 levels."""
    from torchvision.io import decode_jpeg, encode_jpeg

    for im in images:
        u8 = ops.to_levels(im)
        for q in (30, 60, 95):
            a = ops.jpeg_u8(u8, q)
            b = decode_jpeg(encode_jpeg(torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))), quality=q))
            diff = np.abs(a.astype(int) - b.permute(1, 2, 0).numpy().astype(int))
            assert diff.mean() <= 0.5 and diff.max() <= 8
    gen = RealESRGANGenerator(RealESRGANConfig(scale=4))
    d, _dgt, _ = _agree(gen, images[:4], 7, jpeg_backend="torchvision")
    assert d.mean() <= MEAN_TOL and (d > BIG).mean() <= FRAC_TOL


def test_area_resize_matches_opencv_for_fractional_factors():
    import cv2

    img = np.random.default_rng(0).random((97, 131, 3), dtype=np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1)
    from benchkit.generators.realesrgan.params import ResizeParams

    for h, w in ((50, 60), (33, 45), (150, 200), (97, 140), (96, 131)):
        ref = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        got = torch_path.resize_t(x, ResizeParams("down", 1.0, "area", h, w)).permute(1, 2, 0).numpy()
        assert np.abs(ref - got).max() < 1e-5


def test_reflect101_padding_matches_opencv_even_for_large_pads():
    import cv2

    img = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    for pad in (1, 4, 10):
        ref = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        got = torch_path.pad_reflect101(torch.from_numpy(img), pad, pad).numpy()
        assert np.array_equal(ref, got)


def test_apply_batch_on_cpu_tensors_is_the_cpu_path_exactly(images):
    """impl="auto" on CPU tensors: the numpy/OpenCV path per sample, byte-identical to ``apply``."""
    gen = RealESRGANGenerator(RealESRGANConfig(scale=4))
    ims = [np.ascontiguousarray(im[::-1]) if i % 3 == 2 else im for i, im in enumerate(images)]
    params = [gen.sample(rng_for(3, f"k{i}"), SampleContext(f"k{i}", 128, 128)) for i in range(len(ims))]
    assert {p.final_order for p in params} == {"A", "B"} and {p.blur2_applied for p in params} == {True, False}
    assert {p.noise1.kind for p in params} | {p.noise2.kind for p in params} == {"gaussian", "poisson"}
    x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2)  # a non-contiguous view, as callers pass
    lq, gt = gen.apply_batch(x, params, return_gt=True)
    for i, (im, p) in enumerate(zip(ims, params)):
        ref = gen.apply(im, p)
        got_lq = torch.round(lq[i] * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        got_gt = torch.round(gt[i] * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(got_lq, ref["lq"]) and np.array_equal(got_gt, ref["gt"]), i
    with pytest.raises(ValueError, match="impl"):
        torch_apply_batch(x, params, gen.config, impl="gpu")


def test_apply_batch_rejects_mismatched_inputs(images):
    gen = RealESRGANGenerator()
    p = gen.sample(np.random.default_rng(0), SampleContext("k", 128, 128))
    with pytest.raises(ValueError):
        gen.apply_batch(torch.zeros(2, 3, 128, 128), [p])


def test_torch_path_crops_non_divisible_x4_like_the_cpu_path(images):
    gen = RealESRGANGenerator(RealESRGANConfig(scale=4))
    ims = [im[:127, :118] for im in images[:2]]
    params = [gen.sample(rng_for(9, f"k{i}"), SampleContext(f"k{i}", 127, 118)) for i in range(2)]
    x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).contiguous()
    cpu = np.stack([gen.apply(im, p, SampleContext(f"k{i}", 127, 118))["gt"]
                    for i, (im, p) in enumerate(zip(ims, params))]).astype(int)
    for impl in ("auto", "torch"):
        lq, gt = torch_apply_batch(x, params, gen.config, return_gt=True, impl=impl)
        assert tuple(lq.shape) == (2, 3, 31, 29) and tuple(gt.shape) == (2, 3, 124, 116)
        assert np.abs(torch.round(gt * 255).to(torch.int64).permute(0, 2, 3, 1).numpy() - cpu).max() <= 1
