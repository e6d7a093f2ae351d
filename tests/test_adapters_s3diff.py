"""S3Diff adapter (``s3diff``, ``s3diff-official``) on tiny random weights, offline on CPU.

The module fixture writes a tiny SD-Turbo-like folder and the S3Diff files with the official save recipe
(:mod:`benchkit.methods.onestep.tiny_s3diff`); the adapter loads them strictly and restores through
``benchkit evaluate``. Parity with the official code: ``tools/parity/s3diff_parity.py`` (developer-run).
"""

from __future__ import annotations

import datetime
import os
import shutil

import numpy as np
import pytest
from adapter_checks import (REPO, check_evaluate_outputs, check_golden, check_mode_seeds_and_parity, cli_run_fixture,
                            evaluate_in_process, float16_and_float32, load_outcome, loaded, make_method,
                            one_thread_fixture, stats)

METHODS = ("s3diff", "s3diff-official")
GOLDEN = REPO / "tests" / "fixtures" / "s3diff_golden.json"
one_thread = one_thread_fixture()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.onestep.tiny_s3diff import write_tiny_weights

    root = tmp_path_factory.mktemp("s3diff")
    w = root / "weights"
    wdir = write_tiny_weights(w)
    assert wdir == w / "methods" / "s3diff"
    ds = write_toy_dataset(root / "ds", "x4", n=2, size=40)
    return {"root": root, "weights": w, "ds": ds}


def _lq(h=10, w=13):
    return np.random.default_rng(3).random((h, w, 3)).astype(np.float32)


def test_block_ids_follow_the_official_assignment():
    from benchkit.methods.onestep.s3diff import unet_block_id, vae_block_id

    assert unet_block_id("down_blocks.2.attentions.0.proj_in") == 2
    assert unet_block_id("mid_block.resnets.1.conv1") == 4
    assert unet_block_id("up_blocks.3.resnets.0.conv_shortcut") == 8
    assert unet_block_id("conv_out") == 9
    assert vae_block_id("encoder.down_blocks.1.downsamplers.0.conv") == 1
    assert vae_block_id("encoder.mid_block.attentions.0.to_q") == 4
    assert vae_block_id("encoder.conv_in") == vae_block_id("encoder.conv_out") == 5


def test_strict_load_wires_every_lora_layer(tiny):
    import torch

    m = make_method("s3diff", tiny["weights"])
    assert m.availability() == (True, "")
    m.load("cpu", "float32")
    try:
        md = m.model
        # every LoRA layer of both models is modulated, and every block row is used by the tiny models
        assert set(md.unet_layers.values()) == set(range(10)) and len(md.unet_layers) == 164
        assert set(md.vae_layers.values()) == set(range(6)) and all(n.startswith("encoder.")
                                                                      for n in md.vae_layers)
        ckpt = torch.load(tiny["weights"] / "methods/s3diff/s3diff.pkl", weights_only=True)
        sd = md.unet.state_dict()
        for k, v in ckpt["state_dict_unet"].items():  # LoRA weights and conv_in copied exactly
            assert torch.equal(sd[k], v), k
        assert md.unet.peft_config["default"].lora_alpha == 8 and md.vae.peft_config["vae_skip"].r == 4
        assert torch.equal(md.modulation.w, ckpt["w"])
        scores = m.set_degradation(torch.from_numpy(_lq().transpose(2, 0, 1).copy())[None])
        assert scores.shape == (1, 2) and bool(((scores > 0) & (scores < 1)).all())
        assert md.mod_store["unet"].shape == (1, 10, 8, 8) and md.mod_store["vae"].shape == (1, 6, 4, 4)
        info = m.info()
        assert info["base_model"] == "sd-turbo" and info["options"]["guidance_scale"] == 1.07
        assert info["options"]["color_fix"] == "wavelet" and set(info["weights"]) == {"s3diff.pkl", "de_net.pth"}
    finally:
        m.unload()


def test_modulated_lora_equals_peft_lora_under_identity(tiny):
    """The modulated forward reduces to peft's own LoRA forward when every block matrix is the identity,
    differs from it otherwise, and matches a hand-written reference on one Linear and one Conv2d layer."""
    import torch
    from diffusers import UNet2DConditionModel
    from torch.nn import functional as F

    from benchkit.methods.onestep import core
    from benchkit.methods.onestep.s3diff import install_modulation, unet_block_id
    from benchkit.methods.onestep.tiny import _randomize_lora
    from benchkit.methods.onestep.tiny_s3diff import UNET_TARGETS

    unet = UNet2DConditionModel.from_pretrained(tiny["weights"] / "base-models" / "sd-turbo", subfolder="unet",
                                                local_files_only=True).eval()
    unet.add_adapter(core.lora_config(4, UNET_TARGETS))
    _randomize_lora(unet, torch.Generator().manual_seed(0), std=0.1)
    g = torch.Generator().manual_seed(1)
    z, emb = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 77, 32, generator=g)
    t = torch.tensor([999])
    with torch.no_grad():
        plain = unet(z, t, encoder_hidden_states=emb).sample
        unet.disable_adapters()
        no_lora = unet(z, t, encoder_hidden_states=emb).sample
        unet.enable_adapters()
    store = {"unet": torch.eye(4).expand(1, 10, 4, 4).clone()}
    ids = install_modulation(unet, store, "unet", unet_block_id)
    assert len(ids) == 164
    with torch.no_grad():
        ident = unet(z, t, encoder_hidden_states=emb).sample
        store["unet"] = torch.randn(1, 10, 4, 4, generator=g)
        modded = unet(z, t, encoder_hidden_states=emb).sample
    assert (plain - no_lora).abs().max() > 1e-2  # the LoRA weights matter at all
    assert torch.allclose(ident, plain, atol=1e-5), (ident - plain).abs().max()
    assert (modded - plain).abs().max() > 1e-2

    mods = dict(unet.named_modules())
    for name in ("down_blocks.1.attentions.0.proj_in", "up_blocks.2.resnets.0.conv1"):
        layer, m = mods[name], store["unet"][:, unet_block_id(name)]
        a, b, s = layer.lora_A["default"].weight, layer.lora_B["default"].weight, layer.scaling["default"]
        assert s == 2.0  # lora_alpha 8 / r 4
        with torch.no_grad():
            if isinstance(layer.base_layer, torch.nn.Linear):
                x = torch.randn(1, 5, layer.base_layer.in_features, generator=g)
                ref = layer.base_layer(x) + F.linear(F.linear(x, a) @ m, b) * s
            else:
                x = torch.randn(1, layer.base_layer.in_channels, 6, 6, generator=g)
                h = F.conv2d(x, a, padding=1)
                ref = layer.base_layer(x) + F.conv2d(torch.einsum("bkhw,bkr->brhw", h, m), b) * s
            assert torch.allclose(layer(x), ref, atol=1e-5), name


