"""The dataset builder interface shared by every builder.

A builder is a :class:`~benchkit.runner.Producer` with a name, version, a strict
``Config`` dataclass (defaults written into ``pipelines``-style YAML or passed on
the command line as ``--set key=value``), a source description with manual
download instructions, and a dataset card. :func:`build` runs it with the shared
resumable/parallel/deterministic runner and writes ``README.md`` (the card).

Output layout (every builder): ``<out>/spec.json``, ``<out>/manifest.jsonl``,
``<out>/failures.jsonl`` (if any), ``<out>/README.md`` and per-sample outputs
named ``gt`` (target) and ``lq`` (degraded input), plus builder-specific extras
(``psf`` for blur kernels, ...), at ``<out>/<output name>/<key>.<ext>``; spec.json lists each
output's role (``roles``) and the typed per-sample metadata fields (``metadata``).

A builder may emit many samples per job (e.g. one job per video segment whose
frames are decoded once): ``produce`` then yields :class:`~benchkit.runner.Sample`
/ :class:`~benchkit.runner.SampleFailure` items and ``job_keys(job)`` lists the
keys; source-listing problems go to ``source_problems()``. Builders whose job
list depends on the root seed read ``self.root_seed`` (set before ``jobs()``).
An optional classmethod ``resolve_source(source)`` maps ``'embedded'`` to a
generated demo source; the constructor applies it too.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from benchkit.errors import MissingSourceError
from benchkit.runner import Producer, RunSummary, run_producer


class DatasetBuilder(Producer):
    kind = "dataset"
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    Config: ClassVar[type]
    description: ClassVar[str] = ""
    source_help: ClassVar[str] = ""  # expected layout + where to download it, printed when the source is bad
    source_license: ClassVar[str] = "see the source's own licence"
    citation: ClassVar[str] = ""
    #: output name -> role (``input``, ``target``, ``aux``; :mod:`benchkit.datasets.roles`), written to spec.json
    roles: ClassVar[dict[str, str]] = {"lq": "input", "gt": "target"}
    #: typed per-sample manifest fields (``meta`` key): field -> type name, written to spec.json
    metadata: ClassVar[dict[str, str]] = {}

    def __init__(self, config=None, source=None):
        self.config = config if config is not None else self.Config()
        if source is not None and str(source) == "embedded" and hasattr(type(self), "resolve_source"):
            source = type(self).resolve_source(source)
        self.source = Path(source).resolve() if source is not None else None

    # -- source ---------------------------------------------------------------------------------
    def check_source(self) -> None:
        """Raise MissingSourceError (with ``source_help``) if the source folder is absent/unusable."""
        if self.source is None or not self.source.exists():
            raise MissingSourceError(f"{self.name}: source folder {self.source} not found.\n{self.source_help}")

    @abstractmethod
    def jobs(self):
        """Stable, key-sorted jobs from the source (problems become failures, not exceptions)."""

    # -- spec / card ----------------------------------------------------------------------------
    def spec(self) -> dict:
        from benchkit.config import fingerprint, to_plain

        cfg = to_plain(self.config)
        return {
            "fingerprint": fingerprint({"b": self.name, "v": self.version, "c": cfg}),
            "builder": {"name": self.name, "version": self.version, "config": cfg},
            "source": {"path": str(self.source) if self.source else None},
            "roles": dict(self.roles),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_spec(cls, spec: dict, source_override=None):
        from benchkit.config import from_dict

        b = spec["builder"]
        cfg = from_dict(cls.Config, b["config"], where="spec.json builder.config")
        return cls(cfg, source_override or spec["source"]["path"])

    def card(self, summary: RunSummary, spec: dict) -> str:
        """Markdown dataset card: provenance, parameters, counts, licence, citation."""
        import json

        lst = spec["source"].get("listing")
        listing = f" ({lst['files']} files, listing `{lst['sha256']}`)" if isinstance(lst, dict) else ""
        lines = [
            f"# {self.name} (benchkit builder v{self.version})", "",
            self.description, "",
            "## Provenance", "",
            f"- source: `{spec['source']['path']}`{listing}",
            f"- root seed: {spec['seed']}; config fingerprint `{spec['fingerprint']}`; "
            f"dataset fingerprint `{spec.get('dataset_fingerprint')}`",
            f"- built by benchkit {spec['benchkit_version']}; every sample's parameters are in `manifest.jsonl` "
            "and `benchkit replay <this folder> <key>` regenerates any sample byte-identically.", "",
            "## Counts", "",
            f"- samples: {spec.get('n_samples')} (failed: {spec.get('n_failed')})",
        ]
        if spec.get("n_source_problems"):
            lines.append(f"- source problems (not samples; in `failures.jsonl`): {spec['n_source_problems']}")
        lines += [f"- {k}: {v}" for k, v in self.card_counts().items()]
        if summary.failures:
            lines += ["", "## Problems", "", (f"{len(summary.failures)} item(s) could not be used (all in "
                                              "`failures.jsonl`); the rest of the dataset was built:"), ""]
            lines += [f"- `{f['key']}`: {f.get('path', '')}: {f['error']}" for f in summary.failures[:20]]
            if len(summary.failures) > 20:
                lines.append(f"- ... {len(summary.failures) - 20} more")
        lines += ["", "## Parameters", "", "```json", json.dumps(spec["builder"]["config"], indent=2), "```", "",
                  "## Licence", "", self.source_license, ""]
        if self.citation:
            lines += ["## How to cite", "", self.citation, ""]
        return "\n".join(lines)

    def card_counts(self) -> dict:
        """Extra builder-specific counts for the card (override)."""
        return {}


def build(builder: DatasetBuilder, out_dir, seed: int = 0, workers: int = 1, limit: int | None = None,
          backend: str = "loky", scheduler: str | None = None, progress: bool = True,
          verify: bool = False) -> RunSummary:
    """Check the source, run the builder (resumable, parallel, deterministic), write the dataset card.

    ``verify``: a resume re-reads every recorded output and source file (default: size/mtime checks)."""
    from benchkit import manifest as mf
    from benchkit.fsio import atomic_write_text

    builder.check_source()
    summary = run_producer(builder, out_dir, seed=seed, workers=workers, backend=backend, scheduler=scheduler,
                           limit=limit, progress=progress, verify=verify)
    spec = mf.read_spec(out_dir)
    if hasattr(builder, "finish"):  # builder-specific post-processing (e.g. inscene: rejections vs errors)
        builder.finish(out_dir, summary, spec)
    atomic_write_text(Path(out_dir) / "README.md", builder.card(summary, spec))
    return summary
