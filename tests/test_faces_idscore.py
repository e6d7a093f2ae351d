"""Faces: five-point alignment, ArcFace ONNX embeddings (tiny model exported by the test), the idscore metric.

Offline: the ArcFace model is a tiny conv net exported here with torch.onnx (112x112x3 -> 512); faces are
the wheel-shipped photos (scikit-image astronaut, matplotlib grace_hopper) and the mediapipe wheel's models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchkit.errors import UnavailableError
from benchkit.faces.align import ARCFACE_DST, align, alignment_matrix, similarity_matrix
from benchkit.metrics.base import NA, ScoreRequest


class TinyArcFace(torch.nn.Module):
    """ArcFace-shaped: N x 3 x 112 x 112 -> N x 512 (one stride-16 conv + linear)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 16, stride=16)
        self.fc = torch.nn.Linear(8 * 7 * 7, 512)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def tiny_arcface(tmp_path_factory):
    torch.manual_seed(0)
    net = TinyArcFace().eval()
    path = tmp_path_factory.mktemp("arcface") / "faces" / "w600k_r50.onnx"
    path.parent.mkdir(parents=True)
    torch.onnx.export(net, torch.zeros(1, 3, 112, 112), str(path), input_names=["data"], output_names=["fc1"],
                      dynamic_axes={"data": {0: "n"}, "fc1": {0: "n"}}, dynamo=False)
    return net, path


def _photo(name):
    import cv2

    from benchkit.embedded import EMBEDDED_IMAGES, package_file

    pkg, rel = {n: (p, r) for n, p, r in EMBEDDED_IMAGES}[name]
    return cv2.cvtColor(cv2.imread(str(package_file(pkg, rel))), cv2.COLOR_BGR2RGB)


def _ref_embed(net, crop01):
    """Independent embedding: torch on (255 x - 127.5) / 127.5, NCHW (insightface's recipe)."""
    x = torch.from_numpy(((crop01.astype(np.float64) * 255.0 - 127.5) / 127.5).astype(np.float32))
    with torch.no_grad():
        return net(x.permute(2, 0, 1)[None])[0].double().numpy()


def _estimate(src, dst):
    """skimage's least-squares similarity (independent of benchkit's Umeyama implementation)."""
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):
        st = SimilarityTransform.from_estimate(src, dst)
        assert st
        return st
    st = SimilarityTransform()
    assert st.estimate(src, dst)
    return st


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- alignment


def test_similarity_matches_skimage_estimate():
    rng = np.random.default_rng(3)
    dst = np.asarray(ARCFACE_DST)
    for _ in range(20):
        ang, s = rng.uniform(-0.8, 0.8), rng.uniform(0.3, 4.0)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        src = (dst @ rot.T) * s + rng.uniform(-300, 300, 2) + rng.normal(0, 2.0, (5, 2))
        st = _estimate(src, dst)
        np.testing.assert_allclose(similarity_matrix(src, dst), st.params[:2], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(alignment_matrix(src), st.params[:2], rtol=1e-9, atol=1e-9)


def test_align_warps_with_the_independent_matrix():
    import cv2

    img = _photo("astronaut").astype(np.float32) / 255.0
    lm = np.array([[203.7, 102.6], [246.9, 104.6], [223.3, 131.5], [200.9, 139.1], [245.8, 141.6]])
    st = _estimate(lm, np.asarray(ARCFACE_DST))
    want = cv2.warpAffine(img, st.params[:2], (112, 112), flags=cv2.INTER_LINEAR, borderValue=0.0)
    got = align(img, lm)
    assert got.shape == (112, 112, 3)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # the landmarks land near the template (least squares: not exactly; eyes above the mouth)
    m = alignment_matrix(lm)
    moved = lm @ m[:, :2].T + m[:, 2]
    assert np.abs(moved - np.asarray(ARCFACE_DST)).max() < 10 and moved[0, 1] < moved[3, 1]


def test_alignment_rejects_bad_landmarks():
    with pytest.raises(ValueError, match="five finite"):
        alignment_matrix(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="one point"):
        alignment_matrix(np.ones((5, 2)))


# ----------------------------------------------------------------------------- ArcFace ONNX


def test_arcface_onnx_embeddings_match_torch(tiny_arcface):
    import onnx

    from benchkit.faces.arcface import ArcFace, cosine, first_node_names

    net, path = tiny_arcface
    af = ArcFace(path)
    assert af.input_size == 112 and (af.mean, af.std) == (127.5, 127.5)  # no Sub/Mul prologue -> insightface's
    # the wire-format reader sees the same first nodes as the onnx package
    assert first_node_names(path) == [(n.name, n.op_type) for n in onnx.load(str(path)).graph.node[:8]]
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 112, 112, 3), dtype=np.float32)
    e = af.embed(np.stack([a, a, b]))
    assert e.shape == (3, 512)
    assert abs(float(e[0] @ e[1]) - 1.0) < 1e-6
    assert abs(float(e[0] @ e[2]) - _cos(_ref_embed(net, a), _ref_embed(net, b))) < 1e-5
    assert abs(cosine(e[0], e[2]) - float(e[0] @ e[2])) < 1e-12


