"""benchkit build-dataset NAME --source DIR --out DIR"""

from __future__ import annotations


def register(sub):
    from benchkit.registry import BUILDERS

    p = sub.add_parser("build-dataset", help="build a dataset (resumable, parallel, reproducible)",
                       description="Builders: " + ", ".join(sorted(BUILDERS)) + ". Re-running resumes.")
    p.add_argument("name", help="builder name")
    p.add_argument("--source", default="embedded", help="source folder, or `embedded` for the built-in demo source")
    p.add_argument("--out", default=None, help="output folder (default data/<name>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="only the first N samples (sorted by key)")
    p.add_argument("--backend", default="loky", choices=["loky", "threading", "dask"],
                   help="joblib backend; dask runs on an existing cluster given by --scheduler")
    p.add_argument("--scheduler", default=None, help="dask scheduler address (tcp://host:port)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a builder config value (YAML syntax), repeatable")
    p.add_argument("--verify", action="store_true",
                   help="on resume, re-read every recorded output and source file and compare sha256 (default: "
                   "sizes, and contents only of files modified after they were recorded)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def make_builder(name: str, source: str, overrides=()):
    """Instantiate builder ``name`` with config overrides ``["a=1", "b.c=x"]`` for ``source``."""
    import dataclasses

    import yaml

    from benchkit.config import from_dict, to_plain
    from benchkit.errors import ConfigError
    from benchkit.registry import resolve

    cls = resolve("builder", name)
    cfg = to_plain(cls.Config())
    for item in overrides:
        key, sep, val = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {key}: {part!r} is not a config section of {name}")
            node = node[part]
        try:
            node[parts[-1]] = yaml.safe_load(val)
        except yaml.YAMLError as e:
            problem = " ".join(str(getattr(e, "problem", None) or e).split())
            raise ConfigError(f"--set {item}: the value is not plain YAML ({problem}); fix: write a number, "
                              "true/false, a string or a [list]") from None
    config = from_dict(cls.Config, cfg, where=f"{name} config")
    assert dataclasses.is_dataclass(config)
    src = cls.resolve_source(source) if hasattr(cls, "resolve_source") else source
    return cls(config, src)


def run(args) -> int:
    from benchkit.builders.base import build

    builder = make_builder(args.name, args.source, args.set)
    out = args.out or f"data/{args.name}"
    summary = build(builder, out, seed=args.seed, workers=args.workers, limit=args.limit, backend=args.backend,
                    scheduler=args.scheduler, progress=not args.no_progress,
                    verify=args.verify)
    print(summary.report())
    print(f"  card:     {out}/README.md")
    return 0 if summary.failed == 0 and not summary.source_problems else 3
