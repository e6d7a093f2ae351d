"""Foundation services: seeding, Params, strict config, image I/O, runner, registry, light import."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.config import from_dict
from benchkit.errors import BadInputError, ConfigError, UnknownNameError
from benchkit.params import Params
from benchkit.runner import Job, Producer, run_producer
from benchkit.seeding import rng_for, sample_entropy


# ----------------------------------------------------------------------------- seeding

def test_seeds_depend_only_on_root_key_stage():
    a = rng_for(7, "img/001", "params").random(4)
    b = rng_for(7, "img/001", "params").random(4)
    c = rng_for(7, "img/002", "params").random(4)
    d = rng_for(8, "img/001", "params").random(4)
    e = rng_for(7, "img/001", "noise").random(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d) and not np.array_equal(a, e)


def test_seed_entropy_is_stable_across_processes():
    # Golden value: SHA-256 based, so it must not change between runs or Python versions.
    code = "from benchkit.seeding import sample_entropy; print(sample_entropy(3, 'k', 's'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == sample_entropy(3, "k", "s")
    assert sample_entropy(3, "k")[:2] == [3, 0]


def test_library_leaves_global_rng_alone():
    state = np.random.get_state()[1].copy()
    rng_for(0, "x").normal(size=10)
    assert np.array_equal(state, np.random.get_state()[1])


# ----------------------------------------------------------------------------- params

@dataclass(frozen=True)
class Inner(Params):
    sigma: float
    size: int


@dataclass(frozen=True)
class Outer(Params):
    kind: str
    inner: Inner
    maybe: Optional[Inner]
    pair: tuple[float, float]
    levels: tuple[int, ...]
    flag: bool = False


def test_params_json_round_trip_exact():
    p = Outer("iso", Inner(0.1 + 0.2, 7), None, (1 / 3, 2e-17), (1, 2, 3), True)
    q = Params.loads(p.dumps())
    assert q == p and isinstance(q, Outer) and isinstance(q.inner, Inner)
    assert q.pair[0] == 1 / 3  # float bits preserved
    assert Outer.from_json(json.loads(p.dumps())) == p


def test_params_reject_unknown_fields():
    d = Inner(1.0, 3).to_json()
    d["extra"] = 1
    with pytest.raises(ValueError, match="extra"):
        Params.from_json(d)


# ----------------------------------------------------------------------------- config

@dataclass(frozen=True)
class Sub:
    lo: float = 0.0
    hi: float = 1.0


@dataclass(frozen=True)
class Cfg:
    n: int = 3
    probs: tuple[float, ...] = (0.5, 0.5)
    sub: Sub = Sub()


def test_config_unknown_key_is_error_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown keys \['nn'\].*'n'"):
        from_dict(Cfg, {"nn": 3})
    with pytest.raises(ConfigError, match=r"sub: unknown keys \['hii'\]"):
        from_dict(Cfg, {"sub": {"hii": 2}}, where="cfg")


def test_config_types_checked():
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Cfg, {"n": "three"})
    c = from_dict(Cfg, {"n": 5, "probs": [0.2, 0.8], "sub": {"hi": 2}})
    assert c == Cfg(5, (0.2, 0.8), Sub(0.0, 2.0))


# ----------------------------------------------------------------------------- images

def _write(path, arr):
    import cv2

    assert cv2.imwrite(str(path), arr)


def test_image_conversions(tmp_path):
    from benchkit.images import read_image

    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    _write(tmp_path / "g.png", gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (8, 8, 3) and g.dtype == np.float32
    assert np.allclose(g[..., 0], gray / 255.0) and np.array_equal(g[..., 0], g[..., 2])
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255  # BGR(A): red
    rgba[..., 3] = 10
    _write(tmp_path / "a.png", rgba)
    r = read_image(tmp_path / "a.png")
    assert np.allclose(r[..., 0], 1.0) and np.allclose(r[..., 1:], 0.0)
    u16 = np.full((4, 4, 3), 65535 // 3, np.uint16)
    _write(tmp_path / "d.png", u16)
    assert np.allclose(read_image(tmp_path / "d.png"), (65535 // 3) / 65535.0)


def test_bad_images_raise_naming_the_file(tmp_path):
    from benchkit.images import encode_png, read_image

    (tmp_path / "zero.png").write_bytes(b"")
    data = encode_png(np.zeros((32, 32, 3), np.uint8) + 7)
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    for name in ("zero.png", "trunc.png", "missing.png"):
        with pytest.raises(BadInputError) as ei:
            read_image(tmp_path / name)
        assert name in str(ei.value) and ei.value.fix


# ----------------------------------------------------------------------------- runner

class NoiseProducer(Producer):
    """Toy producer: adds seeded noise to a per-key constant; key 'bad' fails."""

    kind = "pipeline"
    name = "toy"
    version = "1"

    def __init__(self, n=6):
        self.n = n

    def spec(self):
        return {"fingerprint": f"toy{self.n}"}

    def jobs(self):
        keys = [f"s{i:02d}" for i in range(self.n)] + ["bad"]
        return sorted(Job(k, {"path": k}) for k in keys)

    def produce(self, job, root_seed):
        if job.key == "bad":
            raise BadInputError("bad.png", "cannot decode", "remove it")
        rng = rng_for(root_seed, job.key)
        img = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        return {"seed": {"root": root_seed}}, {"lq": img, "aux": rng.random(3).astype(np.float32)}

    @classmethod
    def from_spec(cls, spec, source_override=None):
        return cls()


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_runner_failures_isolated_and_deterministic_across_workers(tmp_path):
    s1 = run_producer(NoiseProducer(), tmp_path / "w1", seed=5, workers=1, progress=False)
    s2 = run_producer(NoiseProducer(), tmp_path / "w2", seed=5, workers=2, progress=False)
    assert (s1.produced, s1.failed) == (6, 1) and (s2.produced, s2.failed) == (6, 1)
    assert _tree_bytes(tmp_path / "w1") == _tree_bytes(tmp_path / "w2")
    fail = mf.read_jsonl(tmp_path / "w1" / mf.FAILURES)
    assert fail[0]["key"] == "bad" and fail[0]["path"] == "bad.png" and fail[0]["fix"] == "remove it"
    spec = mf.read_spec(tmp_path / "w1")
    assert spec["n_samples"] == 6 and spec["complete"] is False


def test_runner_resumes_and_redoes_damaged_outputs(tmp_path):
    out = tmp_path / "o"
    run_producer(NoiseProducer(), out, seed=1, progress=False)
    ref = _tree_bytes(out)
    # damage: one output corrupted, one manifest line truncated (killed writer), a stray tmp file
    (out / "lq" / "s02.png").write_bytes(b"garbage")
    lines = (out / mf.MANIFEST).read_text().splitlines()
    (out / mf.MANIFEST).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    (out / "lq" / ".benchkit-tmp-1-abcd-s03.png.x1").write_bytes(b"x")  # a killed writer's leftover
    s = run_producer(NoiseProducer(), out, seed=1, progress=False)
    assert s.skipped == 4 and s.produced == 2
    assert _tree_bytes(out) == ref


def test_runner_refuses_other_config_in_same_folder(tmp_path):
    from benchkit.errors import BenchkitError

    run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    with pytest.raises(BenchkitError, match="different configuration or seed"):
        run_producer(NoiseProducer(), tmp_path, seed=2, progress=False)


# ----------------------------------------------------------------------------- registry / CLI

def test_unknown_names_get_suggestions():
    from benchkit.registry import resolve

    with pytest.raises(UnknownNameError, match="Did you mean 'realesrgan'"):
        resolve("generator", "realesrgn")


def test_import_benchkit_is_light():
    code = ("import sys, benchkit, benchkit.cli, benchkit.registry, benchkit.config, benchkit.runner;"
            "heavy=[m for m in ('numpy','torch','cv2','pyiqa','pandas','scipy','ultralytics','datasets') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_every_registry_entry_resolves():
    """A registered name that cannot be imported would be a broken command/option: none allowed."""
    from benchkit.registry import TABLES, load_object

    for kind, table in TABLES.items():
        for name, target in table.items():
            assert load_object(target) is not None, (kind, name)


def test_help_lists_commands():
    from benchkit.cli import build_parser
    from benchkit.registry import COMMANDS

    text = build_parser().format_help()
    for name in COMMANDS:
        assert name in text


def test_runner_refuses_to_resume_with_other_encoder_settings(tmp_path):
    import json as _json

    from benchkit.errors import BenchkitError

    run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    spec = _json.loads((tmp_path / "spec.json").read_text())
    assert spec["encoding"]["png"] == "opencv-defaults"
    spec["encoding"]["png"] = "zlib-3"
    (tmp_path / "spec.json").write_text(_json.dumps(spec))
    with pytest.raises(BenchkitError, match="encoder settings"):
        run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)


def test_encode_png_keeps_rgba_channel_order():
    """RGBA input must be stored as BGRA (OpenCV order), not reversed to ABGR."""
    import cv2

    from benchkit.images import encode_png

    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 50, 10, 255
    back = cv2.imdecode(np.frombuffer(encode_png(rgba), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (3, 3, 4)
    assert back[0, 0].tolist() == [10, 50, 200, 255]  # B, G, R, A


def test_degrade_keys_unique_when_a_stem_equals_a_fallback_key(tmp_path):
    """a.png + a.jpg fall back to 'a.png' / 'a.jpg'; a.png.png's stem is also 'a.png': keys must stay unique."""
    import cv2

    from benchkit.builders.generator_producer import image_jobs

    for name in ("a.png", "a.jpg", "a.png.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    jobs = image_jobs(tmp_path)
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys) == 4
    assert {j.key: j.payload["path"] for j in jobs} == {"a.png": "a.png", "a.jpg": "a.jpg",
                                                          "a.png.png": "a.png.png", "b": "b.png"}


