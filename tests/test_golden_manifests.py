"""Golden hashes of tiny fixture builds: any change to sampling, seeding, keys or plans shows up here.

The golden covers every manifest line's key + sampled params (+ GoPro frame lists / t), which are pure
functions of (root seed, key, config) through numpy's PCG64 and SHA-256: they do not depend on the
OpenCV build or CPU. If a change is intended, bump the generator/builder version and update the value.
"""

import hashlib
import json

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.config import load_pipeline
from benchkit.builders.generator_producer import GeneratorProducer
from benchkit.images import write_png
from benchkit.runner import run_producer

# The digests hash params with every "__type__" removed (recursively): "__type__" is how a record names its
# Params class, not a sampled value, and it changed from module paths ("benchkit.generators.realesrgan.params:
# RealESRGANParams") to stable names ("realesrgan.RealESRGANParams"). Before that change these were
# 2ddd3e589231f803 / 508e5df857800b34 / e86c8191c6998326 with "__type__" included; the stripped digests below
# were computed on both the old code (745904d) and the new one and are equal: the sampled values did not move.
# gopro-enlarged params hold no "__type__" (unchanged).
GOLDEN = {
    "realesrgan_x4": "68c23ac38714d3c3",
    "realesrgan_x1": "78d5aee8551465f9",
    "motion_blur": "16117f18c4cc0b93",
    "gopro-enlarged": "cf783b76f4b96301",
}


def _strip_type(v):
    """``v`` with every ``"__type__"`` key removed, recursively."""
    if isinstance(v, dict):
        return {k: _strip_type(x) for k, x in v.items() if k != "__type__"}
    if isinstance(v, list):
        return [_strip_type(x) for x in v]
    return v


def _params_digest(out_dir, fields=("key", "params", "seed")) -> str:
    recs = [{k: r.get(k) for k in fields} for r in mf.read_jsonl(out_dir / mf.MANIFEST)]
    assert all("__type__" in (r.get("params") or {}) for r in recs)  # records still name their class
    text = json.dumps(_strip_type(recs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden-src")
    y, x = np.mgrid[0:128, 0:128].astype(np.float32) / 127
    for i in range(3):
        img = np.stack([x, y, (x * y + i / 3) % 1], -1)
        write_png(d / f"img{i}.png", img)
    return d


@pytest.mark.parametrize("pipeline", ["realesrgan_x4", "realesrgan_x1", "motion_blur"])
def test_golden_pipeline_params(tiny_source, tmp_path, pipeline):
    name, gen, _ = load_pipeline(pipeline)
    s = run_producer(GeneratorProducer(name, gen, tiny_source), tmp_path, seed=2024, progress=False)
    assert s.failed == 0 and s.produced == 3
    assert _params_digest(tmp_path) == GOLDEN[pipeline]


def test_golden_gopro_plan(tmp_path):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder

    b = make_builder("gopro-enlarged", "embedded")
    s = build(b, tmp_path / "g", seed=7, progress=False)
    assert s.failed == 0
    recs = mf.read_jsonl(tmp_path / "g" / mf.MANIFEST)
    slim = [{"key": r["key"], "params": _strip_type(r.get("params")),
             "frames": [f["path"] for f in r.get("sources", [])]} for r in recs]
    digest = hashlib.sha256(json.dumps(slim, sort_keys=True).encode()).hexdigest()[:16]
    assert digest == GOLDEN["gopro-enlarged"]
