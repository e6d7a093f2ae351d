"""Benchmark configs and their datasets.

A benchmark is ONE YAML mapping in ``benchmarks/<name>.yaml`` (or any path), loaded
strictly (unknown keys are errors)::

    name: demo
    description: "..."
    metrics: [psnr, ssim, niqe, msswd]    # benchkit.metrics names, in column order
    metric_settings: {psnr: {crop_border: 0}}
    primary_metric: psnr                  # leaderboard row order
    methods: [all]                        # or a list of benchkit.registry.METHODS names
    plot: {x: psnr, y: [niqe, msswd]}     # perception-distortion plot: first available y
    datasets:
      - {name: realesrgan_x1, kind: pipeline, pipeline: realesrgan_x1, source: embedded, limit: 8}
      - {name: blur-synth, kind: builder, builder: blur-synth, source: embedded, set: ["a=1"]}
      - {name: mine, kind: folder, path: /data/my-benchkit-dataset}

``pipeline`` and ``builder`` datasets are built into ``<run>/datasets/<name>`` when missing
(resumable); ``folder`` datasets are existing benchkit dataset folders (``spec.json`` +
``manifest.jsonl`` with ``gt``/``lq`` outputs), relative paths from the YAML's folder.
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
    batch_size: int = 1

    def __post_init__(self):
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate dataset names {dup}")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {list(self.metrics)}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


def benchmark_dirs() -> list[Path]:
    from benchkit.config import REPO_ROOT

    dirs = [Path(p) for p in os.environ.get("BENCHKIT_BENCHMARKS", "").split(os.pathsep) if p]
    return dirs + [REPO_ROOT / "benchmarks"]


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


@dataclass
class Dataset:
    """A ready dataset: records sorted by key, its fingerprint and scale (gt size / lq size)."""

    name: str
    dir: Path
    spec: dict
    records: list
    fingerprint: str
    scale: int
    built: bool = False
    bad: list = field(default_factory=list)  # [(key, path, problem)] samples whose files fail verification

    def lq_path(self, rec) -> Path:
        return self.dir / rec["outputs"]["lq"]["path"]

    def gt_path(self, rec) -> Path:
        return self.dir / rec["outputs"]["gt"]["path"]

    def psf_path(self, rec) -> Path | None:
        o = rec["outputs"].get("psf")
        return self.dir / o["path"] if o else None


REQUEST = "harness_request.json"


def _built_ok(out: Path, request: dict) -> bool:
    import json

    spec_p, req_p = out / "spec.json", out / REQUEST
    if not (spec_p.is_file() and req_p.is_file()):
        return False
    try:
        spec = json.loads(spec_p.read_text(encoding="utf-8"))
        return bool(spec.get("complete")) and json.loads(req_p.read_text(encoding="utf-8")) == request
    except (OSError, ValueError):
        return False


def build_dataset(ds: DatasetSpec, out: Path, workers: int = 1, progress: bool = False) -> bool:
    """Build a pipeline/builder dataset into ``out`` unless an identical complete build is there.

    Returns True when something was built (False: reused).
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
    return True


def _verify(d: Path, rec: dict):
    """None if every output file of ``rec`` exists with its recorded sha256, else (path, problem)."""
    from benchkit.fsio import sha256_file

    for o in rec["outputs"].values():
        p = d / o["path"]
        if not p.is_file():
            return str(p), "file is missing"
        if sha256_file(p) != o["sha256"]:
            return str(p), "file does not match the sha256 recorded in manifest.jsonl (corrupt or modified)"
    return None


def _image_size(path: Path) -> tuple[int, int]:
    from benchkit.images import read_image

    img = read_image(path)
    return int(img.shape[0]), int(img.shape[1])


def open_dataset(ds: DatasetSpec, run_dir: Path, bench_dir: Path, workers: int = 1,
                 progress: bool = False) -> Dataset:
    """Build (if needed) and load one dataset of a benchmark; raises BenchkitError when unusable."""
    from benchkit import manifest as mf

    built = False
    if ds.kind == "folder":
        d = Path(ds.path)
        d = d if d.is_absolute() else (bench_dir / d)
    else:
        d = Path(run_dir) / "datasets" / ds.name
        built = build_dataset(ds, d, workers=workers, progress=progress)
    spec = mf.read_spec(d)
    records = sorted(mf.read_manifest(d).values(), key=lambda r: r["key"])
    truncated = ds.limit is not None and len(records) > ds.limit
    if truncated:  # a folder (or an earlier, larger build) may hold more than the benchmark's first N samples
        records = records[: ds.limit]
    lacking = [r["key"] for r in records if not {"gt", "lq"} <= set(r.get("outputs", {}))]
    if lacking:
        raise BenchkitError(f"dataset {ds.name} ({d}): samples {lacking[:5]} lack a 'gt' or 'lq' output; the harness "
                            f"needs both (rebuild the dataset with a builder that writes targets)")
    if not records:
        raise BenchkitError(f"dataset {ds.name} ({d}) has no samples")
    fp = spec.get("dataset_fingerprint")
    if truncated or not fp:
        fp = mf.dataset_fingerprint(spec.get("fingerprint", ""), records)
    good, bad = [], []
    for rec in records:  # every file must still have the sha256 the manifest recorded
        problem = _verify(d, rec)
        if problem:
            bad.append((rec["key"], problem[0], problem[1]))
        else:
            good.append(rec)
    if not good:
        raise BenchkitError(f"dataset {ds.name} ({d}): no sample passes verification: {bad[:3]}")
    dset = Dataset(ds.name, d, spec, good, fp, 1, built, bad)
    if ds.scale is not None:
        dset.scale = int(ds.scale)
    else:
        from benchkit.errors import BadInputError

        problems = []
        for rec in dset.records:  # the first sample whose gt and lq both decode gives the scale
            try:
                gh, gw = _image_size(dset.gt_path(rec))
                lh, lw = _image_size(dset.lq_path(rec))
            except BadInputError as e:
                problems.append(str(e))
                continue
            if gh % lh or gw % lw or gh // lh != gw // lw:
                raise BenchkitError(f"dataset {ds.name}: gt {gw}x{gh} is not an integer multiple of lq {lw}x{lh} "
                                    f"(sample {rec['key']}); set 'scale' in the benchmark")
            dset.scale = gh // lh
            break
        else:
            raise BenchkitError(f"dataset {ds.name}: no sample has readable gt and lq images: {problems[:3]}")
    return dset
