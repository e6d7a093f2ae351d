"""The one table of numeric tolerances the contract suites use (absolute unless stated).

Every entry says what it bounds and why it is not zero; zero means bit-exact.
"""

TOLERANCES = {
    # a method run twice on the same input with the same seed: bit-exact (deterministic code paths)
    "method_determinism": 0.0,
    # output range slack of a method (the harness fails outputs beyond it; same value as harness.restore)
    "method_range": 1e-3,
    # metric on a batch vs image by image: float32 reductions in another order (relative)
    "metric_batch_vs_single_rel": 1e-4,
    # a metric's score of an image against itself for FR metrics with a known value (PSNR is inf-capped)
    "metric_self_rel": 1e-6,
    # generator replay (apply twice with the same Params): bit-exact
    "generator_replay": 0.0,
    # generator batch vs single (torch batched path vs numpy path), in 8-bit levels: mean and share of
    # values more than 8 levels apart (JPEG/rounding on another backend; see tests/test_realesrgan_torch.py)
    "generator_batch_mean_levels": 0.5,
    "generator_batch_far_share": 0.02,
}
