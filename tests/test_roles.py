"""Datasets declare roles (spec.json ``roles`` / ``metadata``); specs written before roles are inferred."""

from pathlib import Path

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.datasets.roles import (AUX, INPUT, TARGET, check_roles, infer_roles, output_with_role,
                                     outputs_with_role, roles_of)
from benchkit.errors import BenchkitError
from benchkit.images import write_png

FIX = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
V010 = ["realesrgan_x1", "realesrgan_x4", "realesrgan_x1_svblur", "f2s_d2", "motion_blur", "blur-synth"]


def _recorded(d) -> set:
    return {n for r in mf.read_manifest(d).values() for n in r["outputs"]}


@pytest.mark.parametrize("name", V010)
def test_v010_specs_get_inferred_roles_covering_their_outputs(name):
    spec = mf.read_spec(FIX / name)
    assert "roles" not in spec
    roles = roles_of(spec)  # from the spec alone (no manifest read)
    assert set(roles) == _recorded(FIX / name)
    assert roles["lq"] == INPUT and roles["gt"] == TARGET
    assert all(r == AUX for n, r in roles.items() if n not in ("lq", "gt"))
    assert roles_of(spec, sorted(_recorded(FIX / name))) == roles


def test_inference_rule_and_validation():
    assert infer_roles(["psf", "lq", "gt", "hmb_weight"]) == {"gt": TARGET, "hmb_weight": AUX, "lq": INPUT,
                                                               "psf": AUX}
    assert roles_of({"producer": {"kind": "dataset", "name": "gopro-test"}}) == {"gt": TARGET, "lq": INPUT}
    with pytest.raises(BenchkitError, match="unknown role"):
        check_roles({"lq": "inptu"})
    assert outputs_with_role({"roles": {"lq": INPUT, "gt": TARGET, "psf": AUX}}, AUX) == ["psf"]
    # declared roles win; undeclared recorded outputs are inferred
    assert roles_of({"roles": {"blurry": INPUT}}, ["blurry", "gt", "mask"]) == {"blurry": INPUT, "gt": TARGET,
                                                                                "mask": AUX}
    assert output_with_role({"a": INPUT, "b": AUX}, TARGET) is None


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("roles-src")
    y, x = np.mgrid[0:64, 0:72].astype(np.float32)
    for i in range(2):
        write_png(d / f"im{i}.png", np.stack([x / 71, y / 63, ((x * y + i) % 9) / 8], -1))
    return d


@pytest.mark.parametrize("pipeline", ["realesrgan_x1", "motion_blur"])
def test_degrade_specs_declare_roles_of_every_output(src, tmp_path, pipeline):
    from benchkit.builders.generator_producer import GeneratorProducer
    from benchkit.config import load_pipeline
    from benchkit.runner import run_producer

    name, gen, _ = load_pipeline(pipeline)
    run_producer(GeneratorProducer(name, gen, src), tmp_path, seed=0, progress=False)
    spec = mf.read_spec(tmp_path)
    assert set(spec["roles"]) == _recorded(tmp_path)
    assert spec["metadata"] == {}
    assert roles_of(spec) == infer_roles(_recorded(tmp_path))  # the declared roles match the 0.1.0 rule


@pytest.mark.parametrize("builder,overrides", [("blur-synth", ["patch_size=32", "stride=32"]),
                                               ("gopro-enlarged", ["scale=0.004"])])
def test_builder_specs_declare_roles_of_every_output(tmp_path, src, builder, overrides):
    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder

    source = str(src) if builder == "blur-synth" else "embedded"
    s = build(make_builder(builder, source, overrides), tmp_path / "d", seed=0, limit=4, progress=False)
    assert s.produced > 0
    spec = mf.read_spec(tmp_path / "d")
    assert set(spec["roles"]) == _recorded(tmp_path / "d")
    assert spec["roles"]["lq"] == INPUT and spec["roles"]["gt"] == TARGET
    assert spec["metadata"] == {}
