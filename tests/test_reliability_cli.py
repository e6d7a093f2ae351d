"""Hostile-input corpus for the CLI error boundary (issue 8): every case runs ``python -m benchkit`` in a
subprocess and asserts the exact outcome: exit status, ONE error line naming the file or key and the fix, no
traceback, and that every pre-existing file is unchanged.

Classes: malformed/hostile YAML, config values out of domain, damaged benchkit files (spec.json,
results.json, manifest, outputs index), OS failures (output under a file, read-only, full disk, closed
pipe), unexpected exceptions (log file), image resource limits and float TIFFs, file modes (umask), counts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli

# ------------------------------------------------------------------------------------------ helpers


def snapshot(root: Path) -> dict:
    """{relative path: (sha256, mode)} of every file below ``root``."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return out


def assert_unchanged(before: dict, root: Path, new_ok=()) -> None:
    """Every file of ``before`` is still there with the same bytes and mode; new files only below ``new_ok``."""
    after = snapshot(root)
    for rel, sig in before.items():
        assert after.get(rel) == sig, f"pre-existing file changed or removed: {rel}"
    extra = [r for r in set(after) - set(before) if not any(r.startswith(p) for p in new_ok)]
    assert not extra, f"unexpected new files: {sorted(extra)}"


def assert_error(proc, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback, exactly one ``benchkit ...: error:`` line holding every needle."""
    err = proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ": error:" in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "fix: " in lines[0], lines[0]
    return lines[0]


def cli(args, env, cwd, umask=None):
    if umask is None:
        return run_cli([str(a) for a in args], env=env, cwd=cwd, check=False)
    return subprocess.run([sys.executable, "-m", "benchkit", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, preexec_fn=lambda: os.umask(umask))


def cli_patched(patch: str, args, env, cwd):
    """Run ``benchkit.cli.main(args)`` in a fresh interpreter after ``patch`` (simulates OS faults)."""
    code = f"{patch}\nfrom benchkit.cli import main\nraise SystemExit(main({[str(a) for a in args]!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture
def work(tmp_path, cli_env):
    """(folder, env): a scratch folder with a bystander file that must never change."""
    (tmp_path / "bystander.txt").write_text("keep me\n")
    env = dict(cli_env)
    env.pop("BENCHKIT_MAX_PIXELS", None)
    return tmp_path, env


def write_pipeline(path: Path, generator: str, config_yaml: str) -> Path:
    body = "".join(f"  {line}\n" for line in config_yaml.strip("\n").splitlines())
    path.write_text(f"name: {path.stem}\ngenerator: {generator}\nconfig:\n{body}")
    return path


def png_header_only(w: int, h: int, idat: bytes) -> bytes:
    """A gray 8-bit PNG with the given IHDR size and IDAT payload."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_source(folder: Path, n: int = 2, seed: int = 0) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), (rng.random((64, 72, 3)) * 255).astype(np.uint8))
    return folder


# ------------------------------------------------------------------------------------ YAML files


def test_malformed_pipeline_yaml(work):
    tmp, env = work
    p = tmp / "bad.yaml"
    p.write_text("name: bad\ngenerator: realesrgan\nconfig: {scale: [1,\n")
    before = snapshot(tmp)
    line = assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p),
                        "invalid YAML", "line")
    assert "fix: correct the YAML syntax" in line
    assert_unchanged(before, tmp)


def test_python_tag_is_refused_and_never_executed(work):
    tmp, env = work
    marker = tmp / "PWNED"
    p = tmp / "evil.yaml"
    p.write_text(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p),
                 "python/object/apply", "fix: remove the !!tag")
    assert not marker.exists()
    assert_unchanged(before, tmp)


def test_python_tag_inside_config_value(work):
    tmp, env = work
    p = tmp / "evil2.yaml"
    p.write_text("name: evil2\ngenerator: realesrgan\nconfig:\n  scale: !!python/name:os.system\n")
    assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p), "line 4",
                 "python/name")


