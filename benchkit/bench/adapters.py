"""``benchkit bench adapters``: harness overhead per image for a one-step diffusion adapter.

On tiny random stand-in models (:mod:`benchkit.methods.onestep.tiny`, written to a temporary folder, not
timed) and a toy x4 dataset, with OSEDiff (deterministic mode) loaded ONCE:

1. **direct**: a plain loop that reads each input PNG and calls ``method.restore([x], [ctx], 4)``;
2. **harness**: the harness's restore path for the same records (``plan_run`` + ``execute``: contexts,
   per-sample seeds, output checks, PNG writes, the output index), outputs cleared before each round.

Rounds alternate; the minimum of each is reported. Target: harness/direct <= 1.05. With the tiny models
the network is cheap, so this bounds the per-image overhead from above (real SD models take longer per
image and the same fixed overhead weighs less).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path


def run(args) -> dict:
    from benchkit.harness.benchmark import DatasetSpec, open_dataset
    from benchkit.harness.restore import _torch_generator, execute, plan_run
    from benchkit.harness.results import Counters
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.images import read_image
    from benchkit.methods.onestep import tiny
    from benchkit.methods.onestep.osediff import OSEDiff

    quick = bool(getattr(args, "quick", False))
    n = int(getattr(args, "n", None) or (4 if quick else 8))
    size = 128 if quick else 256
    rounds = 2 if quick else 3
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-bench-adapters-"))
    try:
        w = tmp / "weights"
        base = tiny.write_tiny_base(w / "base-models" / "stable-diffusion-2-1-base", "sd21-base")
        tiny.write_osediff_checkpoint(base, w / "methods" / "osediff" / "osediff.pkl")
        write_toy_dataset(tmp / "ds", "x4", n=n, size=size)
        ds = open_dataset(DatasetSpec(name="ds", kind="folder", path=str(tmp / "ds")), tmp / "run", tmp)
        m = OSEDiff()
        m.setup(weights_dir=w / "methods" / "osediff")
        t0 = time.perf_counter()
        m.load("cpu", "float32")
        load_s = time.perf_counter() - t0
        print(f"tiny OSEDiff loaded in {load_s:.2f}s; {len(ds.records)} images of {size // 4}px -> {size}px")
        recs = ds.records

        def direct():
            t = time.perf_counter()
            for rec in recs:
                x = read_image(ds.input_path(rec))
                ctx = {"key": rec["key"], "seed": 0, "generator": lambda: _torch_generator("cpu", 0)}
                m.restore([x], [ctx], 4)
            return time.perf_counter() - t

        def harness():
            shutil.rmtree(tmp / "run" / "outputs", ignore_errors=True)
            notices, failures = [], []
            t = time.perf_counter()
            run_, store, todo = plan_run(m, ds, tmp / "run", notices)
            execute(m, ds, run_, store, todo, None, 1, 0, Counters(), failures)
            dt = time.perf_counter() - t
            assert not failures and run_.restored == len(recs), failures
            return dt

        direct()  # warm-up
        td, th = [], []
        for _ in range(rounds):
            td.append(direct())
            th.append(harness())
        m.unload()
        d, h = min(td) / len(recs), min(th) / len(recs)
        ratio = h / d
        print(f"direct loop: {1e3 * d:.1f} ms/img; harness: {1e3 * h:.1f} ms/img; ratio {ratio:.3f} "
              f"(target <= 1.05; min of {rounds} rounds)")
        return {"bench": "adapters", "images": len(recs), "lr_px": size // 4, "direct_ms_per_img": round(1e3 * d, 2),
                "harness_ms_per_img": round(1e3 * h, 2), "ratio": round(ratio, 4), "load_s": round(load_s, 3)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
