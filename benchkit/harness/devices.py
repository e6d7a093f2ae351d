"""Running methods on several devices at once (``evaluate --devices``) or on a Dask cluster (``--backend dask``).

The client plans as a single-device run does (cache lookups with the same method tags: a tag names the
device *kind*, so ``cuda:0`` and ``cuda:1`` outputs are interchangeable), then cuts the work into jobs:
one per method with images to restore, or, when there are more devices than such methods, contiguous
shards of a method's images. A job (:func:`restore_job`) instantiates the method, loads it on its device,
restores its images with the same :func:`~benchkit.harness.restore.restore_batch` as a single-device run,
unloads it; each device (local thread or Dask worker) runs one job at a time, so one model is resident per
device. The client alone writes outputs and indexes: local devices hand each batch over as soon as it is
restored (a bounded queue: memory holds a few batches, not a job's outputs); Dask workers write the PNGs
into the run folder themselves (it must be on the filesystem they share) and return the file fields, which
the client checks it can see before indexing them.
The index is sorted when compacted, so files, caches and leaderboards are the same as a single-device
run's (the index records the device used).

Dask: ``scheduler`` is the address of an existing cluster whose workers can import benchkit, read the
datasets and weights and write the run folder at the same paths (a shared filesystem). CUDA jobs carry the resource annotation
``{"GPU": 1}`` (start GPU workers with ``--resources GPU=1``, one per GPU); CPU jobs carry none.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from benchkit.harness.results import fail

# Loads are serialised within a process: two device threads importing one package at once (spandrel's
# NAFNet <-> Restormer imports, sys.path edits for user clones, torch.load patches) deadlock or half-import.
# Loading is outside the timed region, so this costs wall time only while models load.
_LOAD_LOCK = threading.Lock()


def parse_devices(spec) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ['cuda:0', 'cuda:1']; every device of one kind (outputs must be interchangeable)."""
    from benchkit.errors import ConfigError

    devs = [d.strip() for d in (spec.split(",") if isinstance(spec, str) else spec or []) if str(d).strip()]
    if not devs:
        raise ConfigError("--devices: give at least one device, e.g. cpu,cpu or cuda:0,cuda:1")
    kinds = {d.split(":")[0] for d in devs}
    if len(kinds) > 1:
        raise ConfigError(f"--devices {','.join(devs)} mixes device kinds {sorted(kinds)}: outputs of one run must "
                          f"come from one kind (fix: list devices of one kind)")
    return devs


def restore_job(job: dict, sink=None) -> dict:
    """Run one job (picklable in and out): load the method on ``job['device']``, restore every shard item, unload.

    Returns {'results': [(dataset name, [(rec, out, failure, seconds, peak, seed)])], 'failures', 'device',
    'load_seconds', 'cuda_peak'}; never raises (a failure to load is returned as a failure). With ``sink``,
    each batch's items go to ``sink(dataset name, items, device)`` as soon as they are restored and
    'results' holds empty lists: memory stays one batch per device, however many images the job has."""
    import gc
    import sys
    import tracemalloc

    from benchkit.harness.restore import make_method, restore_batch

    failures, skipped = [], []
    out = {"results": [], "failures": failures, "device": job["device"], "load_seconds": None, "cuda_peak": None}
    m = make_method(job["method"], job["weights_root"], failures, skipped, job.get("options"))
    if m is None:
        failures += [fail("setup", s["reason"], "", method=job["method"]) for s in skipped]
        return out
    try:
        with _LOAD_LOCK:
            t0 = time.perf_counter()
            m.load(device=job["device"], dtype=job["dtype"])
    except Exception as e:
        failures.append(fail("load", f"{type(e).__name__}: {e}", getattr(e, "fix", "") or
                             "see the method's documentation", exc=e, method=m.name))
        m.unload()
        return out
    out["load_seconds"] = time.perf_counter() - t0
    out["device"] = m.device
    torch = sys.modules.get("torch")
    cuda = str(m.device).startswith("cuda") and torch is not None and torch.cuda.is_available()
    tracing = not tracemalloc.is_tracing()
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats(m.device)
        if tracing:
            tracemalloc.start()
        bs = max(1, int(job["batch_size"] or m.batch_size or 1))
        for ds in job["datasets"]:
            res = []
            for i in range(0, len(ds.records), bs):
                try:
                    items = restore_batch(m, ds, ds.records[i:i + bs], ds.scale, job["root_seed"])
                except Exception as e:  # defensive: one bad batch never kills the job
                    failures.append(fail("method", f"{type(e).__name__}: {e}", "", exc=e, dataset=ds.name,
                                         method=m.name))
                    continue
                if sink is not None:
                    sink(ds.name, items, m.device)  # handed over at once: the job holds no outputs
                elif job.get("write_dirs"):  # Dask: write here, return the file fields (see _write_here)
                    res += _write_here(items, job["write_dirs"][ds.name], ds.name, m.name, failures)
                else:
                    res += items
            out["results"].append((ds.name, res))
        if cuda:
            out["cuda_peak"] = int(torch.cuda.max_memory_allocated(m.device))
    finally:
        if tracing:
            tracemalloc.stop()
        m.unload()
        gc.collect()
    return out


