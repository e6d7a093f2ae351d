"""PSF rendering with per-PSF accumulator slabs and blocked trajectory draws: bit-identical to the dense layout.

``_dense_reference`` is the B x kmax^2 layout ``render_psfs`` used before (benchkit 0.1.0 datasets were made
with it): every weighted sample splatted into one dense slab per PSF of the batch's largest side, one
``bincount`` per bilinear corner. The compact layout must give the same bytes (same sums, same order).
"""

import numpy as np
import pytest

from benchkit.generators.motion.psf import exposure_weights, render_exposure_stack, render_psfs
from benchkit.generators.motion.trajectory import (
    TrajectoryConfig,
    generate_trajectories,
    sample_trajectories,
    step_draws,
)


def _dense_reference(x, exposures, centre=True, margin=1, size=None):
    x = np.atleast_2d(np.asarray(x, np.complex128))
    b, m = x.shape
    w = exposure_weights(m, np.broadcast_to(np.asarray(exposures, np.float64), (b,)))
    active = w > 0
    if centre:
        ref = (w * x).sum(axis=1) / w.sum(axis=1)
    else:
        big = np.where(active, 1.0, np.nan)
        re, im = x.real * big, x.imag * big
        ref = (np.nanmin(re, 1) + np.nanmax(re, 1)) / 2 + 1j * (np.nanmin(im, 1) + np.nanmax(im, 1)) / 2
    d = x - ref[:, None]
    if size is None:
        ext = np.where(active, np.maximum(np.abs(d.real), np.abs(d.imag)), 0.0).max(axis=1)
        half = np.ceil(ext - 1e-9).astype(np.int64) + int(margin)
    else:
        half = np.full(b, (size - 1) // 2, np.int64)
        w = np.where(np.maximum(np.abs(d.real), np.abs(d.imag)) > half[:, None], 0.0, w)
    side = int(2 * half.max() + 1) + 1
    rows, cols = np.nonzero(w > 0)
    ds, ws, hs = d[rows, cols], w[rows, cols], half[rows]
    px, py = ds.real + hs, ds.imag + hs
    ix0, iy0 = np.floor(px), np.floor(py)
    fx, fy = px - ix0, py - iy0
    flat = rows * (side * side) + iy0.astype(np.int64) * side + ix0.astype(np.int64)
    wy1 = ws * fy
    wy0 = ws - wy1
    acc = None
    for off, wy in ((0, wy0), (side, wy1)):
        wr = wy * fx
        for o, wt in ((off, wy - wr), (off + 1, wr)):
            part = np.bincount(flat + o, weights=wt, minlength=b * side * side)
            acc = part if acc is None else acc + part
    acc = acc.reshape(b, side, side)
    out = []
    for i in range(b):
        k = int(2 * half[i] + 1)
        psf = acc[i, :k, :k]
        total = psf.sum()
        if total <= 0:
            psf = np.zeros((k, k))
            psf[k // 2, k // 2] = 1.0
            total = 1.0
        p32 = (psf / total).astype(np.float32)
        out.append(p32 / np.float32(p32.sum(dtype=np.float64)))
    return out


def _same(a, b):
    return len(a) == len(b) and all(p.shape == q.shape and p.dtype == q.dtype and p.tobytes() == q.tobytes()
                                    for p, q in zip(a, b))


@pytest.fixture(scope="module")
def trajs():
    rng = np.random.default_rng(5)
    cfgs = [TrajectoryConfig(), TrajectoryConfig(expl_range=(0.0, 0.1)), TrajectoryConfig(iterations=7),
            TrajectoryConfig(iterations=300, max_length_range=(5.0, 120.0), expl_range=(0.0, 1.0),
                             prob_big_shake_range=(0.5, 1.0))]
    return [generate_trajectories(sample_trajectories(rng, c, 24)) for c in cfgs]


@pytest.mark.parametrize("kw", [{}, {"centre": False}, {"margin": 3}, {"size": 65}, {"size": 9},
                                {"centre": False, "size": 15}])
def test_compact_slabs_equal_the_dense_layout_bit_for_bit(trajs, kw):
    rng = np.random.default_rng(1)
    for x in trajs:
        for ex in (1.0, rng.choice([0.1, 0.5, 1.0], size=len(x)), rng.uniform(1e-3, 1.0, size=len(x))):
            assert _same(render_psfs(x, ex, **kw), _dense_reference(x, ex, **kw))


def test_exposure_stack_equals_render_psfs_of_repeated_trajectories(trajs):
    fr = (0.01, 0.1, 0.5, 1.0)
    for x in trajs:
        stack = render_exposure_stack(x, fr)
        assert _same(stack, render_psfs(np.repeat(x, len(fr), axis=0), np.tile(fr, len(x))))
        assert _same(stack[1::4], render_psfs(x, 0.1))
    with pytest.raises(ValueError):
        render_exposure_stack(trajs[0], (0.0, 1.0))


def test_single_sample_psf_with_no_margin_is_a_delta():
    """One weighted sample (3 steps at 1/100 exposure) and margin 0: its offset from its own centroid is a
    rounding residue (~1e-16, maybe negative); the dense layout indexed bin -1 there (an error for the first
    PSF of a batch); the spare leading bin and rows take it."""
    x = generate_trajectories(sample_trajectories(np.random.default_rng(0), TrajectoryConfig(iterations=3), 4))
    for k in render_psfs(x, 0.01, margin=0):
        assert k.shape == (1, 1) and k[0, 0] == 1.0


def test_step_draws_in_blocks_equal_one_block():
    seeds = np.array([1, 2**63 - 5, 12345], np.uint64)
    whole = step_draws(seeds, 150)
    parts = [step_draws(seeds, 64, start=0), step_draws(seeds, 64, start=64), step_draws(seeds, 22, start=128)]
    for j in range(4):
        assert np.concatenate([p[j] for p in parts]).tobytes() == whole[j].tobytes()
