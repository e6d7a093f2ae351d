"""``benchkit evaluate``: build datasets, run methods, score, write results; nothing is computed twice.

Run folder layout (default ``runs/<benchmark>``)::

    datasets/<dataset>/                    built datasets (pipeline/builder kinds)
    outputs/<dataset>/<method>/<key>.png   method outputs, + index.jsonl (tag, dataset fingerprint,
                                           sha256, seconds, peak memory, device, dtype, seed per output)
    cache/scores.jsonl                     per-image score cache (n/a stored as such)
    cache/states/                          per-item states of dataset-level metrics (.npy)
    results.json, per_image.csv            the latest evaluation (provenance, summaries, failures)

The loop is method-major (:mod:`benchkit.harness.restore`): each method is loaded once, outside timed
regions, runs over every dataset, and is unloaded before the next one loads. Scoring then runs per
dataset with typed requests (:mod:`benchkit.harness.scoring`).

Caching: an output is reused when its index line has the same method tag (name, version and a
fingerprint of options, weight hashes, device and dtype), the same dataset fingerprint and the file
still has the recorded sha256. A score is reused when (method tag, dataset fingerprint, metric
name+version+settings (+ the installed pyiqa version and weight-file contents not pinned by name),
image key, output sha256) is in the score cache. :class:`Counters` says what was actually computed.

Failures are isolated: a dataset that cannot be built, a method that fails to load or raises, an
output of the wrong size, with non-finite values or outside [0, 1], an unreadable image or a metric
that fails becomes an entry of ``failures`` (stage, dataset, method, metric, key, error, fix,
traceback); the rest completes. *Not applicable* results (an FR metric on an input-only dataset) are
counted apart and never cached as failures.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from benchkit.harness.outputs import INDEX, OutputStore  # noqa: F401  (re-exported)
from benchkit.harness.results import (Counters, EvalResult, describe_failure, fail,  # noqa: F401
                                      maxrss_mb, per_image_csv, summarize)
from benchkit.harness.scores import MetricSlot, ScoreCache, StateStore, metric_info_dict

RESULTS = "results.json"
PER_IMAGE = "per_image.csv"
SCORES = "cache/scores.jsonl"
STATES = "cache/states"


def _fail(stage, error, fix="", **where) -> dict:  # 0.1.0 name
    return fail(stage, error, fix, **where)


def _context(ds, rec) -> dict:
    """The context a method receives for ``rec`` (0.1.0 helper kept for callers; see restore.context_for)."""
    from benchkit.harness.restore import context_for
    from benchkit.methods.classical import Identity

    return context_for(ds, rec, Identity(), 0)


def select_methods(requested) -> list[str]:
    """Expand ``all`` (every registered method, registry order) and check names."""
    from benchkit.registry import METHODS, check_name

    names = []
    for n in requested:
        for x in (METHODS if n == "all" else [n]):
            check_name("method", x, METHODS)
            if x not in names:
                names.append(x)
    return names


def adhoc_benchmark(dataset_paths, metrics=None, scale=None, name=None):
    """A (BenchmarkConfig, yaml path) for ``evaluate --dataset PATH``: every PATH (a benchkit dataset
    folder or a plain folder of images) is a ``folder`` dataset named after its folder."""
    from benchkit.harness.benchmark import BenchmarkConfig, DatasetSpec

    specs, seen = [], set()
    for p in dataset_paths:
        import re

        p = Path(p).resolve()
        n = re.sub(r"[^A-Za-z0-9._-]+", "_", p.name).lstrip("._")[:64] or "dataset"
        while n in seen:
            n += "_"
        seen.add(n)
        specs.append(DatasetSpec(name=n, kind="folder", path=str(p), scale=scale))
    metrics = tuple(metrics or ("psnr", "ssim", "niqe"))
    cfg = BenchmarkConfig(name=name or ("adhoc-" + "-".join(s.name for s in specs))[:80], datasets=tuple(specs),
                          description="ad-hoc evaluation of " + ", ".join(str(s.path) for s in specs),
                          metrics=metrics, primary_metric=metrics[0], methods=("all",))
    return cfg, Path.cwd() / "adhoc.yaml"



def _writable_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` and check that files can be written in it, before any work (a read-only folder was
    found only when results.json was written, after everything had run)."""
    import tempfile

    from benchkit.errors import ConfigError

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir, prefix=".benchkit-write-check-"):
            pass
    except OSError as e:
        raise ConfigError(f"run folder {run_dir}: cannot write there ({e.strerror or e}); choose another with --run, "
                          f"or fix its permissions") from e