def test_binary_file_as_pipeline(work):
    tmp, env = work
    p = tmp / "image.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p), "binary")
    assert_unchanged(before, tmp)


def test_non_utf8_pipeline(work):
    tmp, env = work
    p = tmp / "latin.yaml"
    p.write_bytes("name: latin\ndescription: caf\xe9\n".encode("latin-1"))
    assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p), "UTF-8")


def test_malformed_benchmark_yaml(work):
    tmp, env = work
    b = tmp / "bench.yaml"
    b.write_text("name: x\ndatasets:\n  - {name: a, kind: pipeline\n")
    before = snapshot(tmp)
    assert_error(cli(["evaluate", "--benchmark", b, "--run", tmp / "run"], env, tmp), 2, str(b), "invalid YAML")
    assert_unchanged(before, tmp)


def test_binary_benchmark_file(work):
    tmp, env = work
    b = tmp / "bench.yaml"
    b.write_bytes(os.urandom(64) + b"\x00")
    assert_error(cli(["evaluate", "--benchmark", b, "--run", tmp / "run"], env, tmp), 2, str(b), "binary")


def test_no_unsafe_yaml_loader_in_package():
    """yaml.load / full_load / unsafe_load never appear in benchkit (only yaml.safe_load)."""
    bad = []
    for p in (REPO / "benchkit").rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        for needle in ("yaml.load(", "yaml.full_load", "yaml.unsafe_load", "yaml.Loader", "UnsafeLoader",
                       "FullLoader"):
            if needle in text:
                bad.append(f"{p}: {needle}")
    assert not bad, bad


# ------------------------------------------------------------------------------ config validation

REALESRGAN_BAD = [
    ("stage1:\n  kernel:\n    sigma_range: [.nan, 1.0]", "stage1.kernel.sigma_range", "nan"),
    ("stage2:\n  noise:\n    sigma_range: [1.0, .inf]", "stage2.noise.sigma_range", "inf"),
    ("stage1:\n  noise:\n    sigma_range: [-1.0, 5.0]", "stage1.noise.sigma_range", "-1"),
    ("stage1:\n  blur_prob: 1.5", "stage1.blur_prob", "1.5"),
    ("stage1:\n  kernel:\n    family_probs: [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]", "stage1.kernel.family_probs",
     "summing to 1"),
    ("stage1:\n  kernel:\n    family_probs: [.nan, 0.25, 0.12, 0.03, 0.12, 0.03]", "stage1.kernel.family_probs",
     "nan"),
    ("stage1:\n  kernel:\n    sigma_range: [3.0, 0.5]", "stage1.kernel.sigma_range", "low <= high"),
    ("kernel_pad_to: 100001", "kernel_pad_to", "100001"),
    ("usm_weight: .nan", "usm_weight", "nan"),
    ("scale: 0", "scale", "[1, 16]"),
    ("final:\n  sinc_sizes: [7, 8]", "final.sinc_sizes", "odd"),
]


@pytest.mark.parametrize("config,key,value", REALESRGAN_BAD, ids=[k for _, k, _ in REALESRGAN_BAD])
def test_realesrgan_config_out_of_domain(work, config, key, value):
    tmp, env = work
    p = write_pipeline(tmp / "p.yaml", "realesrgan", config)
    before = snapshot(tmp)
    line = assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p), key,
                        value)
    assert "must be" in line
    assert not (tmp / "out").exists()
    assert_unchanged(before, tmp)


MOTION_BAD = [
    ("trajectory:\n  iterations: 1000000000", "iterations", "[2, 100000]"),
    ("trajectory:\n  max_length_range: [60.0, .inf]", "max_length_range", "inf"),
    ("trajectory:\n  max_length_range: [-5.0, 60.0]", "max_length_range", "-5"),
    ("trajectory:\n  expl_range: [.nan, 0.01]", "expl_range", "nan"),
    ("trajectory:\n  prob_big_shake_range: [0.0, 2.0]", "prob_big_shake_range", "[0, 1]"),
    ("psf:\n  exposure_choices: [0.0, 1.0]", "exposure_choices", "(0, 1]"),
]


