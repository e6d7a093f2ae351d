"""``benchkit bench blur``: 512 x 512 RGB PSF blur per image on CPU.

benchkit ``fft_blur`` (numpy/scipy.fft, float32, reflect padding) and ``fft_blur_torch`` (per-image kernels;
``impl="auto"``: CPU tensors run the numpy code per image, other devices batched torch.fft, also timed on this
CPU as ``torch_kernels_*``) next to ``scipy.signal.fftconvolve(mode="same")`` per channel with the
same kernel (zero boundary, float32). Kernel: a random-trajectory PSF (L = 60 px) rendered on a fixed
65 x 65 canvas, the size the reference's 64-px canvas implies. Times are medians over repeats.
"""

from __future__ import annotations

import statistics
import time

from ._clock import cpu_s


def _interleaved_median_ms(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall and CPU (user + sys) time (ms) of each callable; the callables run round-robin so a
    shared machine's load affects them alike."""
    for fn in fns.values():
        fn()  # warm-up
    ts = {name: [] for name in fns}
    cs = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = cpu_s(), time.perf_counter()
            fn()
            ts[name].append(time.perf_counter() - t0)
            cs[name].append(cpu_s() - c0)
    return ({name: 1e3 * statistics.median(v) for name, v in ts.items()},
            {name: 1e3 * statistics.median(v) for name, v in cs.items()})


def run(args) -> dict:
    import numpy as np
    import torch
    from scipy.signal import fftconvolve

    from benchkit.generators.motion.fftblur import fft_blur, fft_blur_torch
    from benchkit.generators.motion.psf import render_psfs
    from benchkit.generators.motion.trajectory import TrajectoryConfig, generate_trajectories, sample_trajectories

    quick = bool(getattr(args, "quick", False))
    repeats = int(getattr(args, "n", None) or (3 if quick else 10))
    batch = 4 if quick else 8
    size = 512
    rng = np.random.default_rng(0)
    imgs = rng.random((batch, size, size, 3), dtype=np.float32)
    traj = generate_trajectories(sample_trajectories(rng, TrajectoryConfig(), batch))
    kernels = render_psfs(traj, 1.0, size=65)
    k = kernels[0]

    timg = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    tk = torch.from_numpy(np.stack(kernels))
    ms, cpu = _interleaved_median_ms({
        "numpy": lambda: fft_blur(imgs[0], k),
        "fftconvolve": lambda: np.stack([fftconvolve(imgs[0][..., c], k, mode="same") for c in range(3)], -1),
        "torch1": lambda: fft_blur_torch(timg[:1], tk[:1]),
        "torchb": lambda: fft_blur_torch(timg, tk),
    }, repeats)
    ms_np, ms_sc, ms_t1, ms_tb = ms["numpy"], ms["fftconvolve"], ms["torch1"], ms["torchb"] / batch
    cpu_np, cpu_sc, cpu_t1, cpu_tb = cpu["numpy"], cpu["fftconvolve"], cpu["torch1"], cpu["torchb"] / batch
    # the batched torch.fft kernels themselves on this CPU (what impl="auto" avoids for CPU tensors), after the
    # interleaved figures: torch's worker threads do not run next to them
    mk, ck = _interleaved_median_ms({"torchk": lambda: fft_blur_torch(timg, tk, impl="torch")}, max(2, repeats // 3))
    ms_tk, cpu_tk = mk["torchk"] / batch, ck["torchk"] / batch

    # the paths agree (interior, away from the zero boundary of fftconvolve)
    a = fft_blur(imgs[0], k)
    b = fft_blur_torch(timg[:1], tk[:1])[0].permute(1, 2, 0).numpy()
    c = np.stack([fftconvolve(imgs[0][..., ch], k, mode="same") for ch in range(3)], -1)
    diff_torch = float(np.abs(a - b).max())
    diff_scipy = float(np.abs(a - c)[40:-40, 40:-40].max())

    print(f"512x512 RGB, 65x65 PSF, CPU, median of {repeats}, interleaved (torch threads {torch.get_num_threads()}):")
    print(f"  benchkit fft_blur (numpy/scipy.fft, reflect pad): {ms_np:.1f} ms/image (CPU {cpu_np:.1f} ms)")
    print(f"  benchkit fft_blur_torch, batch 1 (CPU tensors: the numpy code per image): {ms_t1:.1f} ms/image "
          f"(CPU {cpu_t1:.1f} ms)")
    print(f"  benchkit fft_blur_torch, batch {batch}:                 {ms_tb:.1f} ms/image (CPU {cpu_tb:.1f} ms)")
    print(f"  batched torch.fft kernels on this CPU (impl='torch'), batch {batch}: {ms_tk:.1f} ms/image "
          f"(CPU {cpu_tk:.1f} ms)")
    print(f"  scipy.signal.fftconvolve same, 3 channels (zero boundary): {ms_sc:.1f} ms/image (CPU {cpu_sc:.1f} ms)")
    print(f"  fftconvolve / fft_blur: wall {ms_sc / ms_np:.2f}x, CPU {cpu_sc / cpu_np:.2f}x (target >= 1)")
    print(f"  max |numpy - torch| = {diff_torch:.2e}; max |numpy - fftconvolve| (interior) = {diff_scipy:.2e}")
    return {"bench": "blur", "size": size, "kernel": int(k.shape[0]), "repeats": repeats, "batch": batch,
            "numpy_ms_per_image": round(ms_np, 2), "torch_ms_per_image_batch1": round(ms_t1, 2),
            "torch_ms_per_image_batched": round(ms_tb, 2), "fftconvolve_ms_per_image": round(ms_sc, 2),
            "max_diff_numpy_torch": diff_torch, "max_diff_numpy_fftconvolve_interior": diff_scipy,
            "numpy_cpu_ms_per_image": round(cpu_np, 2), "torch_cpu_ms_per_image_batch1": round(cpu_t1, 2),
            "torch_cpu_ms_per_image_batched": round(cpu_tb, 2), "fftconvolve_cpu_ms_per_image": round(cpu_sc, 2),
            "torch_kernels_ms_per_image": round(ms_tk, 2), "torch_kernels_cpu_ms_per_image": round(cpu_tk, 2),
            "torch_batched_vs_numpy_cpu_per_image": round(cpu_tb / cpu_np, 3),
            "ratio_fftconvolve_vs_numpy": round(ms_sc / ms_np, 3),
            "cpu_ratio_fftconvolve_vs_numpy": round(cpu_sc / cpu_np, 3),
            "torch_threads": torch.get_num_threads()}