cli_run = cli_run_fixture(METHODS, scope="module")


def test_evaluate_cli_restores_both_modes(tiny, cli_run):
    check_evaluate_outputs(cli_run, tiny["ds"], METHODS, 4)


def test_modes_determinism_harness_parity_and_golden(tiny, cli_run):
    lq = _lq()
    golden = {}
    for name in METHODS:
        with loaded(name, tiny["weights"]) as m:  # seed_diff: another seed, another latent sample
            golden[name] = stats(check_mode_seeds_and_parity(m, name, lq, 4, cli_run, tiny["ds"], seed_diff=1e-3))
    assert set(golden) == set(METHODS)
    check_golden(GOLDEN, golden, rtol=2e-3, atol=2e-3)


def _extra_key(ckpt, de):
    ckpt["state_dict_unet"]["bogus.lora_A.weight"] = __import__("torch").zeros(2, 2)


def _missing_key(ckpt, de):
    del ckpt["state_dict_unet_fuse_mlp"]["bias"]


def _non_tensor(ckpt, de):
    ckpt["state_dict_vae_de_mlp"]["fn"] = datetime.date(2020, 1, 1)  # not a tensor: never unpickled


def _de_wrong_shape(ckpt, de):
    de["conv_first.0.weight"] = de["conv_first.0.weight"][:32]


BAD = {  # case -> (edit of (checkpoint, de_net state dict), file, text the error must contain)
    "extra_key": (_extra_key, "s3diff.pkl", "bogus.lora_A.weight"),
    "missing_key": (_missing_key, "s3diff.pkl", "missing keys: bias"),
    "non_tensor": (_non_tensor, "s3diff.pkl", "other than tensors"),
    "truncated": ("truncate", "s3diff.pkl", "truncated"),
    "de_wrong_shape": (_de_wrong_shape, "de_net.pth", "conv_first.0.weight (32, 3, 3, 3)"),
    "no_de_net": ("absent", "de_net.pth", "missing weight file(s) de_net.pth"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_fail_clearly_and_the_rest_completes(tiny, tmp_path, case):
    import torch

    edit, fname, text = BAD[case]
    w = tmp_path / "w"
    (w / "base-models").mkdir(parents=True)
    os.symlink(tiny["weights"] / "base-models" / "sd-turbo", w / "base-models" / "sd-turbo")
    src, dst = tiny["weights"] / "methods" / "s3diff", w / "methods" / "s3diff"
    shutil.copytree(src, dst)
    if edit == "truncate":
        data = (src / fname).read_bytes()
        (dst / fname).write_bytes(data[: len(data) // 2])
    elif edit == "absent":
        (dst / fname).unlink()
    else:
        ckpt = torch.load(src / "s3diff.pkl", weights_only=True)
        de = torch.load(src / "de_net.pth", weights_only=True)
        edit(ckpt, de)
        torch.save(ckpt, dst / "s3diff.pkl")
        torch.save(de, dst / "de_net.pth")
    ok, skipped, errs = load_outcome(evaluate_in_process(tiny["ds"], w, tmp_path / "run", ["s3diff", "bicubic"]))
    errs.update(skipped)
    assert fname in errs["s3diff"] and text in errs["s3diff"], errs["s3diff"]
    assert ok == {"bicubic"}


def test_missing_base_model_is_named(tiny, tmp_path, monkeypatch):
    from benchkit.methods.onestep import core

    monkeypatch.delenv(core.BASE_ENV, raising=False)
    w = tmp_path / "w"
    shutil.copytree(tiny["weights"] / "methods" / "s3diff", w / "methods" / "s3diff")
    ok, why = make_method("s3diff-official", w).availability()
    assert not ok and "sd-turbo" in why and core.BASE_ENV in why


def test_float16_close_to_float32(tiny):
    def in_dtype(m, dtype):
        assert m.model.unet.dtype.itemsize == (2 if dtype == "float16" else 4)

    out = float16_and_float32("s3diff", tiny["weights"], _lq(), 4, each=in_dtype)  # tags differ
    assert np.abs(out["float32"] - out["float16"]).max() < 0.05
