"""benchkit evaluate --benchmark NAME --methods all [--metrics a,b] [--workers N] [--device cpu]"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("evaluate", help="run restoration methods on a benchmark's datasets and score them",
                       description="Build the benchmark's missing datasets, run the methods (outputs cached per "
                       "method version and dataset fingerprint), score them (per-image score cache) and write "
                       "results.json + per_image.csv in the run folder. A re-run recomputes nothing. Failures "
                       "(a method raising, wrong output size, NaN score, missing weights) are reported and the "
                       "rest completes (exit status 3).")
    p.add_argument("--benchmark", default="demo",
                   help="shipped NAME, NAME in $BENCHKIT_BENCHMARKS, or a YAML path (default demo)")
    p.add_argument("--methods", default=None, help="comma-separated method names or `all` (default: the benchmark's)")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: the benchmark's)")
    p.add_argument("--run", default=None, help="run folder (default runs/<benchmark>)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers for dataset builds and methods")
    p.add_argument("--device", default="cpu", help="torch device for methods and metrics (default cpu)")
    p.add_argument("--weights-root", default=None, help="weights root (default $BENCHKIT_WEIGHTS or "
                   "~/.cache/benchkit/weights); method weights in <root>/methods/<name>/")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _split(v):
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def run(args) -> int:
    from benchkit.harness.evaluate import evaluate

    res = evaluate(args.benchmark, run_dir=args.run, methods=_split(args.methods), metrics=_split(args.metrics),
                   workers=args.workers, device=args.device, weights_root=args.weights_root,
                   progress=not args.no_progress)
    print(res.report())
    return 0 if not res.failures else 3
