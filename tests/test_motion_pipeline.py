"""The motion_blur generator through benchkit/pipelines/motion_blur.yaml, degrade and replay."""

import subprocess
import sys

import numpy as np
import pytest

from benchkit.config import from_dict, load_pipeline, to_plain
from benchkit.errors import ConfigError
from benchkit.generators.base import SampleContext
from benchkit.generators.motion.pipeline import MotionBlurConfig, MotionBlurGenerator, MotionBlurParams
from benchkit.generators.motion.psf import psf_centroid


def test_yaml_writes_every_default():
    name, gen, block = load_pipeline("motion_blur")
    assert name == "motion_blur" and isinstance(gen, MotionBlurGenerator)
    assert to_plain(gen.config) == to_plain(MotionBlurConfig())
    assert to_plain(MotionBlurConfig()) == block["config"] | {}  # every key present explicitly
    with pytest.raises(ConfigError):
        from_dict(MotionBlurConfig, {"trajectory": {"max_lenght_range": [1, 2]}})
    with pytest.raises(ConfigError):
        from_dict(MotionBlurConfig, {"blur": {"boundary": "wrap"}})


def test_sample_apply_outputs():
    gen = MotionBlurGenerator()
    img = np.random.default_rng(0).random((48, 40, 3), dtype=np.float32)
    params = gen.sample(np.random.default_rng(1), SampleContext("k", 48, 40))
    assert MotionBlurParams.loads(params.dumps()) == params
    out = gen.apply(img, params, SampleContext("k", 48, 40))
    assert set(out) == {"gt", "lq", "psf"}
    assert out["gt"].dtype == np.uint8 and out["lq"].dtype == np.uint8 and out["lq"].shape == (48, 40, 3)
    psf = out["psf"]
    assert psf.dtype == np.float32 and psf.min() >= 0 and abs(float(psf.sum()) - 1) < 1e-6
    c = (psf.shape[0] - 1) / 2
    assert max(abs(v - c) for v in psf_centroid(psf)) < 0.5
    again = gen.apply(img, params, SampleContext("k", 48, 40))
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])
    assert not np.array_equal(out["lq"], out["gt"])


def test_zero_length_is_identity():
    cfg = from_dict(MotionBlurConfig, {"trajectory": {"max_length_range": [0.0, 0.0]}})
    gen = MotionBlurGenerator(cfg)
    img = (np.random.default_rng(0).integers(0, 256, (20, 24, 3)) / 255.0).astype(np.float32)
    ctx = SampleContext("k", 20, 24)
    out = gen.apply(img, gen.sample(np.random.default_rng(0), ctx), ctx)
    np.testing.assert_array_equal(out["lq"], out["gt"])


def test_degrade_and_replay_cli(tmp_path, cli_env):
    import cv2

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(src / f"im{i}.png"), rng.integers(0, 256, (40, 52, 3), dtype=np.uint8))
    out = tmp_path / "out"
    run = lambda *a: subprocess.run([sys.executable, "-m", "benchkit", *a], env=cli_env, capture_output=True,  # noqa
                                    text=True)
    r = run("degrade", "--pipeline", "motion_blur", "--no-progress", str(src), str(out))
    assert r.returncode == 0, r.stderr
    for name in ("gt/im0.png", "lq/im1.png", "psf/im0.npy"):
        assert (out / name).is_file()
    assert np.load(out / "psf" / "im1.npy").dtype == np.float32
    r = run("replay", str(out), "im1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("identical") == 3
