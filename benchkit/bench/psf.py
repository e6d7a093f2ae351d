"""``benchkit bench psf``: random-trajectory PSF generation, batched benchkit vs the DeblurGAN algorithm.

The anchor is a faithful minimal RE-IMPLEMENTATION of DeblurGAN's ``Trajectory.fit`` + ``PSF.fit``
algorithm (REFERENCE section 2; written here from the description, not copied): a per-step Python
loop with scalar random draws, the 64-px canvas placement, 4 exposure fractions x M Python
iterations of bilinear splatting with clamped indices, and min-max normalisation of every PSF. It
reproduces the reference's cost (and its defects); it exists only to be timed.

benchkit: ``sample_trajectories`` + ``generate_trajectories`` + ``render_psfs`` on batches of 256.
Figures are per PSF. The reference makes 4 cumulative PSFs per call (DeblurGAN then uses one), so
benchkit is timed both for one PSF per trajectory (at its sampled exposure) and for all 4 fractions
(``render_exposure_stack``: the same PSFs as ``render_psfs`` on each trajectory repeated 4 times, without
the repeat).
"""

from __future__ import annotations

import time

from ._clock import cpu_s

REF_FRACTIONS = (1 / 100, 1 / 10, 1 / 2, 1)
REF_EXPL = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)


# ------------------------------------------------------------------ reference algorithm (re-implementation)


def reference_trajectory(rng, canvas: int = 64, iters: int = 2000, max_len: float = 60.0, expl: float = 0.005):
    """DeblurGAN ``Trajectory.fit`` algorithm: per-step Python loop over a numpy complex array with scalar
    numpy draws and numpy scalar maths, as the reference does; returns the complex positions [iters]."""
    import numpy as np

    centripetal = 0.7 * rng.uniform(0, 1)
    prob_big_shake = 0.2 * rng.uniform(0, 1)
    gaussian_shake = 10 * rng.uniform(0, 1)
    init_angle = 360 * rng.uniform(0, 1)
    v0 = complex(np.cos(np.radians(init_angle)), np.sin(np.radians(init_angle)))
    v = v0 * max_len / (iters - 1)
    if expl > 0:
        v = v0 * expl
    x = np.array([complex(0, 0)] * iters)
    tot_length = 0.0
    for t in range(iters - 1):
        if rng.uniform() < prob_big_shake * expl:
            nxt = 2 * v * (np.exp(complex(0, np.pi + (rng.uniform() - 0.5))))
        else:
            nxt = 0
        dv = nxt + expl * (gaussian_shake * complex(rng.normal(), rng.normal()) - centripetal * x[t]) * (
            max_len / (iters - 1))
        v += dv
        v = (v / float(np.abs(v))) * (max_len / float(iters - 1))
        x[t + 1] = x[t] + v
        tot_length = tot_length + abs(x[t + 1] - x[t])
    # placement on the canvas: bounding box shifted to start at 1, then roughly centred (not the centroid)
    x = x - 1j * np.min(x.imag) - np.min(x.real)
    x = x - 1j * np.remainder(x[0].imag, 1) - np.remainder(x[0].real, 1) + 1 + 1j
    x = x + 1j * np.ceil((canvas - max(x.imag)) / 2) + np.ceil((canvas - max(x.real)) / 2)
    return x


def reference_psfs(traj, canvas: int = 64, iters: int = 2000, fractions=REF_FRACTIONS):
    """DeblurGAN ``PSF.fit`` algorithm: 4 x M Python iterations with numpy scalar maths, cumulative PSF per
    fraction (clamped indices), then the reference's min-max normalisation (so PSFs do not sum to 1)."""
    import numpy as np

    def tri(d):
        return np.maximum(0, (1 - np.abs(d)))

    def tri_prod(a, b):
        return tri(a) * tri(b)

    psf = np.zeros((canvas, canvas))
    out = []
    for j in range(len(fractions)):
        prev = 0 if j == 0 else fractions[j - 1]
        frac = fractions[j]
        for t in range(len(traj)):
            if (frac * iters >= t) and (prev * iters < t - 1):
                prop = 1
            elif (frac * iters >= t - 1) and (prev * iters < t - 1):
                prop = frac * iters - (t - 1)
            elif (frac * iters >= t) and (prev * iters < t):
                prop = t - (prev * iters)
            elif (frac * iters >= t - 1) and (prev * iters < t):
                prop = (frac - prev) * iters
            else:
                prop = 0
            m2 = int(np.minimum(canvas - 1, np.maximum(1, np.floor(traj[t].real))))
            big2 = int(m2 + 1)
            m1 = int(np.minimum(canvas - 1, np.maximum(1, np.floor(traj[t].imag))))
            big1 = int(m1 + 1)
            big1, big2 = min(big1, canvas - 1), min(big2, canvas - 1)  # (the port can index past the canvas)
            psf[m1, m2] += prop * tri_prod(traj[t].real - m2, traj[t].imag - m1)
            psf[m1, big2] += prop * tri_prod(traj[t].real - big2, traj[t].imag - m1)
            psf[big1, m2] += prop * tri_prod(traj[t].real - m2, traj[t].imag - big1)
            psf[big1, big2] += prop * tri_prod(traj[t].real - big2, traj[t].imag - big1)
        k = psf / iters
        out.append((k - k.min()) / max(k.max() - k.min(), 1e-12))  # min-max, as the reference
    return out


