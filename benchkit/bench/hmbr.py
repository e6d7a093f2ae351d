"""``benchkit bench hmbr``: HMB detector throughput and the cost of input-side detections in an evaluation.

1. **detector**: images/s of ``predict`` of a YOLO11n (``yolo11n.yaml``, untrained: the architecture HMB-R
   uses; weights do not change its speed) on ``n`` 512x512 images (the MPII-Test size) at imgsz 640, on CPU
   (and CUDA when available), batch = all images, after one warm-up call.
2. **evaluation**: ``evaluate()`` of methods identity + unsharp on an input-only folder of the embedded photos
   with metric HMB-R backed by that detector (conf 0.001 so the untrained model detects something); the time
   spent in ``reference_partials`` (input-side detections) and in ``partials`` is measured. With the per-dataset
   cache the inputs are detected once; without it they would be detected once per method (M times), i.e. the
   share is ``M t_ref / (t_eval + (M - 1) t_ref)`` (computed from the measured times). A cached re-run is timed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchkit.metrics.hmbr import HMBR, YoloCounter

TIMES = {"ref": 0.0, "out": 0.0, "ref_n": 0, "out_n": 0}


def _yolo(device="cpu"):
    from benchkit.metrics.hmbr import ultralytics_offline

    ultralytics_offline()
    from ultralytics import YOLO

    m = YOLO("yolo11n.yaml", task="detect")
    return m


class _BenchHMBR(HMBR):
    """HMB-R with an untrained YOLO11n (timing only; never used for numbers outside this bench)."""

    _model = None

    def availability(self):
        return True, ""

    def counter(self):
        if _BenchHMBR._model is None:
            _BenchHMBR._model = _yolo()
        s = self.info.settings
        return YoloCounter(_BenchHMBR._model, float(s["conf"]), float(s["iou"]), int(s["imgsz"]), "cpu")

    def partials(self, requests):
        t0 = time.perf_counter()
        r = super().partials(requests)
        TIMES["out"] += time.perf_counter() - t0
        TIMES["out_n"] += len(requests)
        return r

    def reference_partials(self, requests):
        t0 = time.perf_counter()
        r = super().reference_partials(requests)
        TIMES["ref"] += time.perf_counter() - t0
        TIMES["ref_n"] += len(requests)
        return r


def _detector_speed(n: int, device: str, imgsz: int = 640) -> float:
    import numpy as np

    model = _yolo()
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(n)]
    model.predict(source=imgs[:1], imgsz=imgsz, device=device, verbose=False)  # warm-up
    t0 = time.perf_counter()
    model.predict(source=imgs, imgsz=imgsz, device=device, verbose=False, conf=0.25, iou=0.7)
    return n / (time.perf_counter() - t0)


def run(args) -> dict:
    import dataclasses

    import yaml

    from benchkit import registry
    from benchkit.embedded import materialize_images
    from benchkit.harness.evaluate import evaluate
    from benchkit.metrics import catalog

    n = args.n or (4 if args.quick else 16)
    res = {"n_images": n}
    res["detector_images_per_s_cpu"] = _detector_speed(n, "cpu")
    print(f"detector (YOLO11n, imgsz 640, 512x512 inputs): {res['detector_images_per_s_cpu']:.2f} images/s on CPU")
    try:
        import torch

        if torch.cuda.is_available():
            res["detector_images_per_s_cuda"] = _detector_speed(n, "cuda")
            print(f"detector on CUDA: {res['detector_images_per_s_cuda']:.2f} images/s")
    except ImportError:
        pass

    methods = ["identity", "unsharp"]
    old_m, old_c = registry.METRICS.get("hmbr-bench"), catalog.BY_NAME.get("hmbr-bench")
    registry.METRICS["hmbr-bench"] = f"{__name__}:_BenchHMBR"
    catalog.BY_NAME["hmbr-bench"] = dataclasses.replace(catalog.BY_NAME["hmbr"], name="hmbr-bench")
    try:
        with tempfile.TemporaryDirectory(prefix="benchkit-bench-hmbr-") as tmp:
            src = materialize_images(Path(tmp) / "photos")
            bench = Path(tmp) / "b.yaml"
            bench.write_text(yaml.safe_dump({
                "name": "hmbr_bench", "metrics": ["hmbr-bench"], "primary_metric": "hmbr-bench",
                "metric_settings": {"hmbr-bench": {"conf": 0.001}}, "methods": methods,
                "plot": {"x": "hmbr-bench", "y": ["hmbr-bench"]},
                "datasets": [{"name": "photos", "kind": "folder", "path": str(src)}]}))
            TIMES.update(ref=0.0, out=0.0, ref_n=0, out_n=0)
            t0 = time.perf_counter()
            r = evaluate(str(bench), run_dir=Path(tmp) / "run", log=lambda *a: None)
            t_eval = time.perf_counter() - t0
            m = len(methods)
            t_ref = TIMES["ref"]
            res.update({
                "eval_methods": m, "eval_images": TIMES["ref_n"], "eval_seconds": t_eval,
                "input_detection_seconds": t_ref, "output_detection_seconds": TIMES["out"],
                "input_share_with_cache": t_ref / t_eval,
                "input_share_without_cache": m * t_ref / (t_eval + (m - 1) * t_ref),
                "reference_evaluations": r.counters.reference_evaluations,
            })
            t0 = time.perf_counter()
            evaluate(str(bench), run_dir=Path(tmp) / "run", log=lambda *a: None)
            res["cached_rerun_seconds"] = time.perf_counter() - t0
    finally:
        for table, old in ((registry.METRICS, old_m), (catalog.BY_NAME, old_c)):
            if old is None:
                table.pop("hmbr-bench", None)
            else:
                table["hmbr-bench"] = old
    print(f"evaluation ({m} methods x {res['eval_images']} images): {t_eval:.2f} s, input-side detections "
          f"{t_ref:.2f} s = {100 * res['input_share_with_cache']:.1f}% with the per-dataset cache, "
          f"{100 * res['input_share_without_cache']:.1f}% without (detected once per method); cached re-run "
          f"{res['cached_rerun_seconds']:.2f} s")
    return res
