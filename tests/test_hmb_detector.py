"""HMB detector: YOLO export from the hmb-synth schema (meta.hmb_boxes, else the hmb_weight W_s masks),
bad boxes reported with file and fix, and a one-epoch offline smoke training (socket guard) that writes
weights + report; the trained file then loads (sha256-pinned by name) for HMB-R. Mechanics only."""

import json
import socket

import numpy as np
import pytest


def write_hmb_dataset(d, n=10, size=64):
    """A tiny dataset in the hmb-synth format: lq PNGs, hmb_weight 16-bit PNGs, meta.hmb_boxes in lq pixels."""
    import cv2

    rng = np.random.default_rng(0)
    for sub in ("lq", "hmb_weight"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        key = f"s{i:03d}"
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        x0, y0 = int(rng.integers(0, size // 2)), int(rng.integers(0, size // 2))
        x1, y1 = x0 + size // 3, y0 + size // 3
        img[y0:y1, x0:x1] = 220
        wmap = np.zeros((size, size), np.uint16)
        wmap[y0:y1, x0:x1] = 65535
        cv2.imwrite(str(d / "lq" / f"{key}.png"), img)
        cv2.imwrite(str(d / "hmb_weight" / f"{key}.png"), wmap)
        rec = {"key": key, "outputs": {"lq": {"path": f"lq/{key}.png", "sha256": "x"},
                                       "hmb_weight": {"path": f"hmb_weight/{key}.png", "sha256": "x"}}}
        if i != 1:  # sample 1: boxes only from the W_s mask
            rec["meta"] = {"hmb_boxes": [[x0, y0, x1, y1]]}
        if i == 2:
            rec["meta"] = {"hmb_boxes": [[500, 500, 600, 600]]}  # outside the image: reported, left out
        lines.append(json.dumps(rec))
    (d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (d / "spec.json").write_text(json.dumps({"format": 2, "roles": {"lq": "input", "gt": "target",
                                                                     "hmb_weight": "aux"},
                                             "metadata": {"hmb_boxes": "boxes"}}))
    return d


def test_export_labels_from_boxes_and_masks(tmp_path):
    from benchkit.metrics.hmb_detector import export_yolo

    ds = write_hmb_dataset(tmp_path / "hmb")
    rep = export_yolo(ds, tmp_path / "yolo", val_fraction=0.3, seed=0)
    assert rep["images"]["train"] + rep["images"]["val"] == 9 and rep["images"]["val"] >= 1
    assert [p["key"] for p in rep["problems"]] == ["s002"]
    assert "outside" in rep["problems"][0]["error"] and rep["problems"][0]["fix"]
    recs = {json.loads(x)["key"]: json.loads(x) for x in (ds / "manifest.jsonl").read_text().splitlines()}
    for lab in (tmp_path / "yolo" / "labels").rglob("*.txt"):
        vals = [float(v) for v in lab.read_text().split()]
        assert len(vals) == 5 and vals[0] == 0
        key = lab.stem
        if key == "s001":  # from the mask: the same box as drawn
            x0, y0, x1, y1 = recs["s000"]["meta"]["hmb_boxes"][0]  # any box has side 21 px
            assert vals[3] == pytest.approx(21 / 64, abs=1e-6)
            continue
        x0, y0, x1, y1 = recs[key]["meta"]["hmb_boxes"][0]
        assert vals[1:] == pytest.approx([(x0 + x1) / 128, (y0 + y1) / 128, (x1 - x0) / 64, (y1 - y0) / 64],
                                         abs=1e-6)
    y = (tmp_path / "yolo" / "data.yaml").read_text()
    assert str((tmp_path / "yolo").resolve()) in y and "0: hmb" in y
    again = export_yolo(ds, tmp_path / "yolo2", val_fraction=0.3, seed=0)
    assert again["images"] == rep["images"]  # deterministic split


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def deny(what):
        def f(*a, **k):
            attempts.append((what, a[1:] if what == "connect" else a))
            raise OSError(f"network guard: {what}")
        return f

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        return deny("connect")(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", deny("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", deny("getaddrinfo"))
    yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


def test_one_epoch_smoke_training_offline_writes_weights_and_report(tmp_path, no_network, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("ultralytics") is None:  # not imported here: benchkit sets it up offline first
        pytest.skip("ultralytics is not installed (extra [hmb])")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ycfg"))
    from benchkit.metrics.hmb_detector import train_detector

    ds = write_hmb_dataset(tmp_path / "hmb")
    wr = tmp_path / "weights"
    rep = train_detector(ds, tmp_path / "run", weights_root=wr, model="yolo11n.yaml", epochs=1, imgsz=64, batch=4,
                         device="cpu", seed=0, val_fraction=0.3, log=lambda *a: None)
    rel = rep["weights"]["path"]
    from benchkit.fsio import sha256_file

    assert (wr / rel).is_file() and sha256_file(wr / rel) == rep["weights"]["sha256"] and rep["weights"]["sha256"] in rel
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    for k in ("map50", "precision", "recall", "map50_95"):
        assert 0.0 <= saved["heldout"][k] <= 1.0
    assert saved["settings"]["epochs"] == 1 and saved["settings"]["amp"] is False
    assert saved["curves"] and (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # the trained file is pinned by its name: HMB-R loads it and counts (any count: mechanics only)
    from benchkit.metrics import get_metric
    from benchkit.metrics.base import ScoreRequest

    m = get_metric("hmbr", weights_root=wr, weights=rel, imgsz=64)
    assert m.availability() == (True, "")
    img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    counts = m.reference_partials([ScoreRequest("a", input_src=img), ScoreRequest("b", input_src=img)])
    assert len(counts) == 2 and all(c >= 0 and c == int(c) for c in counts)


def test_cli_reports_bad_data_with_file_and_fix(tmp_path, cli_env):
    from conftest import run_cli

    p = run_cli(["train-detector", "hmb", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--weights-root", str(tmp_path / "w")], env=cli_env, check=False)
    assert p.returncode == 2 and "manifest.jsonl" in p.stderr and "hmb-synth" in p.stderr
    p = run_cli(["build-dataset", "mpii-test", "--source", str(tmp_path), "--set", "rebuild=true",
                 "--out", str(tmp_path / "ds")], env=cli_env, check=False)
    assert p.returncode == 2 and "mpii_human_pose_v1_u12_1.mat" in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_counts_without_unpickling(fmt, tmp_path, no_network, monkeypatch):
    """A TorchScript or ONNX export (no pickle) loads from the weights root without a pin and counts; the
    ONNX file runs through onnxruntime (mechanics)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is not installed (extra [detect])")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ycfg"))
    monkeypatch.chdir(tmp_path)
    from benchkit.metrics.hmbr import ultralytics_offline

    ultralytics_offline()
    from ultralytics import YOLO

    kw = {"simplify": False} if fmt == "onnx" else {}
    exported = YOLO("yolo11n.yaml").export(format=fmt, imgsz=64, **kw)
    (tmp_path / "w" / "hmb").mkdir(parents=True)
    shutil.copyfile(exported, tmp_path / "w" / "hmb" / f"det.{fmt}")
    from benchkit.metrics import get_metric
    from benchkit.metrics.base import ScoreRequest

    m = get_metric("hmbr", weights_root=tmp_path / "w", weights=f"hmb/det.{fmt}", imgsz=64)
    assert m.availability() == (True, "")
    img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    got = m.partials([ScoreRequest("a", output_src=img)])
    assert len(got) == 1 and got[0] == int(got[0]) >= 0
    if fmt == "onnx":
        import sys

        assert "onnxruntime" in sys.modules
