"""Non-blind deconvolution baselines: Wiener filter and Richardson-Lucy, FFT-based.

Kernel: the sample's recorded PSF (``psf`` output of the dataset, a 2-D float32 array
summing to 1, or ``k x k x 3`` per channel) when present; otherwise a stated blind
estimate, an isotropic Gaussian of ``blind_sigma`` px (size ``2*ceil(3 sigma)+1``).
The blur model is convolution ``lq = psf * gt`` with the kernel centre at
``(kh // 2, kw // 2)``. Images are reflect-padded (``numpy 'symmetric'``) by the kernel
size before the circular FFT, and all three channels are processed in one vectorised
transform (``scipy.fft`` real FFTs in float32). The math lives in :mod:`benchkit.ops.deconv`.
"""

from __future__ import annotations

from benchkit.methods.base import PerImageMethod, as_float_rgb


class _PSFOracle:
    """Mixin: the method reads the dataset's recorded PSF (ground-truth blur) when the dataset has one."""

    oracle = True

    def uses_oracle(self, aux_names) -> bool:
        return "psf" in set(aux_names)


def gaussian_psf(sigma: float):
    import numpy as np

    r = int(np.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def kernel_for(ctx: dict | None, blind_sigma: float):
    """(kernel, source) for one sample: the recorded PSF if the context has one, else the Gaussian."""
    import numpy as np

    from benchkit.errors import BadInputError

    psf = (ctx or {}).get("psf")
    if psf is None:
        return gaussian_psf(blind_sigma), f"blind gaussian sigma={blind_sigma}"
    psf = np.asarray(psf, dtype=np.float64)
    if not (psf.ndim == 2 or (psf.ndim == 3 and psf.shape[2] in (1, 3))):
        raise BadInputError((ctx or {}).get("psf_path", "psf"), f"PSF shape {psf.shape} is not k x k or k x k x 3",
                            "deconvolution baselines need one spatially invariant kernel per image")
    s = psf.sum(axis=(0, 1))
    if np.any(~np.isfinite(psf)) or np.any(s <= 0):
        raise BadInputError((ctx or {}).get("psf_path", "psf"), "PSF is not finite/positive", "rebuild the dataset")
    return (psf / s).astype(np.float32), "recorded psf"


def wiener(img, psf, nsr: float):
    """Wiener deconvolution ``X = conj(H) Y / (|H|^2 + nsr)`` of a float32 HxWx3 image (:func:`benchkit.ops.wiener_deconvolve`)."""
    from benchkit.ops import wiener_deconvolve

    return as_float_rgb(wiener_deconvolve(img, psf, nsr))


def richardson_lucy(img, psf, iterations: int, eps: float = 1e-6):
    """Richardson-Lucy deconvolution, ``iterations`` steps (:func:`benchkit.ops.richardson_lucy`)."""
    from benchkit.ops import richardson_lucy as rl

    return as_float_rgb(rl(img, psf, iterations, eps))


class Wiener(_PSFOracle, PerImageMethod):
    """Wiener deconvolution with the recorded PSF (or the blind Gaussian), constant noise-to-signal ratio."""

    name = "wiener"
    version = "1"
    task = "restore"
    scales = (1,)
    steps = 0
    description = "Wiener deconvolution (FFT, reflect padding); recorded PSF, else Gaussian"

    @classmethod
    def default_options(cls):
        return {"nsr": 0.01, "blind_sigma": 1.5}

    def restore_one(self, x, context, scale):
        k, _src = kernel_for(context, float(self.options["blind_sigma"]))
        return wiener(x, k, float(self.options["nsr"]))


class RichardsonLucy(_PSFOracle, PerImageMethod):
    """Richardson-Lucy deconvolution with the recorded PSF (or the blind Gaussian)."""

    name = "richardson-lucy"
    version = "1"
    task = "restore"
    scales = (1,)
    steps = 0
    description = "Richardson-Lucy deconvolution (FFT, reflect padding); recorded PSF, else Gaussian"

    @classmethod
    def default_options(cls):
        return {"iterations": 30, "blind_sigma": 1.5}

    def restore_one(self, x, context, scale):
        k, _src = kernel_for(context, float(self.options["blind_sigma"]))
        return richardson_lucy(x, k, int(self.options["iterations"]))
