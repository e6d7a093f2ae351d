"""InvSR adapter on a tiny SD-Turbo-like folder and a tiny noise predictor, offline on CPU.

The checkpoint is written as InvSR's trainer saves it (``{'state_dict': ...}`` with DDP/compile prefixes);
the adapter loads it strictly and restores through ``benchkit evaluate``. Parity with the official code is
``tools/parity/invsr_parity.py`` (developer-run); the official key set of the released predictor config comes
from that script's ``--keys`` (see ``tests/fixtures/invsr_golden.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from adapter_checks import (REPO, check_evaluate_outputs, check_mode_seeds_and_parity, cli_run_fixture,
                            evaluate_in_process, float16_and_float32, load_outcome, loaded, make_method,
                            one_thread_fixture, seeded_ctx)

METHODS = ("invsr", "invsr-official")
GOLDEN = REPO / "tests" / "fixtures" / "invsr_golden.json"
CKPT = "noise_predictor_sd_turbo_v5.pth"
one_thread = one_thread_fixture()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.onestep.tiny_invsr import write_tiny_weights

    root = tmp_path_factory.mktemp("invsr")
    d = write_tiny_weights(root / "weights")
    ds = write_toy_dataset(root / "ds", "x4", n=2, size=40)
    return {"root": root, "weights": root / "weights", "ckpt": d / CKPT, "ds": ds}


def _lq(h=10, w=13, seed=3):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _stats(a):
    return [float(a.mean()), float(a.std()), float(a[::7, ::5].sum()), float(a[::3, ::3].astype(np.float64).sum())]


def _check_golden(name, stats):
    """Output statistics of the tiny models guard the maths (``BENCHKIT_WRITE_GOLDEN=1`` rewrites them).
    Tolerance 2e-4 relative: float32 differences across CPUs are ~1e-6; using t=200 instead of the official
    199 moves the sums by ~2e-3 relative."""
    data = json.loads(GOLDEN.read_text())
    if os.environ.get("BENCHKIT_WRITE_GOLDEN"):
        data["outputs"][name] = stats
        GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    want = data["outputs"][name]
    assert np.allclose(stats, want, rtol=2e-4, atol=2e-4), (name, stats, want)


# ------------------------------------------------------------------------------------ predictor structure
def test_predictor_has_the_official_layout():
    """Full-size rebuild == the official NoisePredictor (keys, order, shapes, 33.8 M parameters), and the config
    inferred from that state dict == configs/sample-sd-turbo.yaml."""
    import torch

    from benchkit.methods.onestep import invsr_predictor as ip

    official = json.loads(GOLDEN.read_text())["official_predictor"]
    with torch.device("meta"):
        net = ip.build(ip.FULL_CONFIG)
    sd = net.state_dict()
    assert ip.param_count(net) == ip.FULL_PARAMS == official["params"] == 33_837_576
    assert [f"{k} {list(v.shape)}" for k, v in sd.items()] == official["keys"]
    assert len(sd) == 164
    assert ip.infer_config(sd) == ip.FULL_CONFIG


def test_checkpoint_unwrapping_and_tiny_config(tiny):
    import torch

    from benchkit.methods.onestep import invsr_predictor as ip
    from benchkit.methods.onestep.tiny_invsr import TINY_CONFIG

    raw = torch.load(tiny["ckpt"], weights_only=True)
    assert {"state_dict", "iters_start"} <= set(raw)  # the trainer's layout
    assert next(iter(raw["state_dict"])).startswith("module._orig_mod.encoder.")
    plain, prefix = ip.unwrap_state(raw)
    assert prefix == "module._orig_mod." and all(k.startswith("encoder.") for k in plain)
    for pre in ("", "module.", "_orig_mod.", "_orig_mod.module."):
        st, p = ip.unwrap_state({pre + k: v for k, v in plain.items()})
        assert p == pre and set(st) == set(plain)
    assert ip.infer_config(plain) == TINY_CONFIG  # groups/head size by the documented gcd rule


# ------------------------------------------------------------------------------------ chopping machinery
def test_chopping_geometry_against_independent_references():
    import cv2
    import torch

    from benchkit.methods.onestep import invsr

    # ImageSpliterTh.extract_starts: every stride, clamped flush with the border, duplicates removed
    assert invsr.patch_starts(128, 128, 64) == [0]
    assert invsr.patch_starts(208, 128, 64) == [0, 64, 80]
    assert invsr.patch_starts(256, 128, 64) == [0, 64, 128]
    for n in (5, 6, 128, 512):  # OpenCV kernel (even sizes: the n+1 kernel without its first tap)
        sigma = 0.3 * ((n - 1) * 0.5 - 1) + 0.8
        ref = cv2.getGaussianKernel(n + 1 if n % 2 == 0 else n, sigma, cv2.CV_64F)[:, 0]
        ref = ref[1:] if n % 2 == 0 else ref
        assert np.allclose(invsr.gaussian_1d(n), ref, rtol=1e-12, atol=0)
    # blending a pointwise per-patch map reproduces the map on the whole image (every pixel covered)
    x = torch.rand(1, 3, 48, 80, dtype=torch.float64)
    def up(b):
        return b.repeat_interleave(4, 2).repeat_interleave(4, 3) * 2 - 0.5
    out = invsr.chop_blend(x, 32, 4, 3, up)
    assert torch.allclose(out, up(x), atol=1e-12)
    # the official small-input padding: reflect by half the shortfall (<= side-1 per round) until >= 128
    lr = torch.rand(1, 3, 10, 13)
    p, top, left = invsr.pad_to_patch(lr, 128)
    assert tuple(p.shape[-2:]) == (128, 128) and torch.equal(p[:, :, top:top + 10, left:left + 13], lr)
    assert (top, left) == (9 + 27 + 23, 12 + 36 + 9)  # rounds 10->28->82->128 and 13->37->109->128 (by hand)
    assert torch.equal(p[:, :, top - 1], p[:, :, top + 1])  # reflect, not replicate
    p, top, left = invsr.pad_to_patch(torch.rand(1, 3, 1, 200), 128)  # 1-px side: replicated, loop ends
    assert tuple(p.shape[-2:]) == (128, 200) and (top, left) == (63, 0)


def test_chopped_path_equals_per_patch_reference(tiny):
    """The chopped path (LR 40x52, chopping_size 32 -> pad to 48x64, 2x3 patches in batches of 4 + 2) equals
    patches run one by one and blended with OpenCV Gaussian weights; a single-patch grid equals one pass."""
    import cv2
    import torch

    m = make_method("invsr", tiny["weights"], chopping_size=32, chopping_bs=4)
    m.load("cpu", "float32")
    try:
        lq = _lq(40, 52, seed=5)
        got = m.restore([lq], [seeded_ctx(0)], 4)[0]
        assert got.shape == (160, 208, 3)
        lr = torch.from_numpy(lq.transpose(2, 0, 1).copy())[None]
        x = torch.nn.functional.pad(lr, (0, 12, 0, 8), mode="reflect")  # to 48x64 (multiples of 16)
        k = cv2.getGaussianKernel(129, 0.3 * (127 * 0.5 - 1) + 0.8, cv2.CV_64F)[1:, 0]
        wt = torch.from_numpy(np.outer(k, k))
        acc, cnt = torch.zeros(1, 3, 192, 256, dtype=torch.float64), torch.zeros(1, 1, 192, 256, dtype=torch.float64)
        with torch.no_grad():
            for i in (0, 16):
                for j in (0, 16, 32):
                    y = m.run_patches(x[:, :, i:i + 32, j:j + 32], None).double()
                    acc[:, :, 4 * i:4 * i + 128, 4 * j:4 * j + 128] += y * wt
                    cnt[:, :, 4 * i:4 * i + 128, 4 * j:4 * j + 128] += wt
        ref = (acc / cnt)[0, :, :160, :208].permute(1, 2, 0).numpy()
        assert np.abs(got - ref).max() < 5e-5  # float32 rounding of batched (4) vs single-patch model calls
        _check_golden("invsr-chop32", _stats(got))
        # one patch covering the whole (already patch-sized) input: the blend is the single pass itself
        from benchkit.methods.onestep import invsr

        x32 = lr[:, :, :32, :32]
        with torch.no_grad():
            single = m.run_patches(x32, None).double()
            chopped = invsr.chop_blend(x32, 32, 4, 8, lambda b: m.run_patches(b, None))
        assert torch.allclose(chopped, single, atol=1e-12, rtol=0)
        direct = m.restore([lq[:32, :32]], [seeded_ctx(0)], 4)[0]  # 32x32 with chopping_size 32: the single-pass path
        assert np.array_equal(direct, single[0].float().permute(1, 2, 0).numpy())
    finally:
        m.unload()


# ------------------------------------------------------------------------------------ through the harness
cli_run = cli_run_fixture(METHODS)


def test_evaluate_cli_restores_both_modes(tiny, cli_run):
    check_evaluate_outputs(cli_run, tiny["ds"], METHODS, 4)


def test_modes_determinism_harness_parity_and_golden(tiny, cli_run):
    lq = _lq()
    golden = {}
    for name in METHODS:
        with loaded(name, tiny["weights"]) as m:
            info = m.info()
            assert info["timestep"] == 199 and info["options"]["color_fix"] == "nofix"
            assert abs(m.sigma - 0.569285) < 1e-5  # sqrt((1 - abar_199) / abar_199), SD-Turbo betas
            golden[name] = _stats(check_mode_seeds_and_parity(m, name, lq, 4, cli_run, tiny["ds"], seed_diff=1e-2))
    for name in METHODS:
        _check_golden(name, golden[name])


def test_colour_fixes_and_option_errors(tiny):
    import torch

    from benchkit.errors import ConfigError
    from benchkit.methods.onestep import invsr

    for bad in ({"color_fix": "adain"}, {"chopping_size": 100}, {"chopping_bs": 0}, {"latent_tile": 96}):
        with pytest.raises(ConfigError):
            make_method("invsr", tiny["weights"], **bad)
    img = torch.rand(1, 3, 16, 16) * 0.6 + 0.2  # in gamut: the YCbCr round trip is the identity
    assert torch.allclose(invsr.ycbcr_fix(img, img), img, atol=1e-6)
    src = img + (torch.rand(1, 3, 16, 16) - 0.5) * 0.1  # close colours: the result stays in gamut (no clamping)
    y = invsr.ycbcr_fix(img, src)
    luma = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255
    assert torch.allclose((y * luma).sum(1), (img * luma).sum(1), atol=1e-5)  # Y kept from the target
    lq = _lq()
    outs = {}
    for fix in ("nofix", "wavelet", "ycbcr"):
        m = make_method("invsr", tiny["weights"], color_fix=fix)
        m.load("cpu", "float32")
        outs[fix] = m.restore([lq], [seeded_ctx(1)], 4)[0]
        m.unload()
        assert outs[fix].shape == (40, 52, 3) and 0 <= outs[fix].min() and outs[fix].max() <= 1
    assert np.abs(outs["wavelet"] - outs["nofix"]).max() > 1e-3
    assert np.abs(outs["ycbcr"] - outs["nofix"]).max() > 1e-3


def test_float16_close_to_float32(tiny):
    def in_dtype(m, dtype):
        assert m.model.unet.dtype.itemsize == (2 if dtype == "float16" else 4)
        assert m.model.predictor.encoder.conv_in.weight.dtype.itemsize == 4  # float32 as the official sampler

    out = float16_and_float32("invsr", tiny["weights"], _lq(), 4, each=in_dtype)  # tags differ
    assert np.abs(out["float32"] - out["float16"]).max() < 0.05


# ------------------------------------------------------------------------------------ failures
def _evaluate(tiny, w, run_dir):
    return evaluate_in_process(tiny["ds"], w, run_dir, ["invsr", "bicubic"])


def _root(tiny, tmp_path, name, write=None, base=True):
    """A weights root whose invsr checkpoint is ``write(dst, src)`` (None: absent)."""
    w = tmp_path / name
    (w / "methods" / "invsr").mkdir(parents=True)
    if base:
        (w / "base-models").mkdir()
        os.symlink(tiny["weights"] / "base-models" / "sd-turbo", w / "base-models" / "sd-turbo")
    if write is not None:
        write(w / "methods" / "invsr" / CKPT, tiny["ckpt"])
    return w


def test_bad_checkpoints_fail_clearly_and_the_rest_completes(tiny, tmp_path):
    import datetime
    import shutil

    import torch

    def edit(fn):
        def write(dst, src):
            ck = torch.load(src, weights_only=True)
            fn(ck["state_dict"])
            torch.save(ck, dst)
        return write

    def truncate(dst, src):
        data = Path(src).read_bytes()
        dst.write_bytes(data[: len(data) // 2])

    missing = "module._orig_mod.encoder.mid_block.resnets.1.norm2.bias"
    cases = {
        "extra": (edit(lambda sd: sd.__setitem__("module._orig_mod.encoder.bogus.weight", torch.zeros(2))),
                  ["unexpected keys", "encoder.bogus.weight"]),
        "missing": (edit(lambda sd: sd.pop(missing)), ["missing keys", "encoder.mid_block.resnets.1.norm2.bias"]),
        "nontensor": (edit(lambda sd: sd.__setitem__("module._orig_mod.x", datetime.date(2020, 1, 1))),
                      ["other than tensors"]),
        "truncated": (truncate, ["truncated"]),
    }
    for name, (write, words) in cases.items():
        ok, _, errs = load_outcome(_evaluate(tiny, _root(tiny, tmp_path, name, write), tmp_path / f"run_{name}"))
        assert CKPT in errs["invsr"], (name, errs)
        for word in words:
            assert word in errs["invsr"], (name, word, errs["invsr"])
        assert "bicubic" in ok, name
    ok, skipped, _ = load_outcome(_evaluate(tiny, _root(tiny, tmp_path, "absent"), tmp_path / "run_absent"))
    assert CKPT in skipped["invsr"]
    assert "bicubic" in ok
    _, skipped, _ = load_outcome(_evaluate(tiny, _root(tiny, tmp_path, "nobase", lambda d, s: shutil.copy(s, d),
                                                       base=False), tmp_path / "run_nobase"))
    assert "sd-turbo" in skipped["invsr"] and "BENCHKIT_BASE_MODELS" in skipped["invsr"]
