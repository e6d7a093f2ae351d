"""Random camera-shake trajectories (Boracchi & Foi 2012; DeblurGAN ``motion_blur/``), batched.

Model (REFERENCE section 2). Positions are complex numbers (x + i y, pixels), ``x_0 = 0``,
``M`` samples, step length ``s = L / (M - 1)``::

    v_0     = e^{i theta} * (expl if expl > 0 else s)      (as the DeblurGAN port; only step 1 sees it)
    shake_t = 2 v_t e^{i (pi + u_t - 0.5)}   with probability prob_big_shake * expl, else 0
    dv_t    = shake_t + expl * (gaussian_shake * (n_t + i n'_t) - centripetal * x_t) * s
    v_{t+1} = (v_t + dv_t) / |v_t + dv_t| * s
    x_{t+1} = x_t + v_{t+1}

Every step has length exactly ``s``, so the polyline length is exactly ``L`` (to float rounding).

Sampling is separate from rendering. :func:`sample_trajectory` draws the scalar parameters
(:class:`TrajectoryParams`) and a 63-bit ``noise_seed``; the 4 x (M - 1) per-step draws (big-shake
decision, big-shake angle, two normals) are regenerated from ``noise_seed`` by a counter-based
SplitMix64 stream, so **a trajectory is a pure function of its TrajectoryParams** and manifests store
a seed, not 2000 points. :func:`generate_trajectories` builds B trajectories at once: the random
draws are made as [steps, B] arrays, a block of 64 steps at a time (vectorised over steps and
trajectories; the values do not depend on the block size); the recurrence
(which depends on x_t through the centripetal term) is a loop over the M-1 steps acting on whole
[B] vectors -- there is no per-trajectory Python loop.

Differences from the DeblurGAN port: explicit seeded randomness (no global RNG), every parameter
recorded, batched; the update rule and default ranges are the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchkit.params import Params

_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_DRAWS_PER_STEP = 4  # shake decision, shake angle, two uniforms for a Box-Muller normal pair
#: steps whose draws are made at once in generate_trajectories: 64 steps x B trajectories x 4 draws of 8 bytes
#: (0.5 MB at B = 256) stay in cache between the passes of step_draws; the values do not depend on it
_STEP_BLOCK = 64


MAX_ITERATIONS = 100_000  # M; memory and time grow linearly (4 draws per step)
MAX_LENGTH = 1000.0  # px, L; the PSF side grows with it


def _check_range(name: str, rng_pair, lo_bound: float = 0.0, hi_bound: float | None = None) -> None:
    """(lo, hi): finite, ordered, inside [lo_bound, hi_bound]; ConfigValueError (a ValueError) naming the key."""
    from benchkit.config import check_pair

    check_pair(name, rng_pair, lo_bound, hi_bound)


@dataclass(frozen=True)
class TrajectoryConfig:
    """Sampling ranges of the trajectory model (uniform ``U(lo, hi)``; lo == hi fixes a value).

    Defaults are Boracchi & Foi / DeblurGAN's: M = 2000 samples, L = 60 px, centripetal = 0.7 U,
    prob_big_shake = 0.2 U, gaussian_shake = 10 U, initial angle 360 U deg, except ``expl``:
    U(0.003, 0.01), the span of the values DeblurGAN's dataset script picks from
    {0.003, 0.005, 0.007, 0.008, 0.009, 0.01}. The Trajectory class default 0.1 U, i.e.
    ``expl_range = (0, 0.1)``, makes the path curl up (direction noise ~ expl * gaussian_shake rad per
    step): median kernel ~11 px instead of ~21 px for L = 60.
    """

    iterations: int = 2000  # M, samples along the trajectory (>= 2)
    max_length_range: tuple[float, float] = (60.0, 60.0)  # L, total path length (px)
    expl_range: tuple[float, float] = (0.003, 0.01)  # "anxiety": strength of random motion (>= 0)
    centripetal_range: tuple[float, float] = (0.0, 0.7)  # pull back towards the start point (>= 0)
    prob_big_shake_range: tuple[float, float] = (0.0, 0.2)  # big-shake probability per step = this * expl
    gaussian_shake_range: tuple[float, float] = (0.0, 10.0)  # std of the Gaussian velocity kick
    init_angle_range_deg: tuple[float, float] = (0.0, 360.0)  # initial direction (degrees)
    canvas: int = 64  # reference PSF canvas (px); used only by PSFConfig.size_mode = "canvas"

    def __post_init__(self):
        from benchkit.config import check_number

        check_number("iterations", self.iterations, 2, MAX_ITERATIONS, integer=True)
        check_number("canvas", self.canvas, 1, 4097, integer=True)
        _check_range("max_length_range", self.max_length_range, 0.0, MAX_LENGTH)
        _check_range("expl_range", self.expl_range, 0.0, 1.0)
        _check_range("centripetal_range", self.centripetal_range, 0.0, 100.0)
        _check_range("prob_big_shake_range", self.prob_big_shake_range, 0.0, 1.0)
        _check_range("gaussian_shake_range", self.gaussian_shake_range, 0.0, 1000.0)
        _check_range("init_angle_range_deg", self.init_angle_range_deg, -720.0, 720.0)


@dataclass(frozen=True)
class TrajectoryParams(Params):
    """Everything that determines one trajectory (it is a pure function of these fields)."""

    type_name: ClassVar[str] = "motion.TrajectoryParams"  # stable "__type__" (registry.PARAMS); never rename

    iterations: int  # M samples
    max_length: float  # L, px; the generated path length equals this exactly
    expl: float
    centripetal: float
    prob_big_shake: float
    gaussian_shake: float
    init_angle_deg: float
    noise_seed: int  # seeds the counter-based SplitMix64 stream of per-step draws
    canvas: int = 64  # reference canvas (px), see PSFConfig.size_mode


def sample_trajectories(rng, cfg: TrajectoryConfig, n: int) -> list[TrajectoryParams]:
    """Draw ``n`` TrajectoryParams from ``rng`` (a numpy Generator); the only random draws made."""
    from benchkit.seeding import child_seed

    def u(pair):
        return rng.uniform(pair[0], pair[1], size=n)

    length = u(cfg.max_length_range)
    expl = u(cfg.expl_range)
    centripetal = u(cfg.centripetal_range)
    big = u(cfg.prob_big_shake_range)
    gauss = u(cfg.gaussian_shake_range)
    angle = u(cfg.init_angle_range_deg)
    seeds = [child_seed(rng) for _ in range(n)]
    return [
        TrajectoryParams(int(cfg.iterations), float(length[i]), float(expl[i]), float(centripetal[i]), float(big[i]),
                         float(gauss[i]), float(angle[i]), int(seeds[i]), int(cfg.canvas))
        for i in range(n)
    ]


def sample_trajectory(rng, cfg: TrajectoryConfig) -> TrajectoryParams:
    """One TrajectoryParams (same draws as ``sample_trajectories(rng, cfg, 1)[0]``)."""
    return sample_trajectories(rng, cfg, 1)[0]


def splitmix64(seeds, counters):
    """SplitMix64 outputs (uint64) for broadcast ``seeds`` and ``counters``: mix(seed + (counter + 1) * gamma)."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.asarray(seeds, np.uint64) + (np.asarray(counters, np.uint64) + np.uint64(1)) * np.uint64(_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        return z ^ (z >> np.uint64(31))


