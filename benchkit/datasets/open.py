"""Open a dataset for evaluation: a benchkit-built folder (``spec.json`` + ``manifest.jsonl``) or any
plain folder of images (an input-only dataset).

The harness reads roles (:mod:`benchkit.datasets.roles`) and never hard-codes output names: the
``input`` output is what methods restore, the ``target`` output (if any) is the ground truth, ``aux``
outputs (PSFs, masks, boxes) are handed to methods and metrics by name.

Scale (output size / input size): from the target when there is one (target size / input size of the
first readable sample), else from the caller (benchmark ``scale`` / ``--scale``), else 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchkit.datasets.roles import AUX, INPUT, TARGET, output_with_role, roles_of
from benchkit.errors import BadInputError, BenchkitError

PLAIN_INPUT = "input"  # output name of the images of a plain folder


@dataclass
class Dataset:
    """A ready dataset: records sorted by key, roles, fingerprint and scale."""

    name: str
    dir: Path
    spec: dict
    records: list
    fingerprint: str
    scale: int
    roles: dict
    kind: str = "built"  # built | folder (plain images)
    built: bool = False
    bad: list = field(default_factory=list)  # [(key, path, problem)] samples whose files fail verification

    @property
    def input_name(self) -> str:
        return output_with_role(self.roles, INPUT)

    @property
    def target_name(self) -> str | None:
        return output_with_role(self.roles, TARGET)

    @property
    def aux_names(self) -> list:
        return [n for n, r in self.roles.items() if r == AUX]

    @property
    def has_target(self) -> bool:
        return self.target_name is not None

    def _path(self, rec, name) -> Path | None:
        o = rec.get("outputs", {}).get(name) if name else None
        if not o:
            return None
        from benchkit.fsio import inside

        return inside(self.dir, o["path"], what=f"{self.dir / 'manifest.jsonl'} output path of {rec.get('key')}")

    def input_path(self, rec) -> Path:
        return self._path(rec, self.input_name)

    def target_path(self, rec) -> Path | None:
        return self._path(rec, self.target_name)

    def aux_paths(self, rec) -> dict:
        return {n: p for n in self.aux_names if (p := self._path(rec, n)) is not None}

    def meta(self, rec) -> dict:
        return dict(rec.get("meta") or {})

    # 0.1.0 names
    lq_path = input_path
    gt_path = target_path

    def psf_path(self, rec) -> Path | None:
        return self._path(rec, "psf") if "psf" in self.roles else None


def is_built_dataset(path) -> bool:
    p = Path(path)
    return (p / "spec.json").is_file() and (p / "manifest.jsonl").is_file()


def open_path(path, name: str | None = None, limit: int | None = None, scale: int | None = None,
              verify: bool = False) -> Dataset:
    """Open ``path``: a benchkit dataset folder, or a plain image folder (input-only)."""
    p = Path(path)
    if not p.is_dir():
        raise BadInputError(p, "no such folder", "pass a benchkit dataset folder or a folder of images")
    name = name or p.resolve().name
    if is_built_dataset(p):
        return open_built(p, name, limit=limit, scale=scale, verify=verify)
    return open_image_folder(p, name, limit=limit, scale=scale)


def open_built(d: Path, name: str, limit: int | None = None, scale: int | None = None, verify: bool = False,
               built: bool = False) -> Dataset:
    """A benchkit-built dataset. Every output file must exist; one whose size matches the manifest and whose
    mtime is older than the manifest's is trusted without reading (the rule of a build's resume), any other is
    checked against its recorded sha256, and every file with ``verify`` (``evaluate --verify``)."""
    from benchkit import manifest as mf
    from benchkit.runner import FileCheck

    d = Path(d)
    spec = mf.read_spec(d)
    records = sorted(mf.read_manifest(d).values(), key=lambda r: r["key"])
    truncated = limit is not None and len(records) > limit
    if truncated:  # a folder (or an earlier, larger build) may hold more than the first N samples
        records = records[:limit]
    if not records:
        raise BenchkitError(f"dataset {name} ({d}) has no samples")
    names = sorted({n for r in records for n in r.get("outputs", {})})
    roles = roles_of(spec, names)
    inp = output_with_role(roles, INPUT)
    if inp is None:
        raise BenchkitError(f"dataset {name} ({d}): no output has the role 'input' (roles {roles}); fix the "
                            f"spec.json 'roles' or rebuild the dataset")
    tgt = output_with_role(roles, TARGET)
    need = {inp} | ({tgt} if tgt else set())
    lacking = [r["key"] for r in records if not need <= set(r.get("outputs", {}))]
    fp = spec.get("dataset_fingerprint")
    if truncated or not fp:
        fp = mf.dataset_fingerprint(spec.get("fingerprint", ""), records)
    good, bad = [], []
    n_spec = spec.get("n_samples")
    if isinstance(n_spec, int) and limit is None and len(records) < n_spec:  # e.g. a cut last line is dropped
        lost = n_spec - len(records)
        why = (f"lists {len(records)} of the {n_spec} samples that {mf.SPEC} records: {lost} lost (a damaged or cut "
               f"line?)")
        bad += [(f"(lost from the manifest, {i + 1} of {lost})", str(d / mf.MANIFEST), why) for i in range(lost)]
    check, since = FileCheck(verify), (d / mf.MANIFEST).stat().st_mtime_ns
    for rec in records:
        if rec["key"] in lacking:
            bad.append((rec["key"], str(d / mf.MANIFEST), f"sample lacks its {sorted(need)} output(s)"))
            continue
        problem = _verify(d, rec, check, since)
        if problem:
            bad.append((rec["key"], problem[0], problem[1]))
        else:
            good.append(rec)
    if not good:
        raise BenchkitError(f"dataset {name} ({d}): no sample passes verification: {bad[:3]}")
    ds = Dataset(name, d, spec, good, fp, 1, roles, "built", built, bad)
    ds.scale = _scale(ds, scale)
    return ds


def _verify(d: Path, rec: dict, check, since: int):
    """None if every output file of ``rec`` exists and is unchanged (``check``: runner.FileCheck), else
    (path, problem)."""
    from benchkit.fsio import inside

    for o in rec["outputs"].values():
        try:
            p = inside(d, o["path"], what="manifest output path")
        except BenchkitError as e:
            return str(d / "manifest.jsonl"), str(e)
        if not p.is_file():
            return str(p), "file is missing"
        if "sha256" in o and not check.same(str(p), o["sha256"], o.get("size"), since):
            return str(p), "file does not match the sha256 recorded in manifest.jsonl (corrupt or modified)"
    return None


def open_image_folder(d: Path, name: str, limit: int | None = None, scale: int | None = None) -> Dataset:
    """Every image below ``d`` is one input-only sample, key = relative path without suffix.

    The fingerprint covers each file's relative path, size and modification time (cheap: no file is read
    here); two files with the same key (``a.png`` and ``a.jpg``) are both left out, reported."""
    from benchkit.config import fingerprint
    from benchkit.images import list_images

    d = Path(d)
    files = list_images(d)
    if not files:
        raise BadInputError(d, "no image files (png, jpg, jpeg, bmp, tif, tiff, webp) in this folder",
                            "pass a folder of images or a benchkit dataset folder")
    by_key: dict = {}
    for f in files:
        by_key.setdefault(f.relative_to(d).with_suffix("").as_posix(), []).append(f)
    records, bad = [], []
    for key in sorted(by_key):
        fs = by_key[key]
        if len(fs) > 1:
            bad.append((key, str(fs[0]), f"several files share the key {key!r}: "
                        f"{', '.join(x.name for x in fs)} (fix: rename all but one)"))
            continue
        st = fs[0].stat()
        records.append({"key": key, "outputs": {PLAIN_INPUT: {
            "path": fs[0].relative_to(d).as_posix(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}}})
    if limit is not None:
        records = records[:limit]
    if not records:
        raise BenchkitError(f"dataset {name} ({d}): no usable image: {bad[:3]}")
    listing = [(r["key"], r["outputs"][PLAIN_INPUT]["path"], r["outputs"][PLAIN_INPUT]["size"],
                r["outputs"][PLAIN_INPUT]["mtime_ns"]) for r in records]
    fp = "folder-" + fingerprint(listing)[:24]
    spec = {"producer": {"kind": "folder", "name": "images"}, "roles": {PLAIN_INPUT: INPUT},
            "fingerprint": fp, "complete": True, "n_samples": len(records), "source": {"path": str(d)}}
    ds = Dataset(name, d, spec, records, fp, int(scale or 1), {PLAIN_INPUT: INPUT}, "folder", False, bad)
    return ds


def _image_size(path: Path) -> tuple[int, int]:
    from benchkit.images import read_image

    img = read_image(path)
    return int(img.shape[0]), int(img.shape[1])


def _scale(ds: Dataset, scale: int | None) -> int:
    if scale is not None:
        return int(scale)
    if not ds.has_target:
        return 1
    problems = []
    for rec in ds.records:  # the first sample whose target and input both decode gives the scale
        try:
            gh, gw = _image_size(ds.target_path(rec))
            lh, lw = _image_size(ds.input_path(rec))
        except BadInputError as e:
            problems.append(str(e))
            continue
        if gh % lh or gw % lw or gh // lh != gw // lw:
            raise BenchkitError(f"dataset {ds.name}: target {gw}x{gh} is not an integer multiple of input {lw}x{lh} "
                                f"(sample {rec['key']}); set 'scale' in the benchmark")
        return gh // lh
    raise BenchkitError(f"dataset {ds.name}: no sample has readable target and input images: {problems[:3]}")

