"""Generators with context and cached auxiliary passes (architecture v2, "Generators with context").

A test-registered counting pass (``test_mask``: luminance > 0.5 as a 0/1 uint8 label map) and a tiny
generator that consumes it (``test_masked``: darkens the masked pixels by a sampled gain) check that the
pass runs once per source image, is reused for another seed in a new folder (shared cache), replays
byte-identically without running it, that a tampered cached file is refused, and that ``--workers 1``
and ``2`` give identical bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit import registry
from benchkit.builders.generator_producer import GeneratorProducer
from benchkit.errors import BenchkitError
from benchkit.generators.auxpass import AuxPass, cached_result
from benchkit.generators.base import Generator, SampleContext
from benchkit.images import write_png
from benchkit.params import Params
from benchkit.runner import replay, run_producer

CALLS: list[tuple] = []  # (shape, mean) per compute() call in this process


class LumaMask(AuxPass):
    name = "test_mask"
    version = "1"
    encoding = "png"

    def compute(self, img):
        CALLS.append((img.shape, float(img.mean())))
        return (img.mean(axis=2) > 0.5).astype(np.uint8)


@dataclass(frozen=True)
class MaskedConfig:
    gain_range: tuple = (0.2, 0.8)


@dataclass(frozen=True)
class MaskedParams(Params):
    gain: float


class MaskedGenerator(Generator):
    name = "test_masked"
    version = "1"
    Config = MaskedConfig
    aux_passes = ("test_mask",)
    roles = {"lq": "input", "gt": "target", "mask": "aux"}

    def sample(self, rng, ctx: SampleContext) -> MaskedParams:
        assert ctx.need("test_mask").shape == (ctx.height, ctx.width)
        return MaskedParams(float(rng.uniform(*self.config.gain_range)))

    def apply(self, img, params: MaskedParams, ctx: SampleContext | None = None) -> dict:
        from benchkit.images import to_uint8

        m = ctx.need("test_mask").astype(np.float32)[..., None]
        return {"gt": to_uint8(img), "lq": to_uint8(img * (1 - params.gain * m)),
                "mask": (ctx.need("test_mask") * 255).astype(np.uint8)}


@pytest.fixture()
def registered(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.AUX_PASSES, "test_mask", f"{__name__}:LumaMask")
    monkeypatch.setitem(registry.GENERATORS, "test_masked", f"{__name__}:MaskedGenerator")
    monkeypatch.setenv("BENCHKIT_CACHE", str(tmp_path / "cache"))
    CALLS.clear()
    return tmp_path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("aux-src")
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    for i in range(3):
        write_png(d / f"img{i}.png", np.stack([x / 47, y / 39, ((x + y + 7 * i) % 13) / 12], -1))
    (d / "sub").mkdir()
    write_png(d / "sub" / "img3.png", np.full((40, 48, 3), 0.25 * 3, np.float32))
    return d


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _build(source, out, seed=1, workers=1):
    gen = MaskedGenerator()
    s = run_producer(GeneratorProducer("test_masked", gen, source), out, seed=seed, workers=workers,
                     progress=False)
    assert s.failed == 0, s.failures
    return s


def test_pass_runs_once_per_image_and_is_recorded(registered, source):
    out = registered / "a"
    _build(source, out)
    assert len(CALLS) == 4  # once per source image
    spec = mf.read_spec(out)
    assert spec["aux_passes"] == [{"name": "test_mask", "version": "1", "model_sha256": "", "encoding": "png"}]
    assert spec["roles"] == {"lq": "input", "gt": "target", "mask": "aux"}
    recs = mf.read_manifest(out)
    assert sorted(recs) == ["img0", "img1", "img2", "sub/img3"]
    for key, rec in recs.items():
        src, aux = rec["sources"]
        assert src["path"].endswith(".png") and "aux" not in src
        assert aux["aux"] == "test_mask" and aux["version"] == "1" and aux["model_sha256"] == ""
        assert aux["path"] == f"aux/test_mask/{key}.png"
        f = out / aux["path"]
        import hashlib

        assert hashlib.sha256(f.read_bytes()).hexdigest() == aux["sha256"]
        # the cached mask is exactly the pass's result on the source image, and the generator used it
        import cv2

        mask = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        from benchkit.images import read_image

        img = read_image(source / src["path"])
        assert np.array_equal(mask, (img.mean(axis=2) > 0.5).astype(np.uint8))
        used = cv2.imread(str(out / rec["outputs"]["mask"]["path"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(used, mask * 255)
    # the all-0.75 image is fully masked; shared cache keyed by source content
    assert (registered / "cache" / "aux" / "test_mask@1" / "nomodel").is_dir()
    assert len(list((registered / "cache" / "aux" / "test_mask@1" / "nomodel").iterdir())) == 4


def test_rebuild_with_another_seed_reuses_cache_and_replays(registered, source):
    a, b = registered / "a", registered / "b"
    _build(source, a, seed=1)
    assert len(CALLS) == 4
    _build(source, b, seed=2)
    assert len(CALLS) == 4, "a rebuild with another seed into a new folder re-ran the pass"
    ra, rb = mf.read_manifest(a), mf.read_manifest(b)
    for key in ra:
        assert ra[key]["sources"] == rb[key]["sources"]  # same cached mask, recorded identically
        assert ra[key]["params"] != rb[key]["params"]  # but another seed
    assert _files(a / "aux") == _files(b / "aux")
    # resume: nothing recomputed, nothing rewritten
    s = run_producer(GeneratorProducer("test_masked", MaskedGenerator(), source), b, seed=2, progress=False)
    assert s.skipped == 4 and s.produced == 0 and len(CALLS) == 4
    # replay: byte-identical, from the dataset's cached file (the pass is not run)
    for key in ra:
        for name, (recorded, replayed) in replay(a, key).items():
            assert recorded == replayed, (key, name)
    assert len(CALLS) == 4
    # another cache (e.g. another machine) really recomputes: the counter can move
    os.environ["BENCHKIT_CACHE"] = str(registered / "cache2")
    _build(source, registered / "c", seed=1)
    assert len(CALLS) == 8
    assert _files(registered / "c") == _files(a)


def test_tampered_or_missing_aux_file_is_refused_on_replay(registered, source):
    out = registered / "a"
    _build(source, out)
    f = out / "aux" / "test_mask" / "img1.png"
    f.write_bytes(f.read_bytes() + b"x")
    with pytest.raises(BenchkitError, match=r"img1\.png.*modified.*sha256"):
        replay(out, "img1")
    for name, (recorded, replayed) in replay(out, "img0").items():  # the others still replay
        assert recorded == replayed
    f.unlink()
    with pytest.raises(BenchkitError, match=r"img1\.png.*missing"):
        replay(out, "img1")


def test_workers_1_and_2_identical_bytes(registered, source):
    _build(source, registered / "w1", workers=1)
    os.environ["BENCHKIT_CACHE"] = str(registered / "cache-w2")  # the workers compute it themselves
    _build(source, registered / "w2", workers=2)
    assert _files(registered / "w1") == _files(registered / "w2")
    assert len(list((registered / "cache-w2" / "aux" / "test_mask@1" / "nomodel").iterdir())) == 4


def test_context_need_names_missing_pass():
    ctx = SampleContext("k", 4, 4)
    with pytest.raises(BenchkitError, match="test_mask.*not computed"):
        ctx.need("test_mask")


def test_damaged_shared_cache_entry_is_recomputed(registered, tmp_path):
    p = LumaMask()
    img = np.zeros((6, 5, 3), np.float32)
    img[:3] = 0.9
    arr, rec = cached_result(p, img, "ab" * 32, tmp_path / "ds", "k", tmp_path / "c")
    assert len(CALLS) == 1 and arr.sum() == 15
    from benchkit.generators import auxpass

    auxpass._MEMO.entries = {}
    shared = auxpass.shared_cache_path(p, "ab" * 32, tmp_path / "c")
    shared.write_bytes(b"not a png")
    arr2, rec2 = cached_result(p, img, "ab" * 32, tmp_path / "ds", "k", tmp_path / "c")
    assert len(CALLS) == 2 and rec2 == rec and np.array_equal(arr, arr2)


def test_blur_synth_runs_the_pass_once_per_image_not_per_patch(registered, source, monkeypatch):
    """Builders on the shared producer get aux too: the mask of the whole image, cut like the patch."""
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.generators.motion.pipeline import MotionBlurGenerator

    monkeypatch.setattr(MotionBlurGenerator, "aux_passes", ("test_mask",))
    b = make_builder("blur-synth", str(source), ["patch_size=24", "stride=16"])
    s = build(b, registered / "bs", seed=3, progress=False)
    assert s.failed == 0 and s.produced == 4 * 6  # 2 x 3 patches per 40x48 image
    assert len(CALLS) == 4
    recs = mf.read_manifest(registered / "bs")
    assert {r["sources"][1]["path"] for r in recs.values()} == {f"aux/test_mask/{k}.png" for k in
                                                                 ("img0", "img1", "img2", "sub/img3")}
    for key, rec in recs.items():
        for name, (recorded, replayed) in replay(registered / "bs", key).items():
            assert recorded == replayed, (key, name)
    assert len(CALLS) == 4
