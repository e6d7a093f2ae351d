"""Metric catalog, lookup, settings and weights-root resolution (no pyiqa import needed)."""

import os
import subprocess
import sys

import pytest

from benchkit.errors import ConfigError, UnknownNameError
from benchkit.metrics import MetricInfo, get_metric, list_metrics, weights_root
from benchkit.registry import METRICS

IN_SCOPE = {"hmbr", "psnr", "ssim", "psnr_rgb", "ssim_rgb", "lpips", "dists", "topiq_fr", "fid", "msswd",
            "clipiqa", "musiq", "maniqa", "niqe", "liqe", "ilniqe", "topiq_nr", "hyperiqa", "tres",
            "arniqa", "qalign", "idscore"}
LOWER_BETTER = {"lpips", "dists", "fid", "niqe", "ilniqe", "msswd", "hmbr"}


def test_catalog_matches_registry_and_scope():
    names = [m.name for m in list_metrics()]
    assert len(names) == len(set(names))
    assert set(names) == IN_SCOPE == set(METRICS)
    for m in list_metrics():
        assert isinstance(m, MetricInfo)
        assert m.kind in ("FR", "NR", "dataset")
        assert m.higher_is_better == (m.name not in LOWER_BETTER), m.name
        assert m.input_range == "[0,1] RGB" and m.version and m.description
        if m.backend == "pyiqa":
            assert m.settings["pyiqa_name"] != "msswd"  # pyiqa's msswd is a different, learned metric
        for w in m.weights:
            assert w.startswith(("hub/pyiqa/", "hub/checkpoints/", "hub/clip/", "huggingface/hub/models--", "faces/"))
    weight_free = {m.name for m in list_metrics() if not m.weights}
    # hmbr: its detector is the user's file, named by the `weights` setting (not a catalogued download)
    assert weight_free == {"psnr", "ssim", "psnr_rgb", "ssim_rgb", "msswd", "hmbr"}
    assert {m.name: m.kind for m in list_metrics()}["fid"] == "dataset"


def test_info_is_frozen_and_settings_read_only():
    info = list_metrics()[0]
    with pytest.raises(Exception):
        info.name = "x"
    with pytest.raises(TypeError):
        info.settings["crop_border"] = 3


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError) as e:
        get_metric("lpip")
    assert "lpips" in str(e.value)


def test_settings_override_and_validation():
    m = get_metric("psnr", crop_border=4)
    assert m.info.settings["crop_border"] == 4 and m.info.settings["color_space"] == "ycbcr"
    assert get_metric("psnr").info.settings["crop_border"] == 0
    with pytest.raises(ConfigError):
        get_metric("psnr", no_such_setting=1)


def test_weights_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCHKIT_WEIGHTS", raising=False)
    assert weights_root() == (tmp_path.home() / ".cache/benchkit/weights").absolute()
    monkeypatch.setenv("BENCHKIT_WEIGHTS", str(tmp_path / "env"))
    assert weights_root() == tmp_path / "env"
    assert weights_root(str(tmp_path / "cli")) == tmp_path / "cli"


def test_import_stays_light():
    code = ("import sys, benchkit.metrics as m; m.list_metrics(); x = m.get_metric('lpips'); "
            "x.availability(); "
            "heavy = [k for k in ('torch', 'pyiqa', 'numpy', 'cv2', 'pandas') if k in sys.modules]; "
            "print(heavy)")
    env = dict(os.environ, BENCHKIT_WEIGHTS="/nonexistent-benchkit-root")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_non_finite_result_raises():
    from benchkit.errors import BenchkitError
    from benchkit.metrics.base import Metric

    class Broken(Metric):
        def availability(self):
            return True, ""

        def _compute(self, dists, refs):
            return [float("nan")] * len(dists)

    import numpy as np

    from benchkit.metrics import metric_info

    m = Broken(metric_info("psnr"))
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(BenchkitError, match="nan"):
        m.score(img, img)
