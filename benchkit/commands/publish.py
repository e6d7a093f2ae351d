"""benchkit publish [--benchmark NAME] [--run DIR] [--out DIR] [--html] [--ci-seed S] [--resamples N]"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("publish", help="write leaderboard CSV/Markdown/plot from an evaluation run",
                       description="Generate leaderboards/<benchmark>/<dataset>.{csv,md,png} and meta.json from "
                       "the results.json of a `benchkit evaluate` run. Leaderboards are generated, never edited.")
    p.add_argument("--benchmark", default="demo", help="benchmark name (default demo); run folder runs/<name>")
    p.add_argument("--run", default=None, help="run folder holding results.json (default runs/<benchmark>)")
    p.add_argument("--out", default=None,
                   help="output folder (default leaderboards/<benchmark> of the benchkit checkout, else of the "
                   "current folder)")
    p.add_argument("--html", action="store_true",
                   help="also write html/: a static site (sortable tables with intervals, per-image pages with "
                   "synchronised zoom and a slider comparison); open html/index.html, no server needed")
    p.add_argument("--ci-seed", type=int, default=0, help="seed of the bootstrap intervals and tests (default 0)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from benchkit.errors import ConfigError
    from benchkit.harness.publish import publish
    from benchkit.harness.stats import Bootstrap

    from benchkit.safety import safe_name

    if not args.run:  # the benchmark name becomes runs/<name>
        safe_name("benchmark", args.benchmark)
    try:
        boot = Bootstrap(seed=args.ci_seed, resamples=args.resamples)
    except ValueError as e:
        raise ConfigError(f"benchkit publish: {e}") from None
    pub = publish(args.run or Path("runs") / args.benchmark, out_dir=args.out, html=args.html, bootstrap=boot)
    print(pub.report())
    return 0
