"""HAODiff adapter on a tiny SD-2.1-like folder, tiny LoRA files and a STUB checkout, offline on CPU.

The fixture writes the tiny base, the official-format weights (``benchkit.methods.onestep.tiny_haodiff``) and a
stub package with the official import path in place of the user's gobunu/HAODiff clone (made a git clone, so
its commit is recorded). The LoRA merge is checked against diffusers' own LoRA loading for every key format.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
from adapter_checks import (REPO, check_evaluate_outputs, check_golden, check_mode_seeds_and_parity, cli_run_fixture,
                            evaluate_in_process, float16_and_float32, git_commit_all, load_outcome, loaded, make_method,
                            one_thread_fixture, seeded_ctx, stats)

METHODS = ("haodiff", "haodiff-official")
GOLDEN = REPO / "tests" / "fixtures" / "haodiff_golden.json"
BASE = "stable-diffusion-2-1-base"
one_thread = one_thread_fixture()


@pytest.fixture(autouse=True)
def no_env_checkout(monkeypatch):
    monkeypatch.delenv("BENCHKIT_HAODIFF_CODE", raising=False)
    monkeypatch.delenv("BENCHKIT_BASE_MODELS", raising=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.onestep.tiny_haodiff import write_tiny_weights

    root = tmp_path_factory.mktemp("haodiff")
    w = root / "weights"
    folder = write_tiny_weights(w)
    code = folder / "code"
    sha = git_commit_all(code)
    ds = write_toy_dataset(root / "ds", "blur", n=2, size=44)  # x1; 44 px is not a multiple of 8
    return {"root": root, "weights": w, "folder": folder, "code": code, "sha": sha, "ds": ds,
            "base": w / "base-models" / BASE}


def _lq(h=21, w=30):
    return np.random.default_rng(3).random((h, w, 3)).astype(np.float32)


# ------------------------------------------------------------------------------------------------- LoRA merge
def _unet(base):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)


def _unet_out(unet):
    import torch

    g = torch.Generator().manual_seed(0)
    z, emb = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 77, 32, generator=g)
    with torch.no_grad():
        return unet(z, torch.tensor([199]), emb).sample


def _as_peft(sd):
    return {k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v for k, v in sd.items()}


@pytest.mark.parametrize("key_format", ["peft", "legacy", "mixed"])
def test_merge_equals_diffusers_lora_loading(tiny, tmp_path, key_format):
    """benchkit's hand merge == diffusers' ``load_lora_adapter`` (unmerged peft layers) within 1e-5."""
    from safetensors.torch import load_file

    from benchkit.methods.onestep.haodiff import merge_lora
    from benchkit.methods.onestep.tiny_haodiff import write_lora

    f = write_lora(tiny["base"], tmp_path, key_format)
    sd = load_file(str(f))
    legacy = [k for k in sd if ".lora.down." in k or ".lora.up." in k]
    if key_format == "peft":
        assert not legacy
    elif key_format == "legacy":
        assert len(legacy) == len(sd) and any(v.ndim == 4 for v in sd.values())  # conv LoRA included
    else:
        assert 0 < len(legacy) < len(sd) and all(".to_" in k for k in legacy)  # attention projections only
    base_out = _unet_out(_unet(tiny["base"]))

    ours = _unet(tiny["base"])
    rep = merge_lora(ours, sd, f, legacy_conv="merge")
    assert rep["merged"] == len(sd) // 2 and rep["skipped"] == []
    ref = _unet(tiny["base"])
    # diffusers converts a legacy file only when its first key is legacy: hand it the peft names (same tensors)
    ref.load_lora_adapter(f if key_format != "mixed" else _as_peft(sd), prefix="unet")
    a, b = _unet_out(ours), _unet_out(ref)
    assert (a - b).abs().max() < 1e-5
    assert (a - base_out).abs().max() > 1e-2  # the LoRA changes the UNet: the comparison can fail

    if key_format == "legacy":  # default: non-2-D legacy layers left alone, as the official merge does
        skip = _unet(tiny["base"])
        rep = merge_lora(skip, sd, f)
        conv = {k: v for k, v in sd.items() if v.ndim == 4}
        assert len(rep["skipped"]) == len(conv) // 2 > 0 and rep["merged"] == (len(sd) - len(conv)) // 2
        ref2 = _unet(tiny["base"])
        ref2.load_lora_adapter({k: v for k, v in sd.items() if k not in conv}, prefix="unet")
        c = _unet_out(skip)
        assert (c - _unet_out(ref2)).abs().max() < 1e-5
        assert (c - a).abs().max() > 1e-3


def test_merge_errors_name_file_and_keys(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    from benchkit.methods.onestep import core
    from benchkit.methods.onestep.haodiff import merge_lora
    from benchkit.methods.onestep.tiny_haodiff import write_lora

    f = write_lora(tiny["base"], tmp_path, "peft")
    sd = load_file(str(f))
    a_key = min(k for k in sd if "to_q.lora_A" in k)
    cases = {
        "neither LoRA format.*unet.bogus.alpha": {**sd, "unet.bogus.alpha": torch.zeros(1)},  # an unused key
        "without their pair.*" + a_key.replace(".", r"\."): {k: v for k, v in sd.items()
                                                            if k != a_key.replace("lora_A", "lora_B")},
        "modules the UNet lacks.*down_blocks.0.nope": {**sd, "unet.down_blocks.0.nope.lora_A.weight": sd[a_key],
                                                       "unet.down_blocks.0.nope.lora_B.weight": sd[a_key].T},
        "shape mismatches.*" + a_key.split(".lora_A")[0].removeprefix("unet."): {
            **sd, a_key: torch.zeros(16, 7)},
        r"ranks other than lora_rank=16": {**sd, a_key: sd[a_key][:8],
                                           a_key.replace("lora_A", "lora_B"): sd[a_key.replace("lora_A", "lora_B")][:, :8]},
        "both key formats": {**sd, a_key.replace(".lora_A.", ".lora.down."): sd[a_key],
                             a_key.replace(".lora_A.", ".lora.up."): sd[a_key.replace("lora_A", "lora_B")]},
    }
    unet = _unet(tiny["base"])
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    for pattern, bad in cases.items():
        with pytest.raises(core.CheckpointError, match=r"pytorch_lora_weights\.safetensors.*" + pattern):
            merge_lora(unet, bad, f)
    with pytest.raises(core.CheckpointError, match="no LoRA weights"):
        merge_lora(unet, {}, f)
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())  # nothing merged on error


def test_cfg_batches_negative_first(tiny):
    """One batched UNet call == eps_neg + 3.5 (eps_pos - eps_neg) from two separate calls."""
    import torch

    m = make_method("haodiff", tiny["weights"])
    m.load("cpu", "float32")
    try:
        g = torch.Generator().manual_seed(1)
        z = torch.randn(1, 4, 5, 6, generator=g)
        pos, neg = torch.randn(1, 77, 32, generator=g), torch.randn(1, 77, 32, generator=g)
        t = torch.tensor([199])
        with torch.no_grad():
            e_pos = m.model.unet(z, t, pos).sample
            e_neg = m.model.unet(z, t, neg).sample
            got = m.predict_eps(z, t, pos, neg)
        assert (got - (e_neg + 3.5 * (e_pos - e_neg))).abs().max() < 1e-5
        assert (got - (e_pos + 3.5 * (e_neg - e_pos))).abs().max() > 1e-2  # the order matters
    finally:
        m.unload()


# ------------------------------------------------------------------------------------------ through the CLI
cli_run = cli_run_fixture(METHODS + ("identity",), scope="module",
                          unset=("BENCHKIT_BASE_MODELS", "BENCHKIT_HAODIFF_CODE"))


def test_evaluate_cli_x1(tiny, cli_run):
    def size_44(name, rec, lq, out):
        assert lq.shape == (44, 44, 3)  # x1: out.shape == lq.shape checked by the helper

    check_evaluate_outputs(cli_run, tiny["ds"], METHODS, 1, also_ok={"identity"}, each=size_44)


def test_determinism_seeds_golden_and_harness_parity(tiny, cli_run):
    lq = _lq()
    golden = {}
    for name in METHODS:
        with loaded(name, tiny["weights"]) as m:
            info = m.info()
            assert info["commit"] == tiny["sha"] and info["code_fingerprint"]
            assert info["options"]["latent_tile"] == 64 and info["options"]["latent_overlap"] == 5
            assert m.encoder_ignored_keys == 2  # the training-only head of a training-time save
            a = check_mode_seeds_and_parity(m, name, lq, 1, cli_run, tiny["ds"], seed_diff=1e-3)
            golden[name] = stats(a, step=(5, 3))
    assert set(golden) == set(METHODS)
    check_golden(GOLDEN, golden, rtol=2e-3, atol=2e-3)


def test_latent_tiling_and_float16(tiny):
    """Tiles smaller than the latent run (output size kept); fp16 stays close to fp32."""
    lq = _lq(40, 56)
    with loaded("haodiff", tiny["weights"], latent_tile=4, latent_overlap=1) as m:
        tiled = m.restore([lq], [seeded_ctx(1)], 1)[0]

    def in_dtype(m, dtype):
        assert m.model.unet.dtype.itemsize == (2 if dtype == "float16" else 4)
        assert next(m.model.img_encoder.parameters()).dtype.itemsize == (2 if dtype == "float16" else 4)

    out = float16_and_float32("haodiff", tiny["weights"], lq, 1, each=in_dtype)  # tags differ
    assert tiled.shape == out["float32"].shape == lq.shape and np.isfinite(tiled).all()
    assert np.abs(tiled - out["float32"]).max() > 1e-4  # the tiles were used
    assert np.abs(out["float32"] - out["float16"]).max() < 0.05


# ------------------------------------------------------------------------------------------ failures, status
def _root_with(tiny, tmp_path, code="link", encoder=None, lora=None):
    """A weights root sharing the tiny base; ``code``: 'link' (the fixture's checkout), None (absent) or a path."""
    import shutil

    w = tmp_path / "w"
    (w / "base-models").mkdir(parents=True)
    os.symlink(tiny["base"], w / "base-models" / BASE)
    d = w / "methods" / "haodiff"
    d.mkdir(parents=True)
    for f, make in (("img_encoder_weights.pth", encoder), ("pytorch_lora_weights.safetensors", lora)):
        if make is None:
            shutil.copy(tiny["folder"] / f, d / f)
        else:
            make(d / f, tiny["folder"] / f)
    if code == "link":
        os.symlink(tiny["code"], d / "code")
    elif code is not None:
        os.symlink(code, d / "code")
    return w


def _evaluate(tiny, w, tmp_path):
    return evaluate_in_process(tiny["ds"], w, tmp_path / "run", ["haodiff", "haodiff-official", "identity"])


def test_missing_or_incomplete_checkout(tiny, tmp_path, monkeypatch):
    w = _root_with(tiny, tmp_path, code=None)
    m = make_method("haodiff", w)
    ok, why = m.availability()
    assert not ok and "does not exist" in why and "gobunu/HAODiff" in why and "BENCHKIT_HAODIFF_CODE" in why
    ok, skipped, _ = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "does not exist" in skipped["haodiff"] and "does not exist" in skipped["haodiff-official"]
    assert ok == {"identity"}

    partial = tmp_path / "partial"
    (partial / "swin").mkdir(parents=True)
    (partial / "swin" / "__init__.py").write_text("")
    w2 = _root_with(tiny, tmp_path / "b", code=partial)
    ok, why = make_method("haodiff", w2).availability()
    assert not ok and "swin/swinir_feature_extractor.py" in why and "swin/network_swinir_multi_branchs.py" in why
    # the option, then the environment variable, win over <weights>/code
    assert make_method("haodiff", w2, code_dir=str(tiny["code"])).availability() == (True, "")
    monkeypatch.setenv("BENCHKIT_HAODIFF_CODE", str(tiny["code"]))
    assert make_method("haodiff-official", w2).availability() == (True, "")
    assert make_method("haodiff", w2, code_dir=str(partial)).availability()[0] is False


def test_shadowing_or_broken_checkout_fails_at_load_and_the_rest_completes(tiny, tmp_path, monkeypatch):
    from benchkit.methods.checkout import CheckoutError

    fake = types.ModuleType("swin")
    fake.__file__ = str(tmp_path / "elsewhere" / "swin" / "__init__.py")
    monkeypatch.setitem(sys.modules, "swin", fake)  # another 'swin' package imported first
    w = _root_with(tiny, tmp_path)
    m = make_method("haodiff", w)
    assert m.availability() == (True, "")
    with pytest.raises(CheckoutError, match="already imported"):
        m.load("cpu", "float32")
    ok, _, errs = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "already imported" in errs["haodiff"] and "already imported" in errs["haodiff-official"]
    assert ok == {"identity"}

    # a checkout whose encoder module cannot be imported (a requirement missing) or lacks the class
    for mod in [k for k in sys.modules if k == "swin" or k.startswith("swin.")]:
        monkeypatch.delitem(sys.modules, mod)
    for body, msg in (("import performer_pytorch_absent_for_test\n", "No module named"),
                      ("X = 1\n", "defines no SwinIRWithDualPerformerAdapter")):
        code = tmp_path / f"code{len(msg)}"
        from benchkit.methods.onestep.tiny_haodiff import write_stub_checkout

        write_stub_checkout(code)
        (code / "swin" / "swinir_feature_extractor.py").write_text(body)
        m = make_method("haodiff", w, code_dir=str(code))
        with pytest.raises(CheckoutError, match=msg):
            m.load("cpu", "float32")
        for mod in [k for k in sys.modules if k == "swin" or k.startswith("swin.")]:
            monkeypatch.delitem(sys.modules, mod)


def test_encoder_file_loads_strictly(tiny, tmp_path):
    import torch

    from benchkit.methods.onestep import core

    def extra(dst, src):
        ck = torch.load(src, weights_only=True)
        ck["model_state_dict"]["main_performer.bogus"] = torch.zeros(1)
        torch.save(ck, dst)

    def missing(dst, src):
        ck = torch.load(src, weights_only=True)
        del ck["model_state_dict"]["aux_performer.queries"]
        torch.save(ck, dst)

    def foreign(dst, src):
        torch.save({"params": {}}, dst)

    def other_width(dst, src):  # a consistent file whose prompts do not fit the UNet's cross-attention
        from benchkit.methods.onestep.tiny_haodiff import write_encoder

        write_encoder(dst.parent, 16)

    for make, pattern in ((extra, "unexpected keys: main_performer.bogus"),
                          (missing, "missing keys: aux_performer.queries"),
                          (foreign, "missing top-level key"),
                          (other_width, r"positive prompt is \(1, 77, 16\), expected \(1, 77, 32\)")):
        w = _root_with(tiny, tmp_path / make.__name__, encoder=make)
        m = make_method("haodiff", w)
        with pytest.raises(core.CheckpointError, match=r"img_encoder_weights\.pth.*" + pattern):
            m.load("cpu", "float32")


def test_bad_lora_file_fails_clearly_through_evaluate(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    def extra(dst, src):
        sd = load_file(str(src))
        sd["unet.mid_block.bogus.lora_A.weight"] = next(iter(sd.values())).clone()
        sd["unet.mid_block.bogus.lora_B.weight"] = next(iter(sd.values())).T.contiguous()
        save_file(sd, str(dst))

    w = _root_with(tiny, tmp_path, lora=extra)
    ok, _, errs = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "pytorch_lora_weights.safetensors" in errs["haodiff"] and "mid_block.bogus" in errs["haodiff"]
    assert ok == {"identity"}


def test_options_are_checked():
    from benchkit.errors import ConfigError
    from benchkit.registry import resolve

    cls = resolve("method", "haodiff")
    for bad in ({"legacy_conv_lora": "drop"}, {"timestep": 1000}, {"lora_rank": 0}, {"cfg_scale": "x"},
                {"nope": 1}):
        with pytest.raises(ConfigError):
            cls(**bad)
    assert cls.task == "restore" and cls.scales == (1,) and cls.base_parts == ("vae", "unet", "scheduler")


def test_weights_status_lists_files_base_and_checkout(tiny, tmp_path):
    from benchkit.methods import method_weight_rows

    rows = {(r["name"], r["file"]): r for r in method_weight_rows(tiny["weights"])}
    for name in METHODS:
        for f in ("methods/haodiff/img_encoder_weights.pth", "methods/haodiff/pytorch_lora_weights.safetensors",
                  f"base model {BASE}/", "code checkout (gobunu/HAODiff)"):
            assert rows[(name, f)]["status"] == "unverified", (name, f)
        assert rows[(name, "code checkout (gobunu/HAODiff)")]["detail"] == f"commit {tiny['sha'][:12]}"
    rows = {(r["name"], r["file"]): r for r in method_weight_rows(tmp_path)}
    r = rows[("haodiff", "code checkout (gobunu/HAODiff)")]
    assert r["status"] == "missing" and "does not exist" in r["detail"]
    assert rows[("haodiff", "methods/haodiff/pytorch_lora_weights.safetensors")]["status"] == "missing"
    assert rows[("haodiff", f"base model {BASE}/")]["status"] == "missing"
