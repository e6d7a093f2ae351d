"""SinSR adapter on a stub checkout (benchkit.methods.tiny_sinsr) with tiny random weights, offline on CPU.

The stub has the official import paths and call signatures (``models.unet.UNetModelSwin``,
``models.script_util.create_gaussian_diffusion``, ``ldm.models.autoencoder.VQModelTorch``, ``configs/SinSR.yaml``)
with tiny models of benchkit's own; parity with the real official code is ``tools/parity/sinsr_parity.py``.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from adapter_checks import (REPO, benchkit_cli, check_evaluate_outputs, check_golden, check_harness_parity,
                            cli_run_fixture, evaluate_in_process, git_commit_all, load_outcome, make_method,
                            one_thread_fixture, seeded_ctx, stats)

GOLDEN = REPO / "tests" / "fixtures" / "sinsr_golden.json"


def _forget_checkout_modules():
    """The checkout's top-level packages (``models``, ``ldm``) stay imported; each test starts without them."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("models", "ldm")]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def clean_modules(monkeypatch):
    monkeypatch.delenv("BENCHKIT_SINSR_CODE", raising=False)
    _forget_checkout_modules()
    yield
    _forget_checkout_modules()


one_thread = one_thread_fixture()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Tiny weights + the stub checkout at <weights>/methods/sinsr/code, made a git clone; a toy x4 dataset."""
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.tiny_sinsr import write_tiny_weights

    root = tmp_path_factory.mktemp("sinsr")
    w = root / "weights"
    d = write_tiny_weights(w)
    code = d / "code"
    sha = git_commit_all(code)
    ds = write_toy_dataset(root / "ds", "x4", n=2, size=96)  # LR 24 px: padded to 64 (replicate fallback)
    return {"root": root, "weights": w, "dir": d, "code": code, "sha": sha, "ds": ds}


def _method(tiny, **opts):
    return make_method("sinsr", tiny["weights"], **opts)  # set up on tiny["dir"]


def _lq(h=40, w=50, seed=3):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


# ----------------------------------------------------------------------------------------------- chopping
def test_chop_starts_follow_the_official_splitter():
    from benchkit.methods.sinsr import chop_starts

    assert chop_starts(64, 64, 48) == [0]
    assert chop_starts(30, 64, 48) == [0]
    assert chop_starts(100, 64, 48) == [0, 36]  # 48 and 96 overrun -> both 36, kept once
    assert chop_starts(200, 64, 48) == [0, 48, 96, 136]
    assert chop_starts(1000, 512, 448) == [0, 448, 488]
    assert chop_starts(600, 256, 224) == [0, 224, 344]


def test_chopped_blends_uniformly_and_equals_a_single_pass_for_pointwise_functions():
    import torch

    from benchkit.methods.sinsr import chopped

    x = torch.rand(1, 3, 50, 37, generator=torch.Generator().manual_seed(0))
    calls = []

    def fn(p):  # each patch gets its own constant: the result is the mean over the covering patches
        calls.append(p.shape[-2:])
        return torch.full((1, 3, p.shape[-2] * 2, p.shape[-1] * 2), float(len(calls)))

    out = chopped(x, 20, 15, 2, fn).numpy()
    # independent reference: a count map over the official starts, row-major patch numbering
    hs, ws = [0, 15, 30], [0, 15, 17]  # 50: 0,15,30,45->30 ; 37: 0,15,30->17
    acc, cnt, k = np.zeros((100, 74)), np.zeros((100, 74)), 0
    for i in hs:
        for j in ws:
            k += 1
            acc[2 * i:2 * i + 40, 2 * j:2 * j + 40] += k
            cnt[2 * i:2 * i + 40, 2 * j:2 * j + 40] += 1
    assert len(calls) == 9 and all(tuple(c) == (20, 20) for c in calls)
    assert np.allclose(out[0, 0], acc / cnt, atol=1e-6)
    # a pointwise function: chopping changes nothing (up to the float rounding of the mean)
    up = lambda p: torch.nn.functional.interpolate(p, scale_factor=4, mode="nearest") ** 2 + 0.1  # noqa: E731
    assert torch.allclose(chopped(x, 16, 11, 4, up), up(x), atol=1e-6)
    assert torch.equal(chopped(x, 64, 48, 4, up), up(x))  # one patch: exactly the single call


# --------------------------------------------------------------------------------------------- the method
def test_load_info_and_reproducibility(tiny):
    import torch

    m = _method(tiny)
    assert m.availability() == (True, "")
    rng = torch.get_rng_state()
    m.load("cpu", "float32")
    try:
        info = m.info()
        assert info["stochastic"] is True and m.stochastic
        assert info["commit"] == tiny["sha"] and info["code_repo"] == "wyf0912/SinSR"
        assert info["chop"] == {"size": 512, "stride": 448} and info["pad_multiple"] == 64
        assert len(info["code_fingerprint"]) == 16
        lq = _lq()  # 40x50: reflect-padded to 64x64 (the stub UNet refuses anything else)
        a = m.restore([lq], [seeded_ctx(1)], 4)[0]
        b = m.restore([lq], [seeded_ctx(1)], 4)[0]
        c = m.restore([lq], [seeded_ctx(2)], 4)[0]
        assert a.shape == (160, 200, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert np.array_equal(a, b)
        assert np.abs(a - c).max() > 1e-2  # another seed, another prior noise
        small = m.restore([_lq(10, 13)], [seeded_ctx(1)], 4)[0]  # replicate fallback where reflect cannot reach
        assert small.shape == (40, 52, 3)
        assert torch.equal(torch.get_rng_state(), rng)  # the global RNG was never used
    finally:
        m.unload()
    assert m.model is None


def test_chopped_restore_matches_patchwise_reference(tiny):
    """Overlapping LR patches: each sampled with the next slice of the one generator, averaged uniformly."""
    import torch

    from benchkit.methods.sinsr import chop_starts

    lq = _lq(80, 56, seed=5)
    m = _method(tiny, chop_size=32, chop_stride=24)
    m.load("cpu", "float32")
    try:
        out = m.restore([lq], [seeded_ctx(7)], 4)[0]
        gen = seeded_ctx(7)["generator"]()
        x = torch.from_numpy(lq.transpose(2, 0, 1).copy())[None]
        acc, cnt = np.zeros((320, 224, 3)), np.zeros((320, 224, 1))
        with torch.no_grad():
            for i in chop_starts(80, 32, 24):
                for j in chop_starts(56, 32, 24):
                    p = m.sample_patch((x[:, :, i:i + 32, j:j + 32] - 0.5) / 0.5, gen)
                    acc[4 * i:4 * i + 128, 4 * j:4 * j + 128] += p[0].permute(1, 2, 0).double().numpy()
                    cnt[4 * i:4 * i + 128, 4 * j:4 * j + 128] += 1
        ref = np.clip(acc / cnt * 0.5 + 0.5, 0, 1)
        assert np.abs(out - ref).max() < 1e-5
        whole = _method(tiny, chop_size=256, chop_stride=200)
        whole.load("cpu", "float32")
        single = whole.restore([lq], [seeded_ctx(7)], 4)[0]
        assert np.abs(single - out).max() > 1e-2  # the chopped path really differs (patch noise, borders)
        default = _method(tiny)
        default.load("cpu", "float32")
        assert np.array_equal(default.restore([lq], [seeded_ctx(7)], 4)[0], single)  # below chop_size: one patch
    finally:
        m.unload()


def test_golden_outputs(tiny):
    m = _method(tiny)
    m.load("cpu", "float32")
    mc = _method(tiny, chop_size=32, chop_stride=24)
    mc.load("cpu", "float32")
    got = {}
    for name, meth in (("single", m), ("chopped", mc)):
        got[name] = stats(meth.restore([_lq(40, 50)], [seeded_ctx(1)], 4)[0])
    assert set(got) == {"single", "chopped"}
    check_golden(GOLDEN, got, rtol=2e-3, atol=2e-3)


def test_float16_is_the_official_precision_and_part_of_the_tag(tiny):
    lq = _lq()
    out, tags = {}, {}
    for dtype in ("float32", "float16"):
        m = _method(tiny)
        m.load("cpu", dtype)
        assert m.dtype == dtype
        assert m.autoencoder.quant_conv.weight.dtype.itemsize == (2 if dtype == "float16" else 4)
        assert m.model.input_blocks[0].weight.dtype.itemsize == (2 if dtype == "float16" else 4)
        out[dtype], tags[dtype] = m.restore([lq], [seeded_ctx(1)], 4)[0], m.tag()
    assert tags["float32"] != tags["float16"]
    assert np.abs(out["float32"] - out["float16"]).mean() < 0.02


def test_options_are_checked():
    from benchkit.errors import ConfigError
    from benchkit.registry import resolve

    cls = resolve("method", "sinsr")
    with pytest.raises(ConfigError, match="chop_stride"):
        cls(chop_size=300)
    with pytest.raises(ConfigError, match="chop_stride"):
        cls(chop_size=64, chop_stride=65)
    with pytest.raises(ConfigError, match="unknown options"):
        cls(tile=64)
    assert cls(chop_size=256).chop_stride == 224


# ---------------------------------------------------------------------------------------- through the CLI
cli_run = cli_run_fixture(("sinsr", "bicubic"), unset=("BENCHKIT_SINSR_CODE",), timeout=600)


def test_evaluate_cli(tiny, cli_run):
    _, run = cli_run
    check_evaluate_outputs(cli_run, tiny["ds"], ["sinsr"], 4, also_ok={"bicubic"}, seeded={"sinsr"})
    info = json.loads((run / "results.json").read_text())["methods"]["sinsr"]
    assert info["commit"] == tiny["sha"] and info["stochastic"] is True  # the checkout's git commit recorded
    m = _method(tiny)
    m.load("cpu", "float32")
    try:
        check_harness_parity(m, run, tiny["ds"], "sinsr", 4)  # the harness's seed
    finally:
        m.unload()


def test_weights_status_lists_files_and_checkout(tiny, tmp_path):
    r = benchkit_cli(["weights", "status", "--json", "--weights-root", str(tiny["weights"])],
                     unset=("BENCHKIT_SINSR_CODE",), timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {(x["name"], x["file"]): x for x in json.loads(r.stdout)["files"] if x["name"] == "sinsr"}
    assert rows[("sinsr", "methods/sinsr/SinSR_v1.pth")]["status"] == "unverified"
    assert rows[("sinsr", "methods/sinsr/autoencoder_vq_f4.pth")]["status"] == "unverified"
    co = rows[("sinsr", "code checkout (wyf0912/SinSR)")]
    assert co["status"] == "unverified" and co["detail"] == f"commit {tiny['sha'][:12]}"
    assert co["path"] == str(tiny["code"].resolve())
    assert not any(x["status"] == "unavailable" for x in rows.values())

    from benchkit.methods import method_weight_rows

    rows = {x["file"]: x for x in method_weight_rows(tmp_path) if x["name"] == "sinsr"}
    assert rows["methods/sinsr/SinSR_v1.pth"]["status"] == "missing"
    co = rows["code checkout (wyf0912/SinSR)"]
    assert co["status"] == "missing" and "BENCHKIT_SINSR_CODE" in co["detail"]


# ----------------------------------------------------------------------------------------------- failures
def _evaluate(tiny, w, tmp_path, forget=True):
    if forget:  # each call may use another copy of the code: a fresh process would not have it imported
        _forget_checkout_modules()
    return evaluate_in_process(tiny["ds"], w, tmp_path / "run", ["sinsr", "bicubic"])


def _root(tiny, tmp_path, code=True, weights=None):
    """A weights root with the tiny weights (or ``weights(dst_dir)``) and optionally a copy of the stub code."""
    w = tmp_path / "w"
    d = w / "methods" / "sinsr"
    d.mkdir(parents=True)
    for f in ("SinSR_v1.pth", "autoencoder_vq_f4.pth"):
        shutil.copy(tiny["dir"] / f, d / f)
    if weights is not None:
        weights(d)
    if code:
        shutil.copytree(tiny["code"], d / "code", ignore=shutil.ignore_patterns(".git"))
    return w, d


def test_missing_or_incomplete_checkout_is_skipped_with_the_fix(tiny, tmp_path, monkeypatch):
    w, d = _root(tiny, tmp_path, code=False)
    ok, skipped, _ = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "bicubic" in ok and "sinsr" not in ok
    assert "does not exist" in skipped["sinsr"] and str(d / "code") in skipped["sinsr"]
    assert "BENCHKIT_SINSR_CODE" in skipped["sinsr"] and "wyf0912/SinSR" in skipped["sinsr"]

    other = tmp_path / "not_sinsr"  # e.g. another method's clone: the expected modules are missing
    shutil.copytree(tiny["code"], other, ignore=shutil.ignore_patterns(".git"))
    (other / "models" / "unet.py").unlink()
    monkeypatch.setenv("BENCHKIT_SINSR_CODE", str(other))
    ok, skipped, _ = load_outcome(_evaluate(tiny, w, tmp_path / "b"))
    assert "lacks models/unet.py" in skipped["sinsr"] and "$BENCHKIT_SINSR_CODE" in skipped["sinsr"]
    assert "bicubic" in ok

    m = _method(tiny, code_dir=str(tmp_path / "absent"))  # the option wins over the env var
    assert not m.availability()[0] and "option code_dir" in m.availability()[1]
    assert m.info()["commit"] is None and m.info()["code_fingerprint"] is None


def test_wrong_checkout_contents_fail_at_load_and_the_rest_completes(tiny, tmp_path):
    w, d = _root(tiny, tmp_path)
    (d / "code" / "models" / "unet.py").write_text("class SomethingElse:\n    pass\n")
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path))
    assert "models.unet" in errors["sinsr"] and "UNetModelSwin" in errors["sinsr"]
    assert "bicubic" in ok
    unet = d / "code" / "models" / "unet.py"
    unet.write_text("# a dependency the environment lacks\nimport no_such_dependency_xyz\n")
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path / "b"))
    assert "no_such_dependency_xyz" in errors["sinsr"] and "requirements" in errors["sinsr"]
    (d / "code" / "configs" / "SinSR.yaml").write_text("model: {params: {}}\n")
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path / "c"))
    assert "SinSR.yaml" in errors["sinsr"] and "target" in errors["sinsr"]
    assert "bicubic" in ok


def test_shadowing_module_is_refused(tiny, tmp_path, monkeypatch):
    """A ``models`` package already imported from elsewhere must not be mistaken for the checkout's."""
    from benchkit.methods.checkout import CheckoutError

    m = _method(tiny)
    m.load("cpu", "float32")  # imports models/ldm from the session stub
    w, d = _root(tiny, tmp_path)  # another copy of the code: the first one shadows it in this process
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path, forget=False))
    assert "already imported" in errors["sinsr"] and str(tiny["code"]) in errors["sinsr"]
    assert "bicubic" in ok
    other = _method(tiny, code_dir=str(d / "code"))
    with pytest.raises(CheckoutError, match="already imported"):
        other.load("cpu", "float32")