def test_arcface_missing_or_bad_file(tmp_path):
    from benchkit.errors import BadInputError
    from benchkit.faces.arcface import ArcFace

    with pytest.raises(UnavailableError, match=r"nope\.onnx.*w600k_r50\.onnx"):
        ArcFace(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        ArcFace(bad)


# ----------------------------------------------------------------------------- idscore


def _idscore(root):
    from benchkit.metrics import get_metric

    return get_metric("idscore", weights_root=root)


def test_idscore_identical_is_one_and_matches_independent_cosine(tiny_arcface):
    import cv2

    from benchkit.faces.detect import make_detector

    net, path = tiny_arcface
    root = path.parents[1]
    m = _idscore(root)
    assert m.availability() == (True, "")
    tgt = _photo("grace_hopper").astype(np.float32) / 255.0
    out = cv2.GaussianBlur(tgt, (0, 0), 2.0)
    v = m.score_requests([ScoreRequest("same", output_src=tgt, target_src=tgt),
                          ScoreRequest("blur", output_src=out, target_src=tgt)])
    assert abs(v[0] - 1.0) < 1e-6
    # independent: landmarks on the target, skimage's similarity, OpenCV warp, torch embedding, numpy cosine
    det = make_detector("mediapipe")
    t8 = _photo("grace_hopper")
    face = det.detect(t8)[0]
    lm = det.landmarks(t8, face.box)
    st = _estimate(lm, np.asarray(ARCFACE_DST))
    crops = [cv2.warpAffine(x, st.params[:2], (112, 112), flags=cv2.INTER_LINEAR, borderValue=0.0) for x in (tgt, out)]
    want = _cos(_ref_embed(net, crops[0]), _ref_embed(net, crops[1]))
    assert abs(v[1] - want) < 1e-4
    assert v[1] < 1.0 - 1e-6


def test_idscore_not_applicable_without_face_or_target(tiny_arcface):
    _, path = tiny_arcface
    m = _idscore(path.parents[1])
    coffee = _photo("coffee").astype(np.float32) / 255.0  # no face
    v = m.score_requests([ScoreRequest("noface", output_src=coffee, target_src=coffee),
                          ScoreRequest("notarget", output_src=coffee)])
    assert v[0] is NA and v[1] is NA  # never 0, never a failure


def test_idscore_uses_recorded_landmarks(tiny_arcface, monkeypatch):
    from benchkit.metrics.idscore import IDScore

    _, path = tiny_arcface
    m = _idscore(path.parents[1])
    monkeypatch.setattr(IDScore, "detector", lambda self: (_ for _ in ()).throw(AssertionError("detector used")))
    coffee = _photo("coffee").astype(np.float32) / 255.0
    lm = [[200.0, 150.0], [260.0, 150.0], [230.0, 190.0], [205.0, 220.0], [255.0, 220.0]]
    v = m.score_requests([ScoreRequest("k", output_src=coffee, target_src=coffee,
                                       meta={"landmarks": lm, "size": list(coffee.shape[:2])})])
    assert abs(v[0] - 1.0) < 1e-6


def test_idscore_unavailable_names_the_file(tmp_path):
    m = _idscore(tmp_path)
    ok, why = m.availability()
    assert not ok and str(tmp_path / "faces" / "w600k_r50.onnx") in why and "place" in why
    with pytest.raises(UnavailableError, match="w600k_r50"):
        m.score_requests([ScoreRequest("k", output_src=np.zeros((8, 8, 3), np.float32),
                                       target_src=np.zeros((8, 8, 3), np.float32))])


def test_detector_files_missing_or_pickled(tmp_path):
    from benchkit.faces.detect import face_weight_rows, make_detector

    with pytest.raises(UnavailableError, match=r"yolov8n-face\.onnx.*detector=mediapipe"):
        make_detector("yolov8-face", weights_root=tmp_path)
    pt = tmp_path / "face.pt"
    pt.write_bytes(b"\x80\x04not really")
    with pytest.raises(UnavailableError, match="pickled.*yolo export"):
        make_detector("yolov8-face", weights=str(pt))
    rows = face_weight_rows(tmp_path)
    assert rows[0]["status"] == "missing" and rows[1]["status"] == "ok"


def test_mediapipe_five_points_on_wheel_photos():
    from benchkit.faces.detect import make_detector

    det = make_detector("mediapipe")
    d = det.describe()
    assert d["name"] == "mediapipe" and len(d["sha256"]) == 64 and len(d["models"]) == 2
    for name in ("astronaut", "grace_hopper", "zidane"):
        img = _photo(name)
        faces = det.detect(img)
        assert faces, name
        lm = det.landmarks(img, faces[0].box)
        assert lm is not None and lm.shape == (5, 2)
        x0, y0, x1, y1 = faces[0].box
        assert np.all((lm[:, 0] > x0 - 10) & (lm[:, 0] < x1 + 10) & (lm[:, 1] > y0 - 10) & (lm[:, 1] < y1 + 10))
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0] and lm[0, 1] < lm[3, 1]  # eyes above mouth, order
    assert det.detect(_photo("coffee")) == []


