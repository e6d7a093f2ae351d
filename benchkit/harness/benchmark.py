"""Benchmark configs and their datasets.

A benchmark is ONE YAML mapping in ``benchmarks/<name>.yaml`` (or any path), loaded
strictly (unknown keys are errors)::

    name: demo
    description: "..."
    metrics: [psnr, ssim, niqe, msswd]    # benchkit.metrics names, in column order
    metric_settings: {psnr: {crop_border: 0}}
    primary_metric: psnr                  # leaderboard row order
    methods: [all]                        # or a list of benchkit.registry.METHODS names
    method_options: {osediff: {mode: official}, haodiff: {code_dir: ~/src/HAODiff}}   # per-method options
    plot: {x: psnr, y: [niqe, msswd]}     # perception-distortion plot: first available y
    datasets:
      - {name: realesrgan_x1, kind: pipeline, pipeline: realesrgan_x1, source: embedded, limit: 8}
      - {name: blur-synth, kind: builder, builder: blur-synth, source: embedded, set: ["a=1"]}
      - {name: mine, kind: folder, path: /data/my-benchkit-dataset}

``pipeline`` and ``builder`` datasets are built into ``<run>/datasets/<name>`` when missing
(resumable); ``folder`` datasets are existing benchkit dataset folders (``spec.json`` +
``manifest.jsonl``; outputs read by role) or plain folders of images (input-only: full-reference
metrics are not applicable there), relative paths from the YAML's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchkit.errors import BenchkitError, ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a benchmark."""

    name: str
    kind: Literal["pipeline", "builder", "folder"]
    pipeline: str | None = None
    builder: str | None = None
    source: str = "embedded"
    set: tuple[str, ...] = ()  # builder config overrides, KEY=VALUE
    path: str | None = None  # folder datasets
    seed: int = 0
    limit: int | None = None  # first N samples (sorted by key)
    scale: int | None = None  # None: gt size / lq size of the first sample
    description: str = ""

    def __post_init__(self):
        need = {"pipeline": "pipeline", "builder": "builder", "folder": "path"}[self.kind]
        if not getattr(self, need):
            raise ValueError(f"dataset {self.name!r} of kind {self.kind!r} needs '{need}'")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"dataset {self.name!r}: limit must be >= 1")


@dataclass(frozen=True)
class PlotSpec:
    """Perception-distortion plot: ``x`` (distortion) against the first available of ``y``."""

    x: str = "psnr"
    y: tuple[str, ...] = ("niqe", "msswd")


@dataclass(frozen=True)
class BenchmarkConfig:
    name: str
    datasets: tuple[DatasetSpec, ...]
    description: str = ""
    metrics: tuple[str, ...] = ("psnr", "ssim")
    metric_settings: dict[str, dict] = field(default_factory=dict)
    primary_metric: str = "psnr"
    methods: tuple[str, ...] = ("all",)
    plot: PlotSpec = field(default_factory=PlotSpec)
    batch_size: int | None = None  # images per restore() call; None: each method's own batch_size
    seed: int = 0  # root seed of stochastic methods' per-sample generators (root seed, key, method name)
    method_options: dict[str, dict] = field(default_factory=dict)  # method name -> options (part of its tag)

    def __post_init__(self):
        from benchkit.safety import safe_name

        safe_name("benchmark", self.name)  # names become folders (runs/<name>, leaderboards/<name>)
        for d in self.datasets:
            safe_name("dataset", d.name)
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate dataset names {dup}")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {list(self.metrics)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        from benchkit.config import check_number
        from benchkit.registry import METRICS, suggest

        for name, settings in self.metric_settings.items():
            if name not in METRICS:
                raise ValueError(f"metric_settings: unknown metric {name!r}.{suggest(str(name), METRICS)} "
                                 f"Known: {', '.join(sorted(METRICS))}; fix: correct or remove that entry")
            if not isinstance(settings, dict):
                raise ValueError(f"metric_settings.{name} = {settings!r}: must be a mapping of option: value")
        for name, opts in self.method_options.items():
            check_method_options(name, opts)
        for d in self.datasets:
            check_number(f"datasets[{d.name}].seed", d.seed, 0, 2**63 - 1, integer=True)
        check_number("seed", self.seed, 0, 2**63 - 1, integer=True)


def check_method_options(name, opts) -> None:
    """ValueError unless ``name`` is a registered method and ``opts`` a mapping its constructor accepts."""
    from benchkit.registry import METHODS, resolve, suggest

    if name not in METHODS:
        raise ValueError(f"method_options: unknown method {name!r}.{suggest(str(name), METHODS)} "
                         f"Known: {', '.join(sorted(METHODS))}")
    if not isinstance(opts, dict):
        raise ValueError(f"method_options.{name} = {opts!r}: must be a mapping of option: value")
    try:
        resolve("method", name)(**opts)  # constructors validate option names and values (cheap, no loading)
    except ConfigError as e:
        raise ValueError(f"method_options.{name}: {e}") from e


def parse_method_option(text: str) -> tuple[str, str, object]:
    """``NAME.KEY=VALUE`` (``--method-option``) -> (method, key, value); VALUE is read as YAML (safe)."""
    import yaml

    head, sep, raw = text.partition("=")
    name, dot, key = head.strip().rpartition(".")
    if not sep or not dot or not name or not key:
        raise ConfigError(f"--method-option {text!r}: expected NAME.KEY=VALUE (e.g. osediff.mode=official)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--method-option {text!r}: VALUE is not valid YAML ({e})") from e
    return name, key, value