def test_bad_weights_fail_clearly_and_the_rest_completes(tiny, tmp_path):
    import torch

    def swapped(d):  # the autoencoder file where the UNet file belongs: foreign keys
        shutil.copy(d / "autoencoder_vq_f4.pth", d / "SinSR_v1.pth")

    w, _ = _root(tiny, tmp_path, weights=swapped)
    _, _, errors = load_outcome(_evaluate(tiny, w, tmp_path))
    e = errors["sinsr"]
    assert "SinSR_v1.pth" in e and "missing keys" in e and "unexpected keys" in e and "decoder.0.weight" in e
    assert "autoencoder_vq_f4.pth: the VQ-f4" in e

    def truncated(d):
        data = (d / "autoencoder_vq_f4.pth").read_bytes()
        (d / "autoencoder_vq_f4.pth").write_bytes(data[: len(data) // 2])

    w, _ = _root(tiny, tmp_path / "b", weights=truncated)
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path / "b"))
    assert "autoencoder_vq_f4.pth" in errors["sinsr"] and "truncated" in errors["sinsr"]
    assert "bicubic" in ok

    def wrapped_and_prefixed(d):  # official training layout: {'state_dict': {'module.' + key: ...}, 'iters_start'}
        sd = torch.load(d / "SinSR_v1.pth", weights_only=True)
        torch.save({"iters_start": 5, "state_dict": {"module." + k: v for k, v in sd.items()}}, d / "SinSR_v1.pth")

    w, d = _root(tiny, tmp_path / "c", weights=wrapped_and_prefixed)
    ok, _, errors = load_outcome(_evaluate(tiny, w, tmp_path / "c"))
    assert "sinsr" in ok, errors

    def shape_mismatch(d):
        sd = torch.load(d / "SinSR_v1.pth", weights_only=True)
        sd["out.2.weight"] = torch.zeros(3, 4, 3, 3)
        torch.save(sd, d / "SinSR_v1.pth")

    w, _ = _root(tiny, tmp_path / "d", weights=shape_mismatch)
    _, _, errors = load_outcome(_evaluate(tiny, w, tmp_path / "d"))
    assert "out.2.weight" in errors["sinsr"] and "shape" in errors["sinsr"]
