"""``benchkit publish``: leaderboards generated from a run's ``results.json`` (never hand-edited).

Per dataset, in ``leaderboards/<benchmark>/``:

- ``<dataset>.csv``: one row per method that produced scored outputs. Columns, in this order:
  ``method, oracle, steps, seconds_per_image, <metric means in the benchmark's order>, n_images, n_failed``.
  ``oracle`` is ``yes`` for methods that read ground-truth information on this dataset (e.g. the
  deconvolution baselines with the recorded PSF); Markdown marks those rows with a section sign.
  A metric that does not apply to the dataset (an FR metric on an input-only dataset) shows ``n/a``.
  Metric means and seconds are written with 4 decimals (``%.4f``); a metric nobody could compute
  on this dataset has no column. Rows: methods with every image scored first, then incomplete
  ones (some images failed: their means cover fewer images); each group by the primary metric
  (best first, by its higher/lower-is-better), ties and missing values by method name.
- ``<dataset>.md``: the same table with arrows (higher/lower is better), best value per column in
  **bold** and the second best underlined (``<u>..</u>``) among complete rows (incomplete rows are
  marked with a dagger and not ranked), then skipped methods and failures.
  Every metric mean carries a 95% bootstrap interval over images (:mod:`benchkit.harness.stats`):
  CSV columns ``<metric>_ci_low``/``<metric>_ci_high`` after the fixed ones, ``mean +- half-width``
  in Markdown, where ``\u2248`` marks a method not significantly different from the best of its column
  (paired bootstrap). The NTIRE 2025 perceptual score (``ntire2025``) is added when its six inputs are.
- ``<dataset>.png``: perception-distortion scatter (benchmark ``plot.x`` against the first
  available of ``plot.y``), when both have values.
- ``meta.json``: versions, git sha, environment, dataset fingerprints, metric settings, method
  infos, failures and skipped items, sha256 of the source ``results.json``, the bootstrap settings
  and every interval and paired test.
- with ``html=True``: ``html/`` a static browsable site (:mod:`benchkit.harness.report_html`).

Nothing generated carries a timestamp: re-publishing unchanged results rewrites identical bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.harness.tables import DOWN, FLOAT_FMT, UP, _fmt, _ranks  # noqa: F401

TIE = "\u2248"  # not significantly different from the best of the column
FIXED = ["method", "oracle", "steps", "seconds_per_image"]
NA_TEXT = "n/a"
TAIL = ["n_images", "n_failed"]


@dataclass
class Published:
    out_dir: Path
    csvs: list = field(default_factory=list)
    markdowns: list = field(default_factory=list)
    plots: list = field(default_factory=list)
    meta: Path | None = None
    tables: dict = field(default_factory=dict)  # dataset -> (columns, rows)
    stats: dict = field(default_factory=dict)  # dataset -> {metric: column stats}
    html: Path | None = None

    def report(self) -> str:
        lines = [f"leaderboards in {self.out_dir}:"]
        for c in self.csvs:
            lines.append(f"  {c}")
        for p in self.markdowns + self.plots:
            lines.append(f"  {p}")
        if self.meta:
            lines.append(f"  {self.meta}")
        if self.html:
            lines.append(f"  {self.html} (open in a browser)")
        return "\n".join(lines)


def leaderboard_rows(results: dict, dataset: str) -> tuple[list, list, list]:
    """(columns, rows as dicts of raw values, metric names) for one dataset, rows in published order."""
    metrics = results.get("metric_order") or list(results["metrics"])
    summ = [s for s in results["summary"] if s["dataset"] == dataset and s["status"] == "ok"]
    summ = [s for s in summ if any(v is not None for v in s["means"].values())
            or any(s.get("na_counts", {}).values())]
    present = [m for m in metrics if any(s["means"].get(m) is not None or s.get("na_counts", {}).get(m)
                                         for s in summ)]
    nfail = {}
    for f in results["failures"]:
        if f.get("dataset") == dataset and f.get("method") and f.get("key") and f["stage"] != "metric":
            nfail[f["method"]] = nfail.get(f["method"], 0) + 1
    rows = []
    for s in summ:
        row = {"method": s["method"], "oracle": "yes" if s.get("oracle") else "no", "steps": s["steps"],
               "seconds_per_image": s["seconds_per_image"]}
        row.update({m: NA_TEXT if s["means"].get(m) is None and s.get("na_counts", {}).get(m) else s["means"].get(m)
                    for m in present})
        row.update(n_images=s["n_scored"], n_failed=nfail.get(s["method"], 0))
        rows.append(row)
    prim = _order_metric(results, rows, present)  # n/a here (e.g. PSNR without targets): first metric with values
    hib = results["metrics"].get(prim, {}).get("higher_is_better", True)

    total = results["datasets"].get(dataset, {}).get("n_samples", 0) + len(
        results.get("datasets_left_out", {}).get(dataset, []))

    def order(r):  # complete rows (every image scored) first: means over fewer images are not comparable
        v = r.get(prim)
        v = v if isinstance(v, (int, float)) else None
        incomplete = r["n_images"] < total
        if v is None:
            return (incomplete, 1, 0.0, r["method"])
        return (incomplete, 0, -v if hib else v, r["method"])

    rows.sort(key=order)
    for r in rows:
        r["_complete"] = r["n_images"] >= total
    return FIXED + present + TAIL, rows, present


def write_csv(path: Path, cols, rows) -> None:
    import csv
    import io

    from benchkit.fsio import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in cols])
    atomic_write_text(path, buf.getvalue())


def _order_metric(results, rows, present) -> str:
    """The primary metric, or the first metric with values where it is n/a on this dataset."""
    prim = results.get("primary_metric")
    if any(isinstance(r.get(prim), (int, float)) for r in rows):
        return prim
    return next((m for m in present if any(isinstance(r.get(m), (int, float)) for r in rows)), prim)


def markdown(results, dataset, cols, rows, present) -> str:
    info = results["metrics"]
    direction = {m: info[m].get("higher_is_better", True) if m in info else True for m in present}
    direction["seconds_per_image"] = False
    head = {"method": "Method", "oracle": "Oracle", "steps": "Steps", "seconds_per_image": "s/img " + DOWN, "n_images": "Images",
            "n_failed": "Failed"}
    for m in present:
        head[m] = f"{m.upper() if len(m) <= 5 else m} {UP if direction[m] else DOWN}"
    cols = [c for c in cols if not c.endswith(("_ci_low", "_ci_high"))]
    ranked = [r for r in rows if r["_complete"]] or rows  # incomplete rows are not ranked
    ranks = {c: _ranks(ranked, c, direction[c]) for c in direction}
    ds = results["datasets"].get(dataset, {})
    lines = [f"# {results['benchmark']} / {dataset}", "",
             f"Generated by `benchkit publish` from `{results.get('run_dir', 'results.json')}`; do not edit. "
             f"Dataset fingerprint `{ds.get('fingerprint')}`, x{ds.get('scale')}, {ds.get('n_samples')} images; "
             f"benchkit {results['benchkit_version']}"
             + (f" at git `{results['git_sha']}`. " if results.get("git_sha") else " (installed copy, no git sha). ")
             + "Best per column in **bold**, second best <u>underlined</u>; rows ordered by "
             f"{_order_metric(results, rows, present)}.", "",
             "| " + " | ".join(head[c] for c in cols) + " |",
             "|" + "|".join("---" if c == "method" else "---:" for c in cols) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            s = _fmt(r.get(c))
            if c == "method" and r.get("oracle") == "yes":
                s += " \u00a7"
            if c == "method" and not r["_complete"]:
                s += " \u2020"
            elif c in ranks and r in ranked and isinstance(r.get(c), (int, float)) and s:
                best, second = ranks[c]
                v = round(r[c], 4)
                if best is not None and v == best:
                    s = f"**{s}**"
                elif second is not None and v == second:
                    s = f"<u>{s}</u>"
            ci = r.get("_ci", {}).get(c)
            if ci and s:
                s += f" \u00b1 {FLOAT_FMT.format((ci[1] - ci[0]) / 2)}"
            if r.get("_sig", {}).get(c) == "tie":
                s += " " + TIE
            cells.append(s)
        lines.append("| " + " | ".join(cells) + " |")
    if any(r.get("oracle") == "yes" for r in rows):
        lines += ["", "\u00a7 oracle: the method reads ground-truth information of this dataset (e.g. the recorded "
                  "blur kernel), so its scores are an upper reference, not a blind result."]
    if any(r.get("_ci") for r in rows):
        lines += ["", "\u00b1: half-width of the 95% bootstrap interval over images (seeded; see meta.json "
                  "`bootstrap`). " + TIE + ": not significantly different from the best of its column (paired "
                  "bootstrap of the per-image difference, 95%)."
                  + (" FID and other dataset-level metrics have no interval (one value per image set)."
                     if any(info.get(m, {}).get("kind") == "dataset" for m in present) else "")]
    if "ntire2025" in present:
        from benchkit.harness.stats import NTIRE2025_SOURCE

        lines += ["", f"NTIRE2025: {NTIRE2025_SOURCE}."]
    if any(not r["_complete"] for r in rows):
        lines += ["", "\u2020 incomplete: some images failed (see Failures); its means cover only the images "
                  "in the Images column, so it is listed after the complete rows and not ranked."]
    skipped = [s for s in results["skipped"] if s.get("dataset") in (None, dataset)]
    fails = [f for f in results["failures"] if f.get("dataset") in (None, dataset)]
    if skipped:
        lines += ["", "## Not evaluated", ""]
        lines += [f"- {s['what']} `{s['name']}`: {s['reason']}" for s in skipped]
    if fails:
        from benchkit.harness.results import describe_failure

        lines += ["", "## Failures", ""]
        lines += [f"- {describe_failure(f)}" for f in fails]
    return "\n".join(lines) + "\n"


def plot(results, dataset, rows, path: Path) -> str | None:
    """Perception-distortion scatter; returns the y metric used, or None when no pair is available."""
    cfg = results["config"].get("plot", {})
    x = cfg.get("x", "psnr")
    ys = [y for y in cfg.get("y", []) if any(r.get(y) is not None for r in rows)]
    ys = [y for y in ys if any(isinstance(r.get(y), (int, float)) for r in rows)]
    pts = [r for r in rows if ys and isinstance(r.get(x), (int, float)) and isinstance(r.get(ys[0]), (int, float))]
    if not pts:
        return None
    y = ys[0]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = results["metrics"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    for r in pts:
        ax.scatter(r[x], r[y], s=36)
        ax.annotate(r["method"], (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    arrow = {True: UP + " better", False: DOWN + " better"}
    ax.set_xlabel(f"{x} ({arrow[info[x].get('higher_is_better', True)]}) - distortion")
    ax.set_ylabel(f"{y} ({arrow[info[y].get('higher_is_better', True)]}) - perception")
    ax.set_title(f"{results['benchmark']} / {dataset}: perception-distortion")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    import io

    from benchkit.fsio import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return y


def publish(run_dir, out_dir=None, html: bool = False, bootstrap=None) -> Published:
    """Write the leaderboards of the run in ``run_dir`` (default out: ``leaderboards/<benchmark>`` of the benchkit
    checkout, or of the current folder for an installed copy); ``html``: also the static site in ``html/``;
    ``bootstrap``: :class:`benchkit.harness.stats.Bootstrap` settings (default seed 0, 2000 resamples)."""
    from benchkit.config import source_checkout
    from benchkit.errors import BenchkitError
    from benchkit.fsio import atomic_write_json, sha256_file
    from benchkit.harness.stats import Bootstrap, annotate_table, read_per_image

    run_dir = Path(run_dir)
    rp = run_dir / "results.json"
    if not rp.is_file():
        raise BenchkitError(f"{rp} not found: run `benchkit evaluate` first (or pass --run DIR)")
    from benchkit.manifest import read_json_file

    fix = "re-run `benchkit evaluate` for this run (cached outputs and scores make it quick)"
    wroot = read_json_file(rp, fix, what="results.json").get("weights_root")
    text = rp.read_text(encoding="utf-8")
    if wroot:  # published files must not carry the local weights path of whoever ran the evaluation
        text = text.replace(json.dumps(wroot)[1:-1], "<weights root>")
    results = json.loads(text)
    need = ("benchmark", "datasets", "config", "metrics", "summary", "failures", "skipped")
    missing = [k for k in need if k not in results]
    if missing:
        from benchkit.errors import CorruptFileError

        raise CorruptFileError(rp, f"not a complete benchkit results.json (no {', '.join(map(repr, missing))})", fix)
    results["run_dir"] = str(run_dir)
    from benchkit.safety import contained, safe_name

    try:  # names from results.json become file names: they must stay single safe path components
        safe_name("benchmark", results.get("benchmark"))
        for dataset in results.get("dataset_order") or results["datasets"]:
            safe_name("dataset", dataset)
    except BenchkitError as e:
        raise BenchkitError(f"{rp}: {e}") from None
    if out_dir:
        out = Path(out_dir)
    else:  # the default stays inside leaderboards/
        root = (source_checkout() or Path.cwd()) / "leaderboards"
        out = contained(root, root / results["benchmark"], f"leaderboard folder of benchmark {results['benchmark']!r}")
    out.mkdir(parents=True, exist_ok=True)
    pub = Published(out)
    plots = {}
    boot = bootstrap or Bootstrap()
    per_image = read_per_image(run_dir / "per_image.csv") if (run_dir / "per_image.csv").is_file() else None
    for dataset in results.get("dataset_order") or results["datasets"]:
        cols, rows, present = leaderboard_rows(results, dataset)
        cols, present, pub.stats[dataset] = annotate_table(results, dataset, cols, rows, present, per_image, boot)
        pub.tables[dataset] = (cols, rows)
        p = out / f"{dataset}.csv"
        write_csv(p, cols, rows)
        pub.csvs.append(p)
        md = out / f"{dataset}.md"
        from benchkit.fsio import atomic_write_text

        atomic_write_text(md, markdown(results, dataset, cols, rows, present))
        pub.markdowns.append(md)
        png = out / f"{dataset}.png"
        y = plot(results, dataset, rows, png)
        if y:
            pub.plots.append(png)
            plots[dataset] = {"file": png.name, "x": results["config"].get("plot", {}).get("x", "psnr"), "y": y}
    meta = {
        "benchmark": results["benchmark"],
        "generated_by": "benchkit publish (do not edit: re-run `benchkit evaluate` + `benchkit publish`)",
        "source_results": {"path": str(rp), "sha256": sha256_file(rp)},
        "benchkit_version": results["benchkit_version"],
        "git_sha": results["git_sha"],
        "environment": results["environment"],
        "seeds": results.get("seeds"),
        "primary_metric": results["primary_metric"],
        "datasets": results["datasets"],
        "metrics": results["metrics"],
        "methods": results["methods"],
        "csv_format": {"columns": "method, oracle, steps, seconds_per_image, <metric means>, n_images, n_failed, then "
                                  "<metric>_ci_low, <metric>_ci_high per metric with per-image values",
                       "oracle": "yes: the method reads ground-truth information of the dataset (recorded PSF)",
                       "not_applicable": "n/a: the metric does not apply (e.g. full-reference without targets)",
                       "float_format": "%.4f",
                       "row_order": "rows with every image scored first, then incomplete rows; each group by the "
                                    "primary metric (best first), ties by method name",
                       "seconds_per_image": "restore wall time per image when the output was produced (reused "
                                            "outputs keep their original timing)"},
        "summary": results["summary"],
        "failures": results["failures"],
        "skipped": results["skipped"],
        "plots": plots,
        "counters": results.get("counters"),
        "bootstrap": boot.meta(),
        "intervals": pub.stats,
    }
    pub.meta = out / "meta.json"
    atomic_write_json(pub.meta, meta)
    if html:
        from benchkit.harness.report_html import write_site

        pub.html = write_site(results, run_dir, out, pub)
    return pub
