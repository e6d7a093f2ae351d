"""The spatially varying first blur inside the Real-ESRGAN pipeline (realesrgan_x1_svblur)."""

import dataclasses

import numpy as np

from benchkit.config import load_pipeline
from benchkit.generators.base import SampleContext
from benchkit.generators.motion.svblur import RadialFieldParams, apply_radial_field
from benchkit.generators.realesrgan.pipeline import apply_first_blur
from benchkit.params import Params
from benchkit.seeding import rng_for


def _img(h=96, w=112):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([np.sin(x / 5) * 0.4 + 0.5, np.cos(y / 7) * 0.4 + 0.5, ((x + y) % 16 < 8) * 0.8 + 0.1],
                    -1).astype(np.float32)


def test_svblur_pipeline_samples_a_field_and_replays():
    _, gen, _ = load_pipeline("realesrgan_x1_svblur")
    _, plain, _ = load_pipeline("realesrgan_x1")
    # identical to realesrgan_x1 except the field
    assert dataclasses.replace(gen.config, stage1_field=None) == plain.config
    img = _img()
    p = gen.sample(rng_for(0, "a", "params"), SampleContext("a", *img.shape[:2]))
    assert isinstance(p.blur1, RadialFieldParams)
    q = Params.loads(p.dumps())
    assert q == p
    ctx = SampleContext("a", *img.shape[:2])
    a, b = gen.apply(img, p, ctx), gen.apply(img, q, ctx)
    assert a["lq"].shape == img.shape and np.array_equal(a["lq"], b["lq"]) and np.array_equal(a["gt"], b["gt"])


def test_first_blur_stage_is_the_field_blur():
    _, gen, _ = load_pipeline("realesrgan_x1_svblur")
    img = _img()
    p = gen.sample(rng_for(1, "b", "params"), SampleContext("b", *img.shape[:2]))
    assert np.array_equal(apply_first_blur(img, p.blur1), apply_radial_field(img, p.blur1))
    # blur grows toward the corners: high-frequency energy lost is larger there
    out = apply_radial_field(img, p.blur1)
    err = np.abs(out - img).mean(-1)
    h, w = err.shape
    centre = err[h // 2 - 12:h // 2 + 12, w // 2 - 12:w // 2 + 12].mean()
    corner = err[:24, :24].mean()
    assert corner > centre
