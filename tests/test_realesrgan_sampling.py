"""Real-ESRGAN sampling: choice frequencies, ranges, determinism of apply, Params JSON round trip.

Statistical bound used throughout: with N draws of a choice of probability p, the count must satisfy
|count - N p| <= 4.5 sqrt(N p (1 - p)) (two-sided normal tail ~7e-6 per check; the seed is fixed,
so the test is deterministic). N = 20,000 samples.
"""

import math

import numpy as np
import pytest

from benchkit.generators.base import SampleContext
from benchkit.generators.realesrgan import ops
from benchkit.generators.realesrgan.kernels import KERNEL_FAMILIES
from benchkit.generators.realesrgan.params import KernelParams, NoiseParams, RealESRGANParams
from benchkit.generators.realesrgan.pipeline import RealESRGANGenerator
from benchkit.generators.realesrgan.sampling import sample_params
from benchkit.generators.realesrgan.settings import KERNEL_SIZES, RealESRGANConfig
from benchkit.params import Params

N = 20_000
BOUND = 4.5


def _check(count, n, p, what):
    sd = math.sqrt(n * p * (1 - p))
    if p in (0.0, 1.0):
        assert count == n * p, what
        return
    assert abs(count - n * p) <= BOUND * sd, f"{what}: {count}/{n} vs p={p} ({(count - n * p) / sd:.2f} sigma)"


@pytest.fixture(scope="module")
def draws():
    cfg = RealESRGANConfig()
    rng = np.random.default_rng(20240531)
    return cfg, [sample_params(rng, cfg, 256, 256) for _ in range(N)]


def _kernel_freqs(kps, kc, what):
    n = len(kps)
    _check(sum(k.family == "sinc" for k in kps), n, kc.sinc_prob, f"{what} sinc")
    for fam, p in zip(kc.families, kc.family_probs):
        _check(sum(k.family == fam for k in kps), n, (1 - kc.sinc_prob) * p, f"{what} {fam}")
    for s in kc.sizes:
        _check(sum(k.size == s for k in kps), n, 1 / len(kc.sizes), f"{what} size {s}")


def test_kernel_family_and_size_frequencies(draws):
    cfg, ps = draws
    _kernel_freqs([p.blur1 for p in ps], cfg.stage1.kernel, "blur1")
    _kernel_freqs([p.blur2 for p in ps], cfg.stage2.kernel, "blur2")


def test_kernel_parameter_ranges(draws):
    cfg, ps = draws
    for stage, kps in (("1", [p.blur1 for p in ps]), ("2", [p.blur2 for p in ps])):
        kc = getattr(cfg, f"stage{stage}").kernel
        gauss = [k for k in kps if k.family != "sinc"]
        sx = np.array([k.sigma_x for k in gauss])
        assert sx.min() >= kc.sigma_range[0] and sx.max() <= kc.sigma_range[1]
        for k in gauss:
            if k.family.endswith("aniso"):
                assert kc.sigma_range[0] <= k.sigma_y <= kc.sigma_range[1]
                assert -math.pi <= k.theta <= math.pi
            else:
                assert k.sigma_y == k.sigma_x and k.theta == 0.0
        gen = [k.beta for k in gauss if k.family.startswith("generalized")]
        assert min(gen) >= 0.5 and max(gen) <= 4.0
        _check(sum(b < 1 for b in gen), len(gen), 0.5, "betag < 1")
        plat = [k.beta for k in gauss if k.family.startswith("plateau")]
        assert min(plat) >= 1.0 and max(plat) <= 2.0
        _check(sum(b == 1.0 for b in plat), len(plat), 0.5, "betap = 1 (U(1, 1) branch)")
        for k in kps:
            if k.family == "sinc":
                lo = math.pi / 3 if k.size < 13 else math.pi / 5
                assert lo <= k.omega <= math.pi