@pytest.mark.parametrize("config,key,value", MOTION_BAD, ids=[k for _, k, _ in MOTION_BAD])
def test_motion_config_out_of_domain(work, config, key, value):
    tmp, env = work
    p = write_pipeline(tmp / "m.yaml", "motion_blur", config)
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "out", "--pipeline", p], env, tmp), 2, str(p), key, value)
    assert_unchanged(before, tmp)


BUILDER_BAD = [
    ("gopro-enlarged", "gamma=0", "gamma", "(0, 10]"),
    ("gopro-enlarged", "gamma=.nan", "gamma", "nan"),
    ("gopro-enlarged", "scale=.inf", "scale", "inf"),
    ("gopro-enlarged", "scale=-1", "scale", "(0, 100]"),
    ("gopro-enlarged", "centre_fraction=2", "centre_fraction", "(0, 1]"),
    ("gopro-test", "n=4", "n", "odd"),
    ("gopro-test", "stride=0", "stride", "[1, 100000]"),
    ("blur-synth", "patch_size=0", "patch_size", "[1, 16384]"),
    ("blur-synth", "motion.trajectory.iterations=1000000000", "iterations", "1000000000"),
]


@pytest.mark.parametrize("builder,setting,key,value", BUILDER_BAD, ids=[f"{b}-{s}" for b, s, _, _ in BUILDER_BAD])
def test_builder_config_out_of_domain(work, builder, setting, key, value):
    tmp, env = work
    before = snapshot(tmp)
    assert_error(cli(["build-dataset", builder, "--out", tmp / "out", "--set", setting, "--no-progress"], env, tmp),
                 2, f"{builder} config", key, value)
    assert not (tmp / "out").exists()
    assert_unchanged(before, tmp)


@pytest.mark.parametrize("value", ["[1", "!!python/name:os.system"])
def test_bad_set_value(work, value):
    tmp, env = work
    assert_error(cli(["build-dataset", "blur-synth", "--out", tmp / "out", "--set", f"stride={value}"], env, tmp), 2,
                 f"--set stride={value}", "not plain YAML")
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("cmd", [["degrade", "embedded", "OUT", "--seed", "-1"],
                                 ["build-dataset", "blur-synth", "--out", "OUT", "--seed", "-3"]])
def test_negative_seed(work, cmd):
    tmp, env = work
    before = snapshot(tmp)
    args = [str(tmp / "out") if a == "OUT" else a for a in cmd]
    assert_error(cli(args, env, tmp), 2, "--seed", "[0, 2**63-1]")
    assert_unchanged(before, tmp)


def test_benchmark_metric_settings_for_unknown_metric(work):
    tmp, env = work
    b = tmp / "bench.yaml"
    b.write_text("name: t\nmetrics: [psnr]\nmetric_settings: {psnrr: {crop_border: 4}}\nmethods: [identity]\n"
                 "datasets:\n  - {name: d, kind: pipeline, pipeline: realesrgan_x1, limit: 1}\n")
    before = snapshot(tmp)
    assert_error(cli(["evaluate", "--benchmark", b, "--run", tmp / "run"], env, tmp), 2, str(b), "psnrr",
                 "Did you mean 'psnr'")
    assert_unchanged(before, tmp)


def test_benchmark_negative_dataset_seed(work):
    tmp, env = work
    b = tmp / "bench.yaml"
    b.write_text("name: t\nmetrics: [psnr]\nmethods: [identity]\n"
                 "datasets:\n  - {name: d, kind: pipeline, pipeline: realesrgan_x1, limit: 1, seed: -2}\n")
    assert_error(cli(["evaluate", "--benchmark", b, "--run", tmp / "run"], env, tmp), 2, str(b), "seed", "-2")
    assert not (tmp / "run").exists()


