"""``benchkit bench evaluate-scale``: ``evaluate``'s per-image overhead against the dataset size (issue 15).

For each size N (default 1,000 and 10,000; ``--quick`` 200; ``--n`` one size) a dataset of N tiny 64x64 samples
is built as ``bench resume`` builds it (``realesrgan_x1``, ``--workers 1``; the build is timed but is not the
point), then :func:`benchkit.harness.evaluate.evaluate` runs in this process on it as a ``folder`` dataset with
the method ``identity`` and the metric ``psnr`` (so almost all of the time is the harness's own work: reading,
checking and writing files, indexes and caches), twice into a fresh run folder:

1. **first run**: every output restored and written, every score computed;
2. **cached re-run**: nothing to compute (outputs reused after their sha256 check, scores from the cache).

Both are timed wall clock and CPU (user + sys, :class:`benchkit.bench._clock.Clock`). Figures per size: seconds
and microseconds per image of each run, the re-run's share of the first run; across the smallest and the
largest size: per-image(large) / per-image(small) for both runs (target ~1: the overhead per image does not
grow with the dataset; ``growth_ok`` when every ratio is <= 1.25, a margin for a shared machine's noise). A
warm-up evaluation of a 20-sample dataset runs first, untimed, so one-time costs (importing torch and pyiqa,
building the metric) are not charged to the first size. The last line of ``benchkit bench evaluate-scale`` is
the JSON object.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ._clock import Clock

SIZES = (1000, 10000)  # default sizes; --quick: QUICK; --n: that one size
QUICK = (200,)
GROWTH_MAX = 1.25  # per-image(large) / per-image(small) still counted as "independent of N"
WARMUP = 20


def _build(tmp: Path, n: int, rng) -> tuple[Path, Clock]:
    """A built dataset of ``n`` tiny samples under ``tmp`` (its sources removed afterwards)."""
    from benchkit.bench.resume import write_tiny_sources
    from benchkit.config import load_pipeline
    from benchkit.degrade import DegradeProducer
    from benchkit.runner import run_producer

    name, gen, _ = load_pipeline("realesrgan_x1")
    src, out = tmp / f"src{n}", tmp / f"data{n}"
    src.mkdir()
    write_tiny_sources(src, n, rng)
    with Clock() as c:
        s = run_producer(DegradeProducer(name, gen, src), out, seed=0, progress=False)
    if s.produced != n:
        raise RuntimeError(f"bench evaluate-scale: the build produced {s.produced} of {n} samples: {s.report()}")
    shutil.rmtree(src)
    return out, c


def _benchmark(data: Path):
    from benchkit.harness.benchmark import BenchmarkConfig, DatasetSpec

    cfg = BenchmarkConfig(name="evaluate-scale", datasets=(DatasetSpec(name="tiny", kind="folder", path=str(data)),),
                          metrics=("psnr",), primary_metric="psnr", methods=("identity",))
    return cfg, data.parent / "evaluate-scale.yaml"


def _evaluate(data: Path, run_dir: Path, n: int, cached: bool):
    """One timed evaluate(); its counters must show exactly the work a first run / a cached re-run does."""
    from benchkit.harness.evaluate import evaluate

    with Clock() as c:
        r = evaluate(_benchmark(data), run_dir=run_dir, log=lambda *a, **k: None)
    k = r.counters
    want = ((0, 0, n, n) if cached else (n, n, 0, 0))
    got = (k.images_restored, k.metric_evaluations, k.outputs_reused, k.scores_cached)
    if got != want or r.failures:
        raise RuntimeError(f"bench evaluate-scale: {'cached re-run' if cached else 'first run'} on {n} samples: "
                           f"(restored, evaluated, reused, cached) = {got}, expected {want}; failures "
                           f"{r.failures[:2]}")
    return c


def run(args) -> dict:
    import numpy as np

    if getattr(args, "n", None):
        sizes = [int(args.n)]
    elif getattr(args, "quick", False):
        sizes = list(QUICK)
    else:
        sizes = list(SIZES)
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-bench-evalscale-"))
    rng = np.random.default_rng(0)
    rows = {}
    try:
        data, _ = _build(tmp, WARMUP, rng)
        with Clock() as warm:
            _evaluate(data, tmp / "run-warmup", WARMUP, cached=False)
        shutil.rmtree(data)
        for n in sizes:
            data, build = _build(tmp, n, rng)
            run_dir = tmp / f"run{n}"
            first = _evaluate(data, run_dir, n, cached=False)
            again = _evaluate(data, run_dir, n, cached=True)
            row = {"samples": n, "build_wall_s": round(build.wall, 3), "build_cpu_s": round(build.cpu, 3),
                   "first_wall_s": round(first.wall, 3), "first_cpu_s": round(first.cpu, 3),
                   "cached_wall_s": round(again.wall, 4), "cached_cpu_s": round(again.cpu, 4),
                   "first_us_per_image": round(1e6 * first.wall / n, 1),
                   "first_cpu_us_per_image": round(1e6 * first.cpu / n, 1),
                   "cached_us_per_image": round(1e6 * again.wall / n, 1),
                   "cached_cpu_us_per_image": round(1e6 * again.cpu / n, 1),
                   "cached_fraction": round(again.wall / first.wall, 4),
                   "cached_cpu_fraction": round(again.cpu / first.cpu, 4) if first.cpu > 0 else None,
                   "score_cache_bytes": (run_dir / "cache" / "scores.jsonl").stat().st_size}
            rows[str(n)] = row
            print(f"{n} images: first run {first.wall:.2f}s wall / {first.cpu:.2f}s CPU "
                  f"({row['first_us_per_image']:.0f} / {row['first_cpu_us_per_image']:.0f} us per image); cached "
                  f"re-run {again.wall:.3f}s / {again.cpu:.3f}s ({row['cached_us_per_image']:.0f} / "
                  f"{row['cached_cpu_us_per_image']:.0f} us per image, {100 * row['cached_fraction']:.1f}% of the "
                  f"first run's wall time)")
            shutil.rmtree(data)
            shutil.rmtree(run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"bench": "evaluate-scale", "method": "identity", "metric": "psnr", "image_size": 64,
              "warmup_images": WARMUP, "warmup_wall_s": round(warm.wall, 3), "sizes": rows,
              "target_growth_max": GROWTH_MAX}
    if len(rows) > 1:
        a, z = rows[str(sizes[0])], rows[str(sizes[-1])]
        growth = {"samples": round(sizes[-1] / sizes[0], 3)}
        for f in ("first_us_per_image", "first_cpu_us_per_image", "cached_us_per_image", "cached_cpu_us_per_image"):
            growth[f] = round(z[f] / a[f], 3) if a[f] > 0 else None
        result["growth"] = growth
        result["growth_ok"] = all(v is not None and v <= GROWTH_MAX for k, v in growth.items() if k != "samples")
        print(f"x{growth['samples']:g} images: per-image time x{growth['first_us_per_image']} (first run, wall), "
              f"x{growth['first_cpu_us_per_image']} (CPU); x{growth['cached_us_per_image']} (cached re-run, wall), "
              f"x{growth['cached_cpu_us_per_image']} (CPU); target ~1 (<= {GROWTH_MAX})")
    return result
