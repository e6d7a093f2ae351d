"""The built-in methods: deconvolution with the true PSF really improves PSNR; sizes and contracts."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def blurred(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset

    d = write_toy_dataset(tmp_path_factory.mktemp("m") / "blur", "blur", n=3, size=96, seed=3, noise=0.003)
    from benchkit.harness.benchmark import DatasetSpec, open_dataset

    return open_dataset(DatasetSpec("blur", "folder", path=str(d)), d.parent, d.parent)


def _method(name, **opts):
    from benchkit.registry import resolve

    m = resolve("method", name)(**opts)
    m.setup("cpu", None)
    assert m.availability() == (True, "")
    return m


def _psnr(a, b):
    from skimage.metrics import peak_signal_noise_ratio

    return peak_signal_noise_ratio(a, b, data_range=1.0)


def test_deconvolution_with_true_psf_beats_identity(blurred):
    from benchkit.harness.evaluate import _context
    from benchkit.images import read_image

    ds = blurred
    lqs = [read_image(ds.lq_path(r)) for r in ds.records]
    gts = [read_image(ds.gt_path(r)) for r in ds.records]
    ctx = [_context(ds, r) for r in ds.records]
    assert all(c["psf"] is not None and abs(c["psf"].sum() - 1) < 1e-5 for c in ctx)
    base = [_psnr(g, x) for g, x in zip(gts, lqs)]
    for name in ("wiener", "richardson-lucy"):
        outs = _method(name).restore(lqs, ctx, 1)
        gains = [_psnr(g, o) - b for g, o, b in zip(gts, outs, base)]
        assert all(o.shape == x.shape and o.dtype == np.float32 for o, x in zip(outs, lqs))
        assert min(gains) > 1.0, (name, gains)
    # without a recorded PSF the stated blind Gaussian is used (still a valid same-size output)
    blind = _method("wiener").restore(lqs[:1], [{"psf": None}], 1)[0]
    assert blind.shape == lqs[0].shape and np.isfinite(blind).all()


def test_fft_convolution_model_matches_spatial():
    """The deconvolution's forward model (OTF) is the dataset's convolution (centre k//2)."""
    import scipy.fft as sfft

    import cv2

    from benchkit.generators.motion.fftblur import pad_for_fft, psf_otf
    from benchkit.harness.toyset import line_psf

    rng = np.random.default_rng(0)
    img = rng.random((40, 50, 3), dtype=np.float32)
    k = line_psf(rng, 7)
    padded, crop = pad_for_fft(img, k)
    H = psf_otf(k, padded.shape[:2])
    conv = sfft.irfft2(sfft.rfft2(padded, axes=(0, 1)) * H, s=padded.shape[:2], axes=(0, 1))[crop]
    ref = cv2.filter2D(img, -1, k[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT_101)  # independent
    assert np.abs(conv[5:-5, 5:-5] - ref[5:-5, 5:-5]).max() < 1e-4


def test_classical_sizes_and_scales():
    rng = np.random.default_rng(1)
    x = rng.random((20, 24, 3), dtype=np.float32)
    ctx = [{"key": "a", "psf": None}]
    assert _method("bicubic").restore([x], ctx, 4)[0].shape == (80, 96, 3)
    for name in ("identity", "unsharp", "nlmeans"):
        out = _method(name).restore([x], ctx, 1)[0]
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert _method("identity").supports(4)[0] is False
    assert _method("bicubic").supports(1)[0] is False


def test_method_options_and_info_tag():
    from benchkit.errors import ConfigError

    a, b = _method("wiener"), _method("wiener", nsr=0.05)
    assert a.info()["options"]["nsr"] == 0.01 and a.tag() != b.tag()
    with pytest.raises(ConfigError, match="nsrr"):
        _method("wiener", nsrr=1)


def test_unavailable_entries_never_run():
    from benchkit.errors import UnavailableError
    from benchkit.registry import resolve

    for name in ("s3diff", "osdd"):
        m = resolve("method", name)()
        m.setup("cpu", None)
        ok, why = m.availability()
        assert not ok and why
        with pytest.raises(UnavailableError):
            m.restore([np.zeros((8, 8, 3), np.float32)], [{}], 1)
