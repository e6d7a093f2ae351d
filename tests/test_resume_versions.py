"""Resuming a folder that an older generator version started (e.g. Real-ESRGAN 1.1, benchkit 0.1.0) after an
upgrade: the build continues at the recorded version (a note says so) and ends byte-identical to a build made
wholly at that version; a folder of another configuration is still refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.builders.generator_producer import GeneratorProducer
from benchkit.config import load_pipeline
from benchkit.errors import BenchkitError
from benchkit.images import write_png
from benchkit.runner import replay, run_producer


def _img(h, w, seed):
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.3 * np.sin(x / 5.0 + seed)[..., None] * np.cos(y / 7.0)[..., None]
    noise = np.random.default_rng(seed).random((h, w, 3)) * 0.2
    return np.clip(base + noise, 0, 1).astype(np.float32)


def _files(out_dir):
    return {k: {n: o["sha256"] for n, o in r["outputs"].items()} for k, r in mf.read_manifest(out_dir).items()}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume-src")
    for i in range(3):
        write_png(d / f"img{i}.png", _img(120, 120, seed=i))
    return d


def _pinned(tmp_path, version, scale=4):
    yml = tmp_path / f"pinned_{version}_{scale}.yaml"
    yml.write_text(f"name: realesrgan_x4\ngenerator: realesrgan\nversion: '{version}'\nconfig: {{scale: {scale}}}\n")
    return load_pipeline(str(yml))


def test_degrade_resumes_at_the_recorded_version(source, tmp_path, capsys):
    name, old, _ = _pinned(tmp_path, "1.1")
    part = tmp_path / "part"
    run_producer(GeneratorProducer(name, old, source), part, seed=3, limit=1, progress=False)
    assert len(mf.read_manifest(part)) == 1
    _n, new, _ = load_pipeline("realesrgan_x4")
    assert new.version == "2" and new.config == old.config
    producer = GeneratorProducer(name, new, source)
    s = run_producer(producer, part, seed=3, progress=True)
    assert "resuming it at that version" in capsys.readouterr().err
    assert s.produced == 2 and producer.generator.version == "1.1"
    spec = json.loads((part / "spec.json").read_text())
    assert spec["pipeline"]["version"] == "1.1" and spec["producer"]["version"] == "1.1"
    whole = tmp_path / "whole"
    run_producer(GeneratorProducer(name, _pinned(tmp_path, "1.1")[1], source), whole, seed=3, progress=False)
    assert _files(part) == _files(whole)
    fresh = tmp_path / "fresh"  # a new folder gets version 2, whose bytes differ
    run_producer(GeneratorProducer(name, load_pipeline("realesrgan_x4")[1], source), fresh, seed=3, progress=False)
    assert _files(fresh) != _files(whole)
    assert all(a == b for a, b in replay(part, "img2").values())


def test_another_configuration_is_still_refused(source, tmp_path):
    name, old, _ = _pinned(tmp_path, "1.1", scale=2)
    part = tmp_path / "part"
    run_producer(GeneratorProducer(name, old, source), part, seed=3, limit=1, progress=False)
    _n, new, _ = load_pipeline("realesrgan_x4")  # scale 4: not the folder's configuration at any version
    with pytest.raises(BenchkitError, match="different configuration"):
        run_producer(GeneratorProducer(name, new, source), part, seed=3, progress=False)
    assert len(mf.read_manifest(part)) == 1


def test_inscene_resumes_at_the_recorded_degradation_version(tmp_path):
    from benchkit.builders.base import build
    from benchkit.builders.inscene import InSceneBuilder, InSceneConfig

    cfg = InSceneConfig(min_short_side=400, crop_size=256, iqa_filter=False)
    src = InSceneBuilder.resolve_source("embedded")

    def builder(version=None):
        b = InSceneBuilder(cfg, src)
        if version:
            b._degradation_version = version  # what a set built by benchkit 0.1.0 records
        return b

    part, whole = tmp_path / "part", tmp_path / "whole"
    build(builder("1.1"), part, seed=1, limit=1, progress=False)
    assert json.loads((part / "spec.json").read_text())["inscene"]["degradation"]["version"] == "1.1"
    b = builder()
    assert b.generator().version == "2"
    build(b, part, seed=1, progress=False)
    assert b.generator().version == "1.1"
    build(builder("1.1"), whole, seed=1, progress=False)
    assert len(_files(whole)) == 3 and _files(part) == _files(whole)
    assert json.loads((part / "spec.json").read_text())["inscene"]["degradation"]["version"] == "1.1"


def test_an_empty_folder_is_started_afresh_at_the_current_version(source, tmp_path):
    """A folder whose spec records 1.1 but no sample (a failed start) is not adopted: new work gets version 2."""
    name, old, _ = _pinned(tmp_path, "1.1")
    part = tmp_path / "part"
    run_producer(GeneratorProducer(name, old, source), part, seed=3, limit=0, progress=False)
    assert json.loads((part / "spec.json").read_text())["pipeline"]["version"] == "1.1"
    assert not mf.read_manifest(part)
    producer = GeneratorProducer(name, load_pipeline("realesrgan_x4")[1], source)
    run_producer(producer, part, seed=3, progress=False)
    assert producer.generator.version == "2"
    assert json.loads((part / "spec.json").read_text())["pipeline"]["version"] == "2"
