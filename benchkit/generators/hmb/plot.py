"""``docs/hmb_examples.png``: image, part-group mask, W_s and the HMB result for several groups (matplotlib)."""

from __future__ import annotations


def make_figure(out_path="docs/hmb_examples.png", segmenter: str = "mediapipe", seed: int = 0) -> str:
    """One row per (embedded photo, group); the label maps come from ``segmenter`` (default: the offline one)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchkit.generators.auxpass import make_aux_pass
    from benchkit.generators.base import SampleContext
    from benchkit.generators.hmb.parts import group_mask, group_pixel_counts
    from benchkit.generators.hmb.people import materialize_people
    from benchkit.generators.hmb.pipeline import HMBConfig, HMBGenerator
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    seg = make_aux_pass(segmenter)
    rows = []
    wanted = [("astronaut", "head"), ("zidane", "right_upper_limb"), ("bus", "whole_body"),
              ("grace_hopper", "head"), ("bus", "left_lower_limb")]
    src = materialize_people()
    cache = {}
    for name, group in wanted:
        paths = sorted(src.glob(f"{name}.*"))
        if not paths:
            continue
        if name not in cache:
            im = read_image(paths[0])
            s = min(im.shape[:2])
            y0, x0 = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
            im = np.ascontiguousarray(cv2.resize(im[y0:y0 + s, x0:x0 + s], (512, 512), interpolation=cv2.INTER_AREA))
            cache[name] = (im, seg.compute(im))
        im, lab = cache[name]
        if group_pixel_counts(lab)[group] < 64:
            continue
        gen = HMBGenerator(HMBConfig(segmenter=segmenter, groups=(group,)))
        ctx = SampleContext(name, 512, 512, {segmenter: lab})
        p = gen.sample(rng_for(seed, f"{name}/{group}", "params"), ctx)
        out = gen.apply(im, p, ctx)
        rows.append((f"{name}: {group}", im, group_mask(lab, group), out["hmb_weight"] / 65535.0, out["lq"], out["psf"], p))
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.1 * len(rows)))
    for r, (title, im, m, w, lq, psf, p) in enumerate(rows):
        for c, (a, t) in enumerate([(im, title), (m, "part mask"), (w, (f"W_s (e{p.erode_radius} d{p.dilate_radius} "
                                    f"s{p.sigma:.1f})")), (lq, "I_HMB (eq. 2)")]):
            ax = axes[r, c]
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1 if a.ndim == 2 else None)
            ax.set_title(t, fontsize=9)
            ax.axis("off")
        ins = axes[r, 3].inset_axes([0.0, 0.0, 0.25, 0.25])
        ins.imshow(psf, cmap="magma")
        ins.axis("off")
    fig.suptitle(f"Human motion blur (HAODiff eq. 1-2); segmenter: {segmenter}; PSF inset", fontsize=11)
    fig.tight_layout()
    fig.savefig(out_path, dpi=70)
    plt.close(fig)
    return str(out_path)
