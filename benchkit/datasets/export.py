"""Export a built dataset as a Hugging Face ``datasets`` dataset (``save_to_disk``; read it back
with ``datasets.load_from_disk``):

- ``key``: the manifest key;
- one ``datasets.Image()`` column per PNG output (``gt``, ``lq``, ...), holding the PNG bytes;
- every scalar of the manifest record, flattened with dots (``params.n``, ``params.t``,
  ``group.id``, ...): bool, int64, float64 or string; absent values are null;
- ``record``: the full manifest line as a JSON string (sources, hashes, seeds, ...).

Safety: every output path of the manifest must be relative, without ``..``, and resolve inside
the dataset folder; every file's sha256 must equal the manifest's (else a clear error naming the
file). The destination may not overlap (equal, contain or lie inside) the dataset folder or its
source folder. The export is written under a benchkit temporary name next to the destination and
renamed when complete; it carries a marker file (:data:`MARKER`), and ``overwrite`` replaces only
a folder holding that marker (a previous benchkit export), never anything else.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath

from benchkit.errors import BenchkitError

SKIP_FLATTEN = ("outputs",)
MARKER = ".benchkit-export.json"


def flatten(record: dict, prefix: str = "") -> dict:
    """Scalars of a nested record as {"a.b": value}; lists and the ``outputs`` block are left out."""
    out = {}
    for k, v in record.items():
        name = f"{prefix}{k}"
        if not prefix and k in SKIP_FLATTEN:
            continue
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[name] = v
    return out


def _column_type(values) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return "string"
    if kinds == {bool}:
        return "bool"
    if kinds <= {int}:
        return "int64"
    if kinds <= {int, float}:
        return "float64"
    return "string"


def _cast(v, kind):
    if v is None:
        return None
    if kind == "float64":
        return float(v)
    if kind == "string" and not isinstance(v, str):
        return json.dumps(v)
    return v


def output_file(ddir: Path, rel, manifest: Path) -> Path:
    """The file of manifest output path ``rel``: relative, no '..', inside ``ddir`` (else BenchkitError)."""
    from benchkit.safety import contained

    if not isinstance(rel, str) or not rel:
        raise BenchkitError(f"{manifest}: output path {rel!r} is not a non-empty string; the manifest is "
                            f"damaged: rebuild the dataset")
    pp = PurePosixPath(rel)
    if pp.is_absolute() or Path(rel).is_absolute() or ".." in pp.parts or "\\" in rel:
        raise BenchkitError(f"{manifest}: output path {rel!r} is absolute or contains '..'; benchkit only reads "
                            f"files inside the dataset folder (fix: rebuild the dataset; never edit manifest paths)")
    try:
        return contained(ddir, ddir / rel, f"output path in {manifest}")
    except BenchkitError as e:
        raise BenchkitError(f"{e} (fix: rebuild the dataset; never link outputs outside it)") from None


def check_destination(out: Path, protected: dict, overwrite: bool) -> None:
    """Refuse ``out`` if it overlaps a protected folder, or exists and may not be replaced.

    ``protected`` maps a description ("dataset folder", "source folder", ...) to a path.
    """
    from benchkit.safety import overlaps

    for what, p in protected.items():
        if p is not None and overlaps(out, p):
            raise BenchkitError(f"--out {out} overlaps the {what} {p} (equal, inside or containing it); "
                                f"exporting there would mix or destroy it: choose an --out outside it"
                                + (" (--overwrite never replaces it)" if overwrite else ""))
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BenchkitError(f"--out {out} exists and is not a folder; choose another --out (benchkit replaces "
                            f"only folders it exported itself)")
    if out.exists():
        if not overwrite:
            raise BenchkitError(f"{out} already exists; pass --overwrite (replaces a previous benchkit export) "
                                f"or choose another --out")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise BenchkitError(f"{out} exists and is not a benchkit export (no {MARKER}); --overwrite only "
                                f"replaces folders benchkit exported: choose another --out or remove it yourself")


def export_hf(dataset_dir, out=None, overwrite: bool = False):
    """Export ``dataset_dir`` to ``out`` (default ``<dataset_dir>-hf``); returns (out path, row count)."""
    import datasets

    from benchkit import manifest as mf
    from benchkit.fsio import atomic_write_json, sha256_bytes, sha256_file, tmp_name

    ddir = Path(dataset_dir)
    spec = mf.read_spec(ddir)  # fails clearly if this is not a benchkit output folder
    records = [r for _, r in sorted(mf.read_manifest(ddir).items())]
    if not records:
        raise BenchkitError(f"{ddir / mf.MANIFEST} holds no samples; build the dataset first")
    out = Path(out) if out else ddir.parent / (ddir.name + "-hf")
    src = spec.get("source", {}).get("path") if isinstance(spec.get("source"), dict) else None
    check_destination(out, {"dataset folder": ddir, "source folder": Path(src) if src else None}, overwrite)

    manifest = ddir / mf.MANIFEST
    files: dict = {}  # (key, column) -> (path, sha256)
    image_cols = set()
    for r in records:
        outs = r.get("outputs", {})
        if not isinstance(outs, dict):
            raise BenchkitError(f"{manifest}: sample {r.get('key')!r} has no outputs block; rebuild the dataset")
        for name, o in outs.items():
            rel = o.get("path") if isinstance(o, dict) else None
            path = output_file(ddir, rel, manifest)
            if not rel.endswith(".png"):
                continue
            image_cols.add(name)
            if not path.is_file():
                raise BenchkitError(f"{path} (sample {r['key']!r}) is missing; rebuild the dataset (re-run the "
                                    f"same build command to resume it) before exporting")
            got = sha256_file(path)
            if got != o.get("sha256"):
                raise BenchkitError(f"{path} (sample {r['key']!r}) has sha256 {got[:16]}..., the manifest records "
                                    f"{str(o.get('sha256'))[:16]}...: the file was changed after the build; "
                                    f"restore it or rebuild the dataset (re-run the same build command) before "
                                    f"exporting")
            files[(r["key"], name)] = (path, got)
    image_cols = sorted(image_cols)
    flat = [flatten(r) for r in records]
    scalar_cols = sorted({k for f in flat for k in f} - {"key"} - set(image_cols) - {"record"})
    kinds = {c: _column_type([f.get(c) for f in flat]) for c in scalar_cols}
    features = datasets.Features({
        "key": datasets.Value("string"),
        **{c: datasets.Image() for c in image_cols},
        **{c: datasets.Value(kinds[c]) for c in scalar_cols},
        "record": datasets.Value("string"),
    })

    def rows():
        for r, f in zip(records, flat):
            row = {"key": r["key"], "record": mf.dumps_line(r)}
            for c in image_cols:
                if (r["key"], c) not in files:
                    row[c] = None
                    continue
                path, want = files[(r["key"], c)]
                data = path.read_bytes()
                if sha256_bytes(data) != want:
                    raise BenchkitError(f"{path} changed while exporting; re-run the export")
                row[c] = {"bytes": data, "path": path.name}
            for c in scalar_cols:
                row[c] = _cast(f.get(c), kinds[c])
            yield row

    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / tmp_name(out.name)
    old = out.parent / tmp_name(out.name + ".old")
    try:
        try:
            ds = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(work / "cache"),
                                                 fingerprint=spec.get("dataset_fingerprint") or "x")
        except Exception as e:  # datasets wraps errors raised inside the generator
            cause = e
            while cause is not None and not isinstance(cause, BenchkitError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:
                raise cause from None
            raise
        ds.save_to_disk(str(work / "data"))
        del ds
        atomic_write_json(work / "data" / MARKER, {"exported_by": "benchkit export", "dataset": str(ddir.resolve()),
                                                   "samples": len(records)})
        if out.exists():  # checked above: empty, or a previous benchkit export
            os.replace(out, old)
        os.replace(work / "data", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out, len(records)
