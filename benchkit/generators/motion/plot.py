"""Example figure: sampled trajectories, their PSFs, blurred results, and a radial PSF field.

``python -m benchkit.generators.motion.plot [OUT.png]`` writes ``docs/motion_blur_examples.png`` by default
(embedded demo photos, seed 0; no downloads).
"""

from __future__ import annotations

from pathlib import Path


def make_figure(out_path="docs/motion_blur_examples.png", seed: int = 0, n: int = 4):
    """Render the figure to ``out_path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchkit.embedded import materialize_images
    from benchkit.generators.base import SampleContext
    from benchkit.generators.motion.pipeline import MotionBlurGenerator, psf_for
    from benchkit.generators.motion.svblur import (
        RadialFieldConfig,
        apply_radial_field,
        radial_field,
        sample_radial_field,
    )
    from benchkit.generators.motion.trajectory import generate_trajectory
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    src = materialize_images()
    names = ["astronaut", "chelsea", "coffee", "motorcycle", "rocket", "zidane"]
    imgs = [read_image(src / f"{nm}.png") for nm in names[:n]]
    gen = MotionBlurGenerator()
    fig, axes = plt.subplots(4, n, figsize=(3.2 * n, 13))
    for i, img in enumerate(imgs):
        ctx = SampleContext(f"example{i}", *img.shape[:2])
        params = gen.sample(rng_for(seed, f"example{i}", "params"), ctx)
        x = generate_trajectory(params.trajectory)
        psf = psf_for(params, gen.config.psf)
        lq = gen.apply(img, params, ctx)["lq"]
        ax = axes[0, i]
        m = int(np.ceil(params.exposure * (x.size - 1))) + 1  # samples inside the exposure
        ax.plot(x.real, x.imag, color="0.85", lw=1, label="full path")
        ax.scatter(x.real[:m], x.imag[:m], c=np.linspace(0, 1, m), s=1, cmap="viridis")
        ax.plot([0], [0], "k.", ms=5)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        t = params.trajectory
        ax.set_title(f"trajectory L={t.max_length:.0f}px expl={t.expl:.4f}\nexposed part ({params.exposure}) coloured, "
                     "px", fontsize=8)
        ax = axes[1, i]
        ax.imshow(psf, cmap="inferno", interpolation="nearest")
        c = (psf.shape[0] - 1) / 2
        ax.plot([c], [c], "c+", ms=10)
        ax.set_title(f"PSF {psf.shape[0]}x{psf.shape[1]}, sum {psf.sum():.4f} (+ = centre)", fontsize=8)
        axes[2, i].imshow(lq)
        axes[2, i].set_title(f"blurred {names[i]}", fontsize=8)
    # radial (spatially varying) field on the first image
    img = imgs[0]
    fp = sample_radial_field(np.random.default_rng(seed), RadialFieldConfig(sigma_corner_range=(3.0, 3.0)),
                             *img.shape[:2])
    out = apply_radial_field(img, fp)
    field = radial_field(fp, *img.shape[:2])
    g, k = field.shape[0], field.shape[2]
    montage = np.zeros((g * k, g * k))
    for j in range(g):
        for i in range(g):
            montage[j * k:(j + 1) * k, i * k:(i + 1) * k] = field[j, i] / field[j, i].max()
    panels = [(img, "sharp"), (np.clip(out, 0, 1), "radial PSF field (EFF)"),
              (montage, f"field {g}x{g} PSFs (each max-scaled)"),
              (np.abs(out - img).mean(axis=2), "|blurred - sharp|: grows to corners")]
    for i in range(n):
        ax = axes[3, i]
        if i < len(panels):
            data, title = panels[i]
            ax.imshow(data, cmap=None if data.ndim == 3 else "magma", interpolation="nearest")
            ax.set_title(title, fontsize=8)
    for ax in axes[1:].ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("benchkit motion blur: random trajectories -> centred sum-1 PSFs -> FFT blur; radial lens-blur field",
                 fontsize=10)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=80)
    plt.close(fig)
    return out_path


if __name__ == "__main__":
    import sys

    print(make_figure(*(sys.argv[1:2] or [])))