# ----------------------------------------------------------------------------- damaged benchkit files


@pytest.fixture(scope="module")
def built(tmp_path_factory, cli_env_module):
    """A finished 2-sample degrade output (copied by the tests that damage it)."""
    d = tmp_path_factory.mktemp("built") / "ds"
    run_cli(["degrade", "embedded", str(d), "--limit", "2", "--no-progress"], env=cli_env_module)
    return d


@pytest.fixture(scope="module")
def cli_env_module():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BENCHKIT_MAX_PIXELS", None)
    return env


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("content,needle", [(b'{"seed": 0,\n', "invalid JSON"), (b"[1, 2]\n", "JSON object"),
                                            (b"\xff\xfe\x00garbage", "not UTF-8")])
def test_corrupt_spec_on_resume(work, built, content, needle):
    tmp, env = work
    d = _copy(built, tmp / "ds")
    (d / "spec.json").write_bytes(content)
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", d, "--limit", "2", "--no-progress"], env, tmp), 2,
                 str(d / "spec.json"), needle, "rebuild")
    assert_unchanged(before, tmp)


def test_corrupt_spec_on_replay_and_export(work, built):
    tmp, env = work
    d = _copy(built, tmp / "ds")
    (d / "spec.json").write_text("{not json")
    before = snapshot(tmp)
    assert_error(cli(["replay", d, "astronaut"], env, tmp), 2, str(d / "spec.json"))
    assert_error(cli(["export", d, "--out", tmp / "hf"], env, tmp), 2, str(d / "spec.json"))
    assert_unchanged(before, tmp)


def test_binary_manifest(work, built):
    tmp, env = work
    d = _copy(built, tmp / "ds")
    (d / "manifest.jsonl").write_bytes(b"\x00\xff\xfe\x89PNG\n{}\n")
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", d, "--limit", "2", "--no-progress"], env, tmp), 2,
                 str(d / "manifest.jsonl"), "not UTF-8")
    assert_unchanged(before, tmp)


@pytest.mark.parametrize("content,needle", [("garbage{", "invalid JSON"), ('{"benchmark": "x"}', "'datasets'"),
                                            ("[]", "JSON object")])
def test_corrupt_results_json_on_publish(work, content, needle):
    tmp, env = work
    (tmp / "run").mkdir()
    (tmp / "run" / "results.json").write_text(content)
    before = snapshot(tmp)
    assert_error(cli(["publish", "--run", tmp / "run", "--out", tmp / "lb"], env, tmp), 2,
                 str(tmp / "run" / "results.json"), needle, "benchkit evaluate")
    assert not (tmp / "lb").exists()
    assert_unchanged(before, tmp)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, cli_env_module):
    root = tmp_path_factory.mktemp("evaluated")
    b = root / "bench.yaml"
    b.write_text("name: tiny\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [identity]\n"
                 "datasets:\n  - {name: d1, kind: pipeline, pipeline: realesrgan_x1, source: embedded, limit: 2}\n")
    run_cli(["evaluate", "--benchmark", str(b), "--run", str(root / "run"), "--no-progress"], env=cli_env_module)
    return b, root / "run"


def test_corrupt_outputs_index(work, evaluated):
    tmp, env = work
    bench, run = evaluated
    r = _copy(run, tmp / "run")
    idx = r / "outputs" / "d1" / "identity" / "index.jsonl"
    idx.write_text("{broken\n" + idx.read_text())
    proc = cli(["evaluate", "--benchmark", bench, "--run", r, "--no-progress"], env, tmp)
    # an index is a cache: the unreadable line is skipped with a notice and the index rewritten; the method's
    # outputs are all still indexed, so nothing fails and nothing is redone
    assert proc.returncode == 0 and "Traceback" not in proc.stderr + proc.stdout
    assert "FAILED" not in proc.stdout
    res = json.loads((r / "results.json").read_text())
    assert any(str(idx) in n and "unreadable line" in n for n in res["notices"]), res["notices"]
    assert res["counters"]["images_restored"] == 0 and "{broken" not in idx.read_text()