def test_resize_noise_blur2_final_frequencies(draws):
    cfg, ps = draws
    for name, rc in (("resize1", cfg.stage1.resize), ("resize2", cfg.stage2.resize)):
        rps = [getattr(p, name) for p in ps]
        for d, prob in zip(("up", "down", "keep"), rc.probs):
            _check(sum(r.direction == d for r in rps), N, prob, f"{name} {d}")
        for m in rc.modes:
            _check(sum(r.mode == m for r in rps), N, 1 / 3, f"{name} mode {m}")
        ups = [r.factor for r in rps if r.direction == "up"]
        downs = [r.factor for r in rps if r.direction == "down"]
        assert min(ups) >= rc.up_range[0] and max(ups) <= rc.up_range[1]
        assert min(downs) >= rc.down_range[0] and max(downs) <= rc.down_range[1]
    for name, nc in (("noise1", cfg.stage1.noise), ("noise2", cfg.stage2.noise)):
        nps = [getattr(p, name) for p in ps]
        _check(sum(n.kind == "gaussian" for n in nps), N, nc.gaussian_prob, f"{name} gaussian")
        _check(sum(n.gray for n in nps), N, nc.gray_prob, f"{name} gray")
        sig = [n.sigma for n in nps if n.kind == "gaussian"]
        sc = [n.scale for n in nps if n.kind == "poisson"]
        assert nc.sigma_range[0] <= min(sig) and max(sig) <= nc.sigma_range[1]
        assert nc.poisson_scale_range[0] <= min(sc) and max(sc) <= nc.poisson_scale_range[1]
        assert len({n.seed for n in nps}) == N  # a fresh pixel-noise seed per sample
    _check(sum(p.blur2_applied for p in ps), N, cfg.stage2.blur_prob, "blur2 applied")
    _check(sum(p.final_order == "A" for p in ps), N, cfg.final.order_a_prob, "final order A")
    _check(sum(p.final_sinc.family == "sinc" for p in ps), N, cfg.final.sinc_prob, "final sinc")
    assert all(p.final_sinc.family in ("sinc", "delta") for p in ps)
    q = np.array([p.jpeg1.quality for p in ps] + [p.jpeg2.quality for p in ps])
    assert q.min() == 30 and q.max() == 95  # inclusive integer range
    counts = np.bincount(q - 30, minlength=66)
    for c in counts:
        _check(int(c), 2 * N, 1 / 66, "jpeg quality")


def test_sizes_follow_the_reference_rule(draws):
    cfg, ps = draws
    for p in ps[:500]:
        assert (p.resize1.height, p.resize1.width) == (int(256 * p.resize1.factor),) * 2
        assert p.resize2.height == max(1, int(256 / 4 * p.resize2.factor))  # relative to ORIGINAL / scale
        assert (p.final_resize.height, p.final_resize.width) == (64, 64)


def test_params_json_round_trip_is_exact(draws):
    _cfg, ps = draws
    for p in ps[:300]:
        back = Params.loads(p.dumps())
        assert back == p and isinstance(back, RealESRGANParams) and isinstance(back.blur1, KernelParams)
        assert back.dumps() == p.dumps()


