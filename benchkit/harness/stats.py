"""Uncertainty for leaderboards: bootstrap confidence intervals over images and paired significance.

Everything is a percentile bootstrap over the images of one dataset (Efron & Tibshirani 1993, ch. 13):

- Resample indices for a vector of ``n`` per-image values (images in key order) are
  ``numpy.random.Generator(PCG64(SeedSequence([seed, n]))).integers(0, n, size=(resamples, n))``:
  the same seed and ``n`` give the same draws for every method, so CIs are reproducible from
  ``meta.json`` (``bootstrap``: seed, resamples, confidence) with numpy alone.
- CI of a mean: the ``(1-c)/2`` and ``1-(1-c)/2`` quantiles (numpy's default linear interpolation)
  of the resampled means.
- Paired comparison against the best method of a column: the per-image differences over the images
  both methods scored, bootstrapped the same way; the difference is *not significant* when its
  interval contains 0. A two-sided bootstrap p-value ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))`` is
  recorded alongside.
- Derived scores (the NTIRE 2025 perceptual score) are bootstrapped by resampling the images once and
  recomputing the score from the resampled means of its inputs.

Dataset-level metrics (FID) have no per-image values: they get no interval (see
:data:`DATASET_LEVEL_REASON`). No Python loop runs over images or resamples; resamples are processed in
chunks to bound memory (``CHUNK_ELEMENTS`` index entries at a time).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 2000
CHUNK_ELEMENTS = 4_000_000
DATASET_LEVEL_REASON = ("dataset-level metric: one value for the whole image set (no per-image values to "
                        "resample; a bootstrap would recompute its statistics per resample), so no interval")
NTIRE2025 = "ntire2025"
NTIRE2025_INPUTS = ("lpips", "dists", "clipiqa", "maniqa", "musiq", "niqe")
NTIRE2025_SOURCE = ("NTIRE 2025 image super-resolution (x4) challenge, perceptual track: (1-LPIPS) + (1-DISTS) "
                    "+ CLIPIQA + MANIQA + MUSIQ/100 + max(0, (10-NIQE)/10), on dataset means")


@dataclass(frozen=True)
class Bootstrap:
    """Settings of every interval and test of a publication (recorded in ``meta.json``)."""

    seed: int = DEFAULT_SEED
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = 0.95

    def __post_init__(self):
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"bootstrap seed must be a non-negative int, got {self.seed!r}")
        if not isinstance(self.resamples, int) or self.resamples < 100:
            raise ValueError(f"bootstrap resamples must be an int >= 100, got {self.resamples!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")

    def meta(self) -> dict:
        return {**asdict(self), "kind": "percentile bootstrap over images",
                "indices": "numpy Generator(PCG64(SeedSequence([seed, n]))).integers(0, n, size=(resamples, n)), "
                           "images in key order; n = images with a value",
                "paired": "bootstrap of the mean per-image difference over the images both methods scored; "
                          "not significant when the interval contains 0",
                "dataset_level": DATASET_LEVEL_REASON}


_LAST: dict = {}  # the most recent index matrix (every method of a dataset reuses it)


def resample_indices(n: int, boot: Bootstrap):
    """(resamples, n) int64 indices: the draws for a vector of ``n`` values (see module doc); read-only."""
    import numpy as np

    key = (boot.seed, boot.resamples, n)
    if key not in _LAST:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([boot.seed, n])))
        idx = rng.integers(0, n, size=(boot.resamples, n))
        idx.flags.writeable = False
        _LAST.clear()
        _LAST[key] = idx
    return _LAST[key]


def resampled_means(x, boot: Bootstrap):
    """Means of ``x`` ((n,) or (n, k)) over every resample: (resamples,) or (resamples, k)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    idx = resample_indices(n, boot)
    k = 1 if x.ndim == 1 else x.shape[1]
    step = max(1, CHUNK_ELEMENTS // max(1, n * k))
    parts = [x[idx[i:i + step]].mean(axis=1) for i in range(0, boot.resamples, step)]  # chunks, not images
    return np.concatenate(parts, axis=0)


def percentile_interval(samples, confidence: float) -> tuple[float, float]:
    import numpy as np

    a = (1 - confidence) / 2
    lo, hi = np.quantile(np.asarray(samples, dtype=np.float64), [a, 1 - a])
    return float(lo), float(hi)


def mean_ci(x, boot: Bootstrap) -> tuple[float, float, float] | None:
    """(mean, low, high) of the per-image values ``x``; None without values (one value: low = high)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return None
    m = float(math.fsum(x.tolist()) / x.size)
    lo, hi = percentile_interval(resampled_means(x, boot), boot.confidence)
    return m, lo, hi


def paired_test(a, b, boot: Bootstrap) -> dict | None:
    """Paired bootstrap of mean(a - b) over the same images: diff, low, high, p, significant."""
    import numpy as np

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size < 2:
        return None
    bm = resampled_means(d, boot)
    lo, hi = percentile_interval(bm, boot.confidence)
    p = min(1.0, 2 * min(float(np.mean(bm <= 0)), float(np.mean(bm >= 0))))
    return {"diff": float(d.mean()), "low": lo, "high": hi, "p": p, "n": int(d.size),
            "significant": not (lo <= 0.0 <= hi)}


def ntire2025_score(m):
    """The NTIRE 2025 perceptual score from means ``m`` (mapping or array (..., 6) in NTIRE2025_INPUTS order)."""
    import numpy as np

    if isinstance(m, dict):
        m = np.array([m[k] for k in NTIRE2025_INPUTS], dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    lp, di, cl, ma, mu, ni = (m[..., i] for i in range(6))
    return (1 - lp) + (1 - di) + cl + ma + mu / 100 + np.maximum(0.0, (10 - ni) / 10)


# ---------------------------------------------------------------------------------------------- tables


def read_per_image(path) -> dict:
    """{(dataset, method): {metric: {key: float}}} from ``per_image.csv`` (n/a, empty and failed left out)."""
    import csv

    out: dict = {}
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        fixed = {"dataset", "method", "key", "status", "seconds", "method_tag", "dataset_fingerprint",
                 "metric_versions", "benchkit_version", "git_sha", "environment_id"}
        metrics = [c for c in (r.fieldnames or []) if c not in fixed]
        for row in r:
            d = out.setdefault((row["dataset"], row["method"]), {m: {} for m in metrics})
            for m in metrics:
                try:
                    v = float(row[m])
                except (TypeError, ValueError):
                    continue
                if math.isfinite(v):
                    d[m][row["key"]] = v
    return out


def _vector(vals: dict, keys) -> list:
    return [vals[k] for k in keys]


def table_stats(results: dict, dataset: str, rows: list, present: list, per_image: dict, boot: Bootstrap) -> dict:
    """Intervals and significance for one published table; adds to every row ``<m>_ci_low``/``<m>_ci_high``
    and ``_sig[m]`` (``best``, ``tie`` = not significantly different from the best, ``worse``, or None).

    Returns {metric: {"best": method, "kind": per-image|dataset|derived, "note": ..., "tests": {method: test}}}.
    """
    info = results["metrics"]
    ranked = [r for r in rows if r.get("_complete", True)] or rows
    out = {}
    for r in rows:
        r.setdefault("_sig", {})
        r.setdefault("_ci", {})
    for m in present:
        kind = info.get(m, {}).get("kind", "image") if m != NTIRE2025 else "derived"
        hib = info.get(m, {}).get("higher_is_better", True) if m != NTIRE2025 else True
        col = {"kind": "dataset" if kind == "dataset" else ("derived" if kind == "derived" else "per-image"),
               "higher_is_better": hib, "best": None, "tests": {}}
        if kind == "dataset":
            col["note"] = DATASET_LEVEL_REASON
            out[m] = col
            for r in rows:
                r["_sig"][m] = None
            continue

        def vals_of(method, m=m):
            pi = per_image.get((dataset, method), {})
            if m == NTIRE2025:
                cols = [pi.get(x, {}) for x in NTIRE2025_INPUTS]
                keys = sorted(set.intersection(*(set(c) for c in cols))) if all(cols) else []
                return {k: [c[k] for c in cols] for k in keys}
            return pi.get(m, {})

        for r in rows:
            v = vals_of(r["method"])
            keys = sorted(v)
            if not keys or not isinstance(r.get(m), (int, float)):
                continue
            if m == NTIRE2025:
                bm = resampled_means([v[k] for k in keys], boot)
                lo, hi = percentile_interval(ntire2025_score(bm), boot.confidence)
            else:
                lo, hi = percentile_interval(resampled_means(_vector(v, keys), boot), boot.confidence)
            r[f"{m}_ci_low"], r[f"{m}_ci_high"] = lo, hi
            r["_ci"][m] = (lo, hi, len(keys))
        cands = [r for r in ranked if isinstance(r.get(m), (int, float))]
        if not cands:
            out[m] = col
            continue
        best = min(cands, key=lambda r, m=m: (-r[m] if hib else r[m], r["method"]))
        col["best"] = best["method"]
        bv = vals_of(best["method"])
        for r in rows:
            if r is best:
                r["_sig"][m] = "best"
                continue
            if not isinstance(r.get(m), (int, float)):
                r["_sig"][m] = None
                continue
            v = vals_of(r["method"])
            keys = sorted(set(v) & set(bv))
            if m == NTIRE2025:
                if len(keys) < 2:
                    t = None
                else:
                    import numpy as np

                    a = np.array([v[k] for k in keys] + [bv[k] for k in keys], dtype=np.float64)
                    n = len(keys)
                    both = np.concatenate([a[:n], a[n:]], axis=1)  # (n, 12): one resample for both methods
                    bm = resampled_means(both, boot)
                    diff = ntire2025_score(bm[:, :6]) - ntire2025_score(bm[:, 6:])
                    lo, hi = percentile_interval(diff, boot.confidence)
                    p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
                    t = {"diff": float(ntire2025_score(a[:n].mean(0)) - ntire2025_score(a[n:].mean(0))),
                         "low": lo, "high": hi, "p": p, "n": n, "significant": not (lo <= 0.0 <= hi)}
            else:
                t = paired_test(_vector(v, keys), _vector(bv, keys), boot)
            col["tests"][r["method"]] = t
            r["_sig"][m] = None if t is None else ("worse" if t["significant"] else "tie")
        out[m] = col
    return out


def add_ntire2025(rows: list, present: list) -> bool:
    """Add the NTIRE 2025 perceptual score (from the rows' means) when all its inputs are columns."""
    if not all(m in present for m in NTIRE2025_INPUTS):
        return False
    for r in rows:
        vals = [r.get(m) for m in NTIRE2025_INPUTS]
        r[NTIRE2025] = (float(ntire2025_score(dict(zip(NTIRE2025_INPUTS, vals))))
                        if all(isinstance(v, (int, float)) for v in vals) else None)
    return True


def annotate_table(results: dict, dataset: str, cols: list, rows: list, present: list, per_image: dict | None,
                   boot: Bootstrap) -> tuple[list, list, dict]:
    """Add the NTIRE 2025 score (when its inputs are columns), intervals and significance to one table.

    Returns (columns, metric columns, column stats); CI columns ``<m>_ci_low``/``<m>_ci_high`` come after
    the fixed ones (``n_images, n_failed``) so readers of the 0.1 columns keep working."""
    present = list(present)
    if add_ntire2025(rows, present):
        present.append(NTIRE2025)
        i = cols.index("n_images")
        cols = cols[:i] + [NTIRE2025] + cols[i:]
    if per_image is None:
        for r in rows:
            r.setdefault("_sig", {})
            r.setdefault("_ci", {})
        return cols, present, {m: {"note": "no per_image.csv in the run folder: no intervals"} for m in present}
    stats = table_stats(results, dataset, rows, present, per_image, boot)
    ci_cols = [c for m in present if stats[m]["kind"] != "dataset" for c in (f"{m}_ci_low", f"{m}_ci_high")]
    return cols + ci_cols, present, stats
