"""What an evaluation reports: counters, failure records, per-(dataset, method) summaries, the CSV.

*Not applicable* (:data:`benchkit.metrics.base.NA`) is counted apart from failures: a summary carries
``na_counts`` per metric and ``per_image.csv`` writes ``n/a``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

NA_TEXT = "n/a"


@dataclass
class Counters:
    """What one evaluation computed (zeros for a fully cached re-run)."""

    datasets_built: int = 0
    methods_run: int = 0  # (dataset, method) pairs that restored at least one image
    methods_loaded: int = 0  # method.load() calls (one per method that had work to do)
    images_restored: int = 0
    outputs_reused: int = 0
    metric_evaluations: int = 0  # metric computations (per image; per-item states for dataset-level)
    reference_evaluations: int = 0  # method-independent reference-side states computed (once per dataset)
    scores_cached: int = 0
    not_applicable: int = 0

    def line(self) -> str:
        return (f"computed: {self.datasets_built} datasets built, {self.methods_run} method runs, "
                f"{self.images_restored} images restored ({self.outputs_reused} outputs reused), "
                f"{self.metric_evaluations} metric evaluations ({self.scores_cached} scores from cache, "
                f"{self.reference_evaluations} reference states, {self.not_applicable} not applicable)")


@dataclass
class EvalResult:
    run_dir: Path
    results_path: Path
    per_image_path: Path
    counters: Counters
    failures: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    seconds: float = 0.0
    verbose: bool = False

    def report(self) -> str:
        lines = [f"evaluation in {self.seconds:.1f}s: {self.counters.line()}"]
        for s in self.summary:
            if s["status"] != "ok":
                continue
            parts = []
            for k, v in s["means"].items():
                if v is not None:
                    parts.append(f"{k} {v:.4f}")
                elif s.get("na_counts", {}).get(k):
                    parts.append(f"{k} {NA_TEXT}")
            sec = s["seconds_per_image"]
            lines.append(f"  {s['dataset']:16s} {s['method']:16s} {s['n_scored']}/{s['n_images']} images, "
                         f"{'-' if sec is None else f'{sec:.4f}'} s/img: {', '.join(parts)}")
        scale_skips = {}
        for s in self.skipped:
            if s.get("dataset"):  # not applicable at this dataset's scale: one line per dataset
                scale_skips.setdefault(s["dataset"], []).append(s["name"])
            else:
                lines.append(f"  skipped {s['what']} {s['name']}: {s['reason']}")
        for ds, names in scale_skips.items():
            lines.append(f"  not applicable to {ds} (scale): {', '.join(names)}")
        for f in self.failures[:30]:
            lines.append("  FAILED " + describe_failure(f))
            if self.verbose and f.get("traceback"):
                lines += ["    " + t for t in f["traceback"].rstrip().splitlines()]
        if len(self.failures) > 30:
            lines.append(f"  ... {len(self.failures) - 30} more failures in {self.results_path}")
        lines += [f"  results:   {self.results_path}", f"  per image: {self.per_image_path}"]
        return "\n".join(lines)


def describe_failure(f: dict) -> str:
    parts = [f["stage"]] + [f"{k}={f[k]}" for k in ("dataset", "method", "metric", "key") if f.get(k)]
    s = " ".join(parts) + f": {f['error']}"
    return s + (f" (fix: {f['fix']})" if f.get("fix") else "")


def fail(stage, error, fix="", exc: BaseException | None = None, **where) -> dict:
    """A failure record; ``exc`` keeps its traceback (in results.json, printed with --verbose)."""
    rec = {"stage": stage, "error": str(error), "fix": fix,
           **{k: where.get(k) for k in ("dataset", "method", "metric", "key")}}
    if exc is not None:
        import traceback

        rec["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return rec


def summarize(ds, run, slots, values, dvalues, method) -> dict:
    """Means (NA and failures excluded), counts, n/a counts, timing and memory of one (dataset, method)."""
    from benchkit.metrics.base import NA

    means, counts, na = {}, {}, {}
    for s in slots:
        if s.info.kind == "dataset":
            v = dvalues.get((run.name, s.name))
            if v is NA:
                means[s.name], counts[s.name], na[s.name] = None, 0, len(run.outputs)
            else:
                means[s.name], counts[s.name] = v, (len(run.outputs) if v is not None else 0)
            continue
        vals, n_na = [], 0
        for k in run.outputs:
            v = values.get((run.name, k), {}).get(s.name)
            if v is NA:
                n_na += 1
            elif v is not None:
                vals.append(v)
        means[s.name] = math.fsum(vals) / len(vals) if vals else None
        counts[s.name] = len(vals)
        if n_na:
            na[s.name] = n_na
    secs = [r["seconds"] for r in run.outputs.values() if r.get("seconds") is not None]
    # images with every computable metric (metrics with no value at all, e.g. n/a everywhere, do not count)
    n_scored = min((c for c in counts.values() if c), default=0)
    return {
        "dataset": ds.name, "method": run.name, "tag": run.tag, "status": run.status, "reason": run.reason,
        "steps": method.steps, "oracle": bool(method.uses_oracle(ds.aux_names)),
        "device": run.device, "dtype": run.dtype,
        "n_images": len(ds.records) + len(ds.bad), "n_outputs": len(run.outputs),
        "n_scored": n_scored, "n_restored_now": run.restored, "n_reused": run.reused,
        "seconds_per_image": math.fsum(secs) / len(secs) if secs else None,
        "load_seconds": run.load_seconds,
        "peak_mem_mb": run.peak_mem_bytes / 2 ** 20 if run.peak_mem_bytes is not None else None,
        "peak_mem_kind": "tracemalloc peak (Python + numpy allocations) during restore, per batch",
        "cuda_peak_mem_mb": run.cuda_peak_bytes / 2 ** 20 if run.cuda_peak_bytes is not None else None,
        "means": means, "counts": counts, "na_counts": na,
    }


def per_image_csv(rows, metric_cols) -> str:
    import csv
    import io

    from benchkit.metrics.base import NA

    buf = io.StringIO()
    cols = (["dataset", "method", "key", "status", "seconds"] + metric_cols
            + ["method_tag", "dataset_fingerprint", "metric_versions", "benchkit_version", "git_sha",
               "environment_id"])
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()

    def cell(v):
        if v is None:
            return ""
        if v is NA:
            return NA_TEXT
        return repr(v) if isinstance(v, float) else v

    for r in rows:
        w.writerow({k: cell(r.get(k)) for k in cols})
    return buf.getvalue()


def maxrss_mb():
    """Process peak resident memory (ru_maxrss; KiB on Linux), or None where unsupported."""
    try:
        import resource
        import sys

        v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return v / 2 ** 20 if sys.platform == "darwin" else v / 1024
    except (ImportError, OSError):
        return None