@pytest.mark.slow
def test_yolov8_face_onnx_path(tmp_path, monkeypatch):
    """The paper's detector path: a YOLOv8-pose model with five keypoints (random weights, built from the
    ultralytics yaml, exported to ONNX here) loads without unpickling and yields boxes + five landmarks."""
    import os
    import shutil

    import matplotlib
    import yaml

    cfg_dir = tmp_path / "ycfg"
    (cfg_dir / "Ultralytics").mkdir(parents=True)
    shutil.copy(os.path.join(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans.ttf"), cfg_dir / "Ultralytics/Arial.ttf")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(cfg_dir))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # ultralytics writes the export next to the yaml-built model (cwd)
    import ultralytics
    from ultralytics import YOLO

    from benchkit.faces.detect import make_detector

    d = yaml.safe_load(open(os.path.join(os.path.dirname(ultralytics.__file__), "cfg/models/v8/yolov8-pose.yaml")))
    d.update(kpt_shape=[5, 3], nc=1, scale="n")
    (tmp_path / "yolov8n-face.yaml").write_text(yaml.safe_dump(d))
    torch.manual_seed(0)
    onnx_path = YOLO(str(tmp_path / "yolov8n-face.yaml"), task="pose").export(format="onnx", imgsz=160,
                                                                              simplify=False)
    det = make_detector("yolov8-face", weights=str((tmp_path / onnx_path).resolve()), min_confidence=1e-4)
    desc = det.describe()
    assert desc["name"] == "yolov8-face" and len(desc["sha256"]) == 64
    faces = det.detect(_photo("astronaut"))
    assert faces and all(f.landmarks is not None and f.landmarks.shape == (5, 2) for f in faces)
    assert faces[0].area >= faces[-1].area
