"""``benchkit publish --html``: a self-contained static site per benchmark (no CDN, no network, works from
``file://`` and any static host).

Layout (inside the leaderboard folder ``leaderboards/<benchmark>/html/``)::

    index.html                        one sortable table per dataset (direction arrows, 95% intervals, oracle
                                      marks, ties with the best), not-evaluated methods with reasons, failures,
                                      the perception-distortion plot, a gallery of the images
    report.css, report.js             the only style and script (inline-free, no external resources)
    plots/<dataset>.png               copies of the perception-distortion plots
    img/<dataset>/<key>/thumb.png     input thumbnail (long side <= THUMB px), overview.png (<= OVERVIEW px)
    img/<dataset>/<key>/<panel>.png   native-resolution crop (CROP px of the output grid) of the input (its
                                      1/scale region), every method output and the target (absent on
                                      input-only datasets)
    pages/<dataset>/<key>.html        synchronised zoom/pan over all crops, a slider comparison of any two,
                                      the image's per-method scores

The crop is the CROP x CROP window where the methods disagree most (largest summed per-pixel standard
deviation of luma across outputs and target), found with an integral image; scaled datasets round it to the
scale. Only files this call writes stay under ``html/`` (stale ones are removed); nothing has a timestamp.
"""

from __future__ import annotations

import html as _html
import json
import re
from pathlib import Path

from benchkit.errors import BenchkitError

CROP = 192  # native pixels of the output grid shown per panel
THUMB = 128
OVERVIEW = 384
SITE = "html"


def _e(s) -> str:
    return _html.escape(str(s), quote=True)