def benchmark_dirs() -> list[Path]:
    """``$BENCHKIT_BENCHMARKS`` folders (first wins on equal names), then the shipped ``benchkit/benchmarks``
    (package data: present in installed wheels too)."""
    from benchkit.config import BENCHMARKS_DIR

    dirs = [Path(p) for p in os.environ.get("BENCHKIT_BENCHMARKS", "").split(os.pathsep) if p]
    return dirs + [BENCHMARKS_DIR]


def find_benchmark(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    found = {}
    for d in benchmark_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.yaml")):
                found.setdefault(f.stem, f)
    if str(name_or_path) not in found:
        from benchkit.registry import suggest

        raise ConfigError(f"unknown benchmark {str(name_or_path)!r}.{suggest(str(name_or_path), found)} Known: "
                          f"{', '.join(sorted(found)) or '(none)'} (YAML files in "
                          f"{', '.join(map(str, benchmark_dirs()))})")
    return found[str(name_or_path)]


def load_benchmark(name_or_path) -> tuple[BenchmarkConfig, Path]:
    """(config, yaml path); unknown keys, wrong types and unknown metric names are ConfigErrors."""
    from benchkit.config import from_dict, load_yaml
    from benchkit.registry import METHODS, METRICS, check_name

    path = find_benchmark(name_or_path)
    cfg = from_dict(BenchmarkConfig, load_yaml(path), where=str(path))
    for m in cfg.metrics:
        try:
            check_name("metric", m, METRICS)
        except KeyError as e:
            raise ConfigError(f"{path}: metrics: {e}") from e
    for m in cfg.methods:
        if m != "all":
            try:
                check_name("method", m, METHODS)
            except KeyError as e:
                raise ConfigError(f"{path}: methods: {e}") from e
    return cfg, path


# ----------------------------------------------------------------------------------- datasets

from benchkit.datasets.open import Dataset  # noqa: E402  (re-exported: the harness's dataset type)

REQUEST = "harness_request.json"


def _built_ok(out: Path, request: dict) -> bool:
    import json

    spec_p, req_p = out / "spec.json", out / REQUEST
    if not (spec_p.is_file() and req_p.is_file()):
        return False
    try:
        spec = json.loads(spec_p.read_text(encoding="utf-8"))
        return (isinstance(spec, dict) and bool(spec.get("complete"))
                and json.loads(req_p.read_text(encoding="utf-8")) == request)
    except (OSError, ValueError):
        return False


def build_dataset(ds: DatasetSpec, out: Path, workers: int = 1, progress: bool = False) -> bool:
    """Build a pipeline/builder dataset into ``out`` unless an identical complete build is there.

    Returns True when samples were produced (False: reused, or resumed with nothing left to do).
    """
    from benchkit.config import to_plain
    from benchkit.fsio import atomic_write_json

    request = to_plain(ds)
    if _built_ok(out, request):
        return False
    if ds.kind == "pipeline":
        from benchkit.config import load_pipeline
        from benchkit.builders.generator_producer import DegradeProducer
        from benchkit.embedded import resolve_source
        from benchkit.runner import run_producer

        name, gen, _ = load_pipeline(ds.pipeline)
        summary = run_producer(DegradeProducer(name, gen, resolve_source(ds.source)), out, seed=ds.seed,
                               workers=workers, limit=ds.limit, progress=progress)
    else:
        from benchkit.builders.base import build
        from benchkit.datasets.build import make_builder

        builder = make_builder(ds.builder, ds.source, list(ds.set))
        summary = build(builder, out, seed=ds.seed, workers=workers, limit=ds.limit, progress=progress)
    if summary.produced + summary.skipped == 0:
        raise BenchkitError(f"dataset {ds.name}: no sample could be built ({summary.failed} failed; see "
                            f"{out / 'failures.jsonl'})")
    atomic_write_json(out / REQUEST, request)
    return summary.produced > 0  # a resumed build that had nothing left to do built nothing


def open_dataset(ds: DatasetSpec, run_dir: Path, bench_dir: Path, workers: int = 1,
                 progress: bool = False, verify: bool = False) -> Dataset:
    """Build (if needed) and open one dataset of a benchmark; raises BenchkitError when unusable.

    ``verify``: re-hash every dataset file (default: size and mtime against the manifest, as a build's resume).

    ``folder`` datasets are a benchkit dataset folder or any plain folder of images (input-only)."""
    from benchkit.datasets.open import open_built, open_path

    if ds.kind == "folder":
        if ds.path == "embedded":  # the built-in photos as an input-only dataset (no targets)
            from benchkit.embedded import resolve_source

            d = Path(resolve_source("embedded"))
        else:
            d = Path(ds.path)
            d = d if d.is_absolute() else (bench_dir / d)
        return open_path(d, ds.name, limit=ds.limit, scale=ds.scale, verify=verify)
    d = Path(run_dir) / "datasets" / ds.name
    built = build_dataset(ds, d, workers=workers, progress=progress)
    return open_built(d, ds.name, limit=ds.limit, scale=ds.scale, built=built, verify=verify)