def test_runner_refuses_to_resume_from_another_source(tmp_path):
    """Same config + seed but another source folder: resuming would keep samples of the old source."""
    from benchkit.errors import BenchkitError

    class Sourced(NoiseProducer):
        def __init__(self, src):
            super().__init__()
            self.src = src

        def spec(self):
            return {**super().spec(), "source": {"path": self.src}}

    run_producer(Sourced("/data/A"), tmp_path, seed=1, progress=False)
    run_producer(Sourced("/data/A"), tmp_path, seed=1, progress=False)  # same source resumes
    with pytest.raises(BenchkitError, match="built from source /data/A.*reads /data/B"):
        run_producer(Sourced("/data/B"), tmp_path, seed=1, progress=False)


def test_damaged_manifest_line_is_reported_with_file_line_and_fix(tmp_path):
    from benchkit.errors import BenchkitError

    run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    lines = (tmp_path / mf.MANIFEST).read_text().splitlines()
    lines[1] = lines[1][:15]  # damaged line in the middle (not a killed writer's last line)
    (tmp_path / mf.MANIFEST).write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchkitError, match=r"manifest\.jsonl: line 2 is not valid JSON.*delete that line"):
        run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    lines[1] = "[1, 2]"
    (tmp_path / mf.MANIFEST).write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchkitError, match=r"manifest\.jsonl: record 2 has no 'key'"):
        mf.read_manifest(tmp_path)


