"""``benchkit bench adapters``: harness overhead per image for every model adapter that has a tiny stand-in.

For each adapter in :data:`TINY` (``--methods a,b`` picks a subset): tiny random stand-in weights (and, for
HAODiff/SinSR, a stub of the official checkout) are written to a temporary folder (not timed), a toy dataset of
the method's scale is built, and the method is loaded ONCE; then, alternating rounds:

1. **direct**: a plain loop that reads each input PNG and calls ``method.restore([x], [ctx], scale)``;
2. **harness**: the harness's restore path for the same records (``plan_run`` + ``execute``: contexts,
   per-sample seeds, output checks, PNG writes, the output index), outputs cleared before each round.

The minimum round of each side is reported, in wall and CPU time (user + sys). Target: harness/direct <= 1.05 per
adapter. With tiny models the network is cheap, so this bounds the per-image overhead from above (real models take
longer per image and the same fixed overhead weighs less).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

# method -> (tiny writer "module:function" taking the weights root and returning the weights dir, toy dataset kind)
TINY = {
    "osediff": ("benchkit.methods.onestep.tiny:write_osediff_tiny", "x4"),
    "hero-sr": ("benchkit.methods.onestep.tiny:write_herosr_tiny", "x4"),
    "s3diff": ("benchkit.methods.onestep.tiny_s3diff:write_tiny_weights", "x4"),
    "invsr": ("benchkit.methods.onestep.tiny_invsr:write_tiny_weights", "x4"),
    "haodiff": ("benchkit.methods.onestep.tiny_haodiff:write_tiny_weights", "blur"),
    "sinsr": ("benchkit.methods.tiny_sinsr:write_tiny_weights", "x4"),
}


def _writer(ref: str):
    import importlib

    mod, fn = ref.split(":")
    return getattr(importlib.import_module(mod), fn)


def _one(name: str, tmp: Path, n: int, size: int, rounds: int) -> dict:
    from benchkit.bench._clock import Clock
    from benchkit.harness.benchmark import DatasetSpec, open_dataset
    from benchkit.harness.restore import _torch_generator, execute, plan_run
    from benchkit.harness.results import Counters
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.images import read_image
    from benchkit.registry import resolve

    ref, kind = TINY[name]
    wdir = _writer(ref)(tmp / "weights")
    dsdir = tmp / f"ds-{kind}"
    if not dsdir.is_dir():
        write_toy_dataset(dsdir, kind, n=n, size=size)
    run_dir = tmp / f"run-{name}"
    ds = open_dataset(DatasetSpec(name=f"ds-{kind}", kind="folder", path=str(dsdir)), run_dir, tmp)
    scale = 4 if kind == "x4" else 1
    m = resolve("method", name)()
    m.setup(weights_dir=wdir)
    ok, why = m.availability()
    if not ok:
        raise RuntimeError(f"bench adapters: tiny {name} unavailable: {why}")
    with Clock() as c:
        m.load("cpu", "float32")
    recs = ds.records
    lr = size // scale
    print(f"{name}: tiny model loaded in {c.wall:.2f}s; {len(recs)} images of {lr}px -> {lr * scale}px")

    def direct():
        with Clock() as c:
            for rec in recs:
                x = read_image(ds.input_path(rec))
                ctx = {"key": rec["key"], "seed": 0, "generator": lambda: _torch_generator("cpu", 0)}
                m.restore([x], [ctx], scale)
        return c

    def harness():
        shutil.rmtree(run_dir / "outputs", ignore_errors=True)
        notices, failures = [], []
        with Clock() as c:
            run_, store, todo = plan_run(m, ds, run_dir, notices)
            execute(m, ds, run_, store, todo, None, 1, 0, Counters(), failures)
        assert not failures and run_.restored == len(recs), failures
        return c

    try:
        direct()  # warm-up
        td, th = [], []
        for _ in range(rounds):
            td.append(direct())
            th.append(harness())
    finally:
        m.unload()
    k = len(recs)
    dw, hw = min(c.wall for c in td) / k, min(c.wall for c in th) / k
    dc, hc = min(c.cpu for c in td) / k, min(c.cpu for c in th) / k
    print(f"  direct loop: {1e3 * dw:.1f} ms/img wall, {1e3 * dc:.1f} ms CPU; harness: {1e3 * hw:.1f} ms/img wall, "
          f"{1e3 * hc:.1f} ms CPU; ratio {hw / dw:.3f} wall, {hc / dc:.3f} CPU (target <= 1.05; min of {rounds})")
    return {"images": k, "lr_px": lr, "scale": scale, "load_s": round(c.wall, 3),
            "direct_ms_per_img": round(1e3 * dw, 2), "harness_ms_per_img": round(1e3 * hw, 2),
            "direct_cpu_ms_per_img": round(1e3 * dc, 2), "harness_cpu_ms_per_img": round(1e3 * hc, 2),
            "ratio": round(hw / dw, 4), "ratio_cpu": round(hc / dc, 4)}


def run(args) -> dict:
    import torch

    quick = bool(getattr(args, "quick", False))
    n = int(getattr(args, "n", None) or (4 if quick else 8))
    size = 128 if quick else 256
    rounds = 2 if quick else 5
    wanted = getattr(args, "methods", None)
    names = [s.strip() for s in wanted.split(",") if s.strip()] if wanted else list(TINY)
    unknown = [s for s in names if s not in TINY]
    if unknown:
        from benchkit.errors import ConfigError

        raise ConfigError(f"bench adapters: no tiny stand-in for {unknown}; known: {', '.join(TINY)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: thread start-up would dominate; one thread is the steadier figure
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-bench-adapters-"))
    try:
        per = {name: _one(name, tmp, n, size, rounds) for name in names}
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(per, key=lambda k: per[k]["ratio"])
    print(f"worst harness/direct ratio: {per[worst]['ratio']:.3f} wall ({worst}); target <= 1.05")
    return {"bench": "adapters", "methods": per, "ratio": per[worst]["ratio"], "worst": worst, "threads": 1}