def step_draws(noise_seeds, steps: int, start: int = 0):
    """Per-step random draws for trajectories with the given seeds, as [steps, B] float64 arrays.

    Returns ``(u_shake, u_angle, n_re, n_im)``: two U[0, 1) and two independent N(0, 1) (Box-Muller).
    Draw ``j`` of step ``t`` is SplitMix64 output number ``4 t + j`` of the trajectory's seed; the rows
    are steps ``start .. start + steps - 1`` (a block of a longer stream: the same values, elementwise).
    """
    import numpy as np

    seeds = np.asarray(noise_seeds, np.uint64)
    b = seeds.shape[0]
    # splitmix64(seeds, 4 t + j) for [steps, B, 4], computed in place (the same uint64 values: wrapping
    # arithmetic; no 16-MB temporaries per operation)
    z = np.empty((steps, b, _DRAWS_PER_STEP), np.uint64)
    z[...] = (np.arange(start, start + steps, dtype=np.uint64)[:, None, None] * np.uint64(_DRAWS_PER_STEP)
              + np.arange(_DRAWS_PER_STEP, dtype=np.uint64)[None, None, :])
    tmp = np.empty_like(z)
    with np.errstate(over="ignore"):
        z += np.uint64(1)
        z *= np.uint64(_GAMMA)
        z += seeds[None, :, None]
        for shift, mul in ((30, _MIX1), (27, _MIX2), (31, None)):
            np.right_shift(z, np.uint64(shift), out=tmp)
            z ^= tmp
            if mul is not None:
                z *= np.uint64(mul)
    z >>= np.uint64(11)
    uni = z.astype(np.float64)
    del z, tmp
    uni *= 1.0 / 9007199254740992.0  # [0, 1), 53-bit
    u_shake, u_angle = uni[..., 0], uni[..., 1]
    u1 = 1.0 - uni[..., 2]  # (0, 1]: log is finite
    r = np.log(u1, out=u1)
    r *= -2.0
    np.sqrt(r, out=r)
    phi = 2.0 * np.pi * uni[..., 3]
    n_im = np.sin(phi)
    n_im *= r
    np.cos(phi, out=phi)
    phi *= r
    return u_shake, u_angle, phi, n_im


