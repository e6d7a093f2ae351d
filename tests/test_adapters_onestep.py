"""One-step diffusion SR adapters (OSEDiff, Hero-SR) on tiny random diffusers folders, offline on CPU.

The session fixture writes a tiny SD-2.1-base-like and SD-Turbo-like folder and the official checkpoints
(official save recipes on those tiny models); the adapters load them strictly and restore through
``benchkit evaluate``.
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import pytest
from adapter_checks import (REPO, check_evaluate_outputs, check_golden, check_mode_seeds_and_parity, cli_run_fixture,
                            evaluate_in_process, float16_and_float32, load_outcome, loaded, one_thread_fixture, stats)

METHODS = ("osediff", "osediff-official", "hero-sr", "hero-sr-official")
GOLDEN = REPO / "tests" / "fixtures" / "onestep_golden.json"
one_thread = one_thread_fixture()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.onestep import tiny as t

    root = tmp_path_factory.mktemp("onestep")
    w = root / "weights"
    t.write_tiny_base(w / "base-models" / "stable-diffusion-2-1-base", "sd21-base")
    t.write_tiny_base(w / "base-models" / "sd-turbo", "sd-turbo")
    t.write_osediff_checkpoint(w / "base-models" / "stable-diffusion-2-1-base", w / "methods/osediff/osediff.pkl")
    t.write_herosr_checkpoint(w / "base-models" / "sd-turbo", w / "methods/hero-sr/hero_sr_model.pkl")
    ds = write_toy_dataset(root / "ds", "x4", n=2, size=40)
    return {"root": root, "weights": w, "ds": ds}


def _lq(h=10, w=13):
    return np.random.default_rng(3).random((h, w, 3)).astype(np.float32)


def test_core_math():
    import torch

    from benchkit.methods.onestep import core

    # official tiling offsets: stride tile - overlap, the last tile flush with the border
    assert core.tile_offsets(100, 96, 32) == [0, 4]
    assert core.tile_offsets(200, 96, 32) == [0, 64, 104]
    wts = core.gaussian_weights(6, 4)
    assert wts.shape == (4, 6) and np.argmax(wts[:, 0]) == 2  # y-midpoint h/2, as the official code
    z, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    ac = torch.linspace(0.99, 0.005, 1000, dtype=torch.float64)
    x0 = core.x0_from_eps(z, eps, ac, 999)
    # reconstruct in float64 (a 0-dim float64 scalar times a float32 tensor stays float32 in torch)
    assert x0.dtype == torch.float64
    assert torch.allclose(x0 * ac[999].sqrt() + (1 - ac[999]).sqrt() * eps.double(), z.double(), atol=1e-10)
    # tiling = a plain call for an exactly-equivariant predictor
    big = torch.randn(1, 4, 20, 30)
    assert torch.allclose(core.tiled_eps(lambda t: 2 * t, big, 8, 3), 2 * big, atol=1e-5)
    img, src = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.5
    out = core.adain_fix(img, src)
    assert torch.allclose(out.mean((2, 3)), src.mean((2, 3)), atol=2e-2)
    assert core.wavelet_fix(img, img).sub(img).abs().max() < 1e-5


def test_checkpoint_errors_name_file_and_keys(tmp_path):
    import torch

    from benchkit.methods.onestep import core

    with pytest.raises(core.CheckpointError, match="not found"):
        core.load_checkpoint(tmp_path / "none.pkl")
    torch.save({"a": torch.zeros(2)}, tmp_path / "ok.pkl")
    data = (tmp_path / "ok.pkl").read_bytes()
    (tmp_path / "trunc.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(core.CheckpointError, match=r"trunc\.pkl.*truncated"):
        core.load_checkpoint(tmp_path / "trunc.pkl")
    torch.save({"a": core.CheckpointError}, tmp_path / "evil.pkl")  # a class: never unpickled
    with pytest.raises(core.CheckpointError, match=r"evil\.pkl.*other than tensors"):
        core.load_checkpoint(tmp_path / "evil.pkl")
    with pytest.raises(core.CheckpointError, match=r"x\.pkl.*missing keys: b.*unexpected keys: c.*shape"):
        core.check_state("x.pkl", "sd", {"a": (2,), "b": (1,)}, {"a": torch.zeros(3), "c": torch.zeros(1)})


cli_run = cli_run_fixture(METHODS)  # one ``benchkit evaluate`` run of the four method names over the tiny x4 dataset


def test_evaluate_cli_restores_all_modes(tiny, cli_run):
    """Through ``benchkit evaluate``: every method ok, output = x4 the input, seeds recorded for official modes."""

    def not_traced(name, rec, lq, out):
        assert rec.get("peak_mem_bytes") is None  # trace_memory = False: not run under tracemalloc

    check_evaluate_outputs(cli_run, tiny["ds"], METHODS, 4, each=not_traced)


def test_modes_determinism_and_harness_parity(tiny, cli_run):
    lq = _lq()
    golden = {}
    for name in METHODS:
        with loaded(name, tiny["weights"]) as m:
            golden[name] = stats(check_mode_seeds_and_parity(m, name, lq, 4, cli_run, tiny["ds"], seed_diff=1e-3))
    # output statistics of the tiny models (seed 1 for the official modes) guard the adapters' maths
    assert set(golden) == set(METHODS)
    check_golden(GOLDEN, golden, rtol=2e-3, atol=2e-3)


def _bad_root(tiny, tmp_path, osediff_ckpt=None, hero_ckpt=None, base=True):
    import shutil

    w = tmp_path / "w"
    if base:
        (w / "base-models").mkdir(parents=True)
        for b in ("stable-diffusion-2-1-base", "sd-turbo"):
            os.symlink(tiny["weights"] / "base-models" / b, w / "base-models" / b)
    for name, src in (("osediff", osediff_ckpt), ("hero-sr", hero_ckpt)):
        (w / "methods" / name).mkdir(parents=True, exist_ok=True)
        f = {"osediff": "osediff.pkl", "hero-sr": "hero_sr_model.pkl"}[name]
        if src is None:
            shutil.copy(tiny["weights"] / "methods" / name / f, w / "methods" / name / f)
        elif src != "absent":
            src(w / "methods" / name / f, tiny["weights"] / "methods" / name / f)
    return w


def _evaluate(tiny, w, tmp_path):
    return evaluate_in_process(tiny["ds"], w, tmp_path / "run", ["osediff", "hero-sr", "bicubic"])


def test_bad_checkpoints_fail_clearly_and_the_rest_completes(tiny, tmp_path):
    import torch

    def extra_key(dst, src):
        sd = torch.load(src, weights_only=True)
        sd["state_dict_unet"]["bogus.lora_A.weight"] = torch.zeros(2, 2)
        torch.save(sd, dst)

    def non_tensor(dst, src):
        sd = torch.load(src, weights_only=True)
        sd["state_dict_time_adaptive"]["fn"] = datetime.date(2020, 1, 1)  # not a tensor: never unpickled
        torch.save(sd, dst)

    w = _bad_root(tiny, tmp_path, osediff_ckpt=extra_key, hero_ckpt=non_tensor)
    ok, _, errs = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "osediff.pkl" in errs["osediff"] and "bogus.lora_A.weight" in errs["osediff"]
    assert "unexpected keys" in errs["osediff"]
    assert "hero_sr_model.pkl" in errs["hero-sr"] and "other than tensors" in errs["hero-sr"]
    assert "bicubic" in ok


def test_missing_key_missing_checkpoint_missing_base(tiny, tmp_path):
    import torch

    def missing_key(dst, src):
        sd = torch.load(src, weights_only=True)
        k = sorted(x for x in sd["state_dict_vae"] if "lora_B" in x)[0]
        del sd["state_dict_vae"][k]
        torch.save(sd, dst)
        pytest.missing_key = k

    w = _bad_root(tiny, tmp_path, osediff_ckpt=missing_key, hero_ckpt="absent")
    ok, skipped, errs = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "missing keys" in errs["osediff"] and pytest.missing_key in errs["osediff"]
    assert "hero_sr_model.pkl" in skipped["hero-sr"]
    assert "bicubic" in ok

    w2 = _bad_root(tiny, tmp_path / "nobase", base=False)
    ok, skipped, _ = load_outcome(_evaluate(tiny, w2, tmp_path / "nobase"))
    assert "stable-diffusion-2-1-base" in skipped["osediff"] and "BENCHKIT_BASE_MODELS" in skipped["osediff"]
    assert "sd-turbo" in skipped["hero-sr"]
    assert "bicubic" in ok


def test_base_models_root_precedence(tmp_path, monkeypatch):
    from benchkit.methods.onestep import core

    monkeypatch.delenv(core.BASE_ENV, raising=False)
    assert core.base_models_root(tmp_path / "W" / "methods" / "osediff") == (tmp_path / "W" / "base-models")
    monkeypatch.setenv(core.BASE_ENV, str(tmp_path / "env"))
    assert core.base_models_root(tmp_path / "W" / "methods" / "osediff") == tmp_path / "env"
    assert core.base_models_root(None, cli_value=str(tmp_path / "flag")) == tmp_path / "flag"


def test_weights_status_lists_checkpoints_and_base_models(tiny, tmp_path, monkeypatch):
    from benchkit.methods import method_weight_rows
    from benchkit.methods.onestep import core

    monkeypatch.delenv(core.BASE_ENV, raising=False)
    rows = {(r["name"], r["file"]): r["status"] for r in method_weight_rows(tiny["weights"])}
    assert rows[("osediff", "methods/osediff/osediff.pkl")] == "unverified"
    assert rows[("osediff-official", "methods/osediff/osediff.pkl")] == "unverified"  # the family's folder
    assert rows[("hero-sr", "base model sd-turbo/")] == "unverified"
    rows = {(r["name"], r["file"]): r for r in method_weight_rows(tmp_path)}
    r = rows[("osediff", "base model stable-diffusion-2-1-base/")]
    assert r["status"] == "missing" and "BENCHKIT_BASE_MODELS" in r["detail"]


def test_float16_close_to_float32(tiny):
    def in_dtype(m, dtype):
        assert m.dtype == dtype and m.model.unet.dtype.itemsize == (2 if dtype == "float16" else 4)

    out = float16_and_float32("osediff", tiny["weights"], _lq(), 4, each=in_dtype)  # tags differ
    assert np.abs(out["float32"] - out["float16"]).max() < 0.05
