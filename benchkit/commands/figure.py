"""benchkit figure --run RUN --dataset D --key K --crop X,Y,W,H --methods a,b,c [--scores psnr,lpips] [--out fig.pdf]"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("figure", help="paper comparison figure (PNG + PDF): input with crop box, zoomed crops",
                       description="Write a publication comparison figure from an evaluation run: the full input "
                       "with the crop box, then the zoomed crop of every method and the ground truth (absent on "
                       "input-only datasets), labelled, optionally with per-image scores. Writes both PNG and PDF "
                       "(the --out suffix picks the name; the other format goes beside it).")
    p.add_argument("--run", required=True, help="run folder of `benchkit evaluate` (holds results.json)")
    p.add_argument("--dataset", required=True, help="dataset name in the run")
    p.add_argument("--key", required=True, help="image key (see per_image.csv)")
    p.add_argument("--crop", required=True, help="X,Y,W,H in pixels of the output grid (target size)")
    p.add_argument("--methods", required=True, help="comma-separated method names, in figure order")
    p.add_argument("--scores", default=None, help="comma-separated metrics to print under each method "
                   "(per-image values from per_image.csv)")
    p.add_argument("--out", default="fig.pdf", help="output path (.pdf or .png; both are written; default fig.pdf)")
    p.add_argument("--dpi", type=int, default=200, help="PNG resolution (default 200)")
    p.set_defaults(func=run)


def run(args) -> int:
    from benchkit.harness.figure import comparison_figure, parse_crop

    split = [m.strip() for m in args.methods.split(",") if m.strip()]
    scores = [m.strip() for m in args.scores.split(",") if m.strip()] if args.scores else None
    paths = comparison_figure(args.run, args.dataset, args.key, parse_crop(args.crop), split, args.out,
                              scores=scores, dpi=args.dpi)
    for p in paths:
        print(p)
    return 0
