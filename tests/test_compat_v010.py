"""Datasets written by benchkit 0.1.0 (tests/fixtures/v0_1_0, built at commit f30a822 by
tests/fixtures/make_v0_1_0.py) must keep replaying byte-identically: every key of every dataset."""

from pathlib import Path

import pytest

from benchkit import manifest as mf
from benchkit.runner import replay

FIX = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
DATASETS = ["realesrgan_x1", "realesrgan_x4", "realesrgan_x1_svblur", "f2s_d2", "motion_blur", "blur-synth"]


@pytest.mark.parametrize("name", DATASETS)
def test_v010_dataset_replays_byte_identically(name):
    d = FIX / name
    keys = sorted(mf.read_manifest(d))
    assert keys, f"fixture {d} has no samples"
    for key in keys:
        res = replay(d, key, source_override=FIX / "source")
        assert res, key
        for out, (recorded, replayed) in res.items():
            assert recorded == replayed, f"{name}/{key}/{out}: recorded {recorded}, replayed {replayed}"


def test_opencv_ipp_pinned_for_cross_cpu_replay():
    """``import benchkit`` pins OpenCV's IPP path to AVX2 (the fixture's bytes; AVX-512 IPP DFT rounds
    differently), and a value the user set wins."""
    import os
    import subprocess
    import sys

    code = "import benchkit, os; print(os.environ['OPENCV_IPP'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IPP"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "avx2"
    env["OPENCV_IPP"] = "sse42"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "sse42"
