"""``mpii-test``: the real human-motion-blur test set of HAODiff (Sec. 4.1, Table 2; REFERENCE-wave2 section 4).

Default (``rebuild: false``): ``--source`` is the released MPII-Test folder HAODiff ships (5,427 512x512
crops, Google Drive link in the HAODiff README). Every image is decoded (validated) and copied verbatim as
the ``lq`` input; the dataset has no targets (roles ``{"lq": "input"}``). Key = relative path without suffix.

``rebuild: true``: ``--source`` holds MPII Human Pose (``mpii_human_pose_v1_u12_1.mat`` + ``images/``) and the
OSDHuman selection without its quality filter is re-run (no thresholds are published, so it approximates
the released 5,427):

1. keypoint box = min/max of a person's annotated joints (``annopoints``), extended by ``margin`` x its
   longer edge on every side, clipped to the image (a box wholly outside the image is a reported problem);
2. boxes whose longer edge is below ``min_box`` px are rejected;
3. square crop of side = the box's longer edge, centred on the box and shifted inside the image (a crop
   larger than the image is rejected);
4. overlapping crops of one image: greedy NMS in order of the crop centre's distance to the image centre
   (nearest kept; IoU > ``overlap_iou`` suppressed);
5. optional OSDHuman quality filter (``laplacian_min``, variance of the Laplacian of the grey crop;
   off by default as in HAODiff);
6. resize to ``size`` x ``size`` (OpenCV INTER_AREA when shrinking, bicubic when enlarging).

The funnel (count after every stage) is printed and written to the card. Keys: ``<image stem>_p<ridx>``
(``ridx`` 1-based as in the annotation). MPII joint coordinates are MATLAB 1-based pixels: 1 is subtracted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.builders.base import DatasetBuilder
from benchkit.errors import BadInputError, BenchkitError, MissingSourceError
from benchkit.runner import Encoded, Job

ANNOTATION = "mpii_human_pose_v1_u12_1.mat"
RELEASED_COUNT = 5427


@dataclass(frozen=True)
class MPIITestConfig:
    rebuild: bool = False  # False: package the released MPII-Test folder; True: re-select from MPII Human Pose
    split: str = "all"  # rebuild: 'all' | 'train' (img_train == 1) | 'test' (test images carry no joints)
    margin: float = 0.1  # rebuild: box extension on each side, fraction of the box's longer edge [inf]
    min_box: int = 128  # rebuild: px, boxes whose longer edge (after the margin) is smaller are rejected [inf]
    min_joints: int = 2  # rebuild: annotated joints a person needs for a box
    overlap_iou: float = 0.0  # rebuild: crops overlapping a kept one by more IoU than this are suppressed
    laplacian_min: float | None = None  # rebuild: OSDHuman blur filter (variance of Laplacian, 0-255 grey); off
    size: int = 512  # rebuild: output side in px

    def __post_init__(self):
        from benchkit.config import check_number

        if self.split not in ("all", "train", "test"):
            raise ValueError(f"split must be 'all', 'train' or 'test', got {self.split!r}")
        check_number("margin", self.margin, 0.0, 10.0)
        check_number("min_box", self.min_box, 1, 100000, integer=True)
        check_number("min_joints", self.min_joints, 1, 16, integer=True)
        check_number("overlap_iou", self.overlap_iou, 0.0, 1.0)
        check_number("size", self.size, 8, 8192, integer=True)
        if self.laplacian_min is not None:
            check_number("laplacian_min", self.laplacian_min, 0.0, 1e9)


# ----------------------------------------------------------------------------- RELEASE parser


@dataclass
class Person:
    ridx: int  # 1-based index into annorect
    joints: "object"  # (k, 2) float64 array of annotated joints, 0-based pixels
    visible: list = field(default_factory=list)  # per joint: 1, 0 or -1 (unknown)


@dataclass
class AnnotatedImage:
    index: int  # 1-based imgidx
    name: str
    is_train: int  # 1 train, 0 test, -1 unknown
    persons: list


def _arr(v):
    """A struct field as a 1-d object list: squeezed scalars, empty arrays and None handled."""
    import numpy as np

    if v is None:
        return []
    if isinstance(v, np.ndarray):
        return list(v.ravel()) if v.size else []
    return [v]


def _num(v):
    """A scalar number from an int/float/str/0-d or 1-element array; None for empty/unparseable."""
    import numpy as np

    if isinstance(v, np.ndarray):
        if v.size != 1:
            return None
        v = v.ravel()[0]
    if isinstance(v, (bytes, str)):
        v = v.decode() if isinstance(v, bytes) else v
        try:
            return float(v.strip())
        except ValueError:
            return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def _str(v) -> str | None:
    import numpy as np

    if isinstance(v, np.ndarray):
        if v.size != 1:
            return None
        v = v.ravel()[0]
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    return v if isinstance(v, str) and v else None


def parse_release(path) -> list[AnnotatedImage]:
    """Every image of the ``RELEASE`` struct with its persons' annotated joints (robust to loadmat quirks:
    squeezed 1-element structs, empty ``annorect``/``annopoints``, missing fields, ``is_visible`` as
    int/str/empty, 1-based indices). A file that is not a RELEASE annotation raises BadInputError."""
    import numpy as np

    path = Path(path)
    fix = f"use the official {ANNOTATION} from http://human-pose.mpi-inf.mpg.de (mpii_human_pose_v1_u12_2.zip)"
    try:
        import scipy.io
    except ImportError as e:
        raise BenchkitError(f"reading {path} needs scipy (pip install scipy): {e}") from None
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except FileNotFoundError:
        raise BadInputError(path, "annotation file not found", fix) from None
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError on damaged files
        raise BadInputError(path, f"cannot read the .mat file ({type(e).__name__}: {e})", fix) from None
    R = mat.get("RELEASE")
    annolist = getattr(R, "annolist", None) if R is not None else None
    if annolist is None:
        raise BadInputError(path, "no RELEASE struct with an annolist field", fix)
    annolist = _arr(annolist)
    train = [_num(x) for x in _arr(getattr(R, "img_train", None))]
    out = []
    for i, a in enumerate(annolist):
        image = getattr(a, "image", None)
        name = _str(getattr(image, "name", None)) if image is not None else None
        is_train = int(train[i]) if i < len(train) and train[i] is not None else -1
        persons = []
        for ri, r in enumerate(_arr(getattr(a, "annorect", None))):
            ap = getattr(r, "annopoints", None)
            pts = _arr(getattr(ap, "point", None)) if ap is not None and not isinstance(ap, np.ndarray) else []
            xy, vis = [], []
            for p in pts:
                x, y = _num(getattr(p, "x", None)), _num(getattr(p, "y", None))
                if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)) or x < 0 or y < 0:
                    continue  # MPII marks missing joints with -1
                xy.append((x - 1.0, y - 1.0))
                v = _num(getattr(p, "is_visible", None))
                vis.append(-1 if v is None else int(v))
            persons.append(Person(ri + 1, np.asarray(xy, np.float64).reshape(-1, 2), vis))
        out.append(AnnotatedImage(i + 1, name or "", is_train, persons))
    return out


# ----------------------------------------------------------------------------- selection


def keypoint_box(joints, margin: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the joints extended by ``margin`` x the longer edge on every side."""
    x0, y0 = joints.min(axis=0)
    x1, y1 = joints.max(axis=0)
    m = margin * max(x1 - x0, y1 - y0)
    return float(x0 - m), float(y0 - m), float(x1 + m), float(y1 + m)


