"""HMB-R: ratio of totals with a stub detector of known counts, input-side detections once per dataset,
per-image counts in per_image.csv, availability messages, pinned-only unpickling, and a haodiff_mpii-style
evaluation publishing a leaderboard with an HMB-R column."""

import csv
import io
import json
import pickle

import numpy as np
import pytest

from benchkit.metrics.hmbr import HMBR


def stub_count(img_u8) -> int:
    """Known detections: number of 8x8 blocks whose mean red level is above 128."""
    h, w = img_u8.shape[:2]
    r = img_u8[: h // 8 * 8, : w // 8 * 8, 0].astype(np.float64)
    blocks = r.reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    return int((blocks > 128).sum())


class StubHMBR(HMBR):
    calls = {"ref": 0, "out": 0}

    def availability(self):
        return True, ""

    def counter(self):
        return lambda imgs: [stub_count(im) for im in imgs]

    def partials(self, requests):
        StubHMBR.calls["out"] += len(requests)
        return super().partials(requests)

    def reference_partials(self, requests):
        StubHMBR.calls["ref"] += len(requests)
        return super().reference_partials(requests)


@pytest.fixture
def stub(monkeypatch):
    from benchkit import registry

    StubHMBR.calls.update(ref=0, out=0)
    monkeypatch.setitem(registry.METRICS, "hmbr", f"{__name__}:StubHMBR")


def _photos(d, n=4, size=48):
    import cv2

    d.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(d / f"{i:05d}.png"), img)
    return d


def _bench(tmp_path, src, metrics="[hmbr]", methods="[identity, unsharp]"):
    from benchkit.harness.benchmark import find_benchmark

    import yaml

    cfg = yaml.safe_load(find_benchmark("haodiff_mpii").read_text())
    cfg["metrics"] = yaml.safe_load(metrics)
    cfg["methods"] = yaml.safe_load(methods)
    cfg["plot"] = {"x": cfg["metrics"][0], "y": [cfg["metrics"][-1]]}
    cfg["datasets"] = [{"name": "mpii-test", "kind": "builder", "builder": "mpii-test", "source": str(src)}]
    y = tmp_path / "haodiff_mpii.yaml"
    y.write_text(yaml.safe_dump(cfg))
    return y


def test_ratio_of_totals_counts_once_per_dataset_and_per_image_csv(stub, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.images import list_images, read_image, to_uint8

    src = _photos(tmp_path / "MPII-Test")
    b = _bench(tmp_path, src)
    res = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert not res.failures, res.failures
    assert StubHMBR.calls == {"ref": 4, "out": 8}  # inputs once for both methods
    rows = list(csv.DictReader(io.StringIO((tmp_path / "run" / "per_image.csv").read_text())))
    assert len(rows) == 8
    inputs = {p.stem: stub_count(to_uint8(read_image(p))) for p in list_images(src)}
    assert sum(inputs.values()) > 0
    means = {s["method"]: s["means"]["hmbr"] for s in res.summary}
    for m in ("identity", "unsharp"):
        mine = [r for r in rows if r["method"] == m]
        assert {r["key"]: int(r["hmbr_input_detections"]) for r in mine} == inputs
        outs = [int(r["hmbr_output_detections"]) for r in mine]
        assert means[m] == pytest.approx(sum(outs) / sum(inputs.values()), abs=0, rel=1e-12)
    assert means["identity"] == 1.0 and means["unsharp"] != 1.0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    st = results["metrics"]["hmbr"]["settings"]
    assert (st["conf"], st["iou"], st["imgsz"]) == (0.25, 0.7, 640) and "weights_sha256" in st
    # a second evaluation reads everything from the caches and still writes the per-image counts
    StubHMBR.calls.update(ref=0, out=0)
    evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert StubHMBR.calls == {"ref": 0, "out": 0}
    rows2 = list(csv.DictReader(io.StringIO((tmp_path / "run" / "per_image.csv").read_text())))
    assert [r["hmbr_output_detections"] for r in rows2] == [r["hmbr_output_detections"] for r in rows]


def test_haodiff_mpii_publishes_hmbr_column(stub, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish

    src = _photos(tmp_path / "MPII-Test", n=3)
    b = _bench(tmp_path, src, metrics="[clipiqa, maniqa, niqe, liqe, ilniqe, hmbr]")
    res = evaluate(b, run_dir=tmp_path / "run", weights_root=tmp_path / "empty-weights", log=lambda *a: None)
    assert not res.failures, res.failures
    publish(tmp_path / "run", tmp_path / "lb")
    lb = (tmp_path / "lb" / "mpii-test.csv").read_text().splitlines()
    header = lb[0].split(",")
    assert "hmbr" in header
    col = header.index("hmbr")
    vals = {r.split(",")[0]: r.split(",")[col] for r in lb[1:]}
    assert float(vals["identity"]) == 1.0


def test_availability_says_what_to_place_and_refuses_unpinned_pickles(tmp_path):
    from benchkit.errors import UnavailableError
    from benchkit.fsio import sha256_file
    from benchkit.metrics import get_metric
    from benchkit.metrics.hmbr import load_yolo

    m = get_metric("hmbr", weights_root=tmp_path)
    ok, why = m.availability()
    assert not ok and "hmb/hmb-detector.onnx" in why and "train-detector hmb" in why

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pt = tmp_path / "hmb" / "mine.pt"
    pt.parent.mkdir(parents=True)
    pt.write_bytes(pickle.dumps(Evil()))
    m = get_metric("hmbr", weights_root=tmp_path, weights="hmb/mine.pt")
    ok, why = m.availability()
    digest = sha256_file(pt)
    assert not ok and digest in why and "sha256" in why
    with pytest.raises(UnavailableError, match="pinned"):
        load_yolo(pt, None)
    assert not marker.exists()
    m2 = get_metric("hmbr", weights_root=tmp_path, weights="hmb/mine.pt", sha256=digest)
    assert m2.availability()[0] in (True,) or "ultralytics" in m2.availability()[1]
    # the detector's content is part of the metric id: another file, another cache identity
    from benchkit.harness.scores import MetricSlot

    id1 = MetricSlot("hmbr", "cpu", tmp_path, {"weights": "hmb/mine.pt"}).id
    pt.write_bytes(b"other")
    id2 = MetricSlot("hmbr", "cpu", tmp_path, {"weights": "hmb/mine.pt"}).id
    assert id1 != id2


def test_ratio_undefined_without_input_detections():
    from benchkit.errors import BenchkitError
    from benchkit.metrics.hmbr import hmbr_ratio

    assert hmbr_ratio([1, 2, 0], [2, 2, 0]) == 0.75
    assert hmbr_ratio([3, 2], [1, 1]) == 2.5  # > 1 occurs (ResShift 1.0799)
    with pytest.raises(BenchkitError, match="no HMB instance"):
        hmbr_ratio([1], [0])
