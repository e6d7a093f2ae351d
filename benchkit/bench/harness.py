"""``benchkit bench harness``: the evaluation harness against a plain pyiqa loop, and a cached re-run.

Works on the demo benchmark (``benchkit/benchmarks/demo.yaml``: datasets built from the embedded images, all
available methods) with metrics psnr/ssim/niqe, in a temporary run folder; datasets are built first
and not timed. Measured side by side in this process on the same datasets and method outputs:

1. **harness scoring**: ``evaluate()`` with every method output already on disk and an empty
   score cache, metrics psnr/ssim (BT.601 Y, as in the catalog) and niqe (when provisioned);
2. **plain pyiqa loop**: for every (output, target) pair of the same run: read both PNGs with
   OpenCV, convert to tensors, call ``pyiqa.create_metric(...)`` metrics directly;
3. **first run**: ``evaluate()`` from scratch (methods + scoring, datasets prebuilt);
4. **cached re-run**: ``evaluate()`` again (nothing to compute).

Phases 1 and 2 alternate ``rounds`` times; the minimum of each is reported (the machine is shared).
Targets: harness/plain <= 1.05, cached/first <= 0.02 (wall); CPU time (user + sys) reported next to each.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ._clock import Clock, cpu_s


def _plain_loop(pairs, specs, device="cpu") -> tuple[float, dict, float]:
    """Score ``pairs`` [(out_png, gt_png or None)] with pyiqa metrics built from ``specs`` {name: (pyiqa_name,
    kwargs, FR)}: full-reference metrics on pairs with a target, no-reference ones on every output."""
    import cv2
    import numpy as np
    import pyiqa
    import torch

    metrics = {n: pyiqa.create_metric(pn, device=device, **kw) for n, (pn, kw, _) in specs.items()}
    sums = {n: 0.0 for n in specs}
    counts = {n: 0 for n in specs}
    c0 = cpu_s()
    t0 = time.perf_counter()
    with torch.no_grad():
        for out_p, gt_p in pairs:
            d = cv2.imread(str(out_p), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
            dt = torch.from_numpy(np.ascontiguousarray(d)).permute(2, 0, 1)[None].to(device)
            rt = None
            if gt_p is not None:
                r = cv2.imread(str(gt_p), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
                rt = torch.from_numpy(np.ascontiguousarray(r)).permute(2, 0, 1)[None].to(device)
            for n, m in metrics.items():
                if specs[n][2] and rt is None:
                    continue  # full-reference metric, no target (an input-only dataset)
                v = m(dt, rt) if specs[n][2] else m(dt)
                sums[n] += float(v)
                counts[n] += 1
    return time.perf_counter() - t0, {n: s / max(1, counts[n]) for n, s in sums.items()}, cpu_s() - c0


def _bench_config(run_dir: Path, metrics, workers: int):
    """The demo benchmark with ``metrics``; its datasets prebuilt into ``run_dir`` (not timed)."""
    import dataclasses

    from benchkit.harness.benchmark import load_benchmark, open_dataset

    cfg, path = load_benchmark("demo")
    cfg = dataclasses.replace(cfg, metrics=tuple(metrics), primary_metric="psnr")
    opened = {}
    for d in cfg.datasets:
        try:
            opened[d.name] = open_dataset(d, run_dir, path.parent, workers=workers)
        except Exception as e:  # reported by evaluate() as a failed dataset
            print(f"dataset {d.name} unavailable: {type(e).__name__}: {e}")
    return cfg, path, opened


def run(args) -> dict:
    import json

    from benchkit.harness.evaluate import evaluate
    from benchkit.metrics import get_metric

    quick = bool(getattr(args, "quick", False))
    rounds = 1 if quick else 3
    metrics = ["psnr", "ssim", "niqe"]
    ok, why = get_metric("niqe").availability()
    if not ok:
        print(f"niqe unavailable ({why}); benchmarking psnr and ssim only")
        metrics = ["psnr", "ssim"]
    work = Path(tempfile.mkdtemp(prefix="benchkit-bench-harness-"))
    quiet = lambda *a, **k: None  # noqa: E731
    try:
        run_dir = work / "run"
        cfg, cfg_path, opened = _bench_config(run_dir, metrics, workers=2)
        bench = (cfg, cfg_path)
        with Clock() as c_first:
            first = evaluate(bench, run_dir=run_dir, log=quiet)
        with Clock() as c_cached:
            again = evaluate(bench, run_dir=run_dir, log=quiet)
        t_first, t_cached = c_first.wall, c_cached.wall
        assert again.counters.images_restored == 0 and again.counters.metric_evaluations == 0, again.counters

        results = json.loads((run_dir / "results.json").read_text())
        from benchkit.manifest import read_jsonl

        pairs = []  # (output, target or None): every output the harness scores, its target from the dataset roles
        for s in results["summary"]:
            ds = opened[s["dataset"]]
            recs = {r["key"]: r for r in ds.records}
            for o in read_jsonl(run_dir / "outputs" / s["dataset"] / s["method"] / "index.jsonl"):
                pairs.append((run_dir / "outputs" / s["dataset"] / s["method"] / o["path"],
                              ds.target_path(recs[o["key"]]) if ds.has_target else None))
        from benchkit.metrics.pyiqa_backend import _COLOR_SPACES

        specs = {}
        for m in metrics:  # the same pyiqa settings the catalog records for each metric
            info = results["metrics"][m]
            st = info["settings"]
            kw = dict(st.get("pyiqa_kwargs") or {})
            if "crop_border" in st:
                kw["crop_border"] = int(st["crop_border"])
            if "color_space" in st:
                kw.update(_COLOR_SPACES[st["color_space"]])
            specs[m] = (st["pyiqa_name"], kw, info["kind"] == "FR")
        n_fr = sum(1 for _, g in pairs if g is not None)
        n_evals = sum(n_fr if fr else len(pairs) for _, _, fr in specs.values())  # what both sides compute
        _plain_loop(pairs[:2], specs)  # warm-up (pyiqa import, first-call set-up) outside the timings

        t_h, t_p, c_h, c_p = [], [], [], []
        for _ in range(rounds):
            shutil.rmtree(run_dir / "cache", ignore_errors=True)
            with Clock() as ch:
                r = evaluate(bench, run_dir=run_dir, log=quiet)
            t_h.append(ch.wall)
            c_h.append(ch.cpu)
            assert r.counters.images_restored == 0 and r.counters.metric_evaluations == n_evals, (r.counters, n_evals)
            tp, plain_means, cp = _plain_loop(pairs, specs)
            t_p.append(tp)
            c_p.append(cp)
        harness_means = {}
        for m in metrics:
            vals = [s["means"][m] * s["counts"][m] for s in r.summary if s["means"].get(m) is not None]
            cnt = sum(s["counts"][m] for s in r.summary if s["means"].get(m) is not None)
            harness_means[m] = sum(vals) / max(1, cnt)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = min(t_h) / min(t_p)
    cratio = min(c_h) / min(c_p)
    frac = t_cached / t_first
    cfrac = c_cached.cpu / c_first.cpu
    out = {
        "bench": "harness", "benchmark": "demo", "image_pairs": len(pairs), "pairs_with_target": n_fr,
        "metric_evaluations": n_evals, "metrics": metrics, "rounds": rounds,
        "harness_scoring_s": round(min(t_h), 3), "plain_pyiqa_loop_s": round(min(t_p), 3),
        "ratio_harness_vs_plain": round(ratio, 3), "target_ratio": 1.05, "ratio_ok": ratio <= 1.05,
        "harness_scoring_cpu_s": round(min(c_h), 3), "plain_pyiqa_loop_cpu_s": round(min(c_p), 3),
        "cpu_ratio_harness_vs_plain": round(cratio, 3),
        "first_run_s": round(t_first, 3), "cached_rerun_s": round(t_cached, 3),
        "first_run_cpu_s": round(c_first.cpu, 3), "cached_rerun_cpu_s": round(c_cached.cpu, 3),
        "cached_fraction": round(frac, 4), "cached_cpu_fraction": round(cfrac, 4),
        "target_cached_fraction": 0.02, "cached_ok": frac <= 0.02,
        "first_run_counters": first.counters.__dict__,
        "mean_abs_diff_vs_plain": {m: round(abs(harness_means[m] - plain_means[m]), 6) for m in metrics},
    }
    print(f"harness scoring {min(t_h):.2f}s vs plain pyiqa loop {min(t_p):.2f}s on {len(pairs)} pairs x "
          f"{len(metrics)} metrics: ratio {ratio:.3f} (target <= 1.05); CPU {min(c_h):.2f}s vs {min(c_p):.2f}s: "
          f"{cratio:.3f}")
    print(f"first run {t_first:.2f}s, cached re-run {t_cached:.3f}s: {100 * frac:.2f}% (target <= 2%); CPU "
          f"{c_first.cpu:.2f}s vs {c_cached.cpu:.3f}s: {100 * cfrac:.2f}%")
    return out