def test_sampling_is_per_sample_and_seeded():
    cfg = RealESRGANConfig()
    a = [sample_params(np.random.default_rng(5), cfg, 128, 128) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(5)
    b = [sample_params(rng, cfg, 128, 128) for _ in range(50)]
    assert len({(p.resize1.direction, p.noise1.kind, p.final_order, p.blur2_applied) for p in b}) > 4


def _image(h=96, w=80, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 1.5)


def test_apply_draws_nothing_and_is_deterministic():
    gen = RealESRGANGenerator(RealESRGANConfig(scale=1))
    img = _image()
    rng = np.random.default_rng(11)
    params = [gen.sample(rng, SampleContext("k", 96, 80)) for _ in range(12)]
    state = np.random.get_state()[1].copy()
    ctx = SampleContext("k", 96, 80)
    first = [gen.apply(img.copy(), p, ctx) for p in params]
    second = [gen.apply(img.copy(), Params.loads(p.dumps()), ctx) for p in params]
    assert np.array_equal(state, np.random.get_state()[1])  # global RNG untouched
    for a, b in zip(first, second):
        assert a["lq"].tobytes() == b["lq"].tobytes() and a["gt"].tobytes() == b["gt"].tobytes()
        assert a["lq"].dtype == np.uint8 and a["lq"].shape == (96, 80, 3)
    assert len({a["lq"].tobytes() for a in first}) == len(first)


def test_apply_does_not_modify_its_input():
    gen = RealESRGANGenerator()
    img = _image(128, 128)
    before = img.copy()
    ctx = SampleContext("k", 128, 128)
    p = gen.sample(np.random.default_rng(3), ctx)
    out = gen.apply(img, p, ctx)
    assert np.array_equal(img, before)
    assert out["lq"].shape == (32, 32, 3) and out["gt"].shape == (128, 128, 3)


@pytest.mark.parametrize("level", [0, 1, 17, 128, 255])
def test_poisson_sampler_matches_poisson_distribution(level):
    """Inverse-CDF counts vs scipy's Poisson pmf for one rate (chi-square over bins, p > 1e-4)."""
    from scipy import stats

    levels = np.full((400, 500), level, np.uint8)
    levels[0, 0] = 0 if level else 255  # two distinct levels -> vals = 2
    levels[0, 1:256] = np.arange(1, 256, dtype=np.uint8)  # all 256 levels present -> vals = 256
    counts, vals = ops.poisson_counts(levels, seed=99)
    assert vals == 256.0
    lam = level / 255 * vals
    sample = counts[1:].ravel().astype(int)  # rows 1.. hold only `level`
    if lam == 0:
        assert not sample.any()
        return
    mean, var = sample.mean(), sample.var()
    n = sample.size
    assert abs(mean - lam) <= BOUND * math.sqrt(lam / n)
    assert abs(var - lam) <= BOUND * lam * math.sqrt(2 / n) + BOUND * math.sqrt(lam / n)
    lo, hi = stats.poisson.ppf([1e-3, 1 - 1e-3], lam).astype(int)
    edges = np.arange(lo, hi + 2)
    obs = np.histogram(np.clip(sample, lo, hi), bins=edges - 0.5)[0]
    pmf = stats.poisson.pmf(np.arange(lo, hi + 1), lam)
    pmf[0] = stats.poisson.cdf(lo, lam)
    pmf[-1] = stats.poisson.sf(hi - 1, lam)
    exp = pmf / pmf.sum() * n
    keep = exp > 5
    chi2 = (((obs - exp) ** 2) / exp)[keep].sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_noise_fields_come_from_the_stored_seed():
    img = np.full((40, 50, 3), 0.5, np.float32)
    g = NoiseParams("gaussian", True, 10.0, 0.0, 1234)
    a, b = ops.add_noise(img, g), ops.add_noise(img, g)
    assert np.array_equal(a, b)
    assert np.array_equal(a[..., 0], a[..., 2])  # gray noise: one channel copied
    c = ops.add_noise(img, NoiseParams("gaussian", False, 10.0, 0.0, 1235))
    assert not np.array_equal(a, c)
    assert abs(float((a - img).std()) * 255 - 10.0) < 0.6
    pg = ops.add_noise(img, NoiseParams("poisson", True, 0.0, 1.0, 7))
    assert np.array_equal(pg[..., 0], pg[..., 1])


def test_stage1_blur_prob_is_honoured():
    """stage1.blur_prob < 1 skips the first blur (delta kernel) at that rate; 1.0 (Real-ESRGAN) always blurs."""
    import dataclasses

    from benchkit.config import load_pipeline
    from benchkit.generators.base import SampleContext
    from benchkit.seeding import rng_for

    _, gen, _ = load_pipeline("realesrgan_x1")
    cfg = gen.config
    half = dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, blur_prob=0.5))
    gen_half = type(gen)(half)
    n = 4000
    skipped = sum(gen_half.sample(rng_for(0, str(i)), SampleContext(str(i), 64, 64)).blur1.family == "delta"
                  for i in range(n))
    assert abs(skipped / n - 0.5) < 4.5 * (0.25 / n) ** 0.5
    assert not any(gen.sample(rng_for(0, str(i)), SampleContext(str(i), 64, 64)).blur1.family == "delta"
                   for i in range(500))
