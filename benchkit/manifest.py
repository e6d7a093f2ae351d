"""Dataset/run manifests.

An output folder holds:

- ``spec.json``: what produced it (producer kind/name/version, full config, config
  fingerprint, root seed, benchkit version) and, once complete, ``n_samples`` and
  the dataset ``fingerprint`` (sha256 over every sample's key and output hashes).
  No timestamps: two identical builds have identical bytes.
- ``manifest.jsonl``: one JSON object per sample, sorted by key when a run ends::

      {"key": ..., "seed": {"root": 0, "entropy": [...]},
       "sources": [{"path": ..., "sha256": ...}], "params": {...},
       "outputs": {"lq": {"path": "lq/x.png", "sha256": ...}}, ...}

- ``failures.jsonl``: items that could not be produced, with the reason and fix.

While a run is in progress, lines are appended as samples finish (single writer:
the parent process); a truncated last line from a killed run is ignored on resume.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchkit.fsio import atomic_write_json, atomic_write_text, sha256_file

SPEC = "spec.json"
MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"


def dumps_line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def read_jsonl(path) -> list[dict]:
    """Records of a JSONL file; an unparseable LAST line (killed writer) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON ({e.msg})") from e
    return out


def read_manifest(out_dir) -> dict[str, dict]:
    """``{key: record}`` of ``<out_dir>/manifest.jsonl``; a damaged line (other than a truncated last one)
    raises a BenchkitError naming the file, the line and the fix."""
    from benchkit.errors import BenchkitError

    path = Path(out_dir) / MANIFEST
    fix = "delete that line (its sample is redone on the next run) or rebuild into a new folder"
    try:
        recs = read_jsonl(path)
    except ValueError as e:
        raise BenchkitError(f"{e}; {fix}") from e
    for i, r in enumerate(recs):
        if not isinstance(r, dict) or not isinstance(r.get("key"), str):
            raise BenchkitError(f"{path}: record {i + 1} has no 'key' (not a benchkit manifest line); {fix}")
        outs = r.get("outputs")
        for o in (outs.values() if isinstance(outs, dict) else ()):
            rel = o.get("path") if isinstance(o, dict) else None
            if rel is not None and not _relative_inside(rel):
                raise BenchkitError(f"{path}: record {i + 1} (key {r['key']!r}) has output path {rel!r}, which is "
                                    f"absolute or contains '..'; benchkit only reads files inside the dataset "
                                    f"folder (fix: rebuild the dataset; never edit manifest paths)")
    return {r["key"]: r for r in recs}


def _relative_inside(rel) -> bool:
    """True for a non-empty relative '/'-separated path without '..' parts (a manifest output path)."""
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    pp = PurePosixPath(rel)
    return not pp.is_absolute() and not PureWindowsPath(rel).drive and ".." not in pp.parts


def read_spec(out_dir) -> dict:
    p = Path(out_dir) / SPEC
    if not p.exists():
        from benchkit.errors import BenchkitError

        raise BenchkitError(f"{p} not found: {out_dir} is not a benchkit output folder")
    return json.loads(p.read_text(encoding="utf-8"))


def write_sorted(path, records) -> None:
    recs = sorted(records, key=lambda r: r["key"])
    atomic_write_text(path, "".join(dumps_line(r) + "\n" for r in recs))


def outputs_intact(out_dir, record: dict, hashes: dict | None = None) -> bool:
    """True if every output of ``record`` exists with the recorded sha256.

    ``hashes`` (optional, shared across calls) caches each file's sha256 by relative path, so an output
    shared by several records (e.g. a trajectory group's sharp frame) is read and hashed once.
    """
    for o in record.get("outputs", {}).values():
        rel = o["path"]
        if hashes is not None and rel in hashes:
            digest = hashes[rel]
        else:
            p = Path(out_dir) / rel
            digest = sha256_file(p) if p.is_file() else None
            if hashes is not None:
                hashes[rel] = digest
        if digest != o["sha256"]:
            return False
    return True


def dataset_fingerprint(spec_fp: str, records) -> str:
    h = hashlib.sha256(spec_fp.encode())
    for r in sorted(records, key=lambda r: r["key"]):
        h.update(r["key"].encode())
        for name in sorted(r.get("outputs", {})):
            h.update(name.encode())
            h.update(r["outputs"][name]["sha256"].encode())
    return h.hexdigest()[:16]


def write_spec(out_dir, spec: dict) -> None:
    atomic_write_json(Path(out_dir) / SPEC, spec)
