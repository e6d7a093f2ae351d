"""benchkit.ops: one convolution API and one padding helper, held to independent references.

Tolerances (max |difference|, images in [0, 1], kernels summing to 1):
- float64 numpy paths vs scipy.ndimage / scipy.signal (float64): 1e-12;
- float32 paths (cv2, torch, numpy float32) vs the float64 reference: 2e-6 (float32 rounding of
  sums of up to ~250 terms, FFT rounding);
- backends / methods against each other on the same float32 input: 2e-6;
- padding: exact (every backend copies values).
"""

import ast
import pathlib

import numpy as np
import pytest
import torch
from scipy import ndimage, signal

from benchkit import ops
from benchkit.ops.boundary import NDIMAGE_MODE, NP_PAD_MODE

BOUNDARIES = ops.BOUNDARIES
PATHS = [("numpy", "fft"), ("numpy", "direct"), ("cv2", "fft"), ("cv2", "direct"), ("torch", "fft"),
         ("torch", "direct")]
TOL64, TOL32 = 1e-12, 2e-6
# (image shape, kernel shape): odd, even, mixed sides; a kernel larger than the image (pads wider than it)
CASES = [((23, 31, 3), (5, 7)), ((20, 17, 3), (4, 6)), ((19, 22), (3, 8)), ((7, 6, 2), (11, 9))]


def _data(shape, kshape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    k = rng.random(kshape)
    return x, k / k.sum()


def _reference(x, k, boundary, mode):
    """scipy.ndimage (float64), channel by channel; the kernel centre is index K//2 in both modes."""
    if mode == "correlation":
        f = lambda c: ndimage.correlate(c, k, mode=NDIMAGE_MODE[boundary], cval=0.0)  # noqa: E731
    else:
        # ndimage.convolve keeps an even kernel's centre at K//2 too (it flips, then shifts the origin)
        f = lambda c: ndimage.convolve(c, k, mode=NDIMAGE_MODE[boundary], cval=0.0)  # noqa: E731
    if x.ndim == 2:
        return f(x)
    return np.stack([f(x[..., c]) for c in range(x.shape[2])], -1)


def _run(x, k, backend, method, boundary, mode, **kw):
    if backend == "torch":
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0)) if x.ndim == 3 else x)
        y = ops.convolve(t, k, method=method, boundary=boundary, mode=mode, backend="torch", **kw).numpy()
        return np.moveaxis(y, 0, -1) if x.ndim == 3 else y
    return ops.convolve(x, k, method=method, boundary=boundary, mode=mode, backend=backend, **kw)


def test_the_convention_by_hand():
    """A delta off the centre shifts the image: convolution moves content toward +offset, correlation
    toward -offset (centre K//2, also for even sides)."""
    x = np.zeros((9, 9))
    x[4, 4] = 1.0
    k = np.zeros((4, 4))
    k[2 + 1, 2] = 1.0  # one row below the centre (2, 2)
    conv = ops.convolve(x, k, boundary="constant", method="direct")
    corr = ops.convolve(x, k, boundary="constant", method="direct", mode="correlation")
    assert conv[5, 4] == 1.0 and corr[3, 4] == 1.0