# ------------------------------------------------------------------------------------- OS failures


def test_output_below_a_file(work):
    tmp, env = work
    (tmp / "afile").write_text("x")
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "afile" / "out", "--limit", "1", "--no-progress"], env, tmp),
                 2, str(tmp / "afile"), "is a file, not a folder")
    assert_unchanged(before, tmp)


def test_output_is_a_file(work):
    tmp, env = work
    (tmp / "out").write_text("x")
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "out", "--limit", "1", "--no-progress"], env, tmp), 2,
                 str(tmp / "out"), "not a folder")
    assert_unchanged(before, tmp)


def test_full_disk(work):
    tmp, env = work
    patch = ("import errno, os\n"
             "def full(fd):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
             "os.fsync = full")
    before = snapshot(tmp)
    proc = cli_patched(patch, ["degrade", "embedded", tmp / "out", "--limit", "1", "--no-progress"], env, tmp)
    assert_error(proc, 2, str(tmp / "out" / "spec.json"), "no space left on device", "free disk space")
    assert_unchanged(before, tmp, new_ok=("out",))
    assert not [p for p in (tmp / "out").rglob("*") if p.is_file()]  # no partial or temporary file


def test_read_only_output(work):
    tmp, env = work
    patch = ("import errno, tempfile\n"
             "def ro(*a, **k):\n    raise OSError(errno.EROFS, 'Read-only file system', k.get('dir'))\n"
             "tempfile.mkstemp = ro")
    before = snapshot(tmp)
    proc = cli_patched(patch, ["degrade", "embedded", tmp / "out", "--limit", "1", "--no-progress"], env, tmp)
    assert_error(proc, 2, str(tmp / "out"), "read-only file system", "writable output folder")
    assert_unchanged(before, tmp, new_ok=("out",))


def test_permission_denied(work):
    tmp, env = work
    patch = ("import errno, tempfile\n"
             "def deny(*a, **k):\n    raise PermissionError(errno.EACCES, 'Permission denied', k.get('dir'))\n"
             "tempfile.mkstemp = deny")
    proc = cli_patched(patch, ["degrade", "embedded", tmp / "out", "--limit", "1", "--no-progress"], env, tmp)
    assert_error(proc, 2, str(tmp / "out"), "permission denied", "chmod")