def generate_trajectories(params):
    """Positions of B trajectories as a complex128 array [B, M] (x + i y, px; x_0 = 0).

    ``params`` is a sequence of TrajectoryParams sharing the same ``iterations`` M.
    Vectorised over the batch; loops over the M - 1 steps only.
    """
    import numpy as np

    params = list(params)
    if not params:
        return np.zeros((0, 0), np.complex128)
    m = params[0].iterations
    if any(p.iterations != m for p in params):
        raise ValueError("generate_trajectories: all trajectories of a batch need the same iterations")
    b = len(params)
    col = lambda name: np.array([getattr(p, name) for p in params], np.float64)
    length, expl, centripetal = col("max_length"), col("expl"), col("centripetal")
    big, gauss, angle = col("prob_big_shake"), col("gaussian_shake"), col("init_angle_deg")
    seeds = np.array([p.noise_seed for p in params], np.uint64)
    step = length / (m - 1)

    shake_p = (big * expl)[None, :]
    kick = (expl * gauss * step)[None, :]
    c = expl * centripetal * step  # centripetal gain, [B]

    v = np.exp(1j * np.deg2rad(angle)) * np.where(expl > 0, expl, step)
    x = np.zeros((m, b), np.complex128)
    tiny = np.finfo(np.float64).tiny
    v = np.array(v, np.complex128)
    w = np.empty(b, np.complex128)
    cx = np.empty(b, np.complex128)
    norm = np.empty(b, np.float64)
    mul, add, sub, absolute, maximum, divide = np.multiply, np.add, np.subtract, np.abs, np.maximum, np.divide
    for t0 in range(0, m - 1, _STEP_BLOCK):  # draws made per block of steps: a cache-sized working set
        n = min(_STEP_BLOCK, m - 1 - t0)
        u_shake, u_angle, n_re, n_im = step_draws(seeds, n, start=t0)  # [n, B]
        # v + big_shake = v * a_t with a_t = 1 + 2 e^{i (pi + u - 0.5)} on shake steps, 1 otherwise (the
        # exponential is evaluated on the shake steps only: the same values, elementwise)
        a = np.full(u_shake.shape, 1.0 + 0j)
        shake = np.nonzero(u_shake < shake_p)
        a[shake] = 1.0 + 2.0 * np.exp(1j * (np.pi + u_angle[shake] - 0.5))
        g = kick * (n_re + 1j * n_im)  # Gaussian velocity kick, [n, B]
        for j in range(n):  # same operations as v' = (v a + g - c x) step / |.|, x' = x + v', in place
            t = t0 + j
            xt = x[t]
            mul(v, a[j], out=w)
            add(w, g[j], out=w)
            sub(w, mul(c, xt, out=cx), out=w)
            divide(step, maximum(absolute(w, out=norm), tiny, out=norm), out=norm)
            mul(w, norm, out=v)
            add(xt, v, out=x[t + 1])
    return np.ascontiguousarray(x.T)


def generate_trajectory(params: TrajectoryParams):
    """Positions of one trajectory, complex128 [M]."""
    return generate_trajectories([params])[0]


def path_length(x):
    """Polyline length (px) of trajectories ``x`` ([..., M] complex)."""
    import numpy as np

    return np.abs(np.diff(x, axis=-1)).sum(axis=-1)