def test_runner_rejects_negative_limit(tmp_path):
    from benchkit.errors import BenchkitError

    with pytest.raises(BenchkitError, match="--limit must be >= 0"):
        run_producer(NoiseProducer(), tmp_path / "o", seed=1, limit=-1, progress=False)
    s = run_producer(NoiseProducer(), tmp_path / "z", seed=1, limit=0, progress=False)
    assert (s.total, s.produced) == (0, 0)


def test_refused_folder_keeps_its_tmp_files(tmp_path):
    """*.tmp cleaning must not run in a folder that the spec check refuses (it is not this run's output)."""
    from benchkit.errors import BenchkitError

    run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    (tmp_path / "notes.tmp").write_text("user file")
    with pytest.raises(BenchkitError, match="different configuration or seed"):
        run_producer(NoiseProducer(), tmp_path, seed=2, progress=False)
    assert (tmp_path / "notes.tmp").read_text() == "user file"


def test_workers_get_an_absolute_output_folder(tmp_path, monkeypatch):
    """Remote (dask --scheduler) workers do not share the parent's cwd: a relative --out must be resolved."""
    import benchkit.runner as runner

    seen = []
    real = runner._process

    def spy(producer, job, root_seed, out_dir, skip=frozenset()):
        seen.append(out_dir)
        return real(producer, job, root_seed, out_dir, skip)

    monkeypatch.setattr(runner, "_process", spy)
    monkeypatch.chdir(tmp_path)
    s = run_producer(NoiseProducer(), "rel_out", seed=1, workers=2, backend="threading", progress=False)
    assert s.produced == 6 and seen and all(Path(d).is_absolute() for d in seen)
    assert (tmp_path / "rel_out" / "lq" / "s00.png").is_file()


