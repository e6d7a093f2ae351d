"""``inscene``: Face2Scene's InScene real-gallery filter (supplement 6.2, Table 1; REFERENCE sections 7/5).

Source: ``GALLERY/<identity>/<images>`` (one folder per identity, any depth below it). A file whose stem is
``reference_name`` (default ``reference``) is the identity's reference image, not a sample. One job per
image, key ``<identity>/<relative path without suffix>``. Each image is read and decoded ONCE (8-bit
RGB, EXIF orientation applied; the header is read first so small images are never decoded).

Filter (every rejection is recorded with its stage and reason in ``rejections.jsonl``; the card shows
the funnel; real errors stay in ``failures.jsonl``):

1. short side < ``min_short_side`` (1000 px) -> ``short_side``; resize so min(H, W) = ``crop_size``
   (large JPEGs are decoded at 1/2, 1/4 or 1/8 straight from the DCT first, keeping the short side >=
   ``crop_size``; ``jpeg_reduced_decode``, recorded as ``meta.crop.decode_reduction``)
   (1024; INTER_AREA down, INTER_CUBIC up); the face detector runs on that resized image and must find
   a face (``no_face``); the largest face is kept; a ``crop_size`` square is cut along the long side,
   centred on the face box and clamped to the image, and must hold the whole box (``face_not_in_crop``);
   five landmarks must be found (``no_landmarks``).
2. face box area < ``min_face_fraction`` (1%) of the crop -> ``small_face``; variance of the Laplacian
   (OpenCV 3x3 aperture, float64, on the 8-bit gray crop) < ``laplacian_threshold`` -> ``blurry``. The
   paper does not publish its threshold: 100.0 is benchkit's default and is recorded.
3. (``iqa_filter``) MUSIQ >= 65.0, CLIP-IQA >= 0.65, MANIQA >= 0.40 on the crop, through benchkit's metrics
   engine (pyiqa weights under the weights root). Without the weights the build stops and lists the
   files to place, unless ``--set iqa_filter=false`` (stated in spec.json and on the card) -> ``iqa``.
4. (optional, ``min_reference_similarity``, e.g. 0.55 for the synthetic split) ArcFace cosine between the
   crop and the identity's reference image -> ``identity``. Needs ``arcface_file``.

Outputs: ``gt`` (the crop, PNG, role target) and, unless ``degradation: none``, ``lq`` = the chosen
pipeline (``realesrgan_x1`` or Face2Scene's ``f2s_d1``..``f2s_d4``) applied to the crop (role input;
the pipeline's own ``gt`` output, USM-sharpened for realesrgan_x1, is not used). Per-sample ``meta``:
identity, source resolution, crop geometry, face box, five landmarks (gt pixels), detector and its model
sha256, Laplacian variance, IQA scores and the ArcFace reference similarity (when computed).

Embedded demo: ``--source embedded`` is a small gallery of the wheel-shipped photos (faces: astronaut,
grace_hopper, zidane, bus; no faces: chelsea, coffee, rocket), too small for the paper's sizes: use
``--set min_short_side=400 --set crop_size=384 --set iqa_filter=false``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchkit.builders.base import DatasetBuilder
from benchkit.errors import BadInputError, BenchkitError, MissingSourceError
from benchkit.runner import Job, Sample, SampleFailure

DEGRADATIONS = ("realesrgan_x1", "f2s_d1", "f2s_d2", "f2s_d3", "f2s_d4", "none")
IQA_THRESHOLDS = ("musiq", "clipiqa", "maniqa")  # metric names in benchkit's catalog
REJECTIONS = "rejections.jsonl"
_REJECT_RE = re.compile(r"^rejected at stage (\w+) \((\w+)\): (.*)$", re.S)
STAGES = ("1", "2", "3", "identity")
EMBEDDED_GALLERY = (  # (identity folder, EMBEDDED_IMAGES name)
    ("astronaut", "astronaut"), ("bus", "bus"), ("chelsea", "chelsea"), ("coffee", "coffee"),
    ("grace_hopper", "grace_hopper"), ("rocket", "rocket"), ("zidane", "zidane"))


@dataclass(frozen=True)
class InSceneConfig:
    min_short_side: int = 1000  # px; stage 1
    crop_size: int = 1024  # px; resize min(H, W) to this, then a square crop of this side
    detector: Literal["mediapipe", "yolov8-face"] = "mediapipe"
    detector_file: str | None = None  # yolov8-face model (.onnx; .pt only with trust_checkpoint), weights-root relative
    trust_checkpoint: bool = False  # allow unpickling a user's .pt YOLO checkpoint
    min_face_confidence: float = 0.5
    min_face_fraction: float = 0.01  # stage 2: face box area / crop area
    laplacian_threshold: float = 100.0  # stage 2: variance of the Laplacian (not published; benchkit default)
    iqa_filter: bool = True  # stage 3
    musiq_min: float = 65.0
    clipiqa_min: float = 0.65
    maniqa_min: float = 0.40
    iqa_device: str = "cpu"
    reference_name: str = "reference"  # GALLERY/<identity>/<reference_name>.<ext> is the identity's reference
    arcface_file: str | None = None  # ArcFace ONNX (weights-root relative or absolute) for reference similarity
    min_reference_similarity: float | None = None  # e.g. 0.55 (Face2Scene synthetic split)
    degradation: Literal["realesrgan_x1", "f2s_d1", "f2s_d2", "f2s_d3", "f2s_d4", "none"] = "realesrgan_x1"
    jpeg_reduced_decode: bool = True  # decode large JPEGs at 1/2, 1/4 or 1/8 in the DCT (short side stays >= crop)

    def __post_init__(self):
        if self.crop_size < 16 or self.min_short_side < 1:
            raise ValueError(f"crop_size must be >= 16 and min_short_side >= 1, got {self.crop_size}, "
                             f"{self.min_short_side}")
        if self.degradation not in DEGRADATIONS:
            raise ValueError(f"degradation must be one of {DEGRADATIONS}, got {self.degradation!r}")
        if self.min_reference_similarity is not None and not self.arcface_file:
            raise ValueError("min_reference_similarity needs arcface_file (an ArcFace ONNX file)")


def _r(v, nd=4):
    return None if v is None else round(float(v), nd)


def parse_rejection(problem: str):
    """(stage, reason, detail) of a rejection message, or None for a real error."""
    m = _REJECT_RE.match(problem or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


class _Reject(Exception):
    def __init__(self, stage: str, reason: str, detail: str, fix: str):
        super().__init__(f"rejected at stage {stage} ({reason}): {detail}")
        self.fix = fix


def resize_short_side(img, size: int):
    """Resize so min(H, W) = ``size`` (long side rounded): INTER_AREA when shrinking, INTER_CUBIC when growing."""
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    nh, nw = (size, max(size, round(w * size / h))) if h <= w else (max(size, round(h * size / w)), size)
    if (nh, nw) == (h, w):
        return img
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)


def crop_origin(box, height: int, width: int, size: int) -> tuple[int, int]:
    """(y0, x0) of the ``size`` square centred on ``box`` along the long side, clamped inside the image."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    x0 = min(max(int(round(cx - size / 2.0)), 0), width - size)
    y0 = min(max(int(round(cy - size / 2.0)), 0), height - size)
    return y0, x0


