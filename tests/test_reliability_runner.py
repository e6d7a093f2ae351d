"""Reliability of the job runner (issue 8 integrity/leftovers/lost work/resources; issue 15 resume cost;
issue 16 source identity): every case asserts the exact outcome (exit code, the message naming the file and
the fix, bytes unchanged)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchkit import manifest as mf
from benchkit.config import load_pipeline
from benchkit.degrade import DegradeProducer
from benchkit.errors import BadInputError, BenchkitError
from benchkit.images import write_png
from benchkit.runner import JOURNAL_DIR, producer_for_spec, run_producer

FIX = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()
            and p.name != "README.md"}


def _images(d, n=4, size=64, seed=0, suffix=".png"):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.random.default_rng(seed + i).random((size, size, 3)).astype(np.float32)
        if suffix == ".png":
            write_png(d / f"im{i}.png", img)
        else:
            import cv2

            cv2.imwrite(str(d / f"im{i}{suffix}"), (img * 255).astype(np.uint8))
    return d


def _degrade(src, out, seed=0, **kw):
    name, gen, _ = load_pipeline("realesrgan_x1")
    return run_producer(DegradeProducer(name, gen, src), out, seed=seed, progress=False, **kw)


def _cli(args, env, check_rc=None):
    p = subprocess.run([sys.executable, "-m", "benchkit", *args], capture_output=True, text=True, env=env,
                       check=False)
    if check_rc is not None:
        assert p.returncode == check_rc, (p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A finished 4-image realesrgan_x1 build (seed 0) and its source; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("built")
    src = _images(root / "src")
    _degrade(src, root / "out")
    return root / "out", src


def _copy(built, tmp_path):
    out, src = built
    s2, o2 = tmp_path / "src", tmp_path / "out"
    shutil.copytree(src, s2)  # copy2: mtimes kept
    shutil.copytree(out, o2)
    spec = json.loads((o2 / mf.SPEC).read_text())
    spec["source"]["path"] = str(s2.resolve())  # as if it had been built from the copy
    (o2 / mf.SPEC).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return o2, s2


# ----------------------------------------------------------------------------- spec integrity


def test_seed_edited_in_spec_is_refused_by_the_manifest_lines(built, tmp_path, cli_env):
    out, src = _copy(built, tmp_path)
    spec = json.loads((out / mf.SPEC).read_text())
    spec["seed"] = 1
    (out / mf.SPEC).write_text(json.dumps(spec))
    before = _tree(out)
    p = _cli(["degrade", str(src), str(out), "--seed", "1", "--no-progress"], cli_env, check_rc=2)
    assert f"{out / mf.MANIFEST}: sample 'im0' was made with seed 0" in p.stderr
    assert "rerun with --seed 0" in p.stderr and "new output folder" in p.stderr
    assert _tree(out) == before


def test_deleted_spec_with_recorded_samples_is_refused(built, tmp_path, cli_env):
    out, src = _copy(built, tmp_path)
    (out / mf.SPEC).unlink()
    before = _tree(out)
    p = _cli(["degrade", str(src), str(out), "--seed", "1", "--no-progress"], cli_env, check_rc=2)
    assert f"holds 4 recorded sample(s) ({out / mf.MANIFEST}) but no spec.json" in p.stderr
    assert f"restore {out / mf.SPEC}" in p.stderr
    assert _tree(out) == before and not (out / mf.SPEC).exists()


def test_spec_replaced_by_another_configs_spec_is_refused_by_line_fingerprints(built, tmp_path):
    out, src = _copy(built, tmp_path)
    name, gen, _ = load_pipeline("realesrgan_x4")
    other = tmp_path / "other"
    run_producer(DegradeProducer(name, gen, src), other, seed=0, limit=0, progress=False)
    shutil.copy(other / mf.SPEC, out / mf.SPEC)  # spec says x4, the samples are x1
    before = _tree(out)
    with pytest.raises(BenchkitError, match=r"sample 'im0' was made with seed 0 \(config fingerprint [0-9a-f]+\) "
                                            r"but .*spec.json was edited or replaced"):
        run_producer(DegradeProducer(name, gen, src), out, seed=0, progress=False)
    assert _tree(out) == before


def test_other_seed_and_other_encoder_are_refused_with_the_fix(built, tmp_path):
    out, src = _copy(built, tmp_path)
    before = _tree(out)
    with pytest.raises(BenchkitError, match=r"different configuration or seed \(seed 0 vs 3.*rerun with the folder's "
                                            r"settings \(seed 0"):
        _degrade(src, out, seed=3)
    spec = json.loads((out / mf.SPEC).read_text())
    spec["encoding"]["opencv"] = "0.0.1"
    (out / mf.SPEC).write_text(json.dumps(spec))
    with pytest.raises(BenchkitError, match="other image-encoder settings.*rebuild into a new folder"):
        _degrade(src, out)
    before[mf.SPEC] = (out / mf.SPEC).read_bytes()
    assert _tree(out) == before


# ----------------------------------------------------------------------------- source identity


def test_moved_source_resumes_without_recomputing_or_reading(built, tmp_path, monkeypatch):
    out, src = _copy(built, tmp_path)
    moved = tmp_path / "elsewhere" / "src"
    moved.parent.mkdir()
    shutil.move(str(src), moved)
    outputs = {k: v for k, v in _tree(out).items() if k.endswith(".png")}
    from benchkit import fsio, images

    reads = []
    monkeypatch.setattr(fsio, "sha256_file", lambda p, *a, **k: reads.append(p))
    monkeypatch.setattr(images, "read_image_bytes", lambda p, *a, **k: reads.append(p))
    s = _degrade(moved, out)
    assert (s.produced, s.skipped, s.failed) == (0, 4, 0)
    assert reads == []  # no source or output content was read
    assert any(f"source moved: {src.resolve()} -> {moved.resolve()}" in n for n in s.notes)
    assert mf.read_spec(out)["source"]["path"] == str(moved.resolve())
    assert {k: v for k, v in _tree(out).items() if k.endswith(".png")} == outputs


def test_source_copied_with_new_mtimes_is_hashed_once_then_trusted(built, tmp_path, monkeypatch):
    out, src = _copy(built, tmp_path)
    fresh = tmp_path / "fresh"
    time.sleep(0.01)
    shutil.copytree(src, fresh, copy_function=shutil.copy)  # new mtimes, newer than the manifest
    from benchkit import fsio

    hashed = []
    real = fsio.sha256_file
    monkeypatch.setattr(fsio, "sha256_file", lambda p, *a, **k: hashed.append(Path(p).name) or real(p, *a, **k))
    s = _degrade(fresh, out)
    assert (s.produced, s.skipped) == (0, 4) and sorted(hashed) == [f"im{i}.png" for i in range(4)]
    hashed.clear()
    s = _degrade(fresh, out)
    assert (s.produced, s.skipped) == (0, 4) and hashed == []  # verified once, trusted by size/mtime after


def test_embedded_demo_built_under_one_home_resumes_under_another(tmp_path, cli_env):
    """issue 16: the embedded source cached under another HOME/cache holds the same files: resume, no recompute."""
    out = tmp_path / "demo"
    env1 = {**cli_env, "BENCHKIT_CACHE": str(tmp_path / "home1" / ".cache")}
    env2 = {**cli_env, "BENCHKIT_CACHE": str(tmp_path / "home2" / ".cache")}
    _cli(["degrade", "embedded", str(out), "--limit", "2", "--no-progress"], env1, check_rc=0)
    before = _tree(out)
    p = _cli(["degrade", "embedded", str(out), "--limit", "2", "--no-progress"], env2, check_rc=0)
    assert "0 produced, 2 already done" in p.stdout
    assert "note: source moved:" in p.stdout and "home2" in p.stdout
    after = _tree(out)
    assert {k: v for k, v in after.items() if k != mf.SPEC} == {k: v for k, v in before.items() if k != mf.SPEC}


def test_a_different_source_is_refused(built, tmp_path, cli_env):
    out, _src = _copy(built, tmp_path)
    other = _images(tmp_path / "other", n=4, seed=100)  # same names, other pictures
    (other / "extra.png").write_bytes((other / "im0.png").read_bytes())
    before = _tree(out)
    p = _cli(["degrade", str(other), str(out), "--no-progress"], cli_env, check_rc=2)
    assert f"was built from source {_src.resolve()} (4 files" in p.stderr
    assert f"this run reads {other.resolve()} (5 files" in p.stderr
    assert "pass the original source folder, or build into a new output folder" in p.stderr
    assert _tree(out) == before


def test_edited_source_image_rebuilds_its_sample_with_a_message(built, tmp_path):
    out, src = _copy(built, tmp_path)
    time.sleep(0.01)
    _images(tmp_path / "new", n=1, seed=55)
    shutil.copy(tmp_path / "new" / "im0.png", src / "im1.png")  # im1 edited in place
    old = _tree(out)
    s = _degrade(src, out)
    assert (s.produced, s.skipped) == (1, 3)
    assert any(f"source {src / 'im1.png'} changed since the build" in n and "sample im1 is rebuilt" in n
               for n in s.notes), s.notes
    clean = tmp_path / "clean"
    _degrade(src, clean)
    assert _tree(out) == _tree(clean)  # same bytes as a clean build of the edited source
    assert _tree(out)["lq/im0.png"] == old["lq/im0.png"] and _tree(out)["lq/im1.png"] != old["lq/im1.png"]


def test_same_size_source_edit_is_caught_by_mtime(tmp_path):
    """BMP: an edited pixel keeps the file size; the newer mtime makes the resume hash it and rebuild."""
    src = _images(tmp_path / "src", n=3, suffix=".bmp")
    out = tmp_path / "out"
    _degrade(src, out)
    data = bytearray((src / "im2.bmp").read_bytes())
    data[-1] ^= 0xFF
    time.sleep(0.01)
    (src / "im2.bmp").write_bytes(bytes(data))
    s = _degrade(src, out)
    assert (s.produced, s.skipped) == (1, 2)
    assert any("im2.bmp changed since the build" in n for n in s.notes)


def test_verify_rereads_contents_that_size_and_mtime_cannot_see(built, tmp_path, cli_env):
    out, src = _copy(built, tmp_path)
    good = (out / "lq" / "im2.png").read_bytes()
    st = os.stat(out / "lq" / "im2.png")
    bad = bytearray(good)
    bad[-20] ^= 0xFF
    (out / "lq" / "im2.png").write_bytes(bytes(bad))  # same size ...
    os.utime(out / "lq" / "im2.png", ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and mtime
    os.utime(out / mf.MANIFEST, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    p = _cli(["degrade", str(src), str(out), "--no-progress"], cli_env, check_rc=0)
    assert "0 produced, 4 already done" in p.stdout  # default: trusted by size and mtime (documented limit)
    p = _cli(["degrade", str(src), str(out), "--no-progress", "--verify"], cli_env, check_rc=0)
    assert "1 produced, 3 already done" in p.stdout
    assert f"output {out / 'lq' / 'im2.png'} is missing or changed: sample im2 is rebuilt" in p.stdout
    assert (out / "lq" / "im2.png").read_bytes() == good


# ----------------------------------------------------------------------------- 0.1.0 folders


@pytest.mark.parametrize("name", ["realesrgan_x1", "realesrgan_x4", "realesrgan_x1_svblur", "f2s_d2", "motion_blur",
                                  "blur-synth"])
def test_v010_dataset_resumes_from_its_old_spec_without_recomputing(name, tmp_path, monkeypatch):
    d = tmp_path / name
    shutil.copytree(FIX / name, d)
    old_outputs = {k: v for k, v in _tree(d).items() if k not in (mf.SPEC, mf.MANIFEST)}
    old_recs = mf.read_manifest(d)
    spec = mf.read_spec(d)
    producer = producer_for_spec(spec, FIX / "source")
    monkeypatch.setattr(type(producer), "produce", lambda *a, **k: pytest.fail("recomputed a 0.1.0 sample"))
    s = run_producer(producer, d, seed=spec["seed"], limit=len(old_recs), progress=False)
    assert (s.produced, s.skipped, s.failed) == (0, len(old_recs), 0)
    assert {k: v for k, v in _tree(d).items() if k not in (mf.SPEC, mf.MANIFEST)} == old_outputs
    new_recs = mf.read_manifest(d)
    assert sorted(new_recs) == sorted(old_recs)
    for k, r in old_recs.items():
        assert new_recs[k]["params"] == r["params"] and new_recs[k]["seed"] == r["seed"]
        assert {n: o["sha256"] for n, o in new_recs[k]["outputs"].items()} == \
            {n: o["sha256"] for n, o in r["outputs"].items()}
    assert mf.read_spec(d)["dataset_fingerprint"] == spec["dataset_fingerprint"]


# ----------------------------------------------------------------------------- leftovers, workers, counts


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_failed_start_leaves_nothing_and_the_correct_rerun_works(kind, tmp_path, cli_env):
    src = tmp_path / "src"
    if kind == "empty":
        src.mkdir()
    out = tmp_path / "out"
    p = _cli(["degrade", str(src), str(out), "--seed", "5", "--no-progress"], cli_env, check_rc=2)
    assert str(src) in p.stderr
    assert not out.exists()
    _images(src, n=2)
    p = _cli(["degrade", str(src), str(out), "--seed", "6", "--no-progress"], cli_env, check_rc=0)
    assert "2 produced" in p.stdout


def test_a_spec_without_recorded_samples_never_blocks(tmp_path):
    """A folder left by an older failed start (spec.json, no samples) is taken over by the next run."""
    src = _images(tmp_path / "src", n=2)
    out = tmp_path / "out"
    _degrade(src, out, seed=0, limit=0)
    assert mf.read_spec(out)["seed"] == 0 and not mf.read_manifest(out)
    s = _degrade(src, out, seed=1)
    assert s.produced == 2 and mf.read_spec(out)["seed"] == 1


def test_gopro_source_with_no_producible_sample_leaves_nothing(tmp_path):
    from benchkit.builders.base import build
    from benchkit.builders.gopro_source import write_tree
    from benchkit.commands.build_dataset import make_builder

    src = write_tree(tmp_path / "src", (("train", "S0", "coffee", "chelsea", 6, 1.0, 1),), 32)
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="no sample can be made from this source.*source too small"):
        build(make_builder("gopro-enlarged", str(src)), out, progress=False)
    assert not out.exists()


def test_workers_are_capped_by_the_work_and_the_cores(tmp_path, monkeypatch, cli_env):
    import joblib

    from benchkit.runner import usable_cores

    seen = []
    real = joblib.Parallel

    class Spy(real):
        def __init__(self, *a, **k):
            seen.append(k.get("n_jobs"))
            super().__init__(*a, **k)

    monkeypatch.setattr(joblib, "Parallel", Spy)
    src = _images(tmp_path / "src", n=4)
    s = _degrade(src, tmp_path / "out", workers=1000, backend="threading")
    cap = min(4, usable_cores())
    assert s.produced == 4
    assert f"--workers 1000 capped to {cap} (4 job(s) to run, {usable_cores()} usable CPU core(s))" in s.notes
    assert seen == ([cap] if cap > 1 else [])
    p = _cli(["degrade", str(src), str(tmp_path / "cli"), "--workers", "1000", "--no-progress"], cli_env,
             check_rc=0)
    assert f"note: --workers 1000 capped to {cap}" in p.stdout and "4 produced" in p.stdout


def test_gopro_summary_counts_source_problems_apart_from_samples(tmp_path):
    from benchkit.builders.base import build
    from benchkit.builders.gopro_source import write_tree
    from benchkit.commands.build_dataset import make_builder

    src = write_tree(tmp_path / "src", (("train", "S0", "coffee", "chelsea", 30, 1.0, 1),), 48)
    (src / "train" / "EMPTY").mkdir()
    s = build(make_builder("gopro-enlarged", str(src)), tmp_path / "out", progress=False)
    assert s.failed == 0 and s.source_problems == 1 and s.produced == s.total > 0
    assert f"{s.total} samples: {s.produced} produced, 0 already done (resumed), 0 failed" in s.report()
    assert "; 1 source problem(s) (not samples)" in s.report()
    spec = mf.read_spec(tmp_path / "out")
    assert spec["n_failed"] == 0 and spec["n_source_problems"] == 1 and spec["complete"] is True
    assert "source problems (not samples" in (tmp_path / "out" / "README.md").read_text()


# ----------------------------------------------------------------------------- killed runs


def _gopro_cmd(src, out, workers=1):
    return [sys.executable, "-m", "benchkit", "build-dataset", "gopro-enlarged", "--source", str(src), "--out",
            str(out), "--seed", "1", "--workers", str(workers), "--no-progress", "--set", "centre_fraction=0.3"]


@pytest.fixture(scope="module")
def gopro_src(tmp_path_factory):
    from benchkit.builders.gopro_source import write_tree

    seqs = tuple(("train", f"SEQ{i:02d}", ("astronaut", "coffee")[i % 2], ("coffee", "chelsea")[i % 2], 40,
                  1.2 + 0.2 * i, 50 + i) for i in range(3))
    return write_tree(tmp_path_factory.mktemp("gopro-src"), seqs, 160)


def _segment_keys(src):
    from benchkit.commands.build_dataset import make_builder

    b = make_builder("gopro-enlarged", str(src), ["centre_fraction=0.3"])
    b.root_seed = 1
    return [set(b.job_keys(j)) for j in b.jobs()]


def _recorded(out):
    keys = set(mf.read_manifest(out)) if (out / mf.MANIFEST).exists() else set()
    for j in (out / JOURNAL_DIR).glob("*.jsonl") if (out / JOURNAL_DIR).is_dir() else ():
        keys |= {r["key"] for r in mf.read_jsonl(j)}
    return keys


def _kill_mid_segment(cmd, out, env, segments):
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                got = _recorded(out)
            except (BenchkitError, ValueError, OSError):
                got = set()
            if any(0 < len(seg & got) < len(seg) for seg in segments) and len(got) >= 3:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "build finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_segment_keeps_its_finished_samples_and_resume_matches_clean(gopro_src, tmp_path, cli_env,
                                                                                  workers):
    segments = _segment_keys(gopro_src)
    assert max(len(s) for s in segments) >= 6
    clean = tmp_path / "clean"
    subprocess.run(_gopro_cmd(gopro_src, clean), check=True, env=cli_env, capture_output=True)
    total = len(mf.read_manifest(clean))
    out = tmp_path / "killed"
    _kill_mid_segment(_gopro_cmd(gopro_src, out, workers), out, cli_env, segments)
    kept = _recorded(out)
    on_disk = {p.relative_to(out / "lq").with_suffix("").as_posix() for p in (out / "lq").rglob("*.png")}
    # every finished blurry sample on disk is recorded (at most the one being recorded when killed is not)
    assert len(on_disk - kept) <= 1, sorted(on_disk - kept)
    assert any(0 < len(seg & kept) < len(seg) for seg in segments)  # the running segment's finished samples
    assert 0 < len(kept) < total
    p = subprocess.run(_gopro_cmd(gopro_src, out, workers), env=cli_env, capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0, p.stderr
    assert f"{len(kept)} already done" in p.stdout
    assert _tree(out) == _tree(clean)
    assert not (out / JOURNAL_DIR).exists() and not list(out.rglob("*.tmp"))


def test_sigkill_during_degrade_then_resume_gives_clean_bytes(tmp_path, cli_env):
    src = _images(tmp_path / "src", n=24, size=96)
    cmd = [sys.executable, "-m", "benchkit", "degrade", str(src), "", "--no-progress", "--seed", "4"]
    clean = tmp_path / "clean"
    subprocess.run([*cmd[:5], str(clean), *cmd[6:]], check=True, env=cli_env, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([*cmd[:5], str(out), *cmd[6:]], env=cli_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / mf.MANIFEST).exists() and (out / mf.MANIFEST).read_text().count("\n") >= 3:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "degrade finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = len(mf.read_jsonl(out / mf.MANIFEST))
    assert 3 <= kept < 24
    p = _cli(["degrade", str(src), str(out), "--no-progress", "--seed", "4"], cli_env, check_rc=0)
    assert f"{24 - kept} produced, {kept} already done" in p.stdout
    assert _tree(out) == _tree(clean)


# ----------------------------------------------------------------------------- resume cost


def test_resume_cost_is_stats_not_reads(tmp_path, monkeypatch):
    """A resume of a finished build stats files; it opens none of the outputs or sources (issue 15)."""
    import builtins

    src = _images(tmp_path / "src", n=6)
    out = tmp_path / "out"
    _degrade(src, out)
    opened = []
    real_open = builtins.open

    def spy(file, mode="r", *a, **k):
        p = Path(file) if isinstance(file, (str, os.PathLike)) else None
        if p is not None and "r" in mode and p.suffix == ".png":
            opened.append(p)
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    s = _degrade(src, out)
    assert (s.produced, s.skipped) == (0, 6) and opened == []


def test_bench_resume_prints_a_json_line(tmp_path, cli_env):
    p = _cli(["bench", "resume", "--quick", "--n", "40"], cli_env, check_rc=0)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    row = res["sizes"]["40"]
    for k in ("build_wall_s", "build_cpu_s", "resume_wall_s", "manifest_bytes"):
        assert row[k] > 0, k
    for k in ("resume_cpu_s", "resume_over_build"):  # a 40-sample resume can take under one CPU-clock tick
        assert row[k] >= 0, k
    assert row["produced_on_resume"] == 0 and res["machine"]["cpus_usable"] >= 1


def test_sample_failures_are_not_counted_as_source_problems(tmp_path):
    """A corrupt image is one failed sample; it must not also be reported as a source problem."""
    import numpy as np

    from benchkit.config import load_pipeline
    from benchkit.degrade import DegradeProducer
    from benchkit.images import write_png
    from benchkit.runner import run_producer

    src = tmp_path / "src"
    src.mkdir()
    write_png(src / "ok.png", np.full((64, 64, 3), 0.5, np.float32))
    (src / "bad.png").write_bytes(b"not a png")
    name, gen, _ = load_pipeline("motion_blur")
    s = run_producer(DegradeProducer(name, gen, src), tmp_path / "out", seed=0, progress=False)
    assert (s.produced, s.failed, s.source_problems) == (1, 1, 0), s


def test_output_folder_problems_name_the_folder_and_the_fix(tmp_path, capsys):
    """A file standing where an output folder must be: each sample fails with the place and the fix (not "see
    traceback", which nothing printed); a source removed since the build is said in a note; a source whose size
    changed is reported by size (it is not hashed); replay without its source folder says how to point at it."""
    src = _images(tmp_path / "src", n=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "lq").write_bytes(b"not a folder")
    s = _degrade(src, out)
    assert s.produced == 0 and len(s.failures) == 3
    f = s.failures[0]
    assert "cannot write the output at lq" in f["error"] and "output folder writable" in f["fix"], f
    (out / "lq").unlink()
    _degrade(src, out)
    (src / "im2.png").unlink()
    shutil.copyfile(src / "im0.png", tmp_path / "im0.bak")
    write_png(src / "im0.png", np.zeros((32, 32, 3), np.float32))  # another size
    capsys.readouterr()
    name, gen, _ = load_pipeline("realesrgan_x1")
    run_producer(DegradeProducer(name, gen, src), out, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "1 recorded sample(s) have no source any more (e.g. 'im2')" in err, err
    assert "changed since the build (size " in err and "sha256 None" not in err, err
    shutil.move(str(src), str(tmp_path / "moved"))
    from benchkit.runner import replay

    with pytest.raises(BenchkitError, match="--source NEW_PATH"):
        replay(out, "im1")
    assert all(a == b for a, b in replay(out, "im1", source_override=tmp_path / "moved").values())
