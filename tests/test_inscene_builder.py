"""InScene builder: each filter stage on constructed images (recorded stage + reason), the offline build of the
embedded gallery with the wheel-shipped detector and iqa_filter=false, per-item errors naming the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchkit.builders.inscene import InSceneBuilder, InSceneConfig, parse_rejection
from benchkit.errors import MissingSourceError, UnavailableError
from benchkit.runner import Sample, SampleFailure
from conftest import run_cli

SMALL = dict(min_short_side=300, crop_size=256, iqa_filter=False, degradation="none")


def _photo(name):
    import cv2

    from benchkit.embedded import EMBEDDED_IMAGES, package_file

    pkg, rel = {n: (p, r) for n, p, r in EMBEDDED_IMAGES}[name]
    return cv2.imread(str(package_file(pkg, rel)))  # BGR uint8


def _write(path, bgr):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), bgr)
    return path


def _run_one(tmp_path, bgr, ident="person", name="img.png", **cfg):
    gallery = tmp_path / "gallery"
    _write(gallery / ident / name, bgr)
    b = InSceneBuilder(InSceneConfig(**{**SMALL, **cfg}), gallery)
    jobs = b.jobs()
    assert len(jobs) == 1
    (item,) = list(b.produce(jobs[0], 0))
    return b, item


def _rejection(item):
    assert isinstance(item, SampleFailure), item
    p = parse_rejection(item.problem)
    assert p is not None, item.problem
    return p


def test_stage1_short_side(tmp_path):
    _, item = _run_one(tmp_path, _photo("chelsea"), min_short_side=301)  # 451 x 300
    stage, reason, detail = _rejection(item)
    assert (stage, reason) == ("1", "short_side") and "300 px < 301" in detail


def test_stage1_no_face_then_pass(tmp_path):
    stage, reason, _ = _rejection(_run_one(tmp_path, _photo("coffee"))[1])
    assert (stage, reason) == ("1", "no_face")
    b, item = _run_one(tmp_path / "ok", _photo("grace_hopper"))
    assert isinstance(item, Sample)
    gt = item.outputs["gt"]
    assert gt.shape == (256, 256, 3) and gt.dtype == np.uint8 and "lq" not in item.outputs
    meta = item.fields["meta"]
    x0, y0, x1, y1 = meta["face_box"]
    assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256  # the whole face box is inside the crop
    assert np.asarray(meta["landmarks"]).shape == (5, 2)
    assert meta["resolution"] == [600, 512] and meta["identity"] == "person" and meta["detector"] == "mediapipe"
    assert meta["crop"]["resized"] == [300, 256] and len(meta["detector_sha256"]) == 64


def test_stage2_small_face(tmp_path):
    # bus.jpg: people far from the camera, faces ~0.4% of a 384 px crop
    _, item = _run_one(tmp_path, _photo("bus"), min_short_side=400, crop_size=384)
    stage, reason, detail = _rejection(item)
    assert (stage, reason) == ("2", "small_face") and "< 1%" in detail
    # the same image passes with a lower threshold; a close-up fails a higher one
    _, item = _run_one(tmp_path / "ok", _photo("bus"), min_short_side=400, crop_size=384, min_face_fraction=0.001)
    assert isinstance(item, Sample) and item.fields["meta"]["face_fraction"] < 0.01
    _, item = _run_one(tmp_path / "hi", _photo("astronaut"), min_face_fraction=0.5)
    assert _rejection(item)[:2] == ("2", "small_face")


def test_stage2_blurry(tmp_path):
    import cv2

    sharp = _photo("astronaut")
    _, item = _run_one(tmp_path, sharp)
    assert isinstance(item, Sample)
    lv = item.fields["meta"]["laplacian_var"]
    assert lv > 100
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    _, item = _run_one(tmp_path / "b", blurred)
    stage, reason, detail = _rejection(item)
    assert (stage, reason) == ("2", "blurry") and "variance of the Laplacian" in detail and "< 100" in detail


class _FakeIQA:
    def __init__(self, v):
        self.v = v

    def score(self, img):
        assert img.dtype == np.float32 and img.shape == (256, 256, 3)
        return self.v


def test_stage3_iqa_thresholds(tmp_path):
    gallery = tmp_path / "g"
    _write(gallery / "p" / "a.png", _photo("astronaut"))
    b = InSceneBuilder(InSceneConfig(**{**SMALL, "iqa_filter": True}), gallery)
    (job,) = b.jobs()
    b._rt["iqa"] = {"musiq": _FakeIQA(70.0), "clipiqa": _FakeIQA(0.5), "maniqa": _FakeIQA(0.45)}
    (item,) = list(b.produce(job, 0))
    stage, reason, detail = _rejection(item)
    assert (stage, reason) == ("3", "iqa") and "clipiqa 0.5000 < 0.65" in detail and "musiq" not in detail
    b._rt["iqa"]["clipiqa"] = _FakeIQA(0.7)
    (item,) = list(b.produce(job, 0))
    assert isinstance(item, Sample) and item.fields["meta"]["iqa"] == {"musiq": 70.0, "clipiqa": 0.7, "maniqa": 0.45}


def test_stage3_without_weights_stops_and_lists_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHKIT_WEIGHTS", str(tmp_path / "weights"))
    gallery = tmp_path / "g"
    _write(gallery / "p" / "a.png", _photo("astronaut"))
    b = InSceneBuilder(InSceneConfig(**{**SMALL, "iqa_filter": True}), gallery)
    with pytest.raises(UnavailableError) as e:
        b.check_source()
    msg = str(e.value)
    assert "musiq_koniq_ckpt-e95806b9.pth" in msg and "RN50.pt" in msg and "MANIQA_PIPAL" in msg
    assert "iqa_filter=false" in msg


def test_identity_stage_with_reference(tmp_path):
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 16, stride=16)
            self.fc = torch.nn.Linear(4 * 49, 512)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    torch.manual_seed(0)
    onnx_path = tmp_path / "af.onnx"
    torch.onnx.export(Tiny().eval(), torch.zeros(1, 3, 112, 112), str(onnx_path), input_names=["data"],
                      dynamic_axes={"data": {0: "n"}}, dynamo=False)
    gallery = tmp_path / "g"
    _write(gallery / "p" / "a.png", _photo("grace_hopper"))
    _write(gallery / "p" / "reference.png", _photo("grace_hopper"))
    cfg = {**SMALL, "arcface_file": str(onnx_path)}
    b = InSceneBuilder(InSceneConfig(**cfg), gallery)
    (job,) = b.jobs()  # the reference is not a sample
    (item,) = list(b.produce(job, 0))
    sim = item.fields["meta"]["arcface_ref_similarity"]
    assert 0.5 < sim <= 1.0
    b2 = InSceneBuilder(InSceneConfig(**{**cfg, "min_reference_similarity": min(1.0, sim + 1e-3)}), gallery)
    stage, reason, _ = _rejection(list(b2.produce(job, 0))[0])
    assert (stage, reason) == ("identity", "identity")
    with pytest.raises(ValueError, match="needs arcface_file"):
        InSceneConfig(min_reference_similarity=0.55)
    b3 = InSceneBuilder(InSceneConfig(**{**SMALL, "arcface_file": str(tmp_path / "missing.onnx")}), gallery)
    with pytest.raises(UnavailableError, match=r"missing\.onnx"):
        b3.check_source()


def test_source_problems_and_corrupt_images(tmp_path, cli_env):
    gallery = tmp_path / "gallery"
    _write(gallery / "alice" / "good.png", _photo("astronaut"))
    (gallery / "alice" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    (gallery / "bob").mkdir()
    _write(gallery / "loose.png", _photo("astronaut"))
    out = tmp_path / "out"
    proc = run_cli(["build-dataset", "inscene", "--source", str(gallery), "--out", str(out), "--no-progress",
                    "--set", "min_short_side=300", "--set", "crop_size=256", "--set", "iqa_filter=false"],
                   env=cli_env, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # real errors -> non-zero; the good image is built
    fails = {f["key"]: f for f in map(json.loads, (out / "failures.jsonl").read_text().splitlines())}
    assert "broken.jpg" in fails["alice/broken"]["path"] and "re-export" in fails["alice/broken"]["fix"]
    assert "identity folder has no images" in fails["bob/(empty)"]["error"]
    assert "not inside an identity folder" in fails["(no identity)/loose"]["error"]
    assert "<identity>" in fails["(no identity)/loose"]["fix"]
    assert list(json.loads(line)["key"] for line in (out / "manifest.jsonl").read_text().splitlines()) == ["alice/good"]
    (tmp_path / "flat").mkdir()
    with pytest.raises(MissingSourceError, match="no identity folders"):
        InSceneBuilder(InSceneConfig(**SMALL), tmp_path / "flat").check_source()
    with pytest.raises(MissingSourceError, match="not found"):
        InSceneBuilder(InSceneConfig(**SMALL), tmp_path / "nope").check_source()
    with pytest.raises(UnavailableError, match=r"yolov8n-face\.onnx.*detector=mediapipe"):
        InSceneBuilder(InSceneConfig(**{**SMALL, "detector": "yolov8-face"}), gallery).check_source()


def test_embedded_build_offline_funnel_replay(tmp_path, cli_env):
    out = tmp_path / "inscene"
    run_cli(["build-dataset", "inscene", "--source", "embedded", "--out", str(out), "--no-progress",
             "--set", "min_short_side=400", "--set", "crop_size=384", "--set", "iqa_filter=false"], env=cli_env)
    spec = json.loads((out / "spec.json").read_text())
    assert spec["roles"] == {"gt": "target", "lq": "input"}
    assert spec["builder"]["config"]["iqa_filter"] is False and spec["inscene"]["iqa_filter"]["enabled"] is False
    assert spec["inscene"]["detector"]["name"] == "mediapipe"
    assert spec["inscene"]["degradation"]["name"] == "realesrgan_x1"
    assert "landmarks" in spec["metadata"] and spec["complete"] is True and spec["n_failed"] == 0
    f = spec["funnel"]
    assert f["images"] == 7 and f["after_stage_1"] == 4 and f["after_stage_2"] == 3 and f["built"] == 3
    rej = [json.loads(x) for x in (out / "rejections.jsonl").read_text().splitlines()]
    assert {(r["key"], r["stage"], r["reason"]) for r in rej} == {
        ("chelsea/chelsea", "1", "short_side"), ("coffee/coffee", "1", "no_face"),
        ("rocket/rocket", "1", "no_face"), ("bus/bus", "2", "small_face")}
    assert not (out / "failures.jsonl").exists()
    recs = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["key"] for r in recs] == ["astronaut/astronaut", "grace_hopper/grace_hopper", "zidane/zidane"]
    for r in recs:
        m = r["meta"]
        assert m["size"] == [384, 384] and np.asarray(m["landmarks"]).shape == (5, 2) and m["iqa"] is None
        assert set(r["outputs"]) == {"gt", "lq"} and r["params"]["__type__"] == "realesrgan.RealESRGANParams"
    card = (out / "README.md").read_text()
    assert "TURNED OFF (iqa_filter=false)" in card and "after stage 2" in card and "stage 1: no_face: 2" in card
    proc = run_cli(["replay", str(out), "zidane/zidane"], env=cli_env)
    assert proc.stdout.count("identical") == 2
    # resume: nothing to redo for built samples; rejected ones are re-decided identically
    run_cli(["build-dataset", "inscene", "--source", "embedded", "--out", str(out), "--no-progress",
             "--set", "min_short_side=400", "--set", "crop_size=384", "--set", "iqa_filter=false"], env=cli_env)
    assert json.loads((out / "spec.json").read_text())["funnel"] == f


def test_crop_keeps_face_box_and_jpeg_reduction():
    from benchkit.builders.inscene import crop_origin, jpeg_reduction

    assert crop_origin((900, 10, 1000, 110), 1024, 1365, 1024) == (0, 341)  # clamped to the right edge
    assert crop_origin((0, 500, 100, 600), 1500, 1024, 1024) == (38, 0)
    jpg = b"\xff\xd8\xff\xe0rest"
    assert jpeg_reduction(jpg, 3000, 1024) == 2 and jpeg_reduction(jpg, 4200, 1024) == 4
    assert jpeg_reduction(jpg, 1500, 1024) == 1 and jpeg_reduction(b"\x89PNG", 4096, 1024) == 1