def test_closed_pipe_is_quiet(work):
    tmp, env = work
    proc = subprocess.Popen([sys.executable, "-m", "benchkit", "weights", "status", "--all"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp)
    proc.stdout.close()  # the reader is gone before benchkit writes anything
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == "", err


def test_head_pipeline_is_quiet(work):
    tmp, env = work
    patch = ("import benchkit.commands.pipelines as p\n"
             "def many(args):\n    for i in range(200000):\n        print('line', i)\n    return 0\n"
             "p.run = many")
    code = f"{patch}\nfrom benchkit.cli import main\nraise SystemExit(main(['pipelines']))\n"
    proc = subprocess.run(["bash", "-c", 'set -o pipefail; "$0" -c "$1" | head -1', sys.executable, code],
                          capture_output=True, text=True, env=env, cwd=tmp)
    assert proc.stdout == "line 0\n" and proc.returncode == 0 and proc.stderr == "", proc.stderr


# ----------------------------------------------------------------------------- unexpected exceptions

BUG = ("import benchkit.commands.pipelines as p\n"
       "def boom(args):\n    raise ZeroDivisionError('planted bug')\n"
       "p.run = boom")


def test_unexpected_error_writes_log(work):
    tmp, env = work
    proc = cli_patched(BUG, ["pipelines"], env, tmp)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    logs = sorted(tmp.glob("benchkit-error-*.log"))
    assert len(logs) == 1
    assert proc.stderr.count("\n") == 1 and str(logs[0]) in proc.stderr and "planted bug" in proc.stderr
    text = logs[0].read_text()
    assert "Traceback" in text and "ZeroDivisionError: planted bug" in text


def test_unexpected_error_log_goes_to_output_folder(work):
    tmp, env = work
    (tmp / "out").mkdir()
    patch = ("import benchkit.commands.degrade as d\n"
             "def boom(args):\n    raise KeyError('planted')\n"
             "d.run = boom")
    proc = cli_patched(patch, ["degrade", "embedded", tmp / "out"], env, tmp)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    logs = list((tmp / "out").glob("benchkit-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in proc.stderr
    assert not list(tmp.glob("benchkit-error-*.log"))


def test_unexpected_error_log_falls_back_to_cache(work):
    tmp, env = work
    cwd = tmp / "ro"
    cwd.mkdir()
    cache = tmp / "cache"
    env = {**env, "BENCHKIT_CACHE": str(cache)}
    patch = "import os\n_access = os.access\nos.access = lambda p, m: False if str(p) == os.getcwd() else _access(p, m)\n"
    proc = cli_patched(patch + BUG, ["pipelines"], env, cwd)
    assert proc.returncode == 1
    logs = list(cache.glob("benchkit-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in proc.stderr
    assert not list(cwd.iterdir())


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_prints_traceback(work, where):
    tmp, env = work
    p = tmp / "bad.yaml"
    p.write_text("a: [\n")
    args = ["degrade", "embedded", tmp / "out", "--pipeline", p]
    args = ["--verbose", *args] if where == "before" else [*args, "--verbose"]
    proc = cli(args, env, tmp)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "invalid YAML" in proc.stderr


# ---------------------------------------------------------------------------------- images


def test_huge_header_is_refused_before_decoding(work):
    tmp, env = work
    src = small_source(tmp / "src", 1)
    (src / "huge.png").write_bytes(png_header_only(100000, 100000, zlib.compress(b"\0" * 1000)))
    before = snapshot(tmp)
    proc = cli(["degrade", src, tmp / "out", "--no-progress"], env, tmp)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    failed = [ln for ln in proc.stdout.splitlines() if "FAILED" in ln]
    assert len(failed) == 1 and str(src / "huge.png") in failed[0]
    assert "10,000,000,000 pixels" in failed[0] and "BENCHKIT_MAX_PIXELS" in failed[0]
    assert_unchanged(before, tmp, new_ok=("out/",))


def test_zlib_bomb_is_refused(work):
    tmp, env = work
    src = tmp / "src"
    src.mkdir()
    c = zlib.compressobj(1)
    row = b"\0" * 20001  # filter byte + 20000 gray pixels
    data = b"".join(c.compress(row * 500) for _ in range(40)) + c.flush()
    assert len(data) < 2_000_000  # 400 MB of pixels in under 2 MB
    (src / "bomb.png").write_bytes(png_header_only(20000, 20000, data))
    proc = cli(["degrade", src, tmp / "out", "--no-progress"], env, tmp)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr and "MemoryError" not in proc.stdout
    failed = [ln for ln in proc.stdout.splitlines() if "FAILED" in ln]
    assert len(failed) == 1 and "bomb.png" in failed[0] and "too large" in failed[0]


def test_max_pixels_env(work):
    tmp, env = work
    src = small_source(tmp / "src", 2)  # 64 x 72 = 4,608 px
    proc = cli(["degrade", src, tmp / "a", "--no-progress"], {**env, "BENCHKIT_MAX_PIXELS": "4000"}, tmp)
    assert proc.returncode == 3 and proc.stdout.count("FAILED") == 2 and "over the limit of 4,000" in proc.stdout
    proc = cli(["degrade", src, tmp / "b", "--no-progress"], {**env, "BENCHKIT_MAX_PIXELS": "0"}, tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_max_pixels_env(work):
    tmp, env = work
    before = snapshot(tmp)
    assert_error(cli(["degrade", "embedded", tmp / "out"], {**env, "BENCHKIT_MAX_PIXELS": "lots"}, tmp), 2,
                 "BENCHKIT_MAX_PIXELS", "'lots'")
    assert_unchanged(before, tmp)


@pytest.mark.parametrize("kind", ["nan", "inf", "0-255", "negative"])
def test_float_tiff_refused(work, kind):
    import cv2

    tmp, env = work
    src = tmp / "src"
    src.mkdir()
    a = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    if kind == "nan":
        a[3, 3, 1] = np.nan
    elif kind == "inf":
        a[0, 0, 0] = np.inf
    elif kind == "0-255":
        a *= 255
    else:
        a -= 0.5
    assert cv2.imwrite(str(src / "f.tif"), a)
    proc = cli(["degrade", src, tmp / "out", "--no-progress", "--pipeline", "motion_blur"], env, tmp)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    failed = [ln for ln in proc.stdout.splitlines() if "FAILED" in ln]
    assert len(failed) == 1 and str(src / "f.tif") in failed[0] and "fix" in failed[0]
    assert ("NaN or infinite" if kind in ("nan", "inf") else "[0, 1]") in failed[0]


def test_float_tiff_in_unit_range_accepted(work):
    import cv2

    tmp, env = work
    src = tmp / "src"
    src.mkdir()
    assert cv2.imwrite(str(src / "f.tif"), np.random.default_rng(2).random((16, 16, 3)).astype(np.float32))
    proc = cli(["degrade", src, tmp / "out", "--no-progress", "--pipeline", "motion_blur"], env, tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_score_huge_header(work):
    tmp, env = work
    ref = small_source(tmp / "ref", 1)
    out = tmp / "res"
    out.mkdir()
    (out / "img0.png").write_bytes(png_header_only(100000, 100000, zlib.compress(b"\0" * 100)))
    proc = cli(["score", ref, out, "--out", tmp / "s"], env, tmp)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "too large" in proc.stderr and "0 of 1 result image scored" in proc.stdout


# ------------------------------------------------------------------------------- modes and counts


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_umask(work, umask, mode):
    tmp, env = work
    proc = cli(["degrade", "embedded", tmp / "out", "--limit", "1", "--no-progress"], env, tmp, umask=umask)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in (tmp / "out").rglob("*") if p.is_file()]
    assert len(files) >= 4
    for p in files:
        assert p.stat().st_mode & 0o777 == mode, (p, oct(p.stat().st_mode))


def test_score_counts_only_scored_images(work):
    tmp, env = work
    ref = small_source(tmp / "ref", 2)
    out = tmp / "res"
    small_source(out, 2, seed=1)
    (out / "img1.png").rename(out / "other.png")  # no reference: FR metrics give nothing
    proc = cli(["score", ref, out, "--metrics", "psnr", "--out", tmp / "s"], env, tmp)
    assert proc.returncode == 3
    assert proc.stdout.splitlines()[0] == "1 of 2 result images scored"
    (out / "img0.png").rename(out / "another.png")
    proc = cli(["score", ref, out, "--metrics", "psnr", "--out", tmp / "s2"], env, tmp)
    assert proc.returncode == 3 and proc.stdout.splitlines()[0] == "0 of 2 result images scored"
    assert "no image was scored" in proc.stderr


def test_errno_names_cover_common_failures():
    """The boundary's one-line wording for the OS errors users hit (no OS-specific text needed)."""
    from benchkit.cli import describe_os_error

    for code, words in [(errno.ENOSPC, "no space"), (errno.EROFS, "read-only"), (errno.ENOTDIR, "not a folder"),
                        (errno.EACCES, "permission denied")]:
        line = describe_os_error(OSError(code, os.strerror(code), "/x/y"))
        assert line.startswith("/x/y: ") and words in line and "; fix: " in line