# ------------------------------------------------------------------ bench


def _benchkit_batch(rng, cfg, b: int, all_fractions: bool):
    import numpy as np

    from benchkit.generators.motion.psf import render_exposure_stack, render_psfs
    from benchkit.generators.motion.trajectory import generate_trajectories, sample_trajectories

    params = sample_trajectories(rng, cfg, b)
    x = generate_trajectories(params)
    if all_fractions:  # bit-identical to render_psfs of each trajectory repeated at each fraction
        return render_exposure_stack(x, REF_FRACTIONS)
    return render_psfs(x, rng.choice([0.1, 0.5, 1.0], size=b))


def run(args) -> dict:
    import numpy as np

    from benchkit.generators.motion.trajectory import TrajectoryConfig

    quick = bool(getattr(args, "quick", False))
    n = int(getattr(args, "n", None) or (256 if quick else 1024))
    n_ref = 3 if quick else 8
    batch = 256
    rng = np.random.default_rng(0)

    t_traj = t_psf = 0.0
    c_ref = cpu_s()
    for i in range(n_ref):
        t0 = time.perf_counter()
        tr = reference_trajectory(rng, expl=float(rng.choice(REF_EXPL)))
        t1 = time.perf_counter()
        ks = reference_psfs(tr)
        t_psf += time.perf_counter() - t1
        t_traj += t1 - t0
        assert len(ks) == 4
    ref_cpu_ms = 1e3 * (cpu_s() - c_ref) / n_ref
    ref_ms = 1e3 * (t_traj + t_psf) / n_ref
    print(f"reference algorithm (DeblurGAN Trajectory.fit + PSF.fit, re-implemented), {n_ref} calls: "
          f"trajectory {1e3 * t_traj / n_ref:.1f} ms + PSF {1e3 * t_psf / n_ref:.1f} ms = {ref_ms:.1f} ms per call "
          f"(4 exposure PSFs per call)")

    cfg = TrajectoryConfig()
    _benchkit_batch(rng, cfg, batch, True)  # warm-up (imports, allocator)
    res, cpu = {}, {}
    for label, all_fr in (("one", False), ("all4", True)):
        done, t, c = 0, 0.0, 0.0
        while done < n:
            b = min(batch, n - done)
            c0, t0 = cpu_s(), time.perf_counter()
            ks = _benchkit_batch(rng, cfg, b, all_fr)
            t += time.perf_counter() - t0
            c += cpu_s() - c0
            done += b
            assert all(abs(float(k.sum()) - 1) < 1e-5 for k in ks)
        res[label] = 1e3 * t / n
        cpu[label] = 1e3 * c / n
    ratio1, ratio4 = ref_ms / res["one"], ref_ms / res["all4"]
    cratio1, cratio4 = ref_cpu_ms / cpu["one"], ref_cpu_ms / cpu["all4"]
    print(f"benchkit batched (batch {batch}), {n} trajectories: {res['one']:.3f} ms per trajectory + 1 PSF "
          f"-> {ratio1:.0f}x faster than the reference call (CPU time {cratio1:.0f}x)")
    print(f"benchkit batched, all 4 exposure fractions per trajectory: {res['all4']:.3f} ms per trajectory "
          f"-> {ratio4:.0f}x faster (CPU time {cratio4:.0f}x; like-for-like with the reference's 4 PSFs per call)")
    return {"bench": "psf", "n_reference": n_ref, "n_benchkit": n, "batch": batch,
            "reference_traj_ms": round(1e3 * t_traj / n_ref, 2), "reference_psf_ms": round(1e3 * t_psf / n_ref, 2),
            "reference_ms_per_call": round(ref_ms, 2), "benchkit_ms_per_psf": round(res["one"], 4),
            "benchkit_ms_per_traj_4psf": round(res["all4"], 4), "speedup_per_psf": round(ratio1, 1),
            "speedup_4psf": round(ratio4, 1), "reference_cpu_ms_per_call": round(ref_cpu_ms, 2),
            "benchkit_cpu_ms_per_psf": round(cpu["one"], 4), "benchkit_cpu_ms_per_traj_4psf": round(cpu["all4"], 4),
            "cpu_speedup_per_psf": round(cratio1, 1), "cpu_speedup_4psf": round(cratio4, 1),
            "target_speedup_per_psf": 300, "target_speedup_4psf": 150}
