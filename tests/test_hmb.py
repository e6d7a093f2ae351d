"""Human motion blur (HAODiff): group table, eq. 1-2 exactness, morphology, Sapiens loader, case frequencies,
builder replay / cache / workers / bad inputs. Offline: segmentation via precomputed masks or a traced model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchkit.generators.base import SampleContext
from benchkit.seeding import rng_for


def _labels(h=160, w=160):
    lab = np.zeros((h, w), np.uint8)
    lab[20:60, 60:100] = 2  # Face_Neck
    lab[60:140, 30:55] = 10  # Left_Upper_Arm
    lab[60:140, 105:130] = 19  # Right_Upper_Arm
    lab[60:150, 55:105] = 21  # Torso
    return lab


def _img(h=160, w=160, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_group_table_covers_exactly_the_sapiens_classes():
    from benchkit.generators.hmb.parts import GROUPS, SAPIENS_CLASSES, group_ids

    assert len(SAPIENS_CLASSES) == 28 and SAPIENS_CLASSES[0] == "Background" and SAPIENS_CLASSES[27] == "Tongue"
    assert len(GROUPS) == 6
    used = set().union(*GROUPS.values())
    assert used == set(SAPIENS_CLASSES[1:])  # every class but Background, nothing else
    assert set(GROUPS["whole_body"]) == set(SAPIENS_CLASSES[1:])
    limbs = [g for g in GROUPS if g != "whole_body"]
    for a in limbs:  # the five part groups are disjoint
        for b in limbs:
            assert a == b or not set(GROUPS[a]) & set(GROUPS[b])
    assert group_ids("head") == (2, 3, 23, 24, 25, 26, 27)


def test_blend_exact_where_weight_is_0_or_1_and_formula_elsewhere():
    import cv2

    from benchkit.generators.hmb.pipeline import HMBGenerator, encode_weight
    from benchkit.generators.motion.fftblur import fft_blur
    from benchkit.generators.motion.pipeline import psf_for
    from benchkit.images import to_uint8

    gen = HMBGenerator()
    img, lab = _img(), _labels()
    ctx = SampleContext("k", 160, 160, {"sapiens": lab})
    checked = 0
    for seed in range(6):
        p = gen.sample(rng_for(seed, "k", "params"), ctx)
        assert p.group
        out = gen.apply(img, p, ctx)
        png = encode_weight(out)["hmb_weight"].data  # what the dataset stores
        w16 = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert w16.dtype == np.uint16 and np.array_equal(w16, out["hmb_weight"])
        psf = psf_for(p.blur, gen.config.motion.psf)
        assert np.array_equal(psf, out["psf"])
        blurred = fft_blur(img, psf, boundary="reflect")
        lq, _gt = out["lq"].astype(int), out["gt"].astype(int)
        zero, one = w16 == 0, w16 == 65535
        assert zero.any() and one.any()
        assert np.array_equal(lq[zero], to_uint8(img).astype(int)[zero])  # bit-exact input
        assert np.array_equal(lq[one], to_uint8(blurred).astype(int)[one])  # bit-exact FFT blur
        w = (w16.astype(np.float64) / 65535)[..., None]
        ref = np.clip(np.rint((w * blurred + (1 - w) * img) * 255), 0, 255)
        assert np.abs(lq - ref).max() <= 1  # float32 rounding at .5 boundaries only
        checked += 1
    assert checked == 6


def test_morphology_matches_an_independent_computation():
    import cv2
    from scipy import ndimage

    from benchkit.generators.hmb.parts import group_mask
    from benchkit.generators.hmb.pipeline import HMBParams, gaussian_ksize, hmb_weight
    from benchkit.generators.motion.pipeline import MotionBlurGenerator

    lab = _labels()
    blur = MotionBlurGenerator().sample(rng_for(0, "k", "x"), None)
    for group, er, dr, sigma in [("head", 2, 5, 3.0), ("left_upper_limb", 0, 3, 2.2), ("whole_body", 3, 0, 6.5),
                                 ("right_upper_limb", 1, 8, 4.0)]:
        p = HMBParams(group, er, dr, sigma, blur)
        m = group_mask(lab, group).astype(bool)
        if er:
            se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * er + 1,) * 2).astype(bool)
            m = ndimage.binary_erosion(m, structure=se, border_value=0)
        if dr:
            se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dr + 1,) * 2).astype(bool)
            m = ndimage.binary_dilation(m, structure=se, border_value=0)
        k = cv2.getGaussianKernel(gaussian_ksize(sigma), sigma, cv2.CV_64F)
        g = cv2.sepFilter2D(m.astype(np.float64), cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT_101)
        ref = np.rint(g / g.max() * 65535)
        got = hmb_weight(lab, p).astype(np.float64)
        assert np.abs(got - ref).max() <= 2, group  # float32 vs float64 Gaussian
        assert np.array_equal(got > 0, ref > 0)


def test_sapiens_loader_pre_and_post_processing(tmp_path, monkeypatch):
    import cv2
    import torch

    from benchkit.errors import UnavailableError
    from benchkit.fsio import sha256_file
    from benchkit.generators.hmb.segment import SapiensPass

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):  # official I/O contract: 1x3x1024x768 -> 1x28x512x384
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 28, 3, stride=2, padding=1)

        def forward(self, x):
            return self.conv(x)

    net = Tiny().eval()
    path = tmp_path / "sapiens_tiny_goliath_torchscript.pt2"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 1024, 768)), str(path))
    monkeypatch.setenv("BENCHKIT_SAPIENS_FILE", str(path))
    monkeypatch.delenv("BENCHKIT_TRUST_SHA256", raising=False)
    img = _img(90, 70, seed=3)
    with pytest.raises(UnavailableError, match="BENCHKIT_TRUST_SHA256"):
        SapiensPass().compute(img)  # not pinned, not trusted: refused before torch.jit.load
    monkeypatch.setenv("BENCHKIT_TRUST_SHA256", sha256_file(path))
    monkeypatch.setenv("BENCHKIT_SAPIENS_DEVICE", "cpu")
    got = SapiensPass().compute(img)
    # independent: RGB resize (per-channel, so BGR order does not matter), constants, our own bilinear
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    r = cv2.resize(u8, (768, 1024), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    x = (r - [123.5, 116.5, 103.5]) / [58.5, 57.0, 57.5]
    with torch.no_grad():
        logits = net(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)))[0].double().numpy()
    c, lh, lw = logits.shape
    assert (c, lh, lw) == (28, 512, 384)

    def coords(n_out, n_in):
        s = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
        i0 = np.minimum(np.floor(s).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    y0, y1, fy = coords(90, lh)
    x0, x1, fx = coords(70, lw)
    top = logits[:, y0][:, :, x0] * (1 - fx) + logits[:, y0][:, :, x1] * fx
    bot = logits[:, y1][:, :, x0] * (1 - fx) + logits[:, y1][:, :, x1] * fx
    up = top * (1 - fy[:, None]) + bot * fy[:, None]
    ref = up.argmax(0)
    assert got.shape == (90, 70) and got.dtype == np.uint8
    assert (got == ref).mean() >= 0.999  # float32 vs float64 ties only


def test_missing_sapiens_file_is_a_clear_error(tmp_path, monkeypatch):
    from benchkit.builders.base import build
    from benchkit.builders.hmb_synth import HMBSynthBuilder, HMBSynthConfig
    from benchkit.errors import UnavailableError

    monkeypatch.setenv("BENCHKIT_SAPIENS_FILE", str(tmp_path / "nope_torchscript.pt2"))
    src = tmp_path / "src"
    src.mkdir()
    import cv2

    cv2.imwrite(str(src / "a.png"), (np.ones((80, 80, 3)) * 128).astype(np.uint8))
    with pytest.raises(UnavailableError, match="nope_torchscript.pt2.*not found"):
        build(HMBSynthBuilder(HMBSynthConfig(size=64), src), tmp_path / "out", progress=False)


def test_first_order_case_frequencies_match_the_config():
    from benchkit.generators.hmb.pipeline import (
        FIRST_ORDER_CASES,
        HAODiffConfig,
        HAODiffGenerator,
    )

    probs = (0.15, 0.55, 0.30)
    gen = HAODiffGenerator(HAODiffConfig(first_order_probs=probs))
    ctx = SampleContext("k", 160, 160, {"sapiens": _labels()})
    n = 20000
    counts = dict.fromkeys(FIRST_ORDER_CASES, 0)
    for i in range(n):
        counts[gen.sample(rng_for(7, f"s{i}", "params"), ctx).case] += 1
    for name, p in zip(FIRST_ORDER_CASES, probs):
        bound = 5 * math.sqrt(p * (1 - p) / n)  # 5 binomial standard deviations (false alarm < 1e-6)
        assert abs(counts[name] / n - p) < bound, (name, counts)


def _masks_source(tmp_path):
    import cv2

    src, masks = tmp_path / "src", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"p{i}.png"), (_img(200, 180, seed=i) * 255).astype(np.uint8))
        cv2.imwrite(str(masks / f"p{i}.png"), _labels(200, 180))
    cv2.imwrite(str(src / "empty.png"), (_img(200, 180, seed=9) * 255).astype(np.uint8))
    cv2.imwrite(str(masks / "empty.png"), np.zeros((200, 180), np.uint8))  # no person
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return src, masks


def test_builder_replay_cache_workers_and_bad_items(tmp_path, monkeypatch):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.fsio import sha256_file
    from benchkit.generators.hmb import segment
    from benchkit.manifest import read_jsonl
    from benchkit.runner import replay

    src, masks = _masks_source(tmp_path)
    monkeypatch.setenv("BENCHKIT_HMB_MASKS", str(masks))
    monkeypatch.setenv("BENCHKIT_CACHE", str(tmp_path / "cache"))
    sets = ["size=128", "segmenter=masks", "haodiff.first_order_probs=[0,1,0]"]
    s1 = build(make_builder("hmb-synth", str(src), sets), tmp_path / "w1", seed=5, workers=1, progress=False)
    build(make_builder("hmb-synth", str(src), sets), tmp_path / "w2", seed=5, workers=2, progress=False)
    assert s1.produced == 4 and s1.failed == 1  # corrupt.png: a per-item failure
    fails = [json.loads(x) for x in (tmp_path / "w1" / "failures.jsonl").read_text().splitlines()]
    assert [f["key"] for f in fails] == ["corrupt"]

    def files(d):
        return {p.relative_to(d).as_posix(): sha256_file(p) for p in sorted(d.rglob("*"))
                if p.is_file() and p.suffix in (".png", ".npy")}

    assert files(tmp_path / "w1") == files(tmp_path / "w2")  # workers 1 vs 2: same bytes
    recs = {r["key"]: r for r in read_jsonl(tmp_path / "w1" / "manifest.jsonl")}
    assert recs["empty"]["meta"]["case"] == "none" and recs["empty"]["meta"]["hmb_boxes"] == []
    assert recs["p0"]["meta"]["case"] == "hmb" and recs["p0"]["meta"]["group"]
    assert recs["p0"]["meta"]["hmb_boxes"] and recs["p0"]["sources"][1]["aux"] == "masks"
    for key in recs:  # replay: byte-identical, reading the verified cached masks
        for name, (want, got) in replay(tmp_path / "w1", key).items():
            assert want == got, (key, name)
    card = (tmp_path / "w1" / "README.md").read_text()
    assert "part groups:" in card and "segmenter: `masks`" in card

    def boom(*a, **k):
        raise AssertionError("segmenter re-run")

    monkeypatch.setattr(segment.MasksPass, "compute_for", boom)
    s3 = build(make_builder("hmb-synth", str(src), sets), tmp_path / "w3", seed=6, workers=1, progress=False)
    assert s3.produced == 4  # a new seed reuses the cached masks
    # tampered cached mask: replay refuses
    aux = tmp_path / "w1" / recs["p0"]["sources"][1]["path"]
    aux.write_bytes(aux.read_bytes() + b"x")
    with pytest.raises(Exception, match="modified"):
        replay(tmp_path / "w1", "p0")


def test_no_person_rule_error(tmp_path, monkeypatch):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder

    src, masks = _masks_source(tmp_path)
    (src / "corrupt.png").unlink()
    monkeypatch.setenv("BENCHKIT_HMB_MASKS", str(masks))
    monkeypatch.setenv("BENCHKIT_CACHE", str(tmp_path / "cache"))
    sets = ["size=128", "segmenter=masks", "generator=hmb", "hmb.no_person=error"]
    s = build(make_builder("hmb-synth", str(src), sets), tmp_path / "o", seed=1, workers=1, progress=False)
    assert s.produced == 3 and s.failed == 1
    f = json.loads((tmp_path / "o" / "failures.jsonl").read_text().splitlines()[0])
    assert f["key"] == "empty" and "no person" in f["error"]


def test_packaged_pipelines_write_out_the_defaults():
    from benchkit.config import load_pipeline, to_plain
    from benchkit.generators.hmb.pipeline import HAODiffGenerator, HMBGenerator

    for name, cls in (("hmb", HMBGenerator), ("haodiff", HAODiffGenerator)):
        _n, gen, _block = load_pipeline(name)
        assert type(gen) is cls and to_plain(gen.config) == to_plain(cls.Config())
        assert gen.aux_passes == ("sapiens",)