def laplacian_variance(rgb8) -> float:
    """Variance of the Laplacian (cv2.Laplacian, ksize 1 = [[0,1,0],[1,-4,1],[0,1,0]], CV_64F) of the gray image."""
    import cv2

    gray = cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def jpeg_reduction(data: bytes, short_side: int, crop_size: int) -> int:
    """1, 2, 4 or 8: the largest libjpeg DCT-domain reduction keeping the short side >= ``crop_size`` (JPEG
    files only; 1 for anything else)."""
    if data[:3] != b"\xff\xd8\xff":
        return 1
    r = 1
    while r < 8 and short_side // (2 * r) >= crop_size:
        r *= 2
    return r


def decode_rgb8(data: bytes, path, reduction: int = 1):
    """8-bit RGB decode (EXIF orientation applied), JPEGs optionally at 1/``reduction`` size straight from the
    DCT (libjpeg scaled IDCT: far cheaper than a full decode + resize); BadInputError naming the file when it
    cannot be decoded."""
    import cv2
    import numpy as np

    if not data:
        raise BadInputError(path, "file is empty (0 bytes)", "re-copy the image or delete it from the gallery")
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[int(reduction)]
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        raise BadInputError(path, "cannot decode image (corrupt, truncated or not an image)",
                            "re-export the image or remove it from the gallery")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def header_size(data: bytes, path) -> tuple[int, int]:
    """(height, width) from the header (no pixel decoding; EXIF rotation does not change the short side)."""
    import io
    import re

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadInputError(path, "file is empty (0 bytes)", "re-copy the image or delete it from the gallery")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception as e:  # Pillow raises several types for bad headers
        why = ("not an image, or a format Pillow cannot read" if isinstance(e, UnidentifiedImageError)
               else re.sub(r" at 0x[0-9a-fA-F]+", "", f"{type(e).__name__}: {e}"))  # no run-dependent addresses
        raise BadInputError(path, f"cannot read the image header ({why})",
                            "re-export the image or remove it from the gallery") from e
    return int(h), int(w)


