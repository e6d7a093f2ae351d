"""HMB-R: the human-motion-blur detection ratio of HAODiff (Sec. 4.1, Table 2; REFERENCE section 3).

A YOLO11 detector fine-tuned on HMB data (``benchkit train-detector hmb``) counts human-motion-blur
instances on every restored image and on every input image::

    HMB-R = sum_i n_restored_i / sum_i n_input_i        (dataset-level ratio of totals; lower is better)

Per-image ratios break on zero and values above 1 occur (ResShift 1.0799), hence the ratio of totals.
The input-side counts are the metric's reference states (``reference_role = "input"``): computed once
per dataset, cached, shared by every method. Detection settings (ultralytics predict defaults): ``conf``
0.25, ``iou`` 0.7, ``imgsz`` 640 px; all recorded, and the detector's sha256 enters the metric id so
cached counts follow the file.

The detector is a file the user chose, relative to the weights root (setting ``weights``):

- ``.onnx`` / ``.torchscript``: exports that load without unpickling;
- ``.pt`` (an ultralytics checkpoint = a pickle that can run code): loaded only when its full sha256 is
  pinned, by the ``sha256`` setting or a 64-hex digest in its file name (what ``train-detector`` writes).

Nothing is ever downloaded: ultralytics runs with ``YOLO_OFFLINE=1`` and a private config folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchkit.errors import BenchkitError, UnavailableError
from benchkit.metrics.base import Metric

DEFAULT_WEIGHTS = "hmb/hmb-detector.onnx"
EXPORT_SUFFIXES = (".onnx", ".torchscript")
PICKLE_SUFFIXES = (".pt",)
TRAIN_HINT = ("train one with `benchkit train-detector hmb --data <hmb-synth dataset>` (writes "
              "<weights root>/hmb/hmb-yolo11-<sha256>.pt) and set `weights:` of metric hmbr to it")


def ultralytics_offline(cache_dir=None) -> Path:
    """Set ultralytics' offline environment before it is imported (REFERENCE-wave2 section 3):
    ``YOLO_OFFLINE=1`` and a private ``YOLO_CONFIG_DIR`` holding ``Ultralytics/Arial.ttf`` (a copy of
    matplotlib's DejaVuSans) so no font or asset download is attempted. Returns the config folder."""
    import shutil

    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    cfg = os.environ.get("YOLO_CONFIG_DIR")
    if not cfg:
        from benchkit.embedded import cache_root

        cfg = str(Path(cache_dir) if cache_dir else cache_root() / "ultralytics")
        os.environ["YOLO_CONFIG_DIR"] = cfg
    font = Path(cfg) / "Ultralytics" / "Arial.ttf"
    if not font.is_file():
        try:
            import matplotlib

            src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
            font.parent.mkdir(parents=True, exist_ok=True)
            tmp = font.with_name(f".Arial.ttf.{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, font)
        except (ImportError, OSError):
            pass  # ultralytics only needs the font for plots, which benchkit turns off
    import sys

    for name, mod in list(sys.modules.items()):  # imported earlier without the flag: ONLINE was computed then
        if name.startswith("ultralytics") and getattr(mod, "ONLINE", None) is True:
            mod.ONLINE = False
    return Path(cfg)


def load_yolo(path: Path, pinned: str | None):
    """An ultralytics YOLO model from ``path``; a ``.pt`` pickle only when ``pinned`` (full sha256) matches."""
    from benchkit.fsio import sha256_file

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        digest = sha256_file(path)
        if not pinned or digest != pinned.lower():
            raise UnavailableError(
                f"{path} is an ultralytics .pt checkpoint (a pickle that can run code); benchkit loads it only "
                f"when its sha256 is pinned. Its sha256 is {digest}: if this is your file, set metric hmbr's "
                f"setting sha256: {digest} (or name it with that digest, as train-detector does), or export it "
                "to ONNX/TorchScript (`yolo export model=... format=onnx`)")
    elif suffix not in EXPORT_SUFFIXES:
        raise UnavailableError(f"{path}: unsupported detector format {suffix!r}; use .onnx, .torchscript or a "
                               "sha256-pinned .pt")
    ultralytics_offline()
    try:
        from ultralytics import YOLO
    except ImportError as e:
        raise UnavailableError(f"HMB-R needs ultralytics (pip install 'benchkit[detect]'): {e}") from None
    return YOLO(str(path), task="detect")


class YoloCounter:
    """Counts detections per image with an ultralytics model (``predict`` on HWC uint8 BGR arrays)."""

    def __init__(self, model, conf: float, iou: float, imgsz: int, device: str):
        self.model, self.conf, self.iou, self.imgsz, self.device = model, conf, iou, imgsz, device

    def __call__(self, images_rgb8: list) -> list[int]:
        bgr = [im[:, :, ::-1].copy() for im in images_rgb8]
        rs = self.model.predict(source=bgr, conf=self.conf, iou=self.iou, imgsz=self.imgsz, device=self.device,
                                verbose=False)
        return [int(len(r.boxes)) for r in rs]


class HMBR(Metric):
    """Dataset-level HMB-R (ratio of total detections, restored / input)."""

    reference_role = "input"

    def __init__(self, info, **kw):
        import dataclasses

        super().__init__(info, **kw)
        rel = str(self.info.settings.get("weights") or DEFAULT_WEIGHTS)
        p = self.root / rel
        sha = ""
        if p.is_file():
            from benchkit.fsio import sha256_file

            sha = sha256_file(p)
        # the detector's identity is a recorded setting: it enters the metric id (caches follow the file)
        self.info = dataclasses.replace(self.info, weights=(rel,),
                                        settings={**self.info.settings, "weights": rel, "weights_sha256": sha})
        self._counter = None

    # -- availability / loading -----------------------------------------------------------------------
    def weights_path(self) -> Path:
        return self.root / self.info.settings["weights"]

    def pinned(self) -> str | None:
        from benchkit.metrics.weights import pinned_sha256

        s = str(self.info.settings.get("sha256") or "").strip().lower()
        return s or pinned_sha256(self.info.settings["weights"])

    def availability(self) -> tuple[bool, str]:
        p = self.weights_path()
        if not p.is_file():
            return False, (f"no HMB detector at {p}: place your YOLO11 HMB detector there (.onnx/.torchscript, "
                           f"or a .pt with its sha256 pinned), or {TRAIN_HINT}")
        suf = p.suffix.lower()
        if suf not in EXPORT_SUFFIXES + PICKLE_SUFFIXES:
            return False, f"{p}: unsupported detector format {suf!r}; use .onnx, .torchscript or a pinned .pt"
        if suf in PICKLE_SUFFIXES and self.pinned() != self.info.settings["weights_sha256"]:
            return False, (f"{p} is a .pt pickle whose sha256 ({self.info.settings['weights_sha256']}) is not "
                           "pinned; if it is your file set metric hmbr's setting `sha256:` to that value, or "
                           "export it to ONNX/TorchScript")
        return self._backend_available()

    def _backend_available(self) -> tuple[bool, str]:
        import importlib.util

        if importlib.util.find_spec("ultralytics") is None:
            return False, "HMB-R needs ultralytics: pip install 'benchkit[detect]' (ultralytics>=8.4)"
        return True, ""

    def counter(self):
        """The per-image detection counter (list of HxWx3 uint8 RGB -> list of int); loaded once."""
        if self._counter is None:
            self.require()
            s = self.info.settings
            model = load_yolo(self.weights_path(), self.pinned())
            self._counter = YoloCounter(model, float(s["conf"]), float(s["iou"]), int(s["imgsz"]), self.device)
        return self._counter

    def count(self, images) -> list[int]:
        from benchkit.images import to_uint8

        imgs = [to_uint8(im) for im in images]
        out = [int(n) for n in self.counter()(imgs)]
        if len(out) != len(imgs):
            raise BenchkitError(f"HMB detector returned {len(out)} results for {len(imgs)} images")
        return out

    # -- dataset-level API --------------------------------------------------------------------------
    def _compute(self, dists, refs):
        raise BenchkitError("hmbr is dataset-level: use partials()/reference_partials()/aggregate()")

    chunk = 16  # images per detector call; only a chunk of decoded images is held at a time

    def _count_requests(self, requests: list, side: str) -> list:
        out = []
        for i in range(0, len(requests), self.chunk):
            part = requests[i:i + self.chunk]
            out += [float(n) for n in self.count([getattr(r, side) for r in part])]
            for r in part:  # a dataset of thousands of images must not stay decoded in the requests
                r._cache.pop(side, None)
        return out

    def partials(self, requests: list) -> list:
        return self._count_requests(requests, "output")

    def reference_partials(self, requests: list) -> list:
        return self._count_requests(requests, "input")

    def aggregate(self, partials: list, reference_partials: list) -> float:
        return hmbr_ratio(partials, reference_partials)

    def item_columns(self, partial, reference_partial) -> dict:
        """Per-image columns of ``per_image.csv``: detections on the input and on the output."""
        return {"hmbr_input_detections": int(float(reference_partial)),
                "hmbr_output_detections": int(float(partial))}

    def score_folders(self, dist_dir, ref_dir) -> float:
        from benchkit.images import list_images, read_image

        d = [read_image(p) for p in list_images(dist_dir)]
        r = [read_image(p) for p in list_images(ref_dir)]
        return hmbr_ratio(self.count(d), self.count(r))


def hmbr_ratio(output_counts, input_counts) -> float:
    """sum(output counts) / sum(input counts); undefined (error) when the inputs hold no detection."""
    import math

    num = math.fsum(float(x) for x in output_counts)
    den = math.fsum(float(x) for x in input_counts)
    if den <= 0:
        raise BenchkitError("HMB-R is undefined: the detector found no HMB instance on any input image "
                            "(check the detector, its conf threshold, or that the dataset has motion blur)")
    return num / den
