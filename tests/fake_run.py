"""A hand-made evaluation run (results.json + per_image.csv + method outputs) with chosen per-image scores,
for the leaderboard statistics and report tests (no method or metric runs)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

HIB = {"psnr": True, "ssim": True, "lpips": False, "dists": False, "clipiqa": True, "maniqa": True,
       "musiq": True, "niqe": False, "fid": False}


def write_fake_run(root: Path, scores: dict, dataset: str = "toy", kind: str = "blur", n: int = 3, size: int = 48,
                   dataset_metrics: dict | None = None, outputs: bool = True, skipped=None,
                   input_only: bool = False) -> Path:
    """``scores``: {method: {metric: [value per image, in key order]}}; returns the run folder.

    Writes a toy dataset (``benchkit.harness.toyset``) under ``root/data`` and, with ``outputs``, method outputs
    (the target plus method-specific noise) under ``root/run/outputs``."""
    import numpy as np

    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.images import read_image, write_png

    root = Path(root)
    ds_dir = root / "data"
    if outputs:  # a real toy dataset (at most as many images as benchkit embeds)
        if not (ds_dir / "manifest.jsonl").is_file():
            write_toy_dataset(ds_dir, kind, n=n, size=size, seed=1)
        recs = [json.loads(x) for x in (ds_dir / "manifest.jsonl").read_text().splitlines()]
        keys = sorted(r["key"] for r in recs)
    else:  # scores only: any number of images
        recs, keys = [], [f"img{i:03d}" for i in range(n)]
    assert all(len(v) == len(keys) for per in scores.values() for v in per.values()), "one score per image"
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    if input_only:  # a plain folder of the inputs (no targets): benchkit treats it as an input-only dataset
        import shutil

        plain = root / "plain"
        plain.mkdir(exist_ok=True)
        for r in recs:
            shutil.copyfile(ds_dir / r["outputs"]["lq"]["path"], plain / f"{r['key']}.png")
    metrics = list(next(iter(scores.values())))
    dmetrics = dataset_metrics or {}
    all_metrics = metrics + list(next(iter(dmetrics.values()), {}))
    if outputs:
        for i, m in enumerate(scores):
            rng = np.random.default_rng(i)
            for r in recs:
                gt = read_image(ds_dir / r["outputs"]["gt"]["path"])
                out = np.clip(gt + rng.normal(0, 0.02 * (i + 1), gt.shape), 0, 1).astype(np.float32)
                write_png(run / "outputs" / dataset / m / f"{r['key']}.png", out)
    summary, rows = [], []
    for m, per in scores.items():
        means = {k: math.fsum(v) / len(v) for k, v in per.items()}
        means.update(dmetrics.get(m, {}))
        summary.append({"dataset": dataset, "method": m, "tag": f"{m}-tag", "status": "ok", "reason": "",
                        "steps": 0, "oracle": False, "n_images": len(keys), "n_outputs": len(keys),
                        "n_scored": len(keys), "seconds_per_image": 0.01, "means": means,
                        "counts": {k: len(keys) for k in means}, "na_counts": {}})
        for i, k in enumerate(keys):
            row = {"dataset": dataset, "method": m, "key": k, "status": "ok", "seconds": "0.01"}
            row.update({mt: repr(float(per[mt][i])) for mt in metrics})
            rows.append(row)
    cols = ["dataset", "method", "key", "status", "seconds"] + metrics + ["method_tag"]
    with (run / "per_image.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    results = {
        "benchmark": "fake", "benchmark_file": "fake.yaml",
        "config": {"description": "hand-made run", "plot": {"x": metrics[0], "y": metrics[1:]}},
        "benchkit_version": "test", "git_sha": "abc", "environment": {"python": "x"}, "seeds": {dataset: 0},
        "primary_metric": metrics[0],
        "metrics": {k: {"name": k, "kind": "dataset" if k in dmetrics.get(next(iter(dmetrics), ""), {}) else "FR",
                        "higher_is_better": HIB.get(k, True)} for k in all_metrics},
        "metric_order": all_metrics, "dataset_order": [dataset], "datasets_left_out": {},
        "datasets": {dataset: {"fingerprint": "f" * 16, "dir": str(root / "plain" if input_only else ds_dir),
                               "scale": 4 if kind == "x4" else 1, "n_samples": len(keys),
                               "kind": "folder" if input_only else "built", "has_target": not input_only}},
        "methods": {m: {"name": m} for m in scores}, "summary": summary, "failures": [],
        "skipped": skipped or [{"what": "method", "name": "paper-only", "reason": "paper only, no code"}],
        "counters": {}, "seconds": 1.0,
    }
    (run / "results.json").write_text(json.dumps(results, indent=2))
    return run
