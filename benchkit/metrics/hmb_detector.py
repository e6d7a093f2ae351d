"""Training the HMB detector that HMB-R counts with (HAODiff Sec. 4.1; REFERENCE-wave2 section 3).

``export_yolo(dataset, out)`` writes a YOLO-format detection set from an HMB dataset (``hmb-synth``): each
manifest line's ``lq`` image with the boxes of ``meta["hmb_boxes"]`` (``[[x0, y0, x1, y1], ...]``, pixels of
the lq image); lines without boxes fall back to the connected components of the ``hmb_weight`` output
(16-bit PNG W_s) above ``threshold``. Layout (ultralytics)::

    out/images/{train,val}/<name>.png   out/labels/{train,val}/<name>.txt   ("0 xc yc w h", normalised)
    out/data.yaml  (absolute path, names {0: hmb})

The split is deterministic: a key goes to val when sha256("<seed>:<key>") falls below ``val_fraction``.
``train_detector`` trains with ultralytics fully offline (``YOLO_OFFLINE=1``, private config folder,
``amp=False``, ``workers=0``, ``seed``, ``deterministic=True``), evaluates mAP@0.5 and precision on the
held-out split and writes the weights into the weights root as ``hmb/hmb-yolo11-<sha256>.pt`` (the digest in
the name pins the file for HMB-R), with the JSON report and a curves image. Paper: mAP@0.5 0.6223,
precision 0.6738 on 4,216 hold-out images.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from benchkit.errors import BadInputError, BenchkitError, ConfigError


def _boxes_from_weight(path: Path, threshold: float):
    """[[x0, y0, x1, y1]] of the connected components of W_s > threshold (W_s 16-bit PNG scaled to [0, 1])."""
    import cv2
    import numpy as np

    w = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if w is None:
        raise BadInputError(path, "cannot read the hmb_weight image", "rebuild the sample (benchkit replay)")
    if w.ndim == 3:
        w = w[..., 0]
    scale = 65535.0 if w.dtype == np.uint16 else 255.0
    mask = (w.astype(np.float32) / scale > threshold).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return [[float(x), float(y), float(x + bw), float(y + bh)] for x, y, bw, bh, _a in stats[1:n]]


def _split(key: str, seed: int, val_fraction: float) -> str:
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2 ** 64
    return "val" if h < val_fraction else "train"


def export_yolo(dataset, out, val_fraction: float = 0.2, seed: int = 0, threshold: float = 0.5) -> dict:
    """Write the YOLO dataset of ``dataset`` into ``out``; returns counts and the problems found (items
    that cannot be used are reported with their file and fix and left out; the rest is written)."""
    from benchkit.images import header_size
    from benchkit.manifest import read_jsonl

    ds, out = Path(dataset), Path(out)
    mpath = ds / "manifest.jsonl"
    if not mpath.is_file():
        raise BadInputError(mpath, "no manifest.jsonl: not a benchkit dataset",
                            "build one with `benchkit build-dataset hmb-synth --source <HQ photos>`")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    recs = sorted(read_jsonl(mpath), key=lambda r: r["key"])
    problems, items = [], []
    n_boxes = n_clipped = 0
    for r in recs:
        key = r["key"]
        outs = r.get("outputs") or {}
        lq = outs.get("lq")
        lq_rel = lq.get("path") if isinstance(lq, dict) else lq
        if not lq_rel:
            problems.append({"key": key, "path": str(mpath), "error": "no lq output", "fix": "rebuild the dataset"})
            continue
        img = ds / lq_rel
        try:
            data = img.read_bytes()
            size = header_size(data)
            if size is None:
                raise ValueError("unknown image header")
            w, h = size
        except (OSError, ValueError) as e:
            problems.append({"key": key, "path": str(img), "error": f"unreadable lq image ({e})",
                             "fix": f"benchkit replay {ds} {key}"})
            continue
        meta = r.get("meta") or {}
        boxes = meta.get("hmb_boxes")
        try:
            if boxes is None:
                wt = outs.get("hmb_weight")
                wt_rel = wt.get("path") if isinstance(wt, dict) else wt
                if not wt_rel:
                    raise BadInputError(mpath, f"{key}: neither meta.hmb_boxes nor an hmb_weight output",
                                        "use a dataset built by hmb-synth")
                boxes = _boxes_from_weight(ds / wt_rel, threshold)
            lines = []
            for b in boxes:
                if not (isinstance(b, (list, tuple)) and len(b) == 4):
                    raise BadInputError(mpath, f"{key}: hmb box {b!r} is not [x0, y0, x1, y1]",
                                        "write boxes as 4 pixel coordinates")
                x0, y0, x1, y1 = (float(v) for v in b)
                if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or x1 <= x0 or y1 <= y0:
                    raise BadInputError(mpath, f"{key}: hmb box {list(b)} lies outside the {w}x{h} lq image",
                                        "boxes are pixels of the lq image; rebuild the sample")
                cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
                n_clipped += (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
                if cx1 - cx0 < 1 or cy1 - cy0 < 1:
                    continue
                lines.append(f"0 {(cx0 + cx1) / 2 / w:.6f} {(cy0 + cy1) / 2 / h:.6f} "
                             f"{(cx1 - cx0) / w:.6f} {(cy1 - cy0) / h:.6f}")
        except BadInputError as e:
            problems.append({"key": key, "path": e.path, "error": e.problem, "fix": e.fix})
            continue
        n_boxes += len(lines)
        items.append((key, img, lines))
    if not items:
        raise BadInputError(mpath, "no usable sample (see the problems above)" if problems else "the dataset is empty",
                            "build an hmb-synth dataset with HMB samples")
    splits = {k: _split(k, seed, val_fraction) for k, _, _ in items}
    if len(items) >= 2 and len(set(splits.values())) == 1:  # tiny sets: one image each side at least
        first = items[0][0]
        splits[first] = "val" if splits[first] == "train" else "train"
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "val": 0}
    for key, img, lines in items:
        sp = splits[key]
        name = key.replace("/", "__")
        dst = out / "images" / sp / (name + img.suffix.lower())
        if not dst.exists():
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(img, tmp)
            tmp.replace(dst)
        (out / "labels" / sp / f"{name}.txt").write_text("".join(x + "\n" for x in lines))
        counts[sp] += 1
    (out / "data.yaml").write_text(f"path: {json.dumps(str(out.resolve()))}\ntrain: images/train\n"
                                   "val: images/val\nnames:\n  0: hmb\n")
    return {"data_yaml": str(out / "data.yaml"), "images": counts, "boxes": n_boxes, "boxes_clipped": n_clipped,
            "val_fraction": val_fraction, "split_seed": seed, "threshold": threshold, "problems": problems}


def _model(model: str, model_sha256: str | None):
    """The ultralytics model to train: a ``*.yaml`` architecture (from scratch) or the user's checkpoint
    (a pickle: loaded only when ``model_sha256`` pins it)."""
    from benchkit.fsio import sha256_file
    from benchkit.metrics.hmbr import ultralytics_offline

    ultralytics_offline()
    from ultralytics import YOLO

    if model.endswith((".yaml", ".yml")):
        return YOLO(model), None
    p = Path(model)
    if not p.is_file():
        raise BadInputError(p, "model file not found",
                            "pass yolo11n.yaml (train from scratch) or the path of your YOLO11 checkpoint")
    digest = sha256_file(p)
    if p.suffix.lower() == ".pt" and (not model_sha256 or model_sha256.lower() != digest):
        raise BadInputError(p, f"a .pt checkpoint is a pickle that can run code; its sha256 is {digest}",
                            f"if it is your file (e.g. the official yolo11n.pt), pass --model-sha256 {digest}")
    return YOLO(str(p)), digest


def _curves(csv_path: Path, png: Path) -> None:
    """Loss and mAP curves from ultralytics' results.csv (matplotlib, Agg)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open()))
    rows = [{k.strip(): v for k, v in r.items()} for r in rows]
    ep = [float(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss"):
        if rows and k in rows[0]:
            axes[0].plot(ep, [float(r[k]) for r in rows], marker="o", label=k)
    for k in ("metrics/mAP50(B)", "metrics/precision(B)", "metrics/recall(B)"):
        if rows and k in rows[0]:
            axes[1].plot(ep, [float(r[k]) for r in rows], marker="o", label=k)
    for a, t in zip(axes, ("losses", "held-out metrics")):
        a.set_xlabel("epoch")
        a.set_title(t)
        a.legend(fontsize=7)
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png)


def train_detector(data, out, weights_root=None, model: str = "yolo11n.yaml", model_sha256: str | None = None,
                   epochs: int = 100, imgsz: int = 640, batch: int = 16, device: str = "cpu", seed: int = 0,
                   val_fraction: float = 0.2, threshold: float = 0.5, log=print) -> dict:
    """Export, train, evaluate; write weights (+ sha256) into the weights root and report.json/curves.png
    into ``out``. Returns the report."""
    import platform
    import time

    from benchkit.fsio import atomic_write_json, sha256_file
    from benchkit.metrics.weights import weights_root as _root

    if epochs < 1 or imgsz < 32 or batch < 1:
        raise ConfigError(f"epochs >= 1, imgsz >= 32, batch >= 1 required (got {epochs}, {imgsz}, {batch})")
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    exp = export_yolo(data, out / "yolo", val_fraction=val_fraction, seed=seed, threshold=threshold)
    for p in exp["problems"]:
        log(f"  problem: {p['path']}: {p['error']} (fix: {p['fix']})")
    log(f"exported {exp['images']['train']} train / {exp['images']['val']} val images, {exp['boxes']} boxes")
    yolo, init_sha = _model(model, model_sha256)
    settings = {"data": exp["data_yaml"], "epochs": int(epochs), "imgsz": int(imgsz), "batch": int(batch),
                "device": str(device), "workers": 0, "amp": False, "plots": False, "seed": int(seed),
                "deterministic": True, "project": str(out / "ultralytics"), "name": "train", "exist_ok": True,
                "verbose": False}
    t0 = time.perf_counter()
    yolo.train(**settings)
    train_s = time.perf_counter() - t0
    run = out / "ultralytics" / "train"
    best = run / "weights" / "best.pt"
    if not best.is_file():
        best = run / "weights" / "last.pt"
    if not best.is_file():
        raise BenchkitError(f"ultralytics wrote no weights under {run / 'weights'}")
    from ultralytics import YOLO

    val = YOLO(str(best)).val(data=exp["data_yaml"], split="val", imgsz=int(imgsz), conf=0.001, iou=0.7,
                              batch=int(batch), device=str(device), plots=False, verbose=False,
                              project=str(out / "ultralytics"), name="val", exist_ok=True)
    digest = sha256_file(best)
    root = _root(weights_root)
    rel = f"hmb/hmb-yolo11-{digest}.pt"
    dst = root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(best, tmp)
    tmp.replace(dst)
    curves = out / "curves.png"
    if (run / "results.csv").is_file():
        _curves(run / "results.csv", curves)
    import ultralytics

    report = {
        "task": "hmb detection (HAODiff Sec. 4.1)", "data": str(Path(data).absolute()), "export": exp,
        "model": model, "init_sha256": init_sha, "settings": settings,
        "ultralytics": ultralytics.__version__, "python": platform.python_version(),
        "heldout": {"split": "val", "n_images": exp["images"]["val"], "conf": 0.001, "iou": 0.7,
                    "map50": float(val.box.map50), "map50_95": float(val.box.map),
                    "precision": float(val.box.mp), "recall": float(val.box.mr)},
        "paper": {"map50": 0.6223, "precision": 0.6738, "n_heldout": 4216},
        "train_seconds": train_s,
        "weights": {"root": str(root), "path": rel, "sha256": digest},
        "curves": str(curves) if curves.is_file() else None,
        "use": f"metric_settings: {{hmbr: {{weights: {rel}}}}}  (the sha256 in the name pins the file)",
    }
    atomic_write_json(out / "report.json", report)
    atomic_write_json(dst.with_suffix(".json"), report)
    log(f"held-out mAP@0.5 {report['heldout']['map50']:.4f}, precision {report['heldout']['precision']:.4f}")
    log(f"weights: {dst} (sha256 {digest})\nreport: {out / 'report.json'}")
    return report
