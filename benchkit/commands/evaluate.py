"""benchkit evaluate --benchmark NAME | --dataset PATH  [--methods all] [--metrics a,b] [--device cpu]
[--devices cuda:0,cuda:1] [--backend dask --scheduler ADDR]"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("evaluate", help="run restoration methods on a benchmark's datasets (or any folder) and "
                       "score them",
                       description="Build the benchmark's missing datasets, run the methods (outputs cached per "
                       "method version, options, device, dtype and dataset fingerprint), score them (per-image "
                       "score cache) and write results.json + per_image.csv in the run folder. A re-run recomputes "
                       "nothing. --dataset PATH evaluates a benchkit dataset folder or any plain folder of images "
                       "(input-only: full-reference metrics are reported as n/a). Failures (a method raising, wrong "
                       "output size, NaN score) are reported and the rest completes (exit 3). A method or metric "
                       "that cannot run here (e.g. missing weights) is listed as skipped; exit 3 when it was named "
                       "in --methods/--metrics, 0 when it came from `all` or the benchmark's defaults.")
    p.add_argument("--benchmark", default=None, help="shipped NAME, NAME in $BENCHKIT_BENCHMARKS, or a YAML path (default demo)")
    p.add_argument("--dataset", action="append", default=[], metavar="PATH",
                   help="evaluate this dataset folder or plain image folder instead of a benchmark (repeatable)")
    p.add_argument("--scale", type=int, default=None, help="with --dataset: output/input scale of input-only "
                   "folders (default: from the targets, else 1)")
    p.add_argument("--methods", default=None, help="comma-separated method names or `all` (default: the benchmark's)")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: the benchmark's; with "
                   "--dataset: psnr,ssim,niqe)")
    p.add_argument("--run", default=None, help="run folder (default runs/<benchmark>)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers for dataset builds and methods")
    p.add_argument("--device", default="cpu", help="torch device for methods (default cpu)")
    p.add_argument("--devices", default=None, metavar="LIST",
                   help="run methods (or shards of their images) on several devices at once, e.g. cuda:0,cuda:1 "
                   "(one model resident per device; outputs identical to a single-device run)")
    p.add_argument("--backend", default="local", choices=["local", "dask"],
                   help="local: threads over --devices; dask: tasks on the existing cluster at --scheduler "
                   "(CUDA tasks need workers started with --resources GPU=1)")
    p.add_argument("--scheduler", default=None, help="with --backend dask: scheduler address tcp://host:port")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="compute dtype for methods that support it (default float32)")
    p.add_argument("--metrics-device", default=None, help="torch device for metrics (default: --device)")
    p.add_argument("--weights-root", default=None, help="weights root (default $BENCHKIT_WEIGHTS or "
                   "~/.cache/benchkit/weights); method weights in <root>/methods/<name>/")
    p.add_argument("--base-models", default=None, help="folder holding the diffusion base models "
                   "(stable-diffusion-2-1-base/, sd-turbo/; default $BENCHKIT_BASE_MODELS or <weights root>/base-models)")
    p.add_argument("--method-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="a method option, repeatable (e.g. osediff.mode=official, sinsr.code_dir=~/src/SinSR); "
                        "overrides the benchmark's method_options; part of the method's cache tag")
    p.add_argument("--verify", action="store_true", help="re-hash every dataset file and cached output (default: "
                   "unchanged size and an mtime older than the manifest/index that recorded them are trusted)")
    p.add_argument("--verbose", action="store_true", help="print the traceback of every failure")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _split(v):
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def run(args) -> int:
    from benchkit.errors import ConfigError
    from benchkit.harness.evaluate import adhoc_benchmark, evaluate

    if args.base_models:  # read by the one-step diffusion adapters (flag > env > default)
        import os

        os.environ["BENCHKIT_BASE_MODELS"] = os.path.abspath(os.path.expanduser(args.base_models))
    if args.dataset and args.benchmark:
        raise ConfigError("pass either --benchmark or --dataset, not both")
    bench = args.benchmark or "demo"
    if args.dataset:
        bench = adhoc_benchmark(args.dataset, metrics=_split(args.metrics), scale=args.scale)
    from benchkit.harness.benchmark import parse_method_option

    mopts: dict = {}
    for text in args.method_option:
        name, key, value = parse_method_option(text)
        mopts.setdefault(name, {})[key] = value
    res = evaluate(bench, run_dir=args.run, methods=_split(args.methods), metrics=_split(args.metrics),
                   workers=args.workers, device=args.device, weights_root=args.weights_root,
                   progress=not args.no_progress, dtype=args.dtype, metrics_device=args.metrics_device,
                   verbose=args.verbose, devices=args.devices, backend=args.backend, scheduler=args.scheduler,
                   method_options=mopts, verify=args.verify)
    print(res.report())
    named = {("method", n) for n in (_split(args.methods) or []) if n != "all"}
    named |= {("metric", n) for n in (_split(args.metrics) or [])}
    unmet = [s for s in res.skipped if "dataset" not in s and (s.get("what"), s.get("name")) in named]
    for s in unmet:  # asked for by name and could not run here: a script must not read this as success
        print(f"requested {s['what']} {s['name']} did not run: {s['reason']}")
    return 0 if not res.failures and not unmet else 3
