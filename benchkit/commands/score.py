"""benchkit score: per-image and mean metric values of a result folder against references."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("score", help="score a folder of results against references (CSV output)")
    p.add_argument("ref_dir", help="folder of reference (ground-truth) images")
    p.add_argument("out_dir", help="folder of results; matched to references by file stem")
    p.add_argument("--metrics", default="psnr,ssim",
                   help="comma-separated metric names (see `benchkit weights status --all`)")
    p.add_argument("--out", default=None,
                   help="CSV prefix: writes PREFIX_per_image.csv and PREFIX_mean.csv "
                        "(default: OUT_DIR/../<out folder name>_scores)")
    p.add_argument("--weights-root", default=None)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from benchkit.metrics.scoring import score_folder, write_csvs

    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    out_dir = Path(args.out_dir)
    prefix = Path(args.out) if args.out else out_dir.absolute().parent / f"{out_dir.name}_scores"
    res = score_folder(args.ref_dir, args.out_dir, names, device=args.device,
                       weights_root=args.weights_root, progress=sys.stderr.isatty())
    p1, p2 = write_csvs(res, prefix)
    n = res.n_scored
    line = f"{n} of {res.n_results} result image{'s' if res.n_results != 1 else ''} scored"
    if res.n_results == 0:
        line = f"no result images found in {out_dir} (nothing scored)"
    print(line)
    if n == 0:
        res.problems.append(f"no image was scored (result folder {out_dir}, reference folder {args.ref_dir}); "
                            "check that file stems match and the metrics are available")
    for r in res.means:
        if r["status"] == "ok":
            arrow = "higher is better" if r["higher_is_better"] else "lower is better"
            print(f"  {r['metric']:10s} {r['mean']:.4f}  (n={r['n']}, {arrow})")
        else:
            print(f"  {r['metric']:10s} {r['status'].upper()}: {r['note']}")
    for line in res.problems:
        print(f"warning: {line}", file=sys.stderr)
    print(f"wrote {p1}\nwrote {p2}")
    return 3 if res.problems else 0
