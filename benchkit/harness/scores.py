"""Score caches and metric slots.

- :class:`ScoreCache`: append-only JSONL of per-image values keyed by (method tag, dataset fingerprint,
  metric id, image key, output sha256); ``n/a`` is stored as such.
- :class:`StateStore`: per-item states of dataset-level metrics (``.npy`` files, never pickled), keyed
  the same way; reference-side states use the method ``__reference__``.
- :class:`MetricSlot`: a benchmark metric, created cheaply, availability checked on first use; its ``id``
  covers name, version, settings, the installed pyiqa version and weight-file contents not pinned by name.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchkit.harness.results import NA_TEXT
from benchkit.metrics.base import NA

REFERENCE = "__reference__"


class ScoreCache:
    """Append-only JSONL of per-image scores keyed by (method tag, dataset fp, metric id, key, output sha)."""

    def __init__(self, path: Path):
        from benchkit.manifest import ends_with_newline, read_jsonl_lenient

        self.path = Path(path)
        self.values = {}
        # a corrupt cache is only a cache: keep the readable lines, rewrite the file before appending
        lines, bad = read_jsonl_lenient(self.path)
        self._rewrite = bool(bad)
        for r in lines:
            try:
                v = r["value"]
                self.values[(r["method"], r["dataset"], r["metric"], r["key"], r["output"])] = \
                    NA if v == NA_TEXT else v
            except (KeyError, TypeError):
                self._rewrite = True
        self._rewrite = self._rewrite or not ends_with_newline(self.path)  # else the next append joins it
        self._fh = None

    def get(self, *k):
        return self.values.get(k)

    def put(self, method, dataset, metric, key, output, value) -> None:
        from benchkit.manifest import dumps_line

        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._rewrite:
                from benchkit.fsio import atomic_write_text

                atomic_write_text(self.path, "".join(
                    dumps_line({"method": k[0], "dataset": k[1], "metric": k[2], "key": k[3], "output": k[4],
                                "value": NA_TEXT if v is NA else v}) + "\n" for k, v in self.values.items()))
                self._rewrite = False
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(dumps_line({"method": method, "dataset": dataset, "metric": metric, "key": key,
                                   "output": output, "value": NA_TEXT if value is NA else value}) + "\n")
        self.values[(method, dataset, metric, key, output)] = value

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class StateStore:
    """Per-item states of dataset-level metrics as ``<folder>/<sha256 of the key>.npy`` (atomic writes)."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)

    def _path(self, *k) -> Path:
        import hashlib

        h = hashlib.sha256(json.dumps([str(x) for x in k]).encode()).hexdigest()
        return self.dir / h[:2] / f"{h}.npy"

    def get(self, *k):
        import numpy as np

        p = self._path(*k)
        if not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError):  # a damaged state is only a cache: recompute it
            return None

    def put(self, value, *k) -> None:
        import io

        import numpy as np

        from benchkit.fsio import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, np.asarray(value), allow_pickle=False)
        atomic_write_bytes(self._path(*k), buf.getvalue(), fsync=False)


class MetricSlot:
    """A benchmark metric: created up front (cheap), availability checked on first use."""

    def __init__(self, name, device, weights_root, settings):
        from benchkit.config import fingerprint
        from benchkit.metrics import get_metric

        self.name = name
        self.metric = get_metric(name, device=device, weights_root=weights_root, **(settings or {}))
        self.info = self.metric.info
        self.id = f"{name}@{self.info.version}#{fingerprint(dict(self.info.settings))[:10]}"
        wid = _weights_identity(self.metric)
        if wid:  # weight files whose name does not pin their content (NIQE .mat, unhashed files, HF folders)
            self.id += f"+w{fingerprint(wid)[:10]}"
        if self.info.backend == "pyiqa":  # the installed pyiqa computes the number, not the one checked against
            self.id += f"+pyiqa{_installed_version('pyiqa')}"
        self._avail = None

    def available(self) -> tuple[bool, str]:
        if self._avail is None:
            try:
                self._avail = tuple(self.metric.availability())
            except Exception as e:  # availability must not kill the run
                self._avail = (False, f"availability check raised {type(e).__name__}: {e}")
        return self._avail

    def mark_unavailable(self, reason: str) -> None:
        self._avail = (False, reason)


def _installed_version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "none"


def _weights_identity(metric) -> dict:
    """{weight file: content identity} for the present weight files whose name does not pin their content
    (no sha256 in the name or in KNOWN_SHA256): sha256 of the file, or the snapshot revisions of a Hugging
    Face cache folder. Empty for weight-free metrics and for hash-named files (verified on load)."""
    from benchkit.metrics.weights import expected_sha256, file_sha256

    root = Path(getattr(metric, "root", "."))
    out = {}
    for rel in getattr(metric.info, "weights", ()) or ():
        p = root / rel
        if rel.startswith("huggingface/hub/models--"):
            snaps = p / "snapshots"
            if snaps.is_dir():
                out[rel] = sorted(x.name for x in snaps.iterdir())
        elif (expected_sha256(rel) is None or not getattr(metric, "verify_weights", True)) and p.is_file():
            out[rel] = file_sha256(p)
    return out


def metric_info_dict(info) -> dict:
    if hasattr(info, "as_dict"):
        return info.as_dict()
    d = asdict(info) if hasattr(info, "__dataclass_fields__") else dict(vars(info))
    d["settings"] = dict(d.get("settings") or {})
    return d
