"""Paper comparison figures (``benchkit figure``): the full input with the crop box, then the zoomed crop of
every method and the target, labelled, optionally with each method's per-image scores underneath.

The crop ``(x, y, w, h)`` is in pixels of the output grid (the target's size); on a scaled dataset the box
on the input is drawn at ``1/scale`` of it. Crops are enlarged with nearest-neighbour sampling (pixels stay
visible, as in the seeds' qualitative figures). Writes PNG (``dpi`` 200) and PDF side by side with no
timestamps or software tags, so an unchanged run gives identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchkit.errors import BenchkitError, ConfigError


def parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--crop {text!r}: expected X,Y,W,H (four integers, pixels of the output grid)") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ConfigError(f"--crop {text!r}: X, Y must be >= 0 and W, H > 0")
    return x, y, w, h


def _load_run(run_dir: Path) -> dict:
    rp = run_dir / "results.json"
    if not rp.is_file():
        raise BenchkitError(f"{rp} not found: pass the folder of a `benchkit evaluate` run (--run DIR)")
    return json.loads(rp.read_text(encoding="utf-8"))


def comparison_figure(run_dir, dataset: str, key: str, crop, methods: list, out, scores=None,
                      dpi: int = 200) -> list[Path]:
    """Write ``out`` (.pdf or .png) and its sibling of the other format; returns both paths.

    ``scores``: metric names to print under each method (from ``per_image.csv``), or None."""
    from benchkit.datasets.open import open_path
    from benchkit.fsio import atomic_write_bytes
    from benchkit.images import read_image

    run_dir = Path(run_dir)
    results = _load_run(run_dir)
    if dataset not in results.get("datasets", {}):
        raise ConfigError(f"dataset {dataset!r} is not in {run_dir / 'results.json'} (has: "
                          f"{', '.join(results.get('datasets', {}))})")
    info = results["datasets"][dataset]
    ds = open_path(Path(info["dir"]), dataset)
    rec = next((r for r in ds.records if r["key"] == key), None)
    if rec is None:
        keys = [r["key"] for r in ds.records]
        raise ConfigError(f"key {key!r} not in dataset {dataset} (e.g. {', '.join(keys[:5])})")
    scale = int(info.get("scale") or ds.scale or 1)
    lq = read_image(ds.input_path(rec))
    panels = []
    for m in methods:
        p = run_dir / "outputs" / dataset / m / f"{key}.png"
        if not p.is_file():
            raise ConfigError(f"no output of method {m!r} for {dataset}/{key} in {run_dir / 'outputs'} (methods with "
                              f"outputs: {', '.join(sorted(d.name for d in (run_dir / 'outputs' / dataset).iterdir() if d.is_dir())) if (run_dir / 'outputs' / dataset).is_dir() else 'none'})")
        panels.append((m, read_image(p)))
    tp = ds.target_path(rec) if ds.has_target else None
    if tp is not None:
        panels.append(("GT", read_image(tp)))
    x, y, w, h = crop
    H, W = panels[0][1].shape[:2] if panels else (lq.shape[0] * scale, lq.shape[1] * scale)
    if x + w > W or y + h > H:
        raise ConfigError(f"--crop {x},{y},{w},{h} leaves the {W}x{H} output grid of {dataset}/{key}")
    vals = {}
    if scores:
        from benchkit.harness.stats import read_per_image

        pi = run_dir / "per_image.csv"
        table = read_per_image(pi) if pi.is_file() else {}
        for m in methods:
            vals[m] = [(s, table.get((dataset, m), {}).get(s, {}).get(key)) for s in scores]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(panels)
    aspect = lq.shape[1] / lq.shape[0]
    crop_aspect = w / h
    big_w = 2.6 * aspect
    cell_w = 1.7 * crop_aspect
    rows = 2 if n > 4 else 1
    ncol = -(-n // rows)
    fig_w = big_w + ncol * cell_w + 0.3
    text_h = 0.22 + (0.16 * len(scores) if scores else 0)
    fig_h = max(2.6, rows * (1.7 + text_h)) + 0.1
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    gs = fig.add_gridspec(rows, 1 + ncol, width_ratios=[big_w] + [cell_w] * ncol, wspace=0.04, hspace=0.08,
                          left=0.01, right=0.99, top=0.98, bottom=0.02)
    ax = fig.add_subplot(gs[:, 0])
    ax.imshow(lq, interpolation="nearest")
    ax.add_patch(Rectangle((x / scale - 0.5, y / scale - 0.5), w / scale, h / scale, fill=False, edgecolor="#e53935",
                           linewidth=1.5))
    ax.set_axis_off()
    ax.text(0.5, -0.015, f"input ({key})" + (f", x{scale}" if scale != 1 else ""), transform=ax.transAxes,
            ha="center", va="top", fontsize=8)
    for i, (name, img) in enumerate(panels):
        a = fig.add_subplot(gs[i // ncol, 1 + i % ncol])
        a.imshow(img[y:y + h, x:x + w], interpolation="nearest")
        a.set_xticks([])
        a.set_yticks([])
        for s in a.spines.values():
            s.set_edgecolor("#e53935" if name == "GT" else "#888")
            s.set_linewidth(0.8)
        label = name
        if name in vals:
            label += "\n" + "\n".join(f"{s} {v:.4f}" if v is not None else f"{s} -" for s, v in vals[name])
        a.set_xlabel(label, fontsize=7.5, labelpad=2, linespacing=1.15)
    out = Path(out)
    stem = out.with_suffix("")
    paths = []
    import io

    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None,
                                                            "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta, dpi=dpi, bbox_inches="tight", pad_inches=0.03)
        p = stem.with_suffix("." + fmt)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(p, buf.getvalue())
        paths.append(p)
    plt.close(fig)
    return paths
