"""Stable records: Params carry stable type names (registry.PARAMS) and still read the 0.1.0 module-path form."""

import importlib
import json
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from benchkit import params as params_mod
from benchkit.params import LEGACY_TYPES, Params
from benchkit.registry import PARAMS, load_object

FIX = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"


def _benchkit_params_classes() -> set[type]:
    """Every Params subclass defined in a benchkit module (all generator modules imported)."""
    import benchkit.generators as g

    for m in pkgutil.walk_packages(g.__path__, "benchkit.generators."):
        importlib.import_module(m.name)
    out, todo = set(), [Params]
    while todo:
        c = todo.pop()
        for s in c.__subclasses__():
            todo.append(s)
            if s.__module__.startswith("benchkit."):
                out.add(s)
    return out


def test_every_benchkit_params_class_has_a_registered_stable_name():
    classes = _benchkit_params_classes()
    assert len(classes) >= 8
    for c in classes:
        name = c.__dict__.get("type_name")
        assert name, f"{c.__module__}:{c.__qualname__} declares no type_name"
        assert PARAMS.get(name) == f"{c.__module__}:{c.__qualname__}", name
    for name, target in PARAMS.items():
        cls = load_object(target)
        assert cls.__dict__["type_name"] == name and issubclass(cls, Params)


def test_to_json_writes_the_stable_name_and_reads_it_back():
    from benchkit.generators.realesrgan.params import JpegParams, KernelParams

    j = JpegParams(quality=70).to_json()
    assert j == {"__type__": "realesrgan.JpegParams", "quality": 70}
    assert Params.from_json(j) == JpegParams(70)
    k = KernelParams("iso", 7, 1.5, 1.5)
    assert Params.loads(k.dumps()) == k and json.loads(k.dumps())["__type__"] == "realesrgan.KernelParams"


def test_legacy_module_paths_still_resolve():
    """0.1.0 wrote "module:Class"; every such path maps to the stable name of the same class."""
    for path, name in LEGACY_TYPES.items():
        assert name in PARAMS
        assert params_mod._load_type(path) is params_mod._load_type(name)
    seen = set()
    for spec_dir in sorted(FIX.iterdir()):
        man = spec_dir / "manifest.jsonl"
        if man.is_file():
            for line in man.read_text().splitlines():
                p = json.loads(line).get("params")
                if p and "__type__" in p:
                    seen.add(p["__type__"])
                    obj = Params.from_json(p)  # nested old-form types decode too
                    assert Params.from_json(obj.to_json()) == obj
    assert seen and seen <= set(LEGACY_TYPES)


def test_type_names_are_unique_and_well_formed():
    with pytest.raises(TypeError, match="already used by"):
        @dataclass(frozen=True)
        class Clash(Params):
            type_name: ClassVar[str] = "realesrgan.JpegParams"
            quality: int

    with pytest.raises(TypeError, match="without ':'"):
        @dataclass(frozen=True)
        class BadName(Params):
            type_name: ClassVar[str] = "a:b"

    @dataclass(frozen=True)
    class Sub(Params):  # no stable name: written in the module form, read back
        x: int

    assert Sub(1).to_json()["__type__"].endswith(":test_type_names_are_unique_and_well_formed.<locals>.Sub")
    assert Params.from_json(Sub(1).to_json()) == Sub(1)


def test_unknown_stable_name_is_a_clear_error():
    with pytest.raises(TypeError, match="unknown params type 'realesrgan.JpegParam'.*Did you mean"):
        Params.from_json({"__type__": "realesrgan.JpegParam", "quality": 1})



# ----------------------------------------------------------------------------- manifest format

def test_spec_format_written_and_old_or_newer_handled(tmp_path):
    import shutil

    from benchkit import manifest as mf
    from benchkit.errors import BenchkitError
    from benchkit.runner import replay

    assert mf.FORMAT == 2
    mf.write_spec(tmp_path, {"seed": 0})
    assert mf.read_spec(tmp_path) == {"format": 2, "seed": 0}
    assert mf.spec_format({}) == 1  # absent: benchkit 0.1.0
    assert "format" not in json.loads((FIX / "realesrgan_x1" / "spec.json").read_text())
    assert mf.read_spec(FIX / "realesrgan_x1")["producer"]["name"] == "realesrgan_x1"

    d = tmp_path / "newer"
    shutil.copytree(FIX / "realesrgan_x1", d)
    spec = json.loads((d / "spec.json").read_text())
    (d / "spec.json").write_text(json.dumps({**spec, "format": 3}))
    with pytest.raises(BenchkitError, match=r"format 3 was written by a newer benchkit.*upgrade"):
        mf.read_spec(d)
    with pytest.raises(BenchkitError, match="newer benchkit"):
        replay(d, sorted(mf.read_manifest(d))[0], source_override=FIX / "source")
    for bad in ("2", 0, True):
        with pytest.raises(BenchkitError, match="bad \"format\""):
            mf.spec_format({"format": bad})


def test_degrade_writes_format_2(tmp_path):
    from benchkit import manifest as mf
    from benchkit.config import load_pipeline
    from benchkit.degrade import DegradeProducer
    from benchkit.runner import run_producer

    name, gen, _ = load_pipeline("realesrgan_x1")
    s = run_producer(DegradeProducer(name, gen, FIX / "source"), tmp_path / "o", seed=1, progress=False, limit=1)
    assert s.failed == 0 and s.produced == 1
    assert json.loads((tmp_path / "o" / mf.SPEC).read_text())["format"] == mf.FORMAT
    rec = next(iter(mf.read_manifest(tmp_path / "o").values()))
    assert rec["params"]["__type__"] == "realesrgan.RealESRGANParams"
