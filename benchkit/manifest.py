"""Dataset/run manifests.

An output folder holds:

- ``spec.json``: what produced it (producer kind/name/version, full config, config
  fingerprint, root seed, benchkit version), its ``format`` (:data:`FORMAT`) and, once
  complete, ``n_samples`` and the dataset ``fingerprint`` (sha256 over every sample's key
  and output hashes). No timestamps: two identical builds have identical bytes.
  ``source`` holds the source folder's ``path`` and ``listing`` (file count, bytes and a
  hash of its relative paths with sizes): the source is identified by what it holds,
  so a moved source resumes and another one is refused.
- ``manifest.jsonl``: one JSON object per sample, sorted by key when a run ends::

      {"key": ..., "seed": {"root": 0, "entropy": [...]}, "fingerprint": <config fingerprint>,
       "sources": [{"path": ..., "sha256": ..., "size": ...}], "params": {...},
       "outputs": {"lq": {"path": "lq/x.png", "sha256": ..., "size": ...}}, ...}

  (``fingerprint`` and the sizes are absent from lines written by benchkit 0.1.0.)
- ``failures.jsonl``: items that could not be produced, with the reason and fix.

While a run is in progress, lines are appended as samples finish (single writer:
the parent process; worker processes append to per-worker journals that the
parent merges); a truncated last line from a killed run is ignored on resume.

Resume cost: a recorded file (output or source) is trusted when its size matches
the record and its mtime is older than the manifest's own mtime (the manifest is
written after the files it records); any other file is re-hashed, and every file
with ``--verify``. :func:`outputs_intact` reads every output: it is for explicit
verification, not for resume.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchkit.fsio import atomic_write_json, atomic_write_text, sha256_file

SPEC = "spec.json"
MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"

# Output-folder format written into spec.json as "format". 1 (no "format" key): benchkit 0.1.0, params
# "__type__" = "module:Class". 2: stable params type names (benchkit.registry.PARAMS). Readers accept
# 1..FORMAT and refuse a higher one (written by a newer benchkit).
FORMAT = 2


def spec_format(spec: dict, where="spec.json") -> int:
    """The ``format`` of a spec (absent = 1); a newer or malformed one raises a BenchkitError naming the fix."""
    from benchkit.errors import BenchkitError

    fmt = spec.get("format", 1) if isinstance(spec, dict) else None
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise BenchkitError(f"{where}: bad \"format\" {fmt!r} (expected an integer 1..{FORMAT}); "
                            f"not a benchkit output folder, or a damaged spec.json")
    if fmt > FORMAT:
        raise BenchkitError(f"{where}: format {fmt} was written by a newer benchkit (this benchkit "
                            f"{_version()} reads formats 1..{FORMAT}); upgrade benchkit to read it")
    return fmt


def _version() -> str:
    from benchkit import __version__

    return __version__


def dumps_line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def read_jsonl(path) -> list[dict]:
    """Records of a JSONL file; an unparseable LAST line (killed writer) is dropped."""
    from benchkit.errors import CorruptFileError

    path = Path(path)
    if not path.exists():
        return []
    fix = "delete the damaged line (or the file) so it is rebuilt on the next run"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise CorruptFileError(path, f"not UTF-8 text (byte {e.start}): damaged or not a benchkit file", fix) from e
    out = []
    with _gc_paused():
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                if i == len(lines) - 1:
                    break
                raise CorruptFileError(path, f"line {i + 1} is not valid JSON ({e.msg})", fix) from e
    return out


class _gc_paused:
    """Pause Python's cyclic garbage collector while a large file's records are parsed: every record is new and
    kept, so the collections it would run find nothing, and their cost grows with everything already alive
    (a 10,000-record manifest read ~20% slower per record than a 1,000-record one). Nested or concurrent uses
    are harmless: only the outermost one that found the collector enabled re-enables it."""

    def __enter__(self):
        import gc

        self._was = gc.isenabled()
        if self._was:
            gc.disable()
        return self

    def __exit__(self, *exc):
        import gc

        if self._was:
            gc.enable()
        return False


def read_jsonl_lenient(path) -> tuple[list, int]:
    """(records, number of unreadable lines) of a JSONL file that is only a cache or an index: every line that
    does not parse is skipped (its entry is simply redone), wherever it is; not for manifests, whose lines are
    samples."""
    path = Path(path)
    if not path.exists():
        return [], 0
    out, bad = [], 0
    with _gc_paused():
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                bad += 1
    return out, bad


def ends_with_newline(path) -> bool:
    """False when a non-empty file's last byte is not a newline (a killed writer: the next append would join it)."""
    path = Path(path)
    if not path.is_file() or not path.stat().st_size:
        return True
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def read_manifest(out_dir) -> dict[str, dict]:
    """``{key: record}`` of ``<out_dir>/manifest.jsonl``; a damaged line (other than a truncated last one)
    raises a BenchkitError naming the file, the line and the fix."""
    from benchkit.errors import BenchkitError

    from benchkit.errors import CorruptFileError

    path = Path(out_dir) / MANIFEST
    fix = "delete that line (its sample is redone on the next run) or rebuild into a new folder"
    try:
        recs = read_jsonl(path)
    except CorruptFileError as e:  # one fix, the manifest's (not also the generic JSONL one)
        raise CorruptFileError(e.path, e.problem, fix) from e
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
    """True for a non-empty relative '/'-separated path without '..' parts (a manifest output path): not
    absolute, no Windows drive (``X:``), no backslash or NUL. String tests (called once per output on every
    resume); tests/test_perf_ops.py holds them equal to the ``PurePosixPath`` / ``PureWindowsPath`` rule."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    drive = rel[1:2] == ":" and rel[0] in _DRIVE_LETTERS
    return not rel.startswith("/") and not drive and ".." not in rel.split("/")


_DRIVE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")  # pathlib's Windows drive rule


def read_spec(out_dir) -> dict:
    """The ``spec.json`` of an output folder; missing or damaged: a one-line BenchkitError naming it."""
    from benchkit.errors import BenchkitError

    p = Path(out_dir) / SPEC
    if not p.exists():
        raise BenchkitError(f"{p} not found: {out_dir} is not a benchkit output folder")
    spec = read_json_file(p, "restore it from a backup, or rebuild the dataset into a new (or emptied) folder",
                          what="spec")
    spec_format(spec, where=str(p))
    return spec


def read_json_file(path, fix: str, what: str = "JSON file") -> dict:
    """A JSON object from ``path``; unreadable, not UTF-8, invalid JSON or not an object: CorruptFileError
    naming the file and ``fix`` (never a traceback)."""
    from benchkit.errors import CorruptFileError

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptFileError(path, f"damaged {what}: not UTF-8 text (byte {e.start})", fix) from e
    except IsADirectoryError as e:
        raise CorruptFileError(path, f"is a folder, not a {what}", fix) from e
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorruptFileError(path, f"damaged {what}: invalid JSON at line {e.lineno} column {e.colno} "
                                     f"({e.msg})", fix) from e
    if not isinstance(obj, dict):
        raise CorruptFileError(path, f"damaged {what}: expected a JSON object, got {type(obj).__name__}", fix)
    return obj


def write_sorted(path, records) -> None:
    recs = sorted(records, key=lambda r: r["key"])
    atomic_write_text(path, "".join(dumps_line(r) + "\n" for r in recs))


def outputs_intact(out_dir, record: dict, hashes: dict | None = None) -> bool:
    """True if every output of ``record`` exists with the recorded sha256 (reads every file).

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
    """Write ``spec.json`` (atomically), stamped ``"format": FORMAT`` unless the spec names its format."""
    atomic_write_json(Path(out_dir) / SPEC, {"format": FORMAT, **spec})
