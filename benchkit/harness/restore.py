"""Running one method over datasets: the model lifecycle, contexts, batches, output checks, timing.

The evaluation is method-major (:func:`run_method_on_datasets`): a method is loaded once (outside every
timed region) only when some dataset still needs outputs from it, runs over every dataset, and is
unloaded before the next method loads, so one model is resident at a time. Seconds per image cover
``restore`` only, with CUDA synchronised before and after; peak memory is the tracemalloc peak (Python
+ numpy allocations) and, on CUDA, ``torch.cuda.max_memory_allocated``.

Stochastic methods draw only from the context's ``seed`` / ``generator()``, derived from (root seed,
sample key, method name) through :mod:`benchkit.seeding`; the seed is written to the output index.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.errors import BadInputError, BenchkitError
from benchkit.harness.outputs import OutputStore
from benchkit.harness.results import fail

OUTPUT_RANGE_TOL = 1e-3  # outputs are float in [0, 1]; beyond this slack they are failures


@dataclass
class MethodRun:
    """One (dataset, method) pair: outputs, timing, memory, status."""

    dataset: str
    name: str
    tag: str = ""
    dir: Path = Path(".")
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    outputs: dict = field(default_factory=dict)  # key -> index record
    restored: int = 0
    reused: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    load_seconds: float | None = None
    peak_mem_bytes: int | None = None
    cuda_peak_bytes: int | None = None  # torch.cuda.max_memory_allocated during this run's restores


def make_method(name, weights_root, failures, skipped, options=None):
    """Instantiate (with ``options``) and set up method ``name`` (cheap); None (reported) when it cannot run."""
    from benchkit.registry import resolve

    try:
        cls = resolve("method", name)
        m = cls(**(options or {}))
        m.setup(weights_dir=Path(weights_root) / "methods" / name)
        ok, why = m.availability()
    except Exception as e:
        failures.append(fail("setup", f"{type(e).__name__}: {e}", "see the method's documentation", exc=e,
                             method=name))
        return None
    if not ok:
        skipped.append({"what": "method", "name": name, "reason": why})
        return None
    return m


def method_seed(root_seed: int, key: str, method: str) -> int:
    """63-bit seed for (root seed, sample key, method name): identical for any order or worker count."""
    from benchkit.seeding import seed_sequence

    a, b = seed_sequence(int(root_seed), key, "method:" + method).generate_state(2)
    return ((int(a) << 32) | int(b)) & (2 ** 63 - 1)


def _torch_generator(device: str, seed: int):
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def context_for(ds, rec, method, root_seed: int) -> dict:
    """The per-input context dict a method receives (see :mod:`benchkit.methods.base`)."""
    import numpy as np

    seed = method_seed(root_seed, rec["key"], method.name)
    device = method.device
    aux = {n: str(p) for n, p in ds.aux_paths(rec).items()}
    ctx = {"key": rec["key"], "record": rec, "dataset_dir": str(ds.dir), "aux": aux, "meta": ds.meta(rec),
           "psf": None, "psf_path": None, "seed": seed,
           "generator": lambda: _torch_generator(device, seed)}
    p = ds.psf_path(rec)
    if p is not None:
        ctx["psf_path"] = str(p)
        try:
            ctx["psf"] = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise BadInputError(p, f"cannot read PSF ({e})", "rebuild the dataset") from e
    return ctx


def check_output(out, lq, scale) -> str:
    """'' if ``out`` is a valid output for ``lq`` at ``scale``, else what is wrong."""
    import numpy as np

    if not isinstance(out, np.ndarray):
        return f"output is a {type(out).__name__}, not a numpy array"
    h, w = lq.shape[:2]
    want = (h * scale, w * scale, 3)
    if out.shape != want:
        return (f"output is {out.shape[1] if out.ndim > 1 else '?'}x{out.shape[0]} (shape {tuple(out.shape)}), "
                f"expected {want[1]}x{want[0]}x3 = x{scale} of the {w}x{h} input")
    if not np.issubdtype(out.dtype, np.floating):
        return f"output dtype is {out.dtype}, expected float32 in [0, 1]"
    if not np.isfinite(out).all():
        return "output contains NaN or infinite values"
    lo, hi = float(out.min()), float(out.max())
    if lo < -OUTPUT_RANGE_TOL or hi > 1.0 + OUTPUT_RANGE_TOL:  # e.g. a forgotten /255: never clip it silently
        return f"output values span [{lo:.4g}, {hi:.4g}], expected [0, 1]"
    return ""


def _cuda_sync(device: str) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def restore_batch(method, ds, recs, scale, root_seed: int, reset_peak: bool = True) -> list:
    """Run ``method`` on ``recs``: one (rec, output or None, failure or None, seconds, peak bytes, seed) per record.

    Seconds are the batch's restore wall time (CUDA synchronised) shared equally; a batch that raises is
    retried image by image to isolate the culprit."""
    import tracemalloc

    from benchkit.images import read_image

    res, items = [], []
    for rec in recs:
        try:
            items.append((rec, read_image(ds.input_path(rec)), context_for(ds, rec, method, root_seed)))
        except BadInputError as e:
            res.append((rec, None, fail("input", f"{e.path}: {e.problem}", e.fix or "rebuild the dataset",
                                        dataset=ds.name, method=method.name, key=rec["key"]), None, None, None))
    if not items:
        return res
    if reset_peak:
        tracemalloc.reset_peak()
    _cuda_sync(method.device)
    t0 = time.perf_counter()
    try:
        outs = method.restore([x for _, x, _ in items], [c for _, _, c in items], scale)
        _cuda_sync(method.device)
        if not isinstance(outs, (list, tuple)) or len(outs) != len(items):
            n = len(outs) if hasattr(outs, "__len__") else type(outs).__name__
            raise BenchkitError(f"restore returned {n} outputs for {len(items)} inputs")
        err = None
    except Exception as e:
        err, outs = e, None
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
    if err is not None:
        if len(items) > 1:
            for rec, _, _ in items:
                res += restore_batch(method, ds, [rec], scale, root_seed, reset_peak)
            return res
        msg = traceback.format_exception_only(type(err), err)[-1].strip()
        res.append((items[0][0], None, fail("method", f"raised {msg}", "see the method's documentation", exc=err,
                                            dataset=ds.name, method=method.name, key=items[0][0]["key"]),
                    None, None, None))
        return res
    sec = dt / len(items)
    for (rec, lq, ctx), out in zip(items, outs):
        problem = check_output(out, lq, scale)
        if problem:
            res.append((rec, None, fail("output", problem, "the method must return finite float32 RGB images "
                                        "in [0, 1] of scale x the input size", dataset=ds.name, method=method.name,
                                        key=rec["key"]), None, None, None))
        else:
            res.append((rec, out, None, sec, peak, ctx["seed"] if method.stochastic else None))
    return res


def plan_run(method, ds, run_dir, notices, verify: bool = False) -> tuple[MethodRun, OutputStore, list]:
    """(run with the valid cached outputs filled in, its store, records still to restore); ``verify``: re-hash
    every cached output (default: size and mtime against the index)."""
    run = MethodRun(ds.name, method.name, tag=method.tag(), dir=Path(run_dir) / "outputs" / ds.name / method.name,
                    device=method.device, dtype=method.dtype)
    store = OutputStore(run.dir, verify=verify)
    if store.damaged:
        notices.append(f"{run.dir / 'index.jsonl'}: {store.damaged} unreadable line(s) skipped (their outputs are "
                       f"regenerated; the index is rewritten)")
    todo = []
    for rec in ds.records:
        r, problem = store.lookup(rec["key"], run.tag, ds.fingerprint)
        if r is not None:
            run.outputs[rec["key"]] = r
            run.reused += 1
        else:
            if problem:
                notices.append(f"{ds.name}/{method.name}/{rec['key']}: {problem}; regenerated")
            todo.append(rec)
    if store.damaged and not todo:  # nothing to redo: rewrite the index now (else compacted after the restores)
        store.compact()
    return run, store, todo


def execute(method, ds, run, store, todo, batch_size, workers, root_seed, counters, failures, progress=False):
    """Restore ``todo`` into ``store`` (the method is loaded)."""
    import tracemalloc

    counters.outputs_reused += run.reused
    if todo:
        counters.methods_run += 1
        bs = max(1, int(batch_size or method.batch_size or 1))
        batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"{ds.name}/{method.name}", unit="img", leave=False)

        def handle(results):
            for rec, out, err, sec, peak, seed in results:
                if err is not None:
                    failures.append(err)
                else:
                    extra = {"seed": seed} if seed is not None else {}
                    run.outputs[rec["key"]] = store.write(rec["key"], out, tag=run.tag, dataset=ds.fingerprint,
                                                          seconds=sec, peak_mem_bytes=peak, device=run.device,
                                                          dtype=run.dtype, **extra)
                    run.restored += 1
                if bar is not None:
                    bar.update(1)

        torch = sys.modules.get("torch")
        cuda = str(method.device).startswith("cuda") and torch is not None and torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats(method.device)
        # tracemalloc slows Python-heavy torch code (diffusers: ~1.7x) and never sees torch's allocator:
        # methods opt out with ``trace_memory = False`` (their CUDA peak is still recorded)
        tracing = not tracemalloc.is_tracing() and getattr(method, "trace_memory", True)
        if tracing:
            tracemalloc.start()
        try:
            if workers > 1 and len(batches) > 1 and method.concurrent:  # threads: peak is the overall peak
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=workers) as ex:
                    for results in ex.map(lambda b: restore_batch(method, ds, b, ds.scale, root_seed, False),
                                          batches):
                        handle(results)
            elif not tracing and len(batches) > 1:
                # outputs are encoded and written by one thread while the next batch restores (PNG encoding
                # releases the GIL); one write in flight bounds memory, order and the index stay sequential.
                # Not under tracemalloc, whose per-restore peaks would then include the writer's buffers.
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="benchkit-writer") as writer:
                    pending = None
                    for b in batches:
                        results = restore_batch(method, ds, b, ds.scale, root_seed)
                        if pending is not None:
                            pending.result()  # re-raises a failed write (e.g. disk full) here
                        pending = writer.submit(handle, results)
                    pending.result()
            else:
                for b in batches:
                    handle(restore_batch(method, ds, b, ds.scale, root_seed))
        finally:
            if tracing:
                tracemalloc.stop()
            if cuda:
                run.cuda_peak_bytes = int(torch.cuda.max_memory_allocated(method.device))
        if bar is not None:
            bar.close()
        store.compact()
    counters.images_restored += run.restored
    peaks = [r.get("peak_mem_bytes") for r in run.outputs.values() if r.get("peak_mem_bytes") is not None]
    run.peak_mem_bytes = max(peaks) if peaks else None
    if not run.outputs:
        run.status, run.reason = "failed", "no output could be produced"
    return run


def run_method_on_datasets(method, datasets, run_dir, *, device="cpu", dtype="float32", batch_size=None,
                           workers=1, root_seed=0, counters, failures, skipped, notices, progress=False,
                           log=print, verify: bool = False) -> list:
    """Every dataset with ``method``: plan (cache lookups), load once if anything is left to restore,
    restore, unload. Returns the MethodRuns (one per dataset the method supports)."""
    import gc

    method.device = method.effective_device(device)  # tags name the device/dtype the outputs come from
    method.dtype = method.effective_dtype(dtype)
    plans = []
    for ds in datasets:
        ok, why = method.supports(ds.scale)
        if not ok:
            skipped.append({"what": "method", "name": method.name, "dataset": ds.name, "reason": why})
            continue
        try:
            plans.append((ds, *plan_run(method, ds, run_dir, notices, verify)))
        except Exception as e:  # defensive: a broken index never stops the evaluation
            failures.append(fail("method", f"{type(e).__name__}: {e}", "", exc=e, dataset=ds.name,
                                 method=method.name))
    runs = []
    need = any(todo for _, _, _, todo in plans)
    load_seconds = None
    if need:
        t0 = time.perf_counter()
        try:
            method.load(device=device, dtype=dtype)
        except Exception as e:
            failures.append(fail("load", f"{type(e).__name__}: {e}", getattr(e, "fix", "") or
                                 "see the method's documentation", exc=e, method=method.name))
            method.unload()
            for ds, run, _, _ in plans:  # cached outputs stay usable
                if run.outputs:
                    counters.outputs_reused += run.reused
                    runs.append(run)
            return runs
        load_seconds = time.perf_counter() - t0
        counters.methods_loaded += 1
        if load_seconds > 0.01:
            log(f"method {method.name}: loaded on {method.device} ({method.dtype}) in {load_seconds:.2f}s")
    try:
        for ds, run, store, todo in plans:
            run.load_seconds = load_seconds if todo else None
            try:
                runs.append(execute(method, ds, run, store, todo, batch_size, workers, root_seed, counters,
                                    failures, progress))
            except Exception as e:  # defensive: a broken method never stops the evaluation
                failures.append(fail("method", f"{type(e).__name__}: {e}", "", exc=e, dataset=ds.name,
                                     method=method.name))
    finally:
        if need:
            method.unload()
            gc.collect()
    return runs
