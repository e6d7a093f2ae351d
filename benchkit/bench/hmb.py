"""``benchkit bench hmb``: HMB timings at 512x512 (issue 9).

Segmentation ms/img: the configured segmenter (``$BENCHKIT_HMB_BENCH_SEGMENTER``, default ``mediapipe``, the
offline one; ``sapiens`` when its file is placed) on the embedded people photos resized to 512x512.
Blend ms/img: the ``hmb`` generator's ``apply`` (W_s morphology, PSF render, FFT blur, eq. 2) per sample on
those images, ``--n`` samples (default 20; ``--quick`` 4). Rebuild: ``hmb-synth`` into one folder, then with
a new seed into another folder with the segmenter disabled (it must come from the shared cache); both timed.
The last printed line is the JSON object.
"""

from __future__ import annotations


def run(args) -> dict:
    import json
    import os
    import tempfile
    import time
    from pathlib import Path

    import cv2
    import numpy as np

    from benchkit.bench.resume import machine
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.generators.auxpass import make_aux_pass
    from benchkit.generators.base import SampleContext
    from benchkit.generators.hmb.people import materialize_people
    from benchkit.generators.hmb.pipeline import HMBConfig, HMBGenerator
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    seg_name = os.environ.get("BENCHKIT_HMB_BENCH_SEGMENTER", "mediapipe")
    n = args.n or (4 if args.quick else 20)
    src = materialize_people()
    imgs = [np.ascontiguousarray(cv2.resize(read_image(p), (512, 512), interpolation=cv2.INTER_AREA))
            for p in sorted(src.iterdir())]
    seg = make_aux_pass(seg_name)
    seg.compute(imgs[0])  # warm-up (model load)
    t0 = time.perf_counter()
    labels = [seg.compute(im) for im in imgs]
    seg_ms = (time.perf_counter() - t0) * 1000 / len(imgs)
    print(f"segmentation ({seg_name}): {seg_ms:.1f} ms/img at 512x512 ({len(imgs)} images)")
    gen = HMBGenerator(HMBConfig(segmenter=seg_name))
    work = []
    for i in range(n):
        j = i % len(imgs)
        ctx = SampleContext(f"b{i}", 512, 512, {seg_name: labels[j]})
        work.append((imgs[j], gen.sample(rng_for(0, f"b{i}", "params"), ctx), ctx))
    t0 = time.perf_counter()
    groups = [gen.apply(im, p, ctx) and p.group for im, p, ctx in work]
    blend_ms = (time.perf_counter() - t0) * 1000 / n
    print(f"HMB blend (morphology + PSF + FFT blur + eq. 2): {blend_ms:.1f} ms/img at 512x512 ({n} samples; "
          f"{sum(1 for g in groups if g)} with a part group)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BENCHKIT_CACHE", str(Path(tmp) / "cache"))
        sets = ["size=512", f"segmenter={seg_name}"]
        t0 = time.perf_counter()
        build(make_builder("hmb-synth", "embedded", sets), Path(tmp) / "a", seed=1, progress=False)
        first = time.perf_counter() - t0
        cls = type(make_aux_pass(seg_name))
        orig = cls.compute

        def refuse(self, img):
            raise RuntimeError("segmenter re-run on rebuild")

        cls.compute = refuse
        try:
            t0 = time.perf_counter()
            s = build(make_builder("hmb-synth", "embedded", sets), Path(tmp) / "b", seed=2, progress=False)
            second = time.perf_counter() - t0
        finally:
            cls.compute = orig
    print(f"hmb-synth build: {first:.2f} s; rebuild with a new seed (cached masks, segmenter not run): "
          f"{second:.2f} s, {s.produced} produced, {s.failed} failed")
    res = {"bench": "hmb", "segmenter": seg_name, "segmentation_ms_per_img": round(seg_ms, 2),
           "blend_ms_per_img": round(blend_ms, 2), "n_blend": n, "build_s": round(first, 3),
           "rebuild_new_seed_s": round(second, 3), "rebuild_failed": s.failed, "machine": machine()}
    print(json.dumps(res))
    return res