@pytest.mark.parametrize("mode", ["convolution", "correlation"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_every_path_matches_scipy_ndimage(case, boundary, mode):
    x, k = _data(*case)
    ref = _reference(x, k, boundary, mode)
    for backend, method in PATHS:
        if backend == "numpy":  # float64 end to end
            got = _run(x, k, backend, method, boundary, mode)
            assert got.dtype == np.float64 and got.shape == x.shape
            assert np.abs(got - ref).max() < TOL64, (backend, method)
        got = _run(x.astype(np.float32), k, backend, method, boundary, mode)
        assert got.dtype == np.float32 and got.shape == x.shape, (backend, method)
        assert np.abs(got - ref).max() < TOL32, (backend, method, np.abs(got - ref).max())


@pytest.mark.parametrize("mode", ["convolution", "correlation"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_backends_and_methods_agree_with_each_other(boundary, mode):
    x, k = _data((33, 40, 3), (13, 12), seed=1)  # 156 taps: "auto" takes the FFT on cv2/torch
    x = x.astype(np.float32)
    outs = {p: _run(x, k, *p, boundary, mode) for p in PATHS + [("cv2", "auto"), ("torch", "auto")]}
    base = outs[("numpy", "fft")]
    for p, y in outs.items():
        assert np.abs(y - base).max() < TOL32, (p, np.abs(y - base).max())


@pytest.mark.parametrize("mode", ["convolution", "correlation"])
@pytest.mark.parametrize("kshape", [(5, 7), (4, 6)])
def test_full_output_matches_scipy_signal(kshape, mode):
    x, k = _data((15, 18, 3), kshape, seed=2)
    f = signal.convolve if mode == "convolution" else signal.correlate
    ref = np.stack([f(x[..., c], k, mode="full", method="direct") for c in range(3)], -1)
    for backend, method in PATHS:
        got = _run(x.astype(np.float32), k, backend, method, "reflect", mode, output="full")
        assert got.shape == ref.shape, (backend, method)
        assert np.abs(got - ref).max() < TOL32, (backend, method)
    got64 = ops.convolve(x, k, output="full", mode=mode)
    assert np.abs(got64 - ref).max() < TOL64


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_constant_boundary_equals_scipy_signal_same(boundary):
    """Zero boundary: the centred block of scipy.signal's full result (an independent second reference)."""
    x, k = _data((21, 26), (7, 5), seed=3)
    full = signal.convolve(x, k, mode="full", method="direct")
    ref = full[3: 3 + 21, 2: 2 + 26]
    assert np.abs(ops.convolve(x, k, boundary="constant") - ref).max() < TOL64
    assert np.abs(ops.convolve(x, k, boundary="constant", method="direct") - ref).max() < TOL64


@pytest.mark.parametrize("backend", ["numpy", "cv2", "torch"])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_separable_taps_equal_the_outer_product(backend, method):
    x, _ = _data((24, 29, 3), (1, 1), seed=4)
    ky, kx = np.array([0.1, 0.5, 0.3, 0.1]), np.array([0.2, 0.6, 0.2])
    for mode in ("convolution", "correlation"):
        a = _run(x.astype(np.float32), (ky, kx), backend, method, "symmetric", mode)
        ref = _reference(x, np.outer(ky, kx), "symmetric", mode)
        assert np.abs(a - ref).max() < TOL32, mode


def test_torch_batch_with_per_image_kernels_equals_single_calls():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((3, 2, 20, 24)).astype(np.float32))
    kernels = [rng.random((5, 5)), rng.random((9, 9)), rng.random((3, 3))]
    kernels = [k / k.sum() for k in kernels]
    for method in ("fft", "direct"):
        for boundary in BOUNDARIES:
            batch = ops.convolve(x, kernels, method=method, boundary=boundary)
            assert batch.shape == x.shape
            for i, k in enumerate(kernels):
                one = ops.convolve(x[i], k, method=method, boundary=boundary)
                assert torch.abs(batch[i] - one).max() < TOL32, (method, boundary, i)
    with pytest.raises(ValueError):
        ops.convolve(x, np.ones((2, 3, 3)) / 9)  # 2 kernels for 3 images


def test_cv2_out_buffer_and_cached_spectrum():
    x, k = _data((30, 34, 3), (15, 15), seed=6)
    x = x.astype(np.float32)
    a = ops.convolve(x, k, method="fft", backend="cv2", mode="correlation")
    out = np.empty_like(x)
    b = ops.convolve(x, k, method="fft", backend="cv2", mode="correlation", out=out, cache_spectrum=True)
    c = ops.convolve(x, k, method="fft", backend="cv2", mode="correlation", cache_spectrum=True)  # cache hit
    assert b is out and np.array_equal(b, c)
    assert np.abs(a - b).max() < 1e-7
    ref = _reference(x.astype(np.float64), k, "reflect", "correlation")
    assert np.abs(a - ref).max() < TOL32


def test_channels_first_axes_and_gray():
    x, k = _data((3, 16, 19), (5, 3), seed=7)
    y = ops.convolve(x, k, axes=(1, 2), boundary="edge")
    ref = np.stack([_reference(x[c], k, "edge", "convolution") for c in range(3)])
    assert y.shape == x.shape and np.abs(y - ref).max() < TOL64


# ------------------------------------------------------------------------------ pad


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("pads", [3, (2, 5), ((0, 4), (6, 1)), ((9, 12), (8, 15))])  # last: wider than the image
def test_pad_matches_np_pad_for_every_backend(boundary, pads):
    rng = np.random.default_rng(8)
    img = rng.random((7, 6, 3)).astype(np.float32)
    (t, b), (l, r) = ops.boundary._widths(pads)
    ref = np.pad(img, [(t, b), (l, r), (0, 0)], mode=NP_PAD_MODE[boundary])
    assert np.array_equal(ops.pad(img, pads, boundary), ref)
    assert np.array_equal(ops.pad(img, pads, boundary, backend="cv2"), ref)
    t_img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    for x in (t_img, t_img[None], t_img[0]):  # [C, H, W], [B, C, H, W], [H, W]
        got = ops.pad(x, pads, boundary).numpy()
        want = ref.transpose(2, 0, 1).reshape(x.shape[:-2] + ref.shape[:2]) if x.dim() > 2 else ref[..., 0]
        assert np.array_equal(got, want), x.dim()
    if boundary != "constant":
        idx = ops.pad_index(6, l, boundary, r)
        assert np.array_equal(img[:, idx], np.pad(img, [(0, 0), (l, r), (0, 0)], mode=NP_PAD_MODE[boundary]))


def test_pad_other_axes_and_integer_images():
    img = np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4)
    got = ops.pad(img, (1, 2), "symmetric", axes=(1, 2))
    assert np.array_equal(got, np.pad(img, [(0, 0), (1, 1), (2, 2)], mode="symmetric"))


def test_rejects_unknown_names():
    x = np.zeros((8, 8), np.float32)
    k = np.ones((3, 3), np.float32) / 9
    for kw in ({"boundary": "mirror"}, {"method": "winograd"}, {"mode": "conv"}, {"backend": "jax"},
               {"output": "valid"}):
        with pytest.raises(ValueError):
            ops.convolve(x, k, **kw)
    with pytest.raises(ValueError):
        ops.pad(x, 2, "wrap")  # numpy's name; ours is 'circular'
    with pytest.raises(TypeError):
        ops.convolve(x.astype(np.uint8), k)


def test_ops_imports_nothing_else_from_benchkit():
    """ops is the bottom layer: no import of another benchkit module (also inside functions)."""
    root = pathlib.Path(ops.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not node.module.startswith("benchkit") or node.module.startswith("benchkit.ops"), (path, node.module)
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert not a.name.startswith("benchkit") or a.name.startswith("benchkit.ops"), (path, a.name)
