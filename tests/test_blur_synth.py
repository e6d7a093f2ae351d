"""blur-synth builder: patch keys, determinism across worker counts, replay, resume, small images."""

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.builders.base import build
from benchkit.builders.blur_synth import BlurSynthBuilder, BlurSynthConfig, patch_origins
from benchkit.datasets.build import make_builder
from benchkit.runner import replay


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    import cv2

    src = tmp_path_factory.mktemp("hq")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src / "a.png"), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    (src / "sub").mkdir()
    cv2.imwrite(str(src / "sub" / "b.jpg"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "tiny.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    return src


def _cfg(**kw):
    return BlurSynthConfig(**{"patch_size": 48, "stride": 32, **kw})


def _files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and p.name != "README.md"}


def test_patch_origins():
    assert patch_origins(100, 48, 32, True) == [0, 32, 52]
    assert patch_origins(100, 48, 32, False) == [0, 32]
    assert patch_origins(48, 48, 32, True) == [0]
    assert patch_origins(40, 48, 32, True) == []
    # DF2K-like image: ~34 patches per image, consistent with OSDD's 121K / 3,550
    assert len(patch_origins(2040, 512, 256, True)) * len(patch_origins(1356, 512, 256, True)) == 35


def test_jobs_keys_sorted(source):
    b = BlurSynthBuilder(_cfg(), source)
    keys = [j.key for j in b.jobs()]
    assert keys == sorted(keys)
    assert "a/y0000_x0052" in keys and "a/y0032_x0000" in keys and "sub/b/y0016_x0016" in keys
    assert len([k for k in keys if k.startswith("a/")]) == 2 * 3
    assert "tiny/y0000_x0000" in keys


def test_workers_identical_bytes_replay_and_resume(source, tmp_path):
    s1 = build(BlurSynthBuilder(_cfg(), source), tmp_path / "w1", seed=5, workers=1, progress=False)
    s2 = build(BlurSynthBuilder(_cfg(), source), tmp_path / "w2", seed=5, workers=2, progress=False)
    assert s1.total == 6 + 4 + 1 and s1.failed == 1 and s1.failures[0]["key"] == "tiny/y0000_x0000"
    assert "smaller than the 48x48 patch" in s1.failures[0]["error"]
    f1, f2 = _files(tmp_path / "w1"), _files(tmp_path / "w2")
    assert f1 == f2 and s1.fingerprint == s2.fingerprint
    assert "psf/sub/b/y0016_x0016.npy" in f1 and "lq/a/y0032_x0052.png" in f1
    recs = mf.read_manifest(tmp_path / "w1")
    rec = recs["a/y0032_x0052"]
    assert rec["patch"]["y0"] == 32 and rec["patch"]["x0"] == 52 and rec["sources"][0]["path"] == "a.png"
    assert rec["params"]["trajectory"]["noise_seed"] != recs["a/y0000_x0000"]["params"]["trajectory"]["noise_seed"]
    for key in ("a/y0032_x0052", "sub/b/y0000_x0016"):
        for name, (recorded, replayed) in replay(tmp_path / "w1", key).items():
            assert recorded == replayed, (key, name)
    s3 = build(BlurSynthBuilder(_cfg(), source), tmp_path / "w1", seed=5, workers=1, progress=False)
    assert s3.skipped == 10 and s3.produced == 0
    # gt is the exact source patch
    import cv2

    src = cv2.imread(str(source / "a.png"))
    gt = cv2.imread(str(tmp_path / "w1" / "gt" / "a" / "y0032_x0052.png"))
    np.testing.assert_array_equal(gt, src[32:80, 52:100])


def test_small_images_pad(source, tmp_path):
    b = make_builder("blur-synth", str(source), ["patch_size=48", "stride=32", "small_images=pad"])
    s = build(b, tmp_path / "pad", seed=0, workers=1, progress=False)
    assert s.failed == 0
    rec = mf.read_manifest(tmp_path / "pad")["tiny/y0000_x0000"]
    assert rec["patch"]["pad_tblr"] == [14, 14, 9, 9] and rec["patch"]["image_size"] == [20, 30]
    for recorded, replayed in replay(tmp_path / "pad", "tiny/y0000_x0000").values():
        assert recorded == replayed


def test_embedded_source_resolves():
    path = BlurSynthBuilder.resolve_source("embedded")
    b = make_builder("blur-synth", "embedded", ["patch_size=128", "stride=64"])
    assert b.source == path.resolve()
    keys = [j.key for j in b.jobs()]
    assert len(keys) == 9 * len(list(path.glob("*.png"))) and keys[0].endswith("/y0000_x0000")
    assert BlurSynthBuilder.resolve_source("/some/dir").as_posix() == "/some/dir"


def test_threading_backend_same_bytes(source, tmp_path):
    s1 = build(BlurSynthBuilder(_cfg(), source), tmp_path / "seq", seed=1, workers=1, progress=False)
    s2 = build(BlurSynthBuilder(_cfg(), source), tmp_path / "thr", seed=1, workers=2, backend="threading",
               progress=False)
    assert s1.fingerprint == s2.fingerprint
    assert _files(tmp_path / "seq") == _files(tmp_path / "thr")


def test_unreadable_image_is_a_failure_line(tmp_path):
    import cv2

    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "ok.png"), np.zeros((48, 48, 3), np.uint8))
    (src / "broken.png").write_bytes(b"not an image")
    s = build(BlurSynthBuilder(_cfg(), src), tmp_path / "out", seed=0, workers=1, progress=False)
    assert s.produced == 1 and s.failed == 1
    assert s.failures[0]["key"] == "broken/unreadable" and "broken.png" in s.failures[0]["path"]