def _write_here(items, folder, ds_name, method, failures) -> list:
    """Items with each image replaced by the fields of its PNG, written into ``folder`` where the job runs (a
    Dask worker: the run folder is on the shared filesystem), so a job returns kilobytes, not images."""
    from benchkit.harness.outputs import write_output_file

    out = []
    for rec, img, err, sec, peak, seed in items:
        if img is not None:
            try:
                img = write_output_file(folder, rec["key"], img)
            except Exception as e:
                failures.append(fail("method", f"cannot write output: {type(e).__name__}: {e}", "", exc=e,
                                     dataset=ds_name, method=method, key=rec["key"]))
                continue
        out.append((rec, img, err, sec, peak, seed))
    return out


def _shards(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    k, r = divmod(len(items), n)
    out, i = [], 0
    for j in range(n):
        step = k + (1 if j < r else 0)
        out.append(items[i:i + step])
        i += step
    return out


def _run_local(jobs, devices, log, write=None, queue_size: int | None = None):
    """Each device a thread taking the next job: returns the job outputs in job order.

    ``write(job index, dataset name, items, device)``: called on this (the calling) thread for each batch
    as the device threads restore it, through a bounded queue (``queue_size``, default two batches per
    device): a device waits while the writer is behind, so outputs never pile up in memory. Without
    ``write`` the items stay in each job's 'results'."""
    import queue

    q = queue.Queue()
    for i, j in enumerate(jobs):
        q.put(i)
    results = [None] * len(jobs)
    n_threads = len(devices[:max(1, len(jobs))])
    done = object()
    outq = queue.Queue(maxsize=queue_size or 2 * n_threads) if write is not None else None
    stop = threading.Event()  # the writer failed (or was interrupted): devices end their jobs early

    def sink_for(i):
        def sink(ds, items, d):
            if stop.is_set():
                raise _Stopped("the run was stopped")
            outq.put((i, ds, items, d))
        return None if outq is None else sink

    def worker(dev):
        try:
            while not stop.is_set():
                try:
                    i = q.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[i] = restore_job({**jobs[i], "device": dev}, sink=sink_for(i))
                except BaseException as e:  # restore_job reports its own failures; this is anything else
                    results[i] = _failed_job(jobs[i], dev, e)
        finally:
            if outq is not None:
                outq.put(done)

    threads = [threading.Thread(target=worker, args=(d,), name=f"benchkit-device-{d}", daemon=True)
               for d in devices[:n_threads]]
    for t in threads:
        t.start()
    if outq is not None:
        running = len(threads)
        try:
            while running:
                item = outq.get()
                if item is done:
                    running -= 1
                    continue
                write(*item)
        except BaseException:
            stop.set()  # then keep draining, so no device blocks on a full queue holding its model
            while running:
                if outq.get() is done:
                    running -= 1
            raise
    for t in threads:
        t.join()
    return [r if r is not None else _failed_job(j, j["device"], RuntimeError("the job did not run"))
            for j, r in zip(jobs, results)]


class _Stopped(Exception):
    """Raised in a device thread when the writer has stopped the run."""


def _failed_job(job, device, e) -> dict:
    """A job output for a job that raised outside restore_job's own guards."""
    return {"results": [], "device": device, "load_seconds": None, "cuda_peak": None,
            "failures": [fail("method", f"{type(e).__name__}: {e}", "see the traceback in the log", exc=e,
                              method=job["method"])]}


def _run_dask(jobs, scheduler, device_kind, log):
    from dask.distributed import Client

    from benchkit.errors import ConfigError

    try:
        client = Client(scheduler, timeout=30)
    except Exception as e:
        raise ConfigError(f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({type(e).__name__}: "
                          f"{e}) (fix: start it with `dask scheduler` and give its tcp://host:port)") from e
    try:
        res = {"GPU": 1} if device_kind == "cuda" else None
        futs = [client.submit(restore_job, j, resources=res, pure=False,
                              key=f"benchkit-restore-{j['method']}-{i}-{time.time_ns()}")
                for i, j in enumerate(jobs)]
        results = []
        for j, f in zip(jobs, futs):
            try:
                results.append(f.result())
            except Exception as e:
                results.append({"results": [], "device": j["device"], "load_seconds": None, "cuda_peak": None,
                                "failures": [fail("method", f"dask task failed: {type(e).__name__}: {e}",
                                                  "check the Dask workers' logs", exc=e, method=j["method"])]})
        return results
    finally:
        client.close()


def n_slots(backend, devices, scheduler) -> int:
    if backend != "dask":
        return len(devices)
    from dask.distributed import Client

    with Client(scheduler, timeout=30) as c:
        workers = c.scheduler_info().get("workers", {})
        if devices[0].startswith("cuda"):
            return max(1, int(sum(w.get("resources", {}).get("GPU", 0) for w in workers.values())))
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


def run_methods_distributed(method_names, datasets, run_dir, *, devices, backend="local", scheduler=None,
                            dtype="float32", batch_size=None, weights_root=None, root_seed=0, counters, failures,
                            skipped, notices, log=print, method_options=None, verify: bool = False) -> list:
    """Every method over every dataset on ``devices`` (local threads) or a Dask cluster.

    Returns [(method name, method instance, [MethodRun])] in ``method_names`` order, like the single-device
    loop of :func:`benchkit.harness.evaluate.evaluate`."""
    from benchkit.errors import ConfigError
    from benchkit.harness.restore import make_method, plan_run

    if backend not in ("local", "dask"):
        raise ConfigError(f"--backend {backend!r}: expected local or dask")
    if backend == "dask" and not scheduler:
        raise ConfigError("--backend dask needs --scheduler ADDRESS (tcp://host:port of an existing cluster)")
    devices = parse_devices(devices)
    kind = devices[0].split(":")[0]
    planned = []  # (name, method, [(ds, run, store, todo)])
    for name in method_names:
        m = make_method(name, weights_root, failures, skipped, (method_options or {}).get(name))
        if m is None:
            continue
        m.device, m.dtype = m.effective_device(devices[0]), m.effective_dtype(dtype)
        plans = []
        for ds in datasets:
            ok, why = m.supports(ds.scale)
            if not ok:
                skipped.append({"what": "method", "name": m.name, "dataset": ds.name, "reason": why})
                continue
            try:
                plans.append((ds, *plan_run(m, ds, run_dir, notices, verify)))
            except Exception as e:
                failures.append(fail("method", f"{type(e).__name__}: {e}", "", exc=e, dataset=ds.name, method=name))
        planned.append((name, m, plans))

    busy = [p for p in planned if any(todo for *_, todo in p[2])]
    slots = n_slots(backend, devices, scheduler) if busy else 1
    per_method = max(1, slots // max(1, len(busy)))
    jobs, owner = [], []
    for name, m, plans in busy:
        items = [(pi, rec) for pi, (_, _, _, todo) in enumerate(plans) for rec in todo]
        for shard in _shards(items, per_method):
            dss = []
            for pi, (ds, _, _, _) in enumerate(plans):
                recs = [r for q, r in shard if q == pi]
                if recs:
                    dss.append(dataclasses.replace(ds, records=recs, bad=[]))
            jobs.append({"method": name, "options": (method_options or {}).get(name), "weights_root": str(weights_root),
                         "device": m.device,
                         "dtype": m.dtype, "datasets": dss, "batch_size": batch_size, "root_seed": root_seed})
            owner.append(name)
    if jobs:
        where = f"Dask cluster {scheduler}" if backend == "dask" else ", ".join(devices)
        log(f"methods: {len(jobs)} job(s) for {len(busy)} method(s) on {where}")
    runs_of = {name: {ds.name: (ds, run, store) for ds, run, store, _ in plans} for name, _, plans in planned}

    from benchkit.fsio import sha256_file

    written_failures = []  # sorted below: batches arrive in device-timing order

    def write(i, ds_name, items, device):
        """Write one batch of job ``i``'s outputs (this thread only; the index is sorted on compaction)."""
        failures = written_failures
        name = owner[i]
        ds, run, store = runs_of[name][ds_name]
        for rec, img, err, sec, peak, seed in items:
            if err is not None:
                failures.append(err)
                continue
            extra = {"seed": seed} if seed is not None else {}
            meta = dict(tag=run.tag, dataset=ds.fingerprint, seconds=sec, peak_mem_bytes=peak, device=device,
                        dtype=run.dtype, **extra)
            try:
                if isinstance(img, dict):  # written by a Dask worker: it must be visible here, as recorded
                    p = store.dir / img["path"]
                    if not p.is_file() or p.stat().st_size != img["size"] or sha256_file(p) != img["sha256"]:
                        failures.append(fail(
                            "method", f"the Dask worker wrote {p}, which this machine cannot see (as written)",
                            "put the run folder (--run) on the filesystem the workers share", dataset=ds.name,
                            method=name, key=rec["key"]))
                        continue
                    run.outputs[rec["key"]] = store.record(rec["key"], img, **meta)
                else:
                    run.outputs[rec["key"]] = store.write(rec["key"], img, **meta)
            except Exception as e:
                failures.append(fail("method", f"cannot write output: {type(e).__name__}: {e}", "",
                                     exc=e, dataset=ds.name, method=name, key=rec["key"]))
                continue
            run.restored += 1

    if backend == "dask" and jobs:
        for j, name in zip(jobs, owner):
            j["write_dirs"] = {ds.name: str(Path(runs_of[name][ds.name][1].dir).resolve()) for ds in j["datasets"]}
        outs = _run_dask(jobs, scheduler, kind, log)
        for i, o in enumerate(outs):
            for ds_name, res in o["results"]:
                write(i, ds_name, res, o["device"])
    else:
        outs = _run_local(jobs, devices, log, write=write)

    order = {name: k for k, name in enumerate(method_names)}
    failures.extend(sorted(written_failures, key=lambda f: (order.get(f.get("method"), -1), str(f.get("dataset")),
                                                            str(f.get("key")), str(f.get("error")))))
    by_method = {}
    for name, o in zip(owner, outs):
        by_method.setdefault(name, []).append(o)
    result = []
    for name, m, plans in planned:
        jobouts = by_method.get(name, [])
        loaded = [o for o in jobouts if o["load_seconds"] is not None]
        counters.methods_loaded += len(loaded)
        for o in jobouts:
            failures.extend(o["failures"])
        for o in jobouts:
            for ds_name, _ in o["results"]:  # the datasets the job covered (their items are written above)
                run = runs_of[name][ds_name][1]
                if o["load_seconds"] is not None:
                    run.load_seconds = max(run.load_seconds or 0.0, o["load_seconds"])
                if o["cuda_peak"] is not None:
                    run.cuda_peak_bytes = max(run.cuda_peak_bytes or 0, o["cuda_peak"])
        runs = []
        for ds, run, store, todo in plans:
            counters.outputs_reused += run.reused
            counters.images_restored += run.restored
            counters.methods_run += int(bool(todo) and bool(loaded))
            if todo:
                store.compact()
            peaks = [r.get("peak_mem_bytes") for r in run.outputs.values() if r.get("peak_mem_bytes") is not None]
            run.peak_mem_bytes = max(peaks) if peaks else None
            if not run.outputs:
                if todo and not loaded:  # the method could not load: like the single-device loop, drop it
                    continue
                run.status, run.reason = "failed", "no output could be produced"
            runs.append(run)
        result.append((name, m, runs))
    return result


__all__ = ["parse_devices", "restore_job", "run_methods_distributed"]
