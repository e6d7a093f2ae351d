"""FFT blur == direct spatial convolution for every boundary; identity kernel; linear light; torch path."""

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage

from benchkit.generators.motion.fftblur import (
    BOUNDARIES,
    NDIMAGE_MODE,
    convolve_full,
    decode,
    encode,
    fft_blur,
    fft_blur_torch,
)


def _direct(x, k, boundary):
    return np.stack([ndimage.convolve(x[..., c].astype(np.float64), k.astype(np.float64),
                                      mode=NDIMAGE_MODE[boundary]) for c in range(x.shape[2])], -1)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape,ksize", [((37, 50, 3), (9, 13)), ((12, 15, 3), (41, 41))])
def test_equals_direct_convolution(boundary, shape, ksize):
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    k = rng.random(ksize)
    k /= k.sum()
    ref = _direct(x, k, boundary)
    y = fft_blur(x, k, boundary)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, ref, atol=2e-6)
    np.testing.assert_allclose(fft_blur(x.astype(np.float64), k, boundary), ref, atol=1e-12)
    for impl in ("auto", "torch"):
        yt = fft_blur_torch(torch.from_numpy(x).permute(2, 0, 1), k, boundary, impl=impl).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(yt, ref, atol=2e-6)


def test_equals_cv2_filter2d_and_gray():
    rng = np.random.default_rng(1)
    x = rng.random((64, 80, 3), dtype=np.float32)
    k = rng.random((15, 15)).astype(np.float32)
    k /= k.sum()
    ref = cv2.filter2D(x, -1, np.ascontiguousarray(k[::-1, ::-1]), borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(fft_blur(x, k, "reflect"), ref, atol=2e-6)
    np.testing.assert_allclose(fft_blur(x[..., 0], k, "reflect"), ref[..., 0], atol=2e-6)


def test_identity_kernel_is_a_noop():
    x = np.random.default_rng(2).random((31, 29, 3), dtype=np.float32)
    for size in (1, 3, 7):
        d = np.zeros((size, size), np.float32)
        d[size // 2, size // 2] = 1
        for b in BOUNDARIES:
            np.testing.assert_array_equal(fft_blur(x, d, b), x)
            np.testing.assert_array_equal(fft_blur(x, d, b, linear_light="srgb"), x)
        np.testing.assert_allclose(fft_blur_torch(torch.from_numpy(x).permute(2, 0, 1), d).permute(1, 2, 0).numpy(),
                                   x, atol=1e-6)


def test_torch_batched_per_image_kernels():
    rng = np.random.default_rng(3)
    x = rng.random((3, 40, 44, 3), dtype=np.float32)
    ks = [rng.random((s, s)) for s in (3, 9, 5)]
    ks = [k / k.sum() for k in ks]
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    y = fft_blur_torch(t, ks, "symmetric").permute(0, 2, 3, 1).numpy()
    for i in range(3):  # CPU tensors (impl "auto" = "host"): fft_blur's own pixels
        np.testing.assert_array_equal(y[i], fft_blur(x[i], ks[i], "symmetric"))
    yk = fft_blur_torch(t, ks, "symmetric", impl="torch").permute(0, 2, 3, 1).numpy()  # the batched torch.fft kernels
    for i in range(3):
        np.testing.assert_allclose(yk[i], fft_blur(x[i], ks[i], "symmetric"), atol=2e-6)
    with pytest.raises(ValueError):
        fft_blur_torch(t, ks, impl="gpu")


def test_linear_light():
    rng = np.random.default_rng(4)
    v = rng.random(1000)
    for curve in ("srgb", "gamma2.2"):
        np.testing.assert_allclose(encode(decode(v, curve), curve), v, atol=1e-12)
    k = rng.random((7, 7))
    k /= k.sum()
    const = np.full((20, 20, 3), 0.3, np.float32)
    np.testing.assert_allclose(fft_blur(const, k, linear_light="srgb"), const, atol=1e-5)
    x = rng.random((20, 20, 3)).astype(np.float32)
    lin = fft_blur(x, k, linear_light="gamma2.2")
    np.testing.assert_allclose(lin, np.clip(fft_blur(x ** 2.2, k), 0, 1) ** (1 / 2.2), atol=1e-5)
    assert np.abs(lin - fft_blur(x, k)).max() > 1e-3  # linear light is not the same as blurring encoded values


def test_convolve_full_matches_numpy():
    rng = np.random.default_rng(5)
    a = rng.random((10, 12, 2))
    k = rng.random((5, 3))
    ref = np.stack([np.real(np.fft.ifft2(np.fft.fft2(a[..., c], (14, 14)) * np.fft.fft2(k, (14, 14))))[:14, :14]
                    for c in range(2)], -1)
    np.testing.assert_allclose(convolve_full(a, k), ref, atol=1e-12)


def test_rejects_bad_input():
    x = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError):
        fft_blur(x, np.ones((4, 4)))
    with pytest.raises(ValueError):
        fft_blur(x, np.ones((3, 3)), boundary="wrap")
    with pytest.raises(TypeError):
        fft_blur(x.astype(np.uint8), np.ones((3, 3)))


def test_psf_otf_is_the_forward_blur():
    """psf_otf (used by the deconvolutions) applies the same convolution as fft_blur (circular)."""
    import scipy.fft as sfft

    from benchkit.generators.motion.fftblur import fft_blur, psf_otf

    rng = np.random.default_rng(3)
    img = rng.random((32, 40, 3)).astype(np.float32)
    k = rng.random((5, 5)).astype(np.float32)
    k /= k.sum()
    conv = sfft.irfft2(sfft.rfft2(img, axes=(0, 1)) * psf_otf(k, img.shape[:2]), s=img.shape[:2], axes=(0, 1))
    assert np.abs(conv - fft_blur(img, k, boundary="circular")).max() < 1e-5
    k3 = np.stack([k, k.T, k], -1)
    conv3 = sfft.irfft2(sfft.rfft2(img, axes=(0, 1)) * psf_otf(k3, img.shape[:2]), s=img.shape[:2], axes=(0, 1))
    assert np.abs(conv3[..., 1] - fft_blur(img[..., 1], k.T, boundary="circular")).max() < 1e-5
