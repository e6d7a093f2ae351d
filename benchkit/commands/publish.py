"""benchkit publish [--benchmark NAME] [--run DIR] [--out DIR]"""

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
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from benchkit.harness.publish import publish

    pub = publish(args.run or Path("runs") / args.benchmark, out_dir=args.out)
    print(pub.report())
    return 0
