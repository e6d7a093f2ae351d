"""``idscore``: ArcFace identity similarity between the restored face and the ground-truth face.

Face2Scene (supplement, Table 7 text): "for each model output, we cropped the face region of the
super-resolved image and computed the ArcFace cosine similarity between the GT and restored face";
higher is better (S3Diff 0.4684 / 0.4598, Face2Scene 0.4867 / 0.4881 on synthetic / real). The paper does
not name the detector, the ArcFace weights or the alignment; benchkit's recipe (all recorded in the
settings): five landmarks found on the TARGET (or taken from the sample's ``meta["landmarks"]`` when the
dataset recorded them for the target's pixel grid), the SAME five-point similarity alignment to the
112x112 ArcFace template applied to target and output, ArcFace embeddings from a user-provided ONNX
file (``<weights root>/faces/w600k_r50.onnx`` by default), cosine similarity in [-1, 1].
No target, or no face on the target: not applicable (``NA``), never a failure and never a zero.
The output must have the target's size (methods are held to it by the harness).
"""

from __future__ import annotations

from benchkit.errors import BadInputError, UnavailableError
from benchkit.metrics.base import NA, Metric

ARCFACE_FILE = "faces/w600k_r50.onnx"  # relative to the weights root (insightface buffalo_l's ArcFace)


class IDScore(Metric):
    def __init__(self, info, device: str = "cpu", weights_root=None, verify_weights: bool = True, **settings):
        super().__init__(info, device=device, weights_root=weights_root, verify_weights=verify_weights, **settings)
        self._arcface = None
        self._detector = None

    # -- files ------------------------------------------------------------------------
    def arcface_path(self):
        from benchkit.faces.detect import resolve_weight_path

        return resolve_weight_path(self.info.settings["arcface_file"], self.root)

    def availability(self) -> tuple[bool, str]:
        import importlib.util

        from benchkit.faces.arcface import missing_arcface_message

        p = self.arcface_path()
        if not p.is_file():
            return False, missing_arcface_message(p)
        if importlib.util.find_spec("onnxruntime") is None:
            return False, "onnxruntime is not installed: pip install 'benchkit[faces]'"
        if self.info.settings["detector"] == "mediapipe":
            from benchkit.faces.detect import mediapipe_problem

            problem = mediapipe_problem()
            if problem:
                return False, problem
        else:
            from benchkit.faces.detect import DEFAULT_YOLO_FILE, missing_yolo_message, resolve_weight_path

            yp = resolve_weight_path(self.info.settings["detector_file"] or DEFAULT_YOLO_FILE, self.root)
            if not yp.is_file():
                return False, missing_yolo_message(yp)
        return True, ""

    def arcface(self):
        if self._arcface is None:
            from benchkit.faces.arcface import ArcFace

            self._arcface = ArcFace(self.arcface_path(), self.info.settings["normalization"])
        return self._arcface

    def detector(self):
        if self._detector is None:
            from benchkit.faces.detect import make_detector

            s = self.info.settings
            self._detector = make_detector(s["detector"], s["detector_file"], self.root, s["min_confidence"])
        return self._detector

    # -- scoring ----------------------------------------------------------------------
    def target_landmarks(self, req, target):
        """Five landmarks on the target: from ``meta`` when recorded for this pixel grid, else detected
        (largest face). None when the target has no face."""
        import numpy as np

        meta = req.meta or {}
        lm = meta.get("landmarks")
        res = meta.get("landmarks_size") or meta.get("size")  # [H, W] the landmarks refer to
        if lm is not None and (res is None or list(res)[:2] == list(target.shape[:2])):
            arr = np.asarray(lm, dtype=np.float64)
            if arr.shape == (5, 2) and np.all(np.isfinite(arr)):
                return arr
        from benchkit.images import to_uint8

        img = to_uint8(target)
        det = self.detector()
        for face in det.detect(img):
            pts = face.landmarks if face.landmarks is not None else det.landmarks(img, face.box)
            if pts is not None:
                return np.asarray(pts, dtype=np.float64)
            break  # the largest face has no landmarks: do not silently score a smaller one
        return None

    def score_requests(self, requests: list) -> list:
        from benchkit.faces.align import alignment_matrix, warp
        from benchkit.metrics.base import _check_image

        self.require()
        out: list = [NA] * len(requests)
        af = self.arcface()
        for i, req in enumerate(requests):
            if not req.has_target:
                continue
            target, output = req.target, req.output
            _check_image(target, f"{req.key}: target")
            _check_image(output, f"{req.key}: output")
            if output.shape != target.shape:
                raise BadInputError(req.output_path or req.key, f"output {output.shape} differs from the target "
                                    f"{target.shape}", "restore at the target's size")
            lm = self.target_landmarks(req, target)
            if lm is None:
                continue  # no face on the ground truth: not applicable
            m = alignment_matrix(lm, af.input_size)
            crops = [warp(target, m, af.input_size), warp(output, m, af.input_size)]
            e = af.embed(crops)
            out[i] = float(e[0] @ e[1])
        return out

    def score_batch(self, dists, refs=None) -> list[float]:
        """Plain-array scoring (``benchkit score``): NaN-free floats; a pair without a face raises."""
        from benchkit.metrics.base import ScoreRequest

        if refs is None:
            raise BadInputError("idscore", "full-reference: needs the ground-truth images", "pass refs")
        vals = self.score_requests([ScoreRequest(f"image {i}", output_src=d, target_src=r)
                                    for i, (d, r) in enumerate(zip(dists, refs))])
        for i, v in enumerate(vals):
            if v is NA:
                raise BadInputError(f"ref[{i}]", "no face found on the reference (idscore is not applicable)",
                                    "score images that show a face")
        return vals

    def _compute(self, dists, refs):  # pragma: no cover - score_batch is overridden
        raise UnavailableError("idscore scores through score_requests()")
