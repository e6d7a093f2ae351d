"""Score a folder of results against a folder of references (used by ``benchkit score``).

Results are matched to references by relative path without suffix (for flat folders:
the file stem), so ``out/0001.png`` pairs with ``ref/0001.jpg``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FolderScores:
    """Outcome of :func:`score_folder`.

    ``per_image``: rows {'image', 'dist', 'ref', <metric>: float | None}; ``means``: rows
    {'metric', 'mean', 'n', 'higher_is_better', 'status', 'note'} where ``mean`` is None
    unless status is 'ok'; ``problems``: human-readable lines (missing/mismatched/corrupt
    files, unavailable metrics, per-image metric errors).
    """

    metrics: list
    per_image: list = field(default_factory=list)
    means: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    n_results: int = 0  # result images found in the result folder

    @property
    def n_scored(self) -> int:
        """Result images that got at least one value (a per-image value, or a dataset-level metric's)."""
        names = [r["metric"] for r in self.means]
        per = sum(1 for r in self.per_image if any(r.get(n) is not None for n in names))
        dataset_n = max((r["n"] for r in self.means if r["status"] == "ok" and r["mean"] is not None
                         and not any(r["metric"] in row for row in self.per_image)), default=0)
        return max(per, dataset_n)


def _key(folder: Path, p: Path) -> str:
    return p.relative_to(folder).with_suffix("").as_posix()


def _index(folder: Path, problems: list, label: str) -> dict:
    from benchkit.images import list_images

    out: dict[str, Path] = {}
    for p in list_images(folder):
        k = _key(folder, p)
        if k in out:
            problems.append(f"{label}: {p} and {out[k]} have the same stem {k!r}; using {out[k].name}")
            continue
        out[k] = p
    return out


def score_folder(ref_dir, out_dir, metric_names, device: str = "cpu", weights_root=None,
                 progress: bool = False) -> FolderScores:
    """Score every image of ``out_dir`` with ``metric_names`` (refs from ``ref_dir`` for FR/FID)."""
    import math

    from benchkit.errors import BadInputError, BenchkitError
    from benchkit.images import read_image
    from benchkit.metrics import get_metric

    ref_dir, out_dir = Path(ref_dir), Path(out_dir)
    metrics = [get_metric(n, device=device, weights_root=weights_root) for n in metric_names]
    res = FolderScores(metrics=list(metric_names))
    refs = _index(ref_dir, res.problems, "reference")
    outs = _index(out_dir, res.problems, "result")
    res.n_results = len(outs)
    for k in sorted(set(refs) - set(outs)):
        res.problems.append(f"missing result for reference {refs[k]}")
    no_ref = sorted(set(outs) - set(refs))
    for k in no_ref:
        res.problems.append(f"no reference for result {outs[k]} (FR metrics left empty)")

    usable, status = [], {}
    for m in metrics:
        ok, why = m.availability()
        if ok:
            usable.append(m)
            status[m.info.name] = ("ok", "")
        else:
            status[m.info.name] = ("unavailable", why)
            res.problems.append(f"metric {m.info.name} unavailable: {why}")
    per_image = [m for m in usable if m.info.kind != "dataset"]
    values: dict[str, list[float]] = {m.info.name: [] for m in per_image}

    keys = sorted(outs)
    it = keys
    if progress:
        from tqdm import tqdm

        it = tqdm(keys, desc="score", unit="img")
    for k in it:
        row = {"image": k, "dist": str(outs[k]), "ref": str(refs[k]) if k in refs else ""}
        try:
            dist = read_image(outs[k])
            ref = read_image(refs[k]) if k in refs and any(m.info.kind == "FR" for m in per_image) else None
        except BadInputError as e:
            res.problems.append(f"skipped {k}: {e}")
            continue
        for m in per_image:
            row[m.info.name] = None
            if m.info.kind == "FR" and ref is None:
                continue
            try:
                v = m.score(dist, ref if m.info.kind == "FR" else None)
            except BenchkitError as e:
                res.problems.append(f"{m.info.name} on {k}: {e}")
                continue
            row[m.info.name] = v
            values[m.info.name].append(v)
        res.per_image.append(row)

    for m in metrics:
        name = m.info.name
        st, note = status[name]
        mean, n = None, 0
        if st == "ok" and m.info.kind == "dataset":
            try:
                mean, n = m.score_folders(out_dir, ref_dir), len(outs)
            except BenchkitError as e:
                st, note = "error", str(e)
                res.problems.append(f"{name}: {e}")
        elif st == "ok":
            vals = values[name]
            n = len(vals)
            if n:
                mean = math.fsum(vals) / n
            else:
                st, note = "error", "no image could be scored"
        res.means.append({"metric": name, "mean": mean, "n": n,
                          "higher_is_better": m.info.higher_is_better, "status": st, "note": note,
                          "version": m.info.version})
    return res


def write_csvs(res: FolderScores, prefix) -> tuple[Path, Path]:
    """Write ``<prefix>_per_image.csv`` and ``<prefix>_mean.csv`` atomically; returns both paths.

    Missing values are empty cells (never a number standing in for 'unavailable').
    """
    import pandas as pd

    from benchkit.fsio import atomic_write_text

    prefix = Path(prefix)
    cols = ["image", "dist", "ref"] + [n for n in res.metrics
                                       if any(n in r for r in res.per_image)]
    per = pd.DataFrame(res.per_image, columns=cols)
    mean = pd.DataFrame(res.means, columns=["metric", "mean", "n", "higher_is_better", "status",
                                            "note", "version"])
    p1 = prefix.with_name(prefix.name + "_per_image.csv")
    p2 = prefix.with_name(prefix.name + "_mean.csv")
    atomic_write_text(p1, per.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(p2, mean.to_csv(index=False, float_format="%.6f"))
    return p1, p2
