"""Prepared GPU check for the model adapters (issues 11, 12): run once on a lent CUDA machine, record what it prints.

    python tools/gpu/adapters_cuda.py --out results.json            # tiny models, every adapter, fp16 + fp32
    python tools/gpu/adapters_cuda.py --out results.json --full     # + 512x512 LR timing, full-size random UNet

Per adapter of ``benchkit.bench.adapters.TINY`` (tiny random stand-ins, the official save recipes):
load on CUDA in float16 and float32 (load time excluded), restore 3 toy images, report s/img (CUDA-synchronised,
median), peak CUDA memory, the output size and the max |CUDA - CPU fp32| difference. ``--full`` then writes the
SD-2.x architecture with random weights (``write_tiny_base(..., full_size=True)``) as both base models, builds every
diffusion adapter's checkpoint on it with the same writers, and times one 512x512 LR image (x4 methods: 2048x2048
output) in float16 after one warm-up: s/img and peak memory. NAFNet (GoPro width-64 config) and Restormer (motion
deblurring config) are timed at 512x512 with random weights through spandrel. Every failure is recorded, never
fatal. Last line: the JSON written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _sync(dev):
    import torch

    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(dev):
    import torch

    if str(dev).startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(dev):
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if str(dev).startswith("cuda") else None


def _ctx(key, seed=0, dev="cpu"):
    from benchkit.harness.restore import _torch_generator

    return {"key": key, "seed": seed, "generator": lambda: _torch_generator(dev, seed)}


def _run_method(name, wdir, imgs, scale, dev, dtype, repeats=1):
    from benchkit.registry import resolve

    m = resolve("method", name)()
    m.setup(weights_dir=wdir)
    ok, why = m.availability()
    if not ok:
        raise RuntimeError(f"unavailable: {why}")
    t0 = time.perf_counter()
    m.load(dev, dtype)
    load_s = time.perf_counter() - t0
    try:
        outs, times = [], []
        _peak_reset(dev)
        m.restore([imgs[0]], [_ctx("warm", dev=dev)], scale)  # warm-up (cuDNN autotune, lazy init)
        for _ in range(repeats):
            outs = []
            for i, x in enumerate(imgs):
                _sync(dev)
                t = time.perf_counter()
                outs.append(m.restore([x], [_ctx(f"k{i}", dev=dev)], scale)[0])
                _sync(dev)
                times.append(time.perf_counter() - t)
        return outs, {"load_s": round(load_s, 2), "s_per_img": round(statistics.median(times), 4),
                      "peak_mb": _peak_mb(dev), "out_shape": list(outs[0].shape)}
    finally:
        m.unload()


def tiny_pass(dev, tmp, names):
    import numpy as np

    from benchkit.bench.adapters import TINY, _writer

    rng = np.random.default_rng(0)
    res = {}
    for name in names:
        ref, kind = TINY[name]
        scale = 4 if kind == "x4" else 1
        imgs = [rng.random((64, 64, 3), dtype=np.float32) for _ in range(3)]
        entry = res[name] = {}
        try:
            wdir = _writer(ref)(tmp / "tiny")
            if (wdir / "code").is_dir():  # stub checkouts: one per process (a second one would shadow the first)
                import os

                from benchkit.methods.checkout import env_var

                os.environ.setdefault(env_var(name), str(wdir / "code"))
            cpu, _ = _run_method(name, wdir, imgs, scale, "cpu", "float32")
            for dtype in ("float16", "float32"):
                try:
                    outs, info = _run_method(name, wdir, imgs, scale, dev, dtype, repeats=2)
                    info["max_abs_diff_vs_cpu_fp32"] = float(max(np.abs(a - b).max() for a, b in zip(outs, cpu)))
                    entry[dtype] = info
                except Exception as e:  # noqa: BLE001 - recorded, the next one runs
                    entry[dtype] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}
                print(name, dtype, entry[dtype], flush=True)
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["trace"] = traceback.format_exc()[-1500:]
            print(name, entry, flush=True)
    return res


def full_pass(dev, tmp, names):
    import numpy as np

    from benchkit.bench.adapters import TINY, _writer
    from benchkit.methods.onestep.core import BASE_FOLDERS
    from benchkit.methods.onestep.tiny import write_tiny_base

    root = tmp / "full"
    t = time.perf_counter()
    for kind, folder in BASE_FOLDERS.items():
        write_tiny_base(root / "base-models" / folder, kind, full_size=True)
    print(f"full-size random base models written in {time.perf_counter() - t:.0f}s", flush=True)
    rng = np.random.default_rng(0)
    x = rng.random((512, 512, 3), dtype=np.float32)
    res = {}
    for name in names:
        ref, kind = TINY[name]
        scale = 4 if kind == "x4" else 1
        try:
            wdir = _writer(ref)(root)
            _, info = _run_method(name, wdir, [x], scale, dev, "float16")
            res[name] = {"lr": "512x512", **info}
        except Exception as e:  # noqa: BLE001
            res[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}
        print(name, "full", res[name], flush=True)
    return res


def cnn_pass(dev):
    import torch

    res = {}
    try:
        from spandrel.architectures.NAFNet import NAFNet

        nets = {"nafnet": lambda: NAFNet(width=64, enc_blk_nums=[1, 1, 1, 28], middle_blk_num=1,
                                         dec_blk_nums=[1, 1, 1, 1])}
        try:
            from spandrel_extra_arches.architectures.Restormer import Restormer

            nets["restormer"] = lambda: Restormer()
        except ImportError as e:
            res["restormer"] = {"error": f"spandrel_extra_arches missing: {e}"}
        x = torch.rand(1, 3, 512, 512, device=dev)
        for name, make in nets.items():
            for dtype in (torch.float16, torch.float32):
                try:
                    net = make().eval().to(dev, dtype=dtype)
                    with torch.no_grad():
                        net(x.to(dtype))
                        _peak_reset(dev)
                        times = []
                        for _ in range(3):
                            _sync(dev)
                            t = time.perf_counter()
                            net(x.to(dtype))
                            _sync(dev)
                            times.append(time.perf_counter() - t)
                    res.setdefault(name, {})[str(dtype).split(".")[-1]] = {
                        "s_per_img": round(statistics.median(times), 4), "peak_mb": _peak_mb(dev), "lr": "512x512"}
                except Exception as e:  # noqa: BLE001
                    res.setdefault(name, {})[str(dtype)] = {"error": f"{type(e).__name__}: {e}"}
                print(name, dtype, res[name], flush=True)
                del net
    except Exception as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
    return res


def main(argv=None) -> int:
    import torch

    from benchkit.bench._clock import machine
    from benchkit.bench.adapters import TINY

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--full", action="store_true", help="also time 512x512 LR with full-size random weights")
    ap.add_argument("--methods", default=None, help="comma-separated subset of " + ", ".join(TINY))
    ap.add_argument("--no-cnn", action="store_true", help="skip the NAFNet/Restormer 512x512 timings")
    a = ap.parse_args(argv)
    names = a.methods.split(",") if a.methods else list(TINY)
    dev = a.device
    out = {"machine": machine(), "device": dev, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0) if dev.startswith("cuda") and torch.cuda.is_available() else None}
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-gpu-"))
    try:
        out["tiny"] = tiny_pass(dev, tmp, names)
        out["cnn"] = {} if a.no_cnn else cnn_pass(dev)
        if a.full:
            out["full"] = full_pass(dev, tmp, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
