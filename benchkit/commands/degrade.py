"""benchkit degrade --pipeline NAME --seed S --workers N INPUT_DIR OUT_DIR"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("degrade", help="degrade every image of a folder with a pipeline (resumable)",
                       description="Apply a degradation pipeline (a shipped NAME, a NAME in $BENCHKIT_PIPELINES, or "
                       "a YAML path) to every image below INPUT_DIR. Re-running skips samples already finished; the "
                       "manifest records every sampled parameter so `benchkit replay` can regenerate any sample.")
    p.add_argument("input_dir", help="folder of images, or `embedded` for the built-in demo images")
    p.add_argument("out_dir")
    p.add_argument("--pipeline", default="realesrgan_x1", help="pipeline name or YAML path (default realesrgan_x1)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by key)")
    p.add_argument("--verify", action="store_true",
                   help="on resume, re-read every recorded output and source file and compare sha256 (default: "
                   "sizes, and contents only of files modified after they were recorded)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from benchkit.config import load_pipeline
    from benchkit.builders.generator_producer import GeneratorProducer
    from benchkit.runner import run_producer

    name, gen, _ = load_pipeline(args.pipeline)
    from benchkit.embedded import resolve_source

    producer = GeneratorProducer(name, gen, resolve_source(args.input_dir))
    summary = run_producer(producer, args.out_dir, seed=args.seed, workers=args.workers, limit=args.limit,
                           progress=not args.no_progress,
                           verify=args.verify)
    print(summary.report())
    return 0 if summary.failed == 0 and not summary.source_problems else 3