def slug(text: str) -> str:
    """A file-name-safe slug; a short hash is appended when characters had to be replaced."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    if s != text:
        import hashlib

        s = f"{s[:60]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return s


class _Writer:
    """Writes files under the site root and remembers them (to remove stale files afterwards)."""

    def __init__(self, root: Path):
        self.root = root
        self.written: set = set()

    def bytes(self, rel: str, data: bytes) -> None:
        from benchkit.fsio import atomic_write_bytes

        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not (p.is_file() and p.read_bytes() == data):
            atomic_write_bytes(p, data, fsync=False)
        self.written.add(p.resolve())

    def text(self, rel: str, s: str) -> None:
        self.bytes(rel, s.encode("utf-8"))

    def prune(self) -> None:
        for p in sorted(self.root.rglob("*"), reverse=True):
            if p.is_file() and p.resolve() not in self.written:
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()


def _fmt(v) -> str:
    from benchkit.harness.tables import _fmt as f

    return f(v)


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _head(title: str, depth: int) -> str:
    up = "../" * depth
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_e(title)}</title>\n"
            f"<link rel=\"stylesheet\" href=\"{up}report.css\">\n</head>\n")


def _tail(depth: int) -> str:
    return f"<script src=\"{'../' * depth}report.js\"></script>\n</body>\n</html>\n"


# ------------------------------------------------------------------------------------------------ tables


def table_html(results: dict, dataset: str, cols: list, rows: list, stats: dict) -> str:
    from benchkit.harness.tables import DOWN, UP, _ranks

    info = results["metrics"]
    metric_cols = [c for c in cols if c not in ("method", "oracle", "steps", "seconds_per_image", "n_images",
                                                "n_failed") and not c.endswith(("_ci_low", "_ci_high"))]
    shown = ["method", "oracle", "steps", "seconds_per_image"] + metric_cols + ["n_images", "n_failed"]
    hib = {m: (info[m].get("higher_is_better", True) if m in info else True) for m in metric_cols}
    hib["seconds_per_image"] = False
    ranked = [r for r in rows if r.get("_complete", True)] or rows
    ranks = {c: _ranks(ranked, c, hib[c]) for c in hib}
    names = {"method": "Method", "oracle": "Oracle", "steps": "Steps", "seconds_per_image": "s/img",
             "n_images": "Images", "n_failed": "Failed"}
    out = [f"<table class=\"board\" id=\"board-{_e(slug(dataset))}\" data-dataset=\"{_e(dataset)}\">", "<thead><tr>"]
    for c in shown:
        label = names.get(c, c.upper() if len(c) <= 5 else c)
        if c in hib:
            arrow, d = (UP, "desc") if hib[c] else (DOWN, "asc")
            kind = stats.get(c, {}).get("kind", "")
            tip = {"dataset": "dataset-level metric: no interval",
                   "derived": "NTIRE 2025 perceptual score, from the means"}.get(kind, "")
            out.append(f"<th data-col=\"{_e(c)}\" data-type=\"num\" data-better=\"{d}\" title=\"{_e(tip or c)}\">"
                       f"{_e(label)} <span class=\"arrow\">{arrow}</span></th>")
        elif c in ("steps", "n_images", "n_failed"):
            out.append(f"<th data-col=\"{c}\" data-type=\"num\" data-better=\"desc\">{_e(label)}</th>")
        else:
            out.append(f"<th data-col=\"{c}\" data-type=\"text\" data-better=\"asc\">{_e(label)}</th>")
    out.append("</tr></thead>\n<tbody>")
    for r in rows:
        cls = [] if r.get("_complete", True) else ["incomplete"]
        if r.get("oracle") == "yes":
            cls.append("oracle")
        out.append(f"<tr data-method=\"{_e(r['method'])}\" class=\"{' '.join(cls)}\">")
        for c in shown:
            v = r.get(c)
            if c == "method":
                marks = (" <span class=\"mark\" title=\"oracle: reads ground-truth information\">\u00a7</span>"
                         if r.get("oracle") == "yes" else "")
                marks += ("" if r.get("_complete", True) else
                          " <span class=\"mark\" title=\"incomplete: some images failed\">\u2020</span>")
                out.append(f"<td data-v=\"{_e(v)}\" class=\"name\">{_e(v)}{marks}</td>")
                continue
            n = _num(v)
            text = _fmt(v)
            if n is None:
                out.append(f"<td data-v=\"\" class=\"{'na' if v == 'n/a' else 'missing'}\">{_e(text or '-')}</td>")
                continue
            klass, tip = [], []
            if c in ranks and r in ranked:
                best, second = ranks[c]
                if best is not None and round(n, 4) == best:
                    klass.append("best")
                elif second is not None and round(n, 4) == second:
                    klass.append("second")
            ci = r.get("_ci", {}).get(c)
            cell = _e(text)
            if ci:
                cell += f" <small>\u00b1 {_fmt((ci[1] - ci[0]) / 2)}</small>"
                tip.append(f"95% bootstrap interval [{_fmt(ci[0])}, {_fmt(ci[1])}] over {ci[2]} images")
            sig = r.get("_sig", {}).get(c)
            t = stats.get(c, {}).get("tests", {}).get(r["method"])
            if sig == "tie":
                cell += " <span class=\"tie\">\u2248</span>"
                klass.append("tied")
            if sig == "best":
                tip.append("best of the column")
            elif t:
                tip.append(f"vs best {stats[c]['best']}: difference {t['diff']:+.4f} "
                           f"[{t['low']:+.4f}, {t['high']:+.4f}], p={t['p']:.3f}"
                           + (" (not significant)" if not t["significant"] else ""))
            attrs = f" class=\"{' '.join(klass)}\"" if klass else ""
            attrs += f" title=\"{_e('; '.join(tip))}\"" if tip else ""
            out.append(f"<td data-v=\"{n!r}\"{attrs}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ images


def _crop_window(arrays: list, size: int, scale: int) -> tuple[int, int, int]:
    """(x, y, side) of the size x size window (multiples of ``scale``) with the largest summed luma std."""
    import numpy as np

    h, w = arrays[0].shape[:2]
    side = max(scale, min(size, h, w) // scale * scale)
    if len(arrays) < 2 or (h == side and w == side):
        return ((w - side) // 2 // scale * scale, (h - side) // 2 // scale * scale, side)
    luma = np.stack([a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) for a in arrays])
    sd = luma.std(axis=0).astype(np.float64)
    ii = np.pad(sd.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tot = ii[side:, side:] - ii[:-side, side:] - ii[side:, :-side] + ii[:-side, :-side]  # (h-side+1, w-side+1)
    ys = np.arange(0, h - side + 1, scale)
    xs = np.arange(0, w - side + 1, scale)
    sub = tot[np.ix_(ys, xs)]
    iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(xs[ix]), int(ys[iy]), side


def _resize_long(img, long_side: int):
    import cv2

    h, w = img.shape[:2]
    f = min(1.0, long_side / max(h, w))
    if f >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def image_panels(ds, rec, run_dir: Path, dataset: str, methods: list, scale: int) -> tuple[list, tuple, object]:
    """([(panel name, kind, array)], crop (x, y, side), input array) of one sample; kind input|method|target."""
    from benchkit.images import read_image

    lq = read_image(ds.input_path(rec))
    outs = []
    for m in methods:
        p = run_dir / "outputs" / dataset / m / f"{rec['key']}.png"
        if p.is_file():
            try:
                outs.append((m, "method", read_image(p)))
            except (BenchkitError, OSError, ValueError):  # unreadable: left out of the page (the table says it)
                continue
    tp = ds.target_path(rec) if ds.has_target else None
    gt = read_image(tp) if tp is not None and tp.is_file() else None
    grid = [a for _, _, a in outs] + ([gt] if gt is not None else [])
    shape = grid[0].shape[:2] if grid else (lq.shape[0] * scale, lq.shape[1] * scale)
    grid = [a for a in grid if a.shape[:2] == shape]
    crop = _crop_window(grid or [lq], CROP, scale) if grid else _crop_window([lq], CROP, 1)
    panels = [("input", "input", lq)] + outs + ([("target", "target", gt)] if gt is not None else [])
    return [p for p in panels if p[1] == "input" or p[2].shape[:2] == shape], crop, lq


def _png(img) -> bytes:
    from benchkit.images import encode_png

    return encode_png(img, compression=9)


# ------------------------------------------------------------------------------------------------ pages


def _image_page(results, dataset, key, kslug, panels, crop, scale, rows, per_image, metric_cols, lq_shape) -> str:
    x, y, side = crop
    title = f"{results['benchmark']} / {dataset} / {key}"
    out = [_head(title, 2), "<body class=\"page\">",
           (f"<nav><a href=\"../../index.html#ds-{_e(slug(dataset))}\">\u2190 {_e(results['benchmark'])} "
            "leaderboard</a></nav>"), f"<h1>{_e(dataset)} / <code>{_e(key)}</code></h1>",
           (f"<p class=\"note\">Crop {side}x{side} px at ({x}, {y}) of the output grid (x{scale}), the region where "
            "the methods differ most; crops at native resolution (the input's region is enlarged "
            f"{scale}x). Wheel or +/- to zoom, drag to pan (all panels follow), double-click to reset.</p>")]
    h, w = lq_shape
    f = 100.0 / scale
    out.append(f"<div class=\"overview\"><img src=\"../../img/{_e(slug(dataset))}/{_e(kslug)}/overview.png\" alt=\"input overview\">"
               f"<div class=\"box\" style=\"left:{x * f / w:.3f}%;top:{y * f / h:.3f}%;width:{side * f / w:.3f}%;height:{side * f / h:.3f}%\"></div></div>"
               )
    out.append("<div class=\"zoombar\"><button type=\"button\" data-zoom=\"in\">+</button>"
               "<button type=\"button\" data-zoom=\"out\">\u2212</button>"
               "<button type=\"button\" data-zoom=\"reset\">reset</button> <span class=\"zoomlevel\">1.00x</span></div>")
    out.append("<div class=\"panels\">")
    label = {"input": "input (LQ)", "target": "target (GT)"}
    opts = []
    for name, kind, _ in panels:
        src = f"../../img/{slug(dataset)}/{kslug}/{slug(kind + '-' + name)}.png"
        lab = label.get(kind, name)
        opts.append((lab, src))
        out.append(f"<figure class=\"panel {kind}\" data-name=\"{_e(lab)}\"><div class=\"view\"><div class=\"stage\">"
                   f"<img src=\"{_e(src)}\" alt=\"{_e(lab)}\" draggable=\"false\"></div></div>"
                   f"<figcaption>{_e(lab)}</figcaption></figure>")
    out.append("</div>")
    a = next((i for i, (_, k, _) in enumerate(panels) if k == "method"), 0)
    b = next((i for i, (_, k, _) in enumerate(panels) if k == "target"), len(panels) - 1)
    sel = "".join(f"<option value=\"{_e(src)}\">{_e(lab)}</option>" for lab, src in opts)
    out.append("<h2>Compare</h2><div class=\"compare\">"
               f"<label>left <select class=\"cmp-a\" data-default=\"{a}\">{sel}</select></label> "
               f"<label>right <select class=\"cmp-b\" data-default=\"{b}\">{sel}</select></label> "
               "<input class=\"cmp-slider\" type=\"range\" min=\"0\" max=\"100\" value=\"50\" aria-label=\"split\">"
               "<div class=\"view cmp-view\"><div class=\"stage\">"
               f"<img class=\"cmp-img-b\" src=\"{_e(opts[b][1])}\" alt=\"right\" draggable=\"false\"></div>"
               "<div class=\"cmp-clip\"><div class=\"stage\">"
               f"<img class=\"cmp-img-a\" src=\"{_e(opts[a][1])}\" alt=\"left\" draggable=\"false\"></div></div>"
               "<div class=\"cmp-line\"></div></div></div>")
    # per-image scores
    out.append("<h2>Scores of this image</h2><table class=\"scores\"><thead><tr><th>Method</th>"
               + "".join(f"<th>{_e(m)}</th>" for m in metric_cols) + "</tr></thead><tbody>")
    for r in rows:
        vals = per_image.get((dataset, r["method"]), {}) if per_image else {}
        cells = []
        for m in metric_cols:
            v = vals.get(m, {}).get(key)
            cells.append(f"<td>{_e(_fmt(v)) if v is not None else '-'}</td>")
        out.append(f"<tr><td>{_e(r['method'])}</td>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    out.append(_tail(2))
    return "\n".join(out)


def _dataset_images(results, run_dir, dataset, rows, per_image, metric_cols, w: _Writer) -> tuple[list, str]:
    """Writes the crops and pages of one dataset; returns ([(key, page rel, thumb rel)], problem or '')."""
    from benchkit.datasets.open import open_path

    info = results["datasets"].get(dataset, {})
    try:
        ds = open_path(Path(info["dir"]), dataset)
    except (BenchkitError, OSError, KeyError, ValueError) as e:  # dataset folder moved or deleted: tables only
        return [], f"images not available ({type(e).__name__}: {e})"
    scale = int(info.get("scale") or ds.scale or 1)
    methods = [r["method"] for r in rows]
    pages = []
    dslug = slug(dataset)
    for rec in ds.records:
        key = rec["key"]
        kslug = slug(key)
        try:
            panels, crop, lq = image_panels(ds, rec, Path(run_dir), dataset, methods, scale)
        except (BenchkitError, OSError, ValueError):  # an unreadable input: no page (the evaluation reported it)
            continue
        x, y, side = crop
        base = f"img/{dslug}/{kslug}"
        for name, kind, arr in panels:
            if kind == "input":
                s = side // scale
                part = arr[y // scale:y // scale + s, x // scale:x // scale + s]
            else:
                part = arr[y:y + side, x:x + side]
            w.bytes(f"{base}/{slug(kind + '-' + name)}.png", _png(part))
        w.bytes(f"{base}/thumb.png", _png(_resize_long(lq, THUMB)))
        w.bytes(f"{base}/overview.png", _png(_resize_long(lq, OVERVIEW)))
        page = f"pages/{dslug}/{kslug}.html"
        w.text(page, _image_page(results, dataset, key, kslug, panels, crop, scale, rows, per_image, metric_cols,
                                 lq.shape[:2]))
        pages.append((key, page, f"{base}/thumb.png"))
    return pages, ""


def write_site(results: dict, run_dir, out: Path, pub) -> Path:
    """Write ``out/html/`` from a publication (``pub``: :class:`benchkit.harness.publish.Published`)."""
    from benchkit.harness.stats import read_per_image

    root = Path(out) / SITE
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root)
    w.text("report.css", CSS)
    w.text("report.js", JS)
    pi_path = Path(run_dir) / "per_image.csv"
    per_image = read_per_image(pi_path) if pi_path.is_file() else None
    bench = results["benchmark"]
    body = [_head(f"{bench} leaderboard", 0), "<body class=\"index\">", f"<h1>{_e(bench)}</h1>"]
    desc = results.get("config", {}).get("description")
    if desc:
        body.append(f"<p>{_e(desc)}</p>")
    body.append("<p class=\"note\">Generated by <code>benchkit publish --html</code>; do not edit. Click a column "
                "header to sort (again to reverse). Values are means over images "
                "<small>\u00b1 half-width of the 95% bootstrap interval</small>; hover a cell for the interval and "
                "the paired test against the best. <b>Bold</b> best, <u>underlined</u> second; "
                "<span class=\"tie\">\u2248</span> not significantly different from the best (paired bootstrap, "
                "95%); \u00a7 oracle (reads ground-truth information of the dataset); \u2020 incomplete "
                "(means over fewer images, not ranked).</p>")
    toc = " | ".join(f"<a href=\"#ds-{_e(slug(d))}\">{_e(d)}</a>" for d in pub.tables)
    body.append(f"<nav class=\"toc\">{toc}</nav>")
    for dataset, (cols, rows) in pub.tables.items():
        stats = pub.stats.get(dataset, {})
        info = results["datasets"].get(dataset, {})
        body.append(f"<section class=\"dataset\" id=\"ds-{_e(slug(dataset))}\"><h2>{_e(dataset)}</h2>")
        body.append(f"<p class=\"note\">x{_e(info.get('scale'))}, {_e(info.get('n_samples'))} images, fingerprint "
                    f"<code>{_e(info.get('fingerprint'))}</code>"
                    + ("" if info.get("has_target", True) else "; input-only (no targets): full-reference "
                       "metrics are n/a") + ".</p>")
        if rows:
            body.append(table_html(results, dataset, cols, rows, stats))
        else:
            body.append("<p>No method produced scored outputs on this dataset.</p>")
        notes = [f"<li><b>{_e(m)}</b>: {_e(s['note'])}</li>" for m, s in stats.items() if s.get("note")]
        if notes:
            body.append("<ul class=\"notes\">" + "".join(notes) + "</ul>")
        png = Path(out) / f"{dataset}.png"
        if png in pub.plots:
            w.bytes(f"plots/{slug(dataset)}.png", png.read_bytes())
            body.append(f"<figure class=\"plot\"><img src=\"plots/{_e(slug(dataset))}.png\" alt=\"perception-"
                        f"distortion plot of {_e(dataset)}\"><figcaption>perception-distortion</figcaption></figure>")
        skipped = [s for s in results.get("skipped", []) if s.get("dataset") in (None, dataset)]
        if skipped:
            body.append(f"<details class=\"skipped\"><summary>Not evaluated ({len(skipped)})</summary><ul>"
                        + "".join(f"<li>{_e(s['what'])} <code>{_e(s['name'])}</code>: {_e(s['reason'])}</li>"
                                  for s in skipped) + "</ul></details>")
        fails = [f for f in results.get("failures", []) if f.get("dataset") in (None, dataset)]
        if fails:
            from benchkit.harness.results import describe_failure

            body.append(f"<details class=\"failures\"><summary>Failures ({len(fails)})</summary><ul>"
                        + "".join(f"<li>{_e(describe_failure(f))}</li>" for f in fails) + "</ul></details>")
        metric_cols = [m for m in results.get("metric_order") or results["metrics"]
                       if results["metrics"].get(m, {}).get("kind") != "dataset" and m in cols]
        pages, problem = _dataset_images(results, run_dir, dataset, rows, per_image, metric_cols, w)
        if problem:
            body.append(f"<p class=\"note\">Per-image pages: {_e(problem)}.</p>")
        if pages:
            body.append("<div class=\"gallery\">" + "".join(
                f"<a href=\"{_e(p)}\"><img src=\"{_e(t)}\" alt=\"{_e(k)}\"><span>{_e(k)}</span></a>"
                for k, p, t in pages) + "</div>")
        body.append("</section>")
    body.append("<script type=\"application/json\" id=\"board-meta\">"
                + json.dumps({"benchmark": bench, "datasets": list(pub.tables)}).replace("<", "\\u003c")
                + "</script>")
    body.append(_tail(0))
    w.text("index.html", "\n".join(body))
    w.prune()
    return root / "index.html"


CSS = """\
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.note { color: #555; max-width: 70em; }
code { background: #f2f2f2; padding: 0 3px; border-radius: 3px; }
table.board, table.scores { border-collapse: collapse; margin: .6em 0; }
table.board th, table.board td, table.scores th, table.scores td { padding: 3px 9px; border-bottom: 1px solid #ddd;
  text-align: right; white-space: nowrap; }
table.board th { cursor: pointer; user-select: none; background: #f6f6f6; }
table.board th.sorted { background: #e3ecf7; }
table.board td.name, table.scores td:first-child { text-align: left; }
table.board td small { color: #777; }
td.best { font-weight: bold; } td.second { text-decoration: underline; }
td.na, td.missing { color: #999; } tr.incomplete td { color: #777; font-style: italic; }
.tie { color: #1565c0; font-weight: bold; } .mark { color: #a0522d; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
.gallery a { display: flex; flex-direction: column; align-items: center; font-size: 12px; text-decoration: none; }
.gallery img { border: 1px solid #ccc; }
figure.plot img { max-width: 520px; border: 1px solid #eee; }
.overview { position: relative; display: inline-block; }
.overview img { display: block; max-width: 384px; }
.overview .box { position: absolute; border: 2px solid #e53935; box-sizing: border-box; }
.panels { display: flex; flex-wrap: wrap; gap: 10px; margin-top: .8em; }
.panel { margin: 0; }
.panel figcaption { text-align: center; font-size: 13px; }
.view { width: 256px; height: 256px; overflow: hidden; position: relative; background: #222; cursor: grab;
  touch-action: none; }
.view .stage { width: 256px; height: 256px; transform-origin: 0 0; position: relative; }
.view img { width: 256px; height: 256px; image-rendering: pixelated; display: block; position: absolute;
  left: 0; top: 0; }
.cmp-view, .cmp-view .stage, .cmp-view img { width: 512px; height: 512px; }
.cmp-view .stage, .cmp-clip { position: absolute; left: 0; top: 0; }
.cmp-clip { width: 100%; height: 100%; }
.cmp-line { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; background: #fff; pointer-events: none; }
.compare input[type=range] { width: 512px; display: block; margin: .4em 0; }
.zoombar { margin-top: .6em; } .zoombar button { min-width: 2.4em; }
"""

JS = r"""(function () {
  "use strict";
  function num(td) { var v = td.getAttribute("data-v"); return v === "" || v === null ? null : parseFloat(v); }
  function sortTable(table, th) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var type = th.getAttribute("data-type");
    var dir = th.getAttribute("data-dir");
    dir = dir ? (dir === "asc" ? "desc" : "asc") : th.getAttribute("data-better");
    var ths = th.parentNode.children;
    for (var i = 0; i < ths.length; i++) { ths[i].removeAttribute("data-dir"); ths[i].classList.remove("sorted"); }
    th.setAttribute("data-dir", dir); th.classList.add("sorted");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col], c;
      if (type === "num") {
        var p = num(x), q = num(y);
        if (p === null && q === null) { c = 0; }
        else if (p === null) { return 1; }
        else if (q === null) { return -1; }
        else { c = dir === "asc" ? p - q : q - p; }
      } else {
        c = x.getAttribute("data-v").localeCompare(y.getAttribute("data-v"));
        if (dir === "desc") { c = -c; }
      }
      if (c === 0) { c = a.getAttribute("data-method").localeCompare(b.getAttribute("data-method")); }
      return c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
    });
  });

  // synchronised zoom and pan over every .view of the page
  var views = Array.prototype.slice.call(document.querySelectorAll(".view"));
  if (!views.length) { return; }
  var st = { s: 1, x: 0, y: 0 };
  var level = document.querySelector(".zoomlevel");
  function apply() {
    views.forEach(function (v) {
      var k = v.clientWidth / 256;
      v.querySelectorAll(".stage").forEach(function (stage) {
        stage.style.transform = "translate(" + (st.x * k) + "px," + (st.y * k) + "px) scale(" + st.s + ")";
      });
    });
    if (level) { level.textContent = st.s.toFixed(2) + "x"; }
  }
  function clamp() {
    st.s = Math.min(32, Math.max(1, st.s));
    var lim = 256 * (1 - st.s);
    st.x = Math.min(0, Math.max(lim, st.x)); st.y = Math.min(0, Math.max(lim, st.y));
  }
  function zoomAt(f, cx, cy) {
    var ns = Math.min(32, Math.max(1, st.s * f));
    st.x = cx - (cx - st.x) * ns / st.s; st.y = cy - (cy - st.y) * ns / st.s; st.s = ns;
    clamp(); apply();
  }
  var drag = null;
  views.forEach(function (v) {
    v.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = v.getBoundingClientRect(), k = 256 / r.width;
      zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, (ev.clientX - r.left) * k, (ev.clientY - r.top) * k);
    }, { passive: false });
    v.addEventListener("pointerdown", function (ev) {
      if (v.classList.contains("cmp-view") && ev.shiftKey) { return; }
      drag = { x: ev.clientX, y: ev.clientY, k: 256 / v.getBoundingClientRect().width };
      if (v.setPointerCapture) { v.setPointerCapture(ev.pointerId); }
    });
    v.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      st.x += (ev.clientX - drag.x) * drag.k; st.y += (ev.clientY - drag.y) * drag.k;
      drag.x = ev.clientX; drag.y = ev.clientY; clamp(); apply();
    });
    v.addEventListener("pointerup", function () { drag = null; });
    v.addEventListener("dblclick", function () { st = { s: 1, x: 0, y: 0 }; apply(); });
  });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.getAttribute("data-zoom");
      if (z === "reset") { st = { s: 1, x: 0, y: 0 }; apply(); } else { zoomAt(z === "in" ? 1.5 : 1 / 1.5, 128, 128); }
    });
  });
  window.benchkitZoom = function (s, x, y) { st = { s: s, x: x, y: y }; clamp(); apply(); return st; };

  // slider comparison of any two panels
  var cmp = document.querySelector(".compare");
  if (cmp) {
    var sa = cmp.querySelector(".cmp-a"), sb = cmp.querySelector(".cmp-b");
    var ia = cmp.querySelector(".cmp-img-a"), ib = cmp.querySelector(".cmp-img-b");
    var slider = cmp.querySelector(".cmp-slider"), line = cmp.querySelector(".cmp-line");
    var clip = cmp.querySelector(".cmp-clip");
    sa.selectedIndex = parseInt(sa.getAttribute("data-default"), 10) || 0;
    sb.selectedIndex = parseInt(sb.getAttribute("data-default"), 10) || 0;
    function split() {
      var p = parseFloat(slider.value);
      clip.style.clipPath = "inset(0 " + (100 - p) + "% 0 0)";
      line.style.left = p + "%";
    }
    sa.addEventListener("change", function () { ia.src = sa.value; });
    sb.addEventListener("change", function () { ib.src = sb.value; });
    slider.addEventListener("input", split);
    split();
  }
  apply();
})();
"""