def square_crop(box, width: int, height: int):
    """Integer (x0, y0, side) of the square of side = the box's longer edge (rounded) centred on it and
    shifted inside the image; None when the square is larger than the image."""
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0, y1 - y0)))
    if side > min(width, height) or side < 1:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sx = min(max(int(round(cx - side / 2)), 0), width - side)
    sy = min(max(int(round(cy - side / 2)), 0), height - side)
    return sx, sy, side


def iou(a, b) -> float:
    """IoU of two (x0, y0, side) squares."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] ** 2 + b[2] ** 2 - inter) if inter else 0.0


def nms_centre(crops: list, width: int, height: int, thr: float) -> list:
    """Greedy NMS over ``[(ridx, (x0, y0, side)), ...]``: visit crops by the distance of their centre to the
    image centre (ties: smaller ridx), keep one unless it overlaps a kept crop by IoU > ``thr``."""
    cx, cy = width / 2, height / 2

    def dist(c):
        x0, y0, s = c[1]
        return ((x0 + s / 2 - cx) ** 2 + (y0 + s / 2 - cy) ** 2, c[0])

    kept = []
    for c in sorted(crops, key=dist):
        if all(iou(c[1], k[1]) <= thr for k in kept):
            kept.append(c)
    return sorted(kept)


def select(images: list, sizes: dict, cfg: MPIITestConfig):
    """(selected crops, funnel, problems) from parsed images and ``sizes`` {name: (h, w)} of the images on
    disk. Selected: ``[(key, name, ridx, (x0, y0, side)), ...]`` sorted by key; the quality filter is
    applied later by the caller. Problems: ``[(name, ridx, error, fix)]`` for boxes wholly outside."""
    import numpy as np

    f = {"images annotated": len(images)}
    imgs = [im for im in images if cfg.split == "all" or im.is_train == (1 if cfg.split == "train" else 0)]
    f[f"images in split '{cfg.split}'"] = len(imgs)
    imgs = [im for im in imgs if im.name in sizes]
    f[f"images with a >= {cfg.min_joints}-joint person, on disk"] = len(imgs)
    n_persons = n_joints = n_inside = n_big = n_fit = 0
    out, problems = [], []
    for im in imgs:
        h, w = sizes[im.name]
        crops = []
        for p in im.persons:
            n_persons += 1
            if len(p.joints) < cfg.min_joints:
                continue
            n_joints += 1
            x0, y0, x1, y1 = keypoint_box(p.joints, cfg.margin)
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                problems.append((im.name, p.ridx, f"keypoint box {np.round([x0, y0, x1, y1], 1).tolist()} lies "
                                 f"outside the {w}x{h} image", "check the annotation/image pairing (a rescaled or "
                                 "replaced image file?)"))
                continue
            box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h)))
            n_inside += 1
            if max(box[2] - box[0], box[3] - box[1]) < cfg.min_box:
                continue
            n_big += 1
            sq = square_crop(box, w, h)
            if sq is None:
                continue
            n_fit += 1
            crops.append((p.ridx, sq))
        for ridx, sq in nms_centre(crops, w, h, cfg.overlap_iou):
            out.append((f"{Path(im.name).stem}_p{ridx}", im.name, ridx, sq))
    f.update({"persons": n_persons, f"persons with >= {cfg.min_joints} joints": n_joints,
              "boxes inside the image": n_inside, f"boxes >= {cfg.min_box} px": n_big,
              "square crops that fit": n_fit, "after NMS (nearest the centre kept)": len(out)})
    return sorted(out), f, problems


def laplacian_variance(img) -> float:
    """Variance of the 3x3 Laplacian of the grey image in 0-255 units (OSDHuman's blur measure)."""
    import cv2
    import numpy as np

    grey = cv2.cvtColor(np.ascontiguousarray(img, np.float32), cv2.COLOR_RGB2GRAY) * 255.0
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def crop_resize(img, crop, size: int):
    """uint8 ``size`` x ``size`` crop (INTER_AREA when shrinking, bicubic when enlarging)."""
    import cv2

    from benchkit.images import to_uint8

    x0, y0, s = crop
    patch = img[y0:y0 + s, x0:x0 + s]
    interp = cv2.INTER_AREA if s >= size else cv2.INTER_CUBIC
    return to_uint8(cv2.resize(patch, (size, size), interpolation=interp).clip(0, 1))


# ----------------------------------------------------------------------------- builder


class MPIITestBuilder(DatasetBuilder):
    name = "mpii-test"
    version = "1"
    Config = MPIITestConfig
    roles = {"lq": "input"}
    description = ("MPII-Test (HAODiff Sec. 4.1): real photographs of people with human motion blur, selected from "
                   "MPII Human Pose by the OSDHuman pipeline without its quality filter; input-only (no targets). "
                   "Evaluated with no-reference IQA and HMB-R.")
    source_help = ("Expected (default): the MPII-Test folder HAODiff ships (see the HAODiff README, Google Drive; "
                   f"{RELEASED_COUNT} images). With --set rebuild=true: the MPII Human Pose folder holding "
                   f"{ANNOTATION} (mpii_human_pose_v1_u12_2.zip) and images/ (mpii_human_pose_v1.tar.gz) from "
                   "http://human-pose.mpi-inf.mpg.de, downloaded manually. `--source embedded` packages the "
                   "built-in demo photos as a tiny stand-in.")
    source_license = ("MPII Human Pose: images from YouTube, annotations under the simplified BSD licence; research "
                      "use. The released MPII-Test crops follow the HAODiff release terms.")
    citation = ("Andriluka et al., 2D Human Pose Estimation: New Benchmark and State of the Art Analysis, CVPR 2014; "
                "HAODiff (human-aware one-step diffusion), Sec. 4.1; OSDHuman, Sec. 3.1.")

    def __init__(self, config=None, source=None):
        super().__init__(config, source)
        self.metadata = ({"image": "str", "ridx": "int", "crop": "list"} if self.config.rebuild else {})
        self._problems: list[dict] = []
        self._funnel: dict = {}
        self._jobs = None

    @classmethod
    def resolve_source(cls, source):
        from benchkit.embedded import materialize_images

        return materialize_images() if str(source) == "embedded" else Path(source)

    def check_source(self) -> None:
        super().check_source()
        if self.config.rebuild and not (self.source / ANNOTATION).is_file():
            raise MissingSourceError(f"{self.name}: rebuild=true needs {self.source / ANNOTATION} (and "
                                     f"{self.source / 'images'}/).\n{self.source_help}")

    def spec(self) -> dict:
        s = super().spec()
        if self.config.rebuild:
            s["approximates"] = f"the released MPII-Test ({RELEASED_COUNT} images); thresholds are unpublished"
        return s

    # -- jobs ---------------------------------------------------------------------------------
    def jobs(self):
        if self._jobs is None:
            self._jobs = self._rebuild_jobs() if self.config.rebuild else self._released_jobs()
        return self._jobs

    def _released_jobs(self):
        from benchkit.builders.generator_producer import image_jobs

        jobs = image_jobs(self.source)
        self._funnel = {"images in the folder": len(jobs)}
        return jobs

    def _rebuild_jobs(self):
        from benchkit.builders.blur_synth import image_size

        cfg = self.config
        images = parse_release(self.source / ANNOTATION)
        sizes, problems = {}, []
        for im in images:
            if not im.name or im.name in sizes:
                continue
            if cfg.split != "all" and im.is_train != (1 if cfg.split == "train" else 0):
                continue
            if not any(len(p.joints) >= cfg.min_joints for p in im.persons):
                continue  # never selected: do not require the file
            p = self.source / "images" / im.name
            try:
                sizes[im.name] = image_size(p)
            except FileNotFoundError:
                problems.append({"key": Path(im.name).stem, "path": str(p), "error": "image file missing",
                                 "fix": "extract mpii_human_pose_v1.tar.gz into images/ (or ignore: the rest "
                                        "builds)"})
            except Exception as e:
                problems.append({"key": Path(im.name).stem, "path": str(p), "error": f"unreadable image ({e})",
                                 "fix": "re-extract the image from the MPII archive"})
        # images without persons with joints never need their file; count them as "on disk" only if present
        sel, funnel, box_problems = select(images, sizes, cfg)
        for name, ridx, err, fix in box_problems:
            problems.append({"key": f"{Path(name).stem}_p{ridx}", "path": str(self.source / ANNOTATION),
                             "error": f"{name} person {ridx}: {err}", "fix": fix})
        jobs = [Job(key, {"image": name, "ridx": ridx, "crop": list(crop)}) for key, name, ridx, crop in sel]
        if cfg.laplacian_min is not None:
            from benchkit.images import read_image

            keep, cache = [], {}
            for j in jobs:
                name = j.payload["image"]
                if name not in cache:
                    cache = {name: read_image(self.source / "images" / name)}
                x0, y0, s = j.payload["crop"]
                if laplacian_variance(cache[name][y0:y0 + s, x0:x0 + s]) >= cfg.laplacian_min:
                    keep.append(j)
            jobs = keep
            funnel[f"Laplacian variance >= {cfg.laplacian_min}"] = len(jobs)
        self._problems, self._funnel = problems, funnel
        print(f"{self.name} rebuild funnel: " + "; ".join(f"{k}: {v}" for k, v in funnel.items())
              + f" (the released set has {RELEASED_COUNT})", file=sys.stderr)
        if not jobs:
            raise BadInputError(self.source / ANNOTATION, "the selection is empty (funnel: " + "; ".join(
                f"{k}: {v}" for k, v in funnel.items()) + ")",
                "check that images/ holds the MPII images, or loosen min_box / min_joints / margin / overlap_iou")
        return jobs

    def source_problems(self) -> list[dict]:
        return list(self._problems)

    # -- samples ------------------------------------------------------------------------------
    def produce(self, job: Job, root_seed: int):
        from benchkit.fsio import sha256_bytes
        from benchkit.images import decode_image

        if not self.config.rebuild:
            rel = job.payload["path"]
            path = self.source / rel
            data = path.read_bytes()
            img = decode_image(data, path)  # validates every image
            if img.shape[0] < 8 or img.shape[1] < 8:
                raise BadInputError(path, f"image is only {img.shape[1]}x{img.shape[0]} px",
                                    "remove it from the MPII-Test folder")
            suffix = path.suffix.lower() if path.suffix.lower() in (".png", ".jpg", ".jpeg") else None
            out = Encoded(suffix, data) if suffix else (img * 255.0 + 0.5).clip(0, 255).astype("uint8")
            return {"sources": [{"path": rel, "sha256": sha256_bytes(data)}]}, {"lq": out}
        p = job.payload
        rel = f"images/{p['image']}"
        path = self.source / rel
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadInputError(path, f"cannot read image ({e.strerror})",
                                "extract mpii_human_pose_v1.tar.gz into images/") from None
        img = decode_image(data, path)
        x0, y0, s = p["crop"]
        if y0 + s > img.shape[0] or x0 + s > img.shape[1]:
            raise BadInputError(path, f"crop {p['crop']} exceeds the {img.shape[1]}x{img.shape[0]} image",
                                "the image differs from the one listed in the annotation; re-extract it")
        lq = crop_resize(img, (x0, y0, s), self.config.size)
        fields = {"sources": [{"path": rel, "sha256": sha256_bytes(data)}],
                  "meta": {"image": p["image"], "ridx": int(p["ridx"]), "crop": [int(x0), int(y0), int(s)]}}
        return fields, {"lq": lq}

    def card_counts(self) -> dict:
        c = {f"funnel: {k}": v for k, v in self._funnel.items()}
        if self.config.rebuild:
            c["note"] = (f"rebuilt selection; approximates the released MPII-Test ({RELEASED_COUNT} images): "
                         "OSDHuman's margins and thresholds are unpublished")
        return c