class InSceneBuilder(DatasetBuilder):
    name = "inscene"
    version = "1"
    Config = InSceneConfig
    description = ("InScene-style real-gallery set (Face2Scene supplement 6.2): photos of identities filtered in "
                   "three stages (size + face, face area + sharpness, no-reference IQA), resized and cropped to a "
                   "square that keeps the whole face; gt = crop, lq = Real-ESRGAN-style degradation of it; per-sample "
                   "face box, five landmarks and identity in the manifest's meta.")
    source_help = ("Expected: GALLERY/<identity>/<images> (png/jpg/bmp/tif/webp), one folder per identity; an optional "
                   "GALLERY/<identity>/reference.<ext> is the identity's reference image. Face2Scene's gallery is not "
                   "public: use your own photos. `--source embedded` builds a tiny gallery from wheel-shipped photos "
                   "(add --set min_short_side=400 --set crop_size=384 --set iqa_filter=false).")
    source_license = "Samples inherit the licence of the gallery photos; people shown must have consented."
    citation = "Face2Scene (supplement 6.2, InScene dataset; Table 7, ArcFace ID score)."

    def __init__(self, config=None, source=None):
        super().__init__(config, source)
        self._rt = {}  # per-process runtime objects (detector, metrics, ArcFace, generator): never pickled
        self._problems: list = []

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_rt"] = {}
        return state

    @classmethod
    def resolve_source(cls, source):
        return materialize_gallery() if str(source) == "embedded" else Path(source)

    # -- runtime objects ------------------------------------------------------------------
    def detector(self):
        if "det" not in self._rt:
            from benchkit.faces.detect import make_detector

            c = self.config
            self._rt["det"] = make_detector(c.detector, c.detector_file, None, c.min_face_confidence,
                                            trust_checkpoint=c.trust_checkpoint)
        return self._rt["det"]

    def generator(self):
        if "gen" not in self._rt:
            from benchkit.config import load_pipeline

            gen = None if self.config.degradation == "none" else load_pipeline(self.config.degradation)[1]
            version = self.__dict__.get("_degradation_version")
            if gen is not None and version and version != gen.version:  # replay: the version that made the set
                gen = type(gen)(gen.config, version=version)
            self._rt["gen"] = gen
        return self._rt["gen"]

    @classmethod
    def from_spec(cls, spec: dict, source_override=None):
        """As recorded, with the degradation generator at the version spec.json records (e.g. Real-ESRGAN 1.1
        for sets built before version 2)."""
        b = super().from_spec(spec, source_override)
        b._degradation_version = ((spec.get("inscene") or {}).get("degradation") or {}).get("version")
        return b

    def adopt_recorded(self, old_spec: dict) -> str | None:
        """Resume a set whose degradation was made at an older generator version (e.g. Real-ESRGAN 1.1, benchkit
        0.1.0) at that version, when that reproduces the set's fingerprint exactly."""
        rec = ((old_spec.get("inscene") or {}).get("degradation") or {}) if isinstance(old_spec, dict) else {}
        gen = self.generator()
        version = str(rec.get("version", ""))
        if gen is None or rec.get("generator") != gen.name or version == gen.version or \
                version not in getattr(type(gen), "replay_versions", ()):
            return None
        before = self.__dict__.get("_degradation_version")
        self._degradation_version = version
        self._rt.pop("gen", None)
        same = False
        try:
            same = self.spec()["fingerprint"] == old_spec.get("fingerprint")
        finally:
            if not same:  # not this set's configuration (or spec() raised): back to the current version
                self._degradation_version = before
                self._rt.pop("gen", None)
        if not same:
            return None
        return (f"{self.name}: this set's degradation was made with {gen.name} version {version}; resuming it at "
                f"that version (new sets get version {gen.version})")

    def iqa_metrics(self):
        if "iqa" not in self._rt:
            from benchkit.metrics import get_metric

            self._rt["iqa"] = {n: get_metric(n, device=self.config.iqa_device) for n in IQA_THRESHOLDS}
        return self._rt["iqa"]

    def arcface(self):
        if "arcface" not in self._rt:
            from benchkit.faces.arcface import ArcFace
            from benchkit.faces.detect import resolve_weight_path

            self._rt["arcface"] = ArcFace(resolve_weight_path(self.config.arcface_file)) \
                if self.config.arcface_file else None
        return self._rt["arcface"]

    # -- source ---------------------------------------------------------------------------
    def check_source(self) -> None:
        """Source layout, then everything the run needs (detector, IQA weights, ArcFace), before any work."""
        from benchkit.errors import UnavailableError

        super().check_source()
        if not self.source.is_dir() or not any(p.is_dir() for p in self.source.iterdir()):
            raise MissingSourceError(f"{self.name}: {self.source} holds no identity folders.\n{self.source_help}")
        try:
            self.detector()
        except UnavailableError as e:
            raise UnavailableError(f"{self.name}: face detector {self.config.detector!r} unavailable: {e}") from e
        if self.config.iqa_filter:
            missing = []
            for n, m in self.iqa_metrics().items():
                ok, why = m.availability()
                if not ok:
                    missing.append(f"  {n}: {why}")
            if missing:
                raise UnavailableError(
                    f"{self.name}: stage 3 (IQA filter: MUSIQ >= {self.config.musiq_min}, CLIP-IQA >= "
                    f"{self.config.clipiqa_min}, MANIQA >= {self.config.maniqa_min}) needs weights that are not "
                    "in place:\n" + "\n".join(missing) + "\nplace those files (see `benchkit weights status`), or "
                    "build without stage 3: --set iqa_filter=false (stated in spec.json and on the dataset card)")
        if self.config.arcface_file:
            self.arcface()  # raises UnavailableError naming the file to place

    def jobs(self) -> list[Job]:
        from benchkit.images import IMAGE_SUFFIXES, list_images

        out, problems = [], []
        ref = self.config.reference_name
        for p in sorted(self.source.iterdir(), key=lambda q: q.name):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                problems.append({"key": f"(no identity)/{p.stem}", "path": str(p),
                                 "error": "image is not inside an identity folder",
                                 "fix": f"move it into {self.source}/<identity>/ (one folder per identity)"})
                continue
            if not p.is_dir():
                continue
            imgs = [q for q in list_images(p) if q.stem != ref or q.parent != p]
            if not imgs:
                problems.append({"key": f"{p.name}/(empty)", "path": str(p),
                                 "error": "identity folder has no images",
                                 "fix": "add the identity's photos or remove the folder"})
                continue
            for q in imgs:
                rel = q.relative_to(self.source).as_posix()
                out.append(Job(f"{p.name}/{q.relative_to(p).with_suffix('').as_posix()}",
                               {"path": rel, "identity": p.name}))
        keys = [j.key for j in out]
        dup = {k for k in keys if keys.count(k) > 1}
        out = [Job(j.payload["path"], j.payload) if j.key in dup else j for j in out]
        self._problems = problems
        return sorted(out, key=lambda j: j.key)

    def source_problems(self) -> list[dict]:
        return list(self._problems)

    def job_for(self, record: dict) -> Job:
        return Job(record["key"], {"path": record["sources"][0]["path"], "identity": record["meta"]["identity"]})

    # -- spec -----------------------------------------------------------------------------
    def spec(self) -> dict:
        from benchkit.config import fingerprint

        spec = super().spec()
        det = self.detector().describe()
        gen = self.generator()
        pipe = gen.describe() if gen is not None else None
        af = self.arcface()
        extra = {"detector": det, "degradation": {"name": self.config.degradation, **(pipe or {})},
                 "arcface": af.describe() if af is not None else None,
                 "iqa_filter": {"enabled": self.config.iqa_filter,
                                "thresholds": {"musiq": self.config.musiq_min, "clipiqa": self.config.clipiqa_min,
                                               "maniqa": self.config.maniqa_min},
                                "metrics": ({n: m.info.as_dict() for n, m in self.iqa_metrics().items()}
                                            if self.config.iqa_filter else None)}}
        spec["fingerprint"] = fingerprint({"base": spec["fingerprint"], **extra})
        spec["inscene"] = extra
        spec["roles"] = {"gt": "target", **({"lq": "input"} if gen is not None else {})}
        spec["metadata"] = {
            "identity": "str", "resolution": "int[2] source [H, W] px", "size": "int[2] gt [H, W] px",
            "crop": "{scale: float, resized: int[2], y0: int, x0: int}", "face_box": "float[4] x0,y0,x1,y1 gt px",
            "face_score": "float", "n_faces": "int", "landmarks": "float[5][2] (x, y) gt px, ArcFace order",
            "face_fraction": "float", "laplacian_var": "float", "iqa": "{musiq, clipiqa, maniqa: float} | null",
            "arcface_ref_similarity": "float | null", "detector": "str", "detector_sha256": "str"}
        return spec

    # -- the filter -----------------------------------------------------------------------
    def _read(self, job: Job):
        from benchkit.fsio import sha256_bytes

        path = self.source / job.payload["path"]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadInputError(path, f"cannot read file ({e.strerror})", "check the path and permissions") from e
        return path, data, sha256_bytes(data)

    def _geometry(self, img, crop_y0x0=None, resized_hw=None):
        """Resized image (short side = crop_size) and the crop at (y0, x0)."""
        import cv2

        c = self.config.crop_size
        if resized_hw is not None and tuple(resized_hw) != img.shape[:2]:
            h, w = img.shape[:2]
            interp = cv2.INTER_AREA if min(h, w) > c else cv2.INTER_CUBIC
            resized = cv2.resize(img, (int(resized_hw[1]), int(resized_hw[0])), interpolation=interp)
        else:
            resized = resize_short_side(img, c)
        if crop_y0x0 is None:
            return resized, None
        y0, x0 = crop_y0x0
        import numpy as np

        return resized, np.ascontiguousarray(resized[y0: y0 + c, x0: x0 + c])

    def filter_image(self, img, path, identity: str, timings: dict | None = None, resolution=None,
                     reduction: int = 1):
        """Stages 1 (face, crop) to 3 (+ identity) on a decoded uint8 RGB image. Returns (crop, meta) or raises
        :class:`_Reject`. ``timings`` (optional) accumulates seconds per step (for ``benchkit bench inscene``)."""
        import time

        import numpy as np

        cfg, csz = self.config, self.config.crop_size
        t = time.perf_counter

        def lap(name, t0):
            if timings is not None:
                timings[name] = timings.get(name, 0.0) + (t() - t0)

        h, w = img.shape[:2]
        t0 = t()
        resized, _ = self._geometry(img)
        if resolution is not None:
            h, w = resolution
        lap("resize", t0)
        t0 = t()
        det = self.detector()
        faces = det.detect(resized)
        lap("detect", t0)
        if not faces:
            raise _Reject("1", "no_face", f"the {cfg.detector} detector found no face "
                          f"(min confidence {cfg.min_face_confidence})", "none: filtered out (no detectable face)")
        face = faces[0]
        rh, rw = resized.shape[:2]
        y0, x0 = crop_origin(face.box, rh, rw, csz)
        bx0, by0, bx1, by1 = face.box
        if bx0 < x0 - 1e-6 or by0 < y0 - 1e-6 or bx1 > x0 + csz + 1e-6 or by1 > y0 + csz + 1e-6:
            raise _Reject("1", "face_not_in_crop", f"face box {bx1 - bx0:.0f}x{by1 - by0:.0f} px does not fit a "
                          f"{csz}x{csz} crop", "none: filtered out (face larger than the crop)")
        crop = np.ascontiguousarray(resized[y0: y0 + csz, x0: x0 + csz])
        box = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
        frac = (box[2] - box[0]) * (box[3] - box[1]) / float(csz * csz)
        if frac < cfg.min_face_fraction:
            raise _Reject("2", "small_face", f"face box is {100 * frac:.2f}% of the image < "
                          f"{100 * cfg.min_face_fraction:g}%", "none: filtered out by min_face_fraction")
        t0 = t()
        lv = laplacian_variance(crop)
        lap("laplacian", t0)
        if lv < cfg.laplacian_threshold:
            raise _Reject("2", "blurry", f"variance of the Laplacian {lv:.2f} < {cfg.laplacian_threshold:g}",
                          "none: filtered out by laplacian_threshold")
        t0 = t()
        lm = face.landmarks - np.array([x0, y0]) if face.landmarks is not None else det.landmarks(crop, box)
        lap("landmarks", t0)
        if lm is None:
            raise _Reject("1", "no_landmarks", "no five-point landmarks found on the detected face",
                          "none: filtered out (landmarks are required metadata)")
        iqa = None
        if cfg.iqa_filter:
            fimg = crop.astype(np.float32) / np.float32(255.0)
            iqa = {n: float(m.score(fimg)) for n, m in self.iqa_metrics().items()}
            mins = {"musiq": cfg.musiq_min, "clipiqa": cfg.clipiqa_min, "maniqa": cfg.maniqa_min}
            low = [f"{n} {iqa[n]:.4f} < {mins[n]:g}" for n in IQA_THRESHOLDS if iqa[n] < mins[n]]
            if low:
                raise _Reject("3", "iqa", "; ".join(low), "none: filtered out by the IQA thresholds")
        sim = None
        af = self.arcface()
        if af is not None:
            sim = self._reference_similarity(af, identity, crop, lm, path)
            if cfg.min_reference_similarity is not None and sim is not None and sim < cfg.min_reference_similarity:
                raise _Reject("identity", "identity", f"ArcFace similarity to the reference {sim:.4f} < "
                              f"{cfg.min_reference_similarity:g}", "none: filtered out by min_reference_similarity")
        d = det.describe()
        meta = {"identity": identity, "resolution": [int(h), int(w)], "size": [csz, csz],
                "crop": {"scale": _r(rh / h if h <= w else rw / w, 6), "resized": [int(rh), int(rw)],
                         "y0": int(y0), "x0": int(x0), "decode_reduction": int(reduction)},
                "face_box": [_r(v, 2) for v in box], "face_score": _r(face.score), "n_faces": len(faces),
                "landmarks": [[_r(x, 2), _r(y, 2)] for x, y in np.asarray(lm, dtype=np.float64)],
                "face_fraction": _r(frac, 6), "laplacian_var": _r(lv, 3),
                "iqa": None if iqa is None else {k: _r(v, 6) for k, v in iqa.items()},
                "arcface_ref_similarity": _r(sim, 6), "detector": d["name"], "detector_sha256": d["sha256"]}
        return crop, meta

    def _reference_similarity(self, af, identity: str, crop, lm, path):
        """ArcFace cosine between the crop and the identity's reference image (None when there is none,
        unless min_reference_similarity demands one)."""
        from benchkit.faces.align import align
        from benchkit.images import IMAGE_SUFFIXES

        refs = self._rt.setdefault("refs", {})
        if identity not in refs:
            folder = self.source / identity
            cands = sorted(p for p in folder.glob(f"{self.config.reference_name}.*")
                           if p.suffix.lower() in IMAGE_SUFFIXES)
            emb = None
            if cands:
                rimg = decode_rgb8(cands[0].read_bytes(), cands[0])
                det = self.detector()
                faces = det.detect(rimg)
                rlm = None
                if faces:
                    rlm = faces[0].landmarks if faces[0].landmarks is not None else det.landmarks(rimg, faces[0].box)
                if rlm is None:
                    raise BadInputError(cands[0], "no face with landmarks found on the reference image",
                                        "use a reference photo that shows the face clearly")
                emb = af.embed(align(rimg.astype("float32") / 255.0, rlm, af.input_size))[0]
            refs[identity] = emb
        emb = refs[identity]
        if emb is None:
            if self.config.min_reference_similarity is not None:
                raise BadInputError(self.source / identity, f"no reference image "
                                    f"({self.config.reference_name}.<ext>) for identity {identity!r}",
                                    "add the identity's reference photo or unset min_reference_similarity")
            return None
        e = af.embed(align(crop.astype("float32") / 255.0, lm, af.input_size))[0]
        return float(e @ emb)

    def produce(self, job: Job, root_seed: int):
        import numpy as np

        from benchkit.seeding import rng_for, sample_entropy

        try:
            path, data, sha = self._read(job)
            h, w = header_size(data, path)
            if min(h, w) < self.config.min_short_side:
                raise _Reject("1", "short_side", f"short side {min(h, w)} px < {self.config.min_short_side}",
                              "none: filtered out by min_short_side")
            red = jpeg_reduction(data, min(h, w), self.config.crop_size) if self.config.jpeg_reduced_decode else 1
            img = decode_rgb8(data, path, red)
            crop, meta = self.filter_image(img, path, job.payload["identity"], resolution=(h, w), reduction=red)
        except _Reject as r:
            return [SampleFailure(job.key, str(self.source / job.payload["path"]), str(r), r.fix)]
        fields = {"sources": [{"path": job.payload["path"], "sha256": sha}], "meta": meta}
        outs = {"gt": crop}
        gen = self.generator()
        if gen is not None:
            from benchkit.generators.base import SampleContext

            fimg = crop.astype(np.float32) / np.float32(255.0)
            params = gen.sample(rng_for(root_seed, job.key, "params"), SampleContext(job.key, *crop.shape[:2]))
            outs["lq"] = gen.apply(fimg, params)["lq"]
            fields["seed"] = {"root": root_seed, "entropy": sample_entropy(root_seed, job.key, "params")}
            fields["params"] = params.to_json()
        return [Sample(job.key, fields, outs)]

    def produce_replay(self, job: Job, record: dict, root_seed: int):
        """Rebuild from the RECORDED crop geometry and params (no detection, no sampling)."""
        import numpy as np

        from benchkit.params import Params

        path, data, sha = self._read(job)
        if sha != record["sources"][0]["sha256"]:
            raise BenchkitError(f"{path}: source changed since the build (sha256 {sha[:12]} != recorded "
                                f"{record['sources'][0]['sha256'][:12]})")
        c = record["meta"]["crop"]
        img = decode_rgb8(data, path, c.get("decode_reduction", 1))
        _, crop = self._geometry(img, (c["y0"], c["x0"]), c["resized"])
        outs = {"gt": crop}
        gen = self.generator()
        if gen is not None:
            outs["lq"] = gen.apply(crop.astype(np.float32) / np.float32(255.0),
                                   Params.from_json(record["params"]))["lq"]
        return {}, outs

    # -- rejections, funnel, card ---------------------------------------------------------
    def finish(self, out_dir, summary, spec) -> None:
        """Split rejections (filter decisions) from errors: ``rejections.jsonl`` + ``failures.jsonl``; the funnel
        goes into spec.json (``funnel``) and the summary keeps errors only."""
        from benchkit import manifest as mf
        from benchkit.fsio import atomic_write_text

        out_dir = Path(out_dir)
        rejections, errors = [], []
        for f in summary.failures:
            p = parse_rejection(f.get("error", ""))
            if p:
                rejections.append({"key": f["key"], "path": f.get("path", ""), "stage": p[0], "reason": p[1],
                                   "detail": p[2]})
            else:
                errors.append(f)
        rpath = out_dir / REJECTIONS
        if rejections:
            atomic_write_text(rpath, "".join(json.dumps(r, sort_keys=True) + "\n"
                                             for r in sorted(rejections, key=lambda r: r["key"])))
        elif rpath.exists():
            rpath.unlink()
        fpath = out_dir / mf.FAILURES
        if errors:
            mf.write_sorted(fpath, errors)
        elif fpath.exists():
            fpath.unlink()
        listed = summary.total
        n_err = len([e for e in errors if not e["key"].endswith(("/(empty)",)) and not e["key"].startswith("(no ")])
        funnel = {"images": listed, "errors": n_err}
        left = listed - n_err
        for st in STAGES:
            left -= sum(1 for r in rejections if r["stage"] == st)
            funnel[f"after_stage_{st}"] = left
        funnel["built"] = spec.get("n_samples")
        reasons: dict = {}
        for r in rejections:
            reasons[f"stage {r['stage']}: {r['reason']}"] = reasons.get(f"stage {r['stage']}: {r['reason']}", 0) + 1
        spec["funnel"] = funnel
        spec["rejections"] = dict(sorted(reasons.items()))
        spec["n_failed"] = len(errors)
        spec["n_rejected"] = len(rejections)
        if not errors and not spec.get("complete"):  # rejected images are done too: complete = nothing left to try
            built = set(mf.read_manifest(out_dir))
            spec["complete"] = {j.key for j in self.jobs()} <= built | {r["key"] for r in rejections}
        mf.write_spec(out_dir, spec)
        summary.failures = errors
        summary.failed = len(errors)

    def card(self, summary, spec: dict) -> str:
        text = super().card(summary, spec)
        c = self.config
        f = spec.get("funnel") or {}
        lines = ["", "## Filter funnel", "",
                 f"- images listed: {f.get('images')} (unreadable/other errors: {f.get('errors')})",
                 f"- after stage 1 (short side >= {c.min_short_side} px, face found by {c.detector}, "
                 f"{c.crop_size} px crop holds the face, landmarks): {f.get('after_stage_1')}",
                 f"- after stage 2 (face >= {100 * c.min_face_fraction:g}% of the crop, variance of Laplacian >= "
                 f"{c.laplacian_threshold:g}): {f.get('after_stage_2')}"]
        if c.iqa_filter:
            lines.append(f"- after stage 3 (MUSIQ >= {c.musiq_min:g}, CLIP-IQA >= {c.clipiqa_min:g}, MANIQA >= "
                         f"{c.maniqa_min:g}): {f.get('after_stage_3')}")
        else:
            lines.append("- stage 3 (IQA filter) was TURNED OFF (iqa_filter=false): these samples were not "
                         "filtered by MUSIQ / CLIP-IQA / MANIQA")
        if c.min_reference_similarity is not None:
            lines.append(f"- after the identity filter (ArcFace to reference >= {c.min_reference_similarity:g}): "
                         f"{f.get('after_stage_identity')}")
        lines.append(f"- built: {f.get('built')}")
        lines += ["", "Rejections by stage and reason (every one in `rejections.jsonl`):", ""]
        lines += [f"- {k}: {v}" for k, v in (spec.get("rejections") or {}).items()] or ["- none"]
        det = (spec.get("inscene") or {}).get("detector") or {}
        lines += ["", f"Face detector: {det.get('name')} (models sha256 {det.get('sha256')}); degradation: "
                  f"{c.degradation}.", ""]
        return text + "\n".join(lines)

    def card_counts(self) -> dict:
        c = self.config
        return {"crop": f"{c.crop_size}x{c.crop_size} px", "iqa_filter": "on" if c.iqa_filter else "OFF",
                "degradation": c.degradation}


def materialize_gallery(dest=None) -> Path:
    """The embedded demo gallery: one identity folder per wheel-shipped photo, bytes copied verbatim."""
    from benchkit.embedded import EMBEDDED_IMAGES, cache_root, package_file
    from benchkit.fsio import atomic_write_bytes

    dest = Path(dest) if dest else cache_root() / "embedded-inscene-gallery-v1"
    by_name = {n: (pkg, rel) for n, pkg, rel in EMBEDDED_IMAGES}
    for ident, name in EMBEDDED_GALLERY:
        pkg, rel = by_name[name]
        src = package_file(pkg, rel)
        out = dest / ident / f"{name}{Path(rel).suffix}"
        if not out.exists():
            atomic_write_bytes(out, src.read_bytes())
    return dest
