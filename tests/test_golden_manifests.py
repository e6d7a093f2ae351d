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

GOLDEN = {
    "realesrgan_x4": "2ddd3e589231f803",
    "realesrgan_x1": "508e5df857800b34",
    "motion_blur": "e86c8191c6998326",
    "gopro-enlarged": "cf783b76f4b96301",
}


def _params_digest(out_dir, fields=("key", "params", "seed")) -> str:
    recs = [{k: r.get(k) for k in fields} for r in mf.read_jsonl(out_dir / mf.MANIFEST)]
    text = json.dumps(recs, sort_keys=True, separators=(",", ":"))
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
    slim = [{"key": r["key"], "params": r.get("params"), "frames": [f["path"] for f in r.get("sources", [])]}
            for r in recs]
    digest = hashlib.sha256(json.dumps(slim, sort_keys=True).encode()).hexdigest()[:16]
    assert digest == GOLDEN["gopro-enlarged"]