def evaluate(benchmark, run_dir=None, methods=None, metrics=None, workers: int = 1, device: str = "cpu",
             weights_root=None, progress: bool = False, log=print, dtype: str = "float32",
             metrics_device: str | None = None, verbose: bool = False, devices=None, backend: str = "local",
             scheduler: str | None = None, method_options: dict | None = None,
             verify: bool = False) -> EvalResult:
    """Evaluate ``benchmark`` (name, YAML path, or ``(BenchmarkConfig, yaml_path)``) into ``run_dir``.

    ``methods``/``metrics`` override the benchmark's lists (``["all"]`` = every registered method).
    ``device``/``dtype`` are for methods; metrics run on ``metrics_device`` (default: ``device``).
    ``devices`` (e.g. ``"cuda:0,cuda:1"``) runs methods, or shards of their images, on several devices at
    once; ``backend="dask"`` with ``scheduler`` runs them as tasks on an existing Dask cluster (see
    :mod:`benchkit.harness.devices`); outputs, caches and results are those of a single-device run.
    ``method_options`` ({name: {option: value}}) update the benchmark's ``method_options``.
    ``verify``: re-hash every dataset file and cached output (default: files whose size matches the record and
    whose mtime is older than the manifest/index that recorded them are trusted without reading).
    """
    from benchkit.config import fingerprint, to_plain
    from benchkit.fsio import atomic_write_json, atomic_write_text
    from benchkit.harness.benchmark import load_benchmark, open_dataset
    from benchkit.harness.environment import environment, git_sha
    from benchkit.metrics import weights_root as _wroot
    from benchkit.registry import METRICS, check_name

    t_start = time.perf_counter()
    cfg, bpath = benchmark if isinstance(benchmark, tuple) else load_benchmark(benchmark)
    run_dir = Path(run_dir) if run_dir else Path("runs") / cfg.name
    metric_names = list(metrics or cfg.metrics)
    for m in metric_names:
        check_name("metric", m, METRICS)
    method_names = select_methods(methods or cfg.methods)
    from benchkit.harness.benchmark import check_method_options

    opts = {k: dict(v) for k, v in cfg.method_options.items()}
    for k, v in (method_options or {}).items():
        opts.setdefault(k, {}).update(v)
    for k, v in opts.items():
        try:
            check_method_options(k, v)
        except ValueError as e:
            from benchkit.errors import ConfigError

            raise ConfigError(str(e)) from e
    _writable_run_dir(run_dir)  # after the name checks: a typo leaves no empty folder behind
    wroot = _wroot(weights_root)
    counters, failures, skipped, notices = Counters(), [], [], []
    dev_list = []
    if devices or backend == "dask":
        from benchkit.harness.devices import parse_devices

        dev_list = parse_devices(devices or device)
        device = dev_list[0]  # single-device runs, metrics (default) and the environment record use the first

    # datasets
    datasets = []
    for dspec in cfg.datasets:
        try:
            ds = open_dataset(dspec, run_dir, Path(bpath).parent, workers=workers, progress=progress, verify=verify)
        except Exception as e:  # a dataset whose builder is missing or broken is reported, not fatal
            fix = getattr(e, "fix", "")
            what = f"{e.path}: {e.problem}" if fix and hasattr(e, "problem") else f"{type(e).__name__}: {e}"
            failures.append(fail("dataset", what, fix or "check the dataset's builder/pipeline and source", exc=e,
                                 dataset=dspec.name))
            log(f"dataset {dspec.name}: FAILED ({type(e).__name__}: {e})")
            continue
        counters.datasets_built += int(ds.built)
        datasets.append(ds)
        for key, path, problem in ds.bad:
            failures.append(fail("input", f"{path}: {problem}", "rebuild the dataset (or restore the file); this "
                                  "sample is left out", dataset=ds.name, key=key))
        log(f"dataset {ds.name}: {len(ds.records)} samples, x{ds.scale}, fingerprint {ds.fingerprint}"
            + (" (built)" if ds.built else ""))
        limited = dspec.limit is not None and len(ds.records) + len(ds.bad) >= dspec.limit
        if ds.spec.get("complete") is not True and not limited:
            notices.append(f"dataset {ds.name}: its build is incomplete ({ds.spec.get('n_samples')} samples, "
                           f"{ds.spec.get('n_failed')} failed, see {ds.dir / 'failures.jsonl'}); means cover only "
                           f"the samples present (re-run the build to complete it)")

    # metrics (created cheaply; loaded on first use)
    slots = []
    for name in metric_names:
        try:
            slots.append(MetricSlot(name, metrics_device or device, weights_root, cfg.metric_settings.get(name)))
        except Exception as e:
            failures.append(fail("metric", f"{type(e).__name__}: {e}", "", exc=e, metric=name))

    # methods: method-major, one model resident at a time
    from benchkit.harness.restore import make_method, run_method_on_datasets

    runs_by_ds = {d.name: [] for d in datasets}
    methods_used, infos = {}, {}

    def record(name, m, runs):
        if runs:
            infos[name] = m.info()
            methods_used[name] = m
        for run in runs:
            runs_by_ds[run.dataset].append(run)

    if backend == "dask" or len(dev_list) > 1:
        from benchkit.harness.devices import run_methods_distributed

        for name, m, runs in run_methods_distributed(
                method_names, datasets, run_dir, devices=dev_list, backend=backend, scheduler=scheduler,
                dtype=dtype, batch_size=cfg.batch_size, weights_root=wroot, root_seed=cfg.seed, counters=counters,
                method_options=opts, verify=verify,
                failures=failures, skipped=skipped, notices=notices, log=log):
            record(name, m, runs)
    else:
        for name in method_names:
            m = make_method(name, wroot, failures, skipped, opts.get(name))
            if m is None:
                continue
            record(name, m, run_method_on_datasets(
                m, datasets, run_dir, device=device, dtype=dtype, batch_size=cfg.batch_size, workers=workers,
                root_seed=cfg.seed, counters=counters, failures=failures, skipped=skipped, notices=notices,
                progress=progress, log=log, verify=verify))

    cache = ScoreCache(run_dir / SCORES)
    states = StateStore(run_dir / STATES)
    summary, rows, item_cols = [], [], {}
    from benchkit.harness.scoring import score_dataset, score_dataset_level

    try:
        for ds in datasets:
            runs = runs_by_ds[ds.name]
            ok_runs = [r for r in runs if r.status == "ok"]
            values = score_dataset(ds, ok_runs, slots, cache, counters, failures, progress)
            dcols = {}  # (method, key) -> per-image columns of dataset-level metrics (HMB-R counts)
            dvalues = score_dataset_level(ds, ok_runs, slots, cache, states, counters, failures, dcols)
            for run in runs:
                summary.append(summarize(ds, run, slots, values, dvalues, methods_used[run.name]))
                for rec in ds.records:
                    k = rec["key"]
                    orec = run.outputs.get(k)
                    row = {"dataset": ds.name, "method": run.name, "key": k,
                           "status": "ok" if orec else "failed",
                           "seconds": orec.get("seconds") if orec else None,
                           "method_tag": run.tag, "dataset_fingerprint": ds.fingerprint}
                    row.update({s.name: values.get((run.name, k), {}).get(s.name) for s in slots
                                if s.info.kind != "dataset"})
                    extra = dcols.get((run.name, k), {})
                    for c in extra:
                        item_cols.setdefault(c, None)
                    row.update(extra)
                    rows.append(row)
    finally:
        cache.close()
    for s in slots:
        ok, why = s.available() if s._avail is not None else (True, "")
        if not ok:
            skipped.append({"what": "metric", "name": s.name, "reason": why})

    seconds = time.perf_counter() - t_start
    env = environment(device)
    provenance = {"benchkit_version": __import__("benchkit").__version__, "git_sha": git_sha(),
                  "environment_id": fingerprint(env)}
    metric_versions = ";".join(f"{s.name}={s.info.version}" for s in slots)
    for row in rows:
        row.update(provenance, metric_versions=metric_versions)
    results = {
        "benchmark": cfg.name,
        "benchmark_file": str(bpath),
        "config": to_plain(cfg),
        "benchkit_version": provenance["benchkit_version"],
        "git_sha": provenance["git_sha"],
        "environment": env,
        "environment_id": provenance["environment_id"],
        "seeds": {d.name: d.seed for d in cfg.datasets},
        "weights_root": str(wroot),
        "primary_metric": cfg.primary_metric,
        "metrics": {s.name: {**metric_info_dict(s.info), "id": s.id} for s in slots},
        "metric_order": [s.name for s in slots],
        "dataset_order": [d.name for d in datasets],
        "datasets_left_out": {d.name: [k for k, _, _ in d.bad] for d in datasets if d.bad},
        "datasets": {d.name: {"fingerprint": d.fingerprint, "dir": str(d.dir), "scale": d.scale,
                              "n_samples": len(d.records), "spec_fingerprint": d.spec.get("fingerprint"),
                              "producer": d.spec.get("producer"), "kind": d.kind, "roles": d.roles,
                              "has_target": d.has_target} for d in datasets},
        "methods": infos,
        "summary": summary,
        "failures": failures,
        "skipped": skipped,
        "notices": notices,
        "counters": asdict(counters),
        "workers": workers,
        "devices": {"methods": device, "dtype": dtype, "metrics": metrics_device or device,
                    **({"method_devices": dev_list, "backend": backend} if len(dev_list) > 1 or backend == "dask"
                       else {})},
        "method_seed": cfg.seed,
        "process_maxrss_mb": maxrss_mb(),
        "seconds": seconds,
    }
    atomic_write_json(run_dir / RESULTS, results)
    atomic_write_text(run_dir / PER_IMAGE, per_image_csv(rows, [s.name for s in slots if s.info.kind != "dataset"]
                                                                + list(item_cols)))
    for n in notices:
        log("note: " + n)
    return EvalResult(run_dir, run_dir / RESULTS, run_dir / PER_IMAGE, counters, failures, skipped, summary,
                      seconds, verbose)