def test_runner_refuses_an_output_folder_inside_its_source(tmp_path):
    """degrade A A/out: the re-run would list A/out/lq/*.png as new inputs and degrade its own outputs."""
    from benchkit.errors import BenchkitError

    class Sourced(NoiseProducer):
        def spec(self):
            return {**super().spec(), "source": {"path": str(tmp_path / "src")}}

    (tmp_path / "src").mkdir()
    for out in (tmp_path / "src" / "out", tmp_path / "src"):
        with pytest.raises(BenchkitError, match="inside the source folder"):
            run_producer(Sourced(), out, seed=1, progress=False)
    assert not (tmp_path / "src" / "out").exists()
    assert run_producer(Sourced(), tmp_path / "src-out", seed=1, progress=False).produced == 6


def test_params_reject_numpy_nan_too():
    """np.float64('nan') must not slip through as a bare NaN token (invalid JSON) in manifest lines."""

    @dataclass(frozen=True)
    class _P(Params):
        x: float

    for bad in (float("nan"), np.float64("nan"), np.float32("nan")):
        with pytest.raises(ValueError, match="NaN is not allowed"):
            _P(bad).to_json()
    assert _P(np.float32(0.5)).to_json()["x"] == 0.5 and type(_P(np.int64(3)).to_json()["x"]) is int


def test_limit_never_shrinks_a_finished_folder(tmp_path):
    full = run_producer(NoiseProducer(), tmp_path, seed=1, progress=False)
    before = mf.read_manifest(tmp_path)
    fp = mf.read_spec(tmp_path)["dataset_fingerprint"]
    s = run_producer(NoiseProducer(), tmp_path, seed=1, limit=3, progress=False)  # keys: bad, s00, s01
    assert s.produced == 0 and s.skipped == 2 and s.failed == 1
    assert mf.read_manifest(tmp_path) == before
    spec = mf.read_spec(tmp_path)
    assert spec["dataset_fingerprint"] == fp == full.fingerprint and spec["n_samples"] == 6


def test_limited_build_is_incomplete_until_finished(tmp_path):
    run_producer(NoiseProducer(), tmp_path, seed=1, limit=4, progress=False)  # bad (fails), s00-s02
    assert mf.read_spec(tmp_path)["complete"] is False and len(mf.read_manifest(tmp_path)) == 3


def test_degrade_empty_folder_is_an_error(tmp_path):
    from benchkit.builders.generator_producer import image_jobs

    with pytest.raises(BadInputError, match="no images found"):
        image_jobs(tmp_path)
