"""Real-ESRGAN through the CLI: replay byte-identical, --workers 1 == --workers 2, bad inputs isolated."""

import json

import cv2
import numpy as np
import pytest

from benchkit import manifest as mf
from tests.conftest import run_cli


def _write_sources(folder, n=5, size=72):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((size, size + 8 * i, 3)) * 255).astype(np.uint8), (0, 0), 1.2)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return folder


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("resr_cli")
    src = _write_sources(root / "src")
    w1, w2 = root / "w1", root / "w2"
    run_cli(["degrade", str(src), str(w1), "--pipeline", "realesrgan_x1", "--seed", "3", "--workers", "1",
             "--no-progress"])
    run_cli(["degrade", str(src), str(w2), "--pipeline", "realesrgan_x1", "--seed", "3", "--workers", "2",
             "--no-progress"])
    return src, w1, w2


def test_workers_1_and_2_write_identical_bytes(built):
    _src, w1, w2 = built
    f1, f2 = _files(w1), _files(w2)
    assert set(f1) == set(f2)
    assert f1["manifest.jsonl"] == f2["manifest.jsonl"]
    for k in f1:
        assert f1[k] == f2[k], k
    recs = mf.read_manifest(w1)
    assert len(recs) == 5 and all(set(r["outputs"]) == {"gt", "lq"} for r in recs.values())
    p = recs["img0"]["params"]
    assert p["__type__"] == "realesrgan.RealESRGANParams" and "seed" in p["noise1"]  # stable name, not a path


def test_replay_is_byte_identical_through_the_cli(built):
    _src, w1, _w2 = built
    for key in ("img0", "img3"):
        proc = run_cli(["replay", str(w1), key])
        assert proc.stdout.count("identical") == 2 and "DIFFERENT" not in proc.stdout


def test_resume_skips_finished_samples(built):
    src, w1, _ = built
    before = _files(w1)
    proc = run_cli(["degrade", str(src), str(w1), "--pipeline", "realesrgan_x1", "--seed", "3", "--no-progress"])
    assert "0 produced, 5 already done" in proc.stdout
    assert _files(w1) == before


def test_bad_inputs_fail_per_file_and_the_rest_completes(tmp_path):
    src = _write_sources(tmp_path / "src", n=2)
    good = cv2.imread(str(src / "img0.png"))
    data = (src / "img1.png").read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    (src / "empty.png").write_bytes(b"")
    cv2.imwrite(str(src / "deep16.png"), good.astype(np.uint16) * 257)  # 16-bit: /65535, documented
    cv2.imwrite(str(src / "gray.png"), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))  # replicated to RGB
    cv2.imwrite(str(src / "rgba.png"), cv2.cvtColor(good, cv2.COLOR_BGR2BGRA))  # alpha dropped
    cv2.imwrite(str(src / "tiny.png"), good[:16, :16])  # smaller than the 21 px kernel
    out = tmp_path / "out"
    proc = run_cli(["degrade", str(src), str(out), "--pipeline", "realesrgan_x1", "--no-progress"], check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    fails = {r["key"]: r for r in mf.read_jsonl(out / mf.FAILURES)}
    assert set(fails) == {"truncated", "empty", "tiny"}
    assert "empty" in fails["empty"]["error"] and fails["empty"]["path"].endswith("empty.png")
    assert "decode" in fails["truncated"]["error"]
    assert "smaller than" in fails["tiny"]["error"] and "16x16" in fails["tiny"]["error"]
    recs = mf.read_manifest(out)
    assert set(recs) == {"img0", "img1", "deep16", "gray", "rgba"}
    # gray input -> replicated channels -> gt is gray too; rgba -> same pixels as the opaque source
    gt_gray = cv2.imread(str(out / recs["gray"]["outputs"]["gt"]["path"]))
    assert np.array_equal(gt_gray[..., 0], gt_gray[..., 2])
    gt_rgba = cv2.imread(str(out / recs["rgba"]["outputs"]["gt"]["path"]))
    gt_img0 = cv2.imread(str(out / recs["img0"]["outputs"]["gt"]["path"]))
    assert np.array_equal(gt_rgba, gt_img0)
    spec = json.loads((out / mf.SPEC).read_text())
    assert spec["n_failed"] == 3 and spec["complete"] is False
