"""gopro-enlarged / gopro-test: numerics, plan + trajectory groups, determinism, replay, bad sources, export."""

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_cli

from benchkit import manifest as mf
from benchkit.builders.base import build
from benchkit.builders.gopro import (
    TABLE1_ENLARGED,
    EnlargedConfig,
    GoProEnlargedBuilder,
    GoProTestBuilder,
    SplitTestConfig,
)
from benchkit.builders.gopro_source import Run, write_tree
from benchkit.datasets.build import make_builder
from benchkit.errors import MissingSourceError
from benchkit.runner import replay


@pytest.fixture(scope="module")
def embedded_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("gopro") / "enl"
    b = make_builder("gopro-enlarged", "embedded", ["scale=0.01"])
    s = build(b, out, seed=7, workers=1, progress=False)
    assert s.failed == 0
    return out, b.source


def _independent_average(paths, mode):
    """Reference blur: plain float64 arithmetic on frames read with OpenCV (no benchkit code)."""
    fr = np.stack([cv2.imread(str(p), cv2.IMREAD_COLOR).astype(np.float64) for p in paths])
    if mode == "linear":
        return np.rint(fr.mean(0))
    lin = (fr / 255.0) ** 2.2
    return np.rint(255.0 * lin.mean(0) ** (1 / 2.2))


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.name != "README.md"}


def test_blur_equals_independent_average_and_t_is_g_of_n(embedded_build):
    out, src = embedded_build
    recs = mf.read_manifest(out)
    for key in sorted(recs)[::4]:
        r = recs[key]
        n = r["params"]["n"]
        assert r["params"]["t"] == (n - 1) * 20 and len(r["sources"]) == n
        c = r["params"]["centre_frame"]
        nums = [int(Path(s["path"]).stem) for s in r["sources"]]
        assert nums == list(range(c - (n - 1) // 2, c + (n - 1) // 2 + 1))
        ref = _independent_average([src / s["path"] for s in r["sources"]], "gamma")
        lq = cv2.imread(str(out / r["outputs"]["lq"]["path"]), cv2.IMREAD_COLOR).astype(np.float64)
        assert np.abs(lq - ref).max() <= 1
        gt = cv2.imread(str(out / r["outputs"]["gt"]["path"]), cv2.IMREAD_COLOR)
        assert np.array_equal(gt, cv2.imread(str(src / r["sources"][(n - 1) // 2]["path"]), cv2.IMREAD_COLOR))


def test_linear_crf_option(tmp_path):
    b = make_builder("gopro-test", "embedded", ["averaging=linear", "n=7", "stride=9"])
    build(b, tmp_path, progress=False)
    recs = mf.read_manifest(tmp_path)
    assert recs and all(r["params"]["t"] == 120 for r in recs.values())
    for r in recs.values():
        ref = _independent_average([b.source / s["path"] for s in r["sources"]], "linear")
        lq = cv2.imread(str(tmp_path / r["outputs"]["lq"]["path"]), cv2.IMREAD_COLOR)
        assert np.abs(lq - ref).max() <= 1


def test_plan_counts_and_trajectory_groups(embedded_build):
    out, _ = embedded_build
    recs = mf.read_manifest(out).values()
    # independent largest-remainder rounding of 0.01 * Table 1 (7,877 -> 79 pairs)
    quota = {n: 0.01 * c for n, c in TABLE1_ENLARGED.items()}
    exp = {n: int(q) for n, q in quota.items()}
    for n in sorted(quota, key=lambda n: -(quota[n] - exp[n]))[: 79 - sum(exp.values())]:
        exp[n] += 1
    assert Counter(r["params"]["n"] for r in recs) == exp and sum(exp.values()) == 79
    groups = {}
    for r in recs:
        groups.setdefault(r["group"]["id"], []).append(r["params"]["n"])
        assert r["params"]["n"] in r["group"]["levels"]
    assert len(groups) == 79 // 3
    for ns in groups.values():
        assert len(ns) >= 3 and len(set(ns)) == len(ns)


def test_full_table1_plan_on_a_gopro_sized_listing():
    """Planning only (no pixels): 22 sequences x 1,100 frames gets FideDiff Table 1 exactly."""
    runs = [Run("train", f"S{i:02d}", 0, tuple((k, f"train/S{i:02d}/{k:06d}.png") for k in range(1, 1101)),
                1280, 720) for i in range(22)]
    runs.append(Run("train", "S00", 1, tuple((k, f"train/S00/{k:06d}.png") for k in range(1200, 1210)), 1280, 720))
    b = GoProEnlargedBuilder(EnlargedConfig(), "/nonexistent")
    b.root_seed = 3
    groups = b.groups(runs)
    per_n = Counter(n for _, _, levels in groups for n in levels)
    assert dict(per_n) == TABLE1_ENLARGED and sum(per_n.values()) == 7877
    assert len({(ri, c) for ri, c, _ in groups}) == len(groups) == 7877 // 3
    for ri, c, levels in groups:
        assert len(levels) >= 3
        h = (max(levels) - 1) // 2
        nums = [k for k, _ in runs[ri].frames]
        assert nums[0] <= c - h and c + h <= nums[-1]  # whole window inside one run
    b2 = GoProEnlargedBuilder(EnlargedConfig(), "/nonexistent")
    b2.root_seed = 3
    assert b2.groups(runs) == groups
    b2.root_seed = 4
    assert b2.groups(runs) != groups


def test_workers_1_vs_2_identical_and_replay(embedded_build, tmp_path):
    out, _ = embedded_build
    b = make_builder("gopro-enlarged", "embedded", ["scale=0.01"])
    s = build(b, tmp_path / "w2", seed=7, workers=2, progress=False)
    assert s.produced == 79 and _tree(out) == _tree(tmp_path / "w2")
    for key in sorted(mf.read_manifest(out))[::20]:
        res = replay(out, key)
        assert set(res) == {"gt", "lq"} and all(a == b for a, b in res.values())


def test_replay_cli(embedded_build, cli_env):
    out, _ = embedded_build
    key = sorted(mf.read_manifest(out))[5]
    p = run_cli(["replay", str(out), key], env=cli_env)
    assert p.stdout.count("identical") == 2


def test_test_split_builder_embedded(tmp_path, cli_env):
    p = run_cli(["build-dataset", "gopro-test", "--source", "embedded", "--out", str(tmp_path), "--no-progress"],
                env=cli_env)
    recs = mf.read_manifest(tmp_path)
    assert len(recs) == 4 and "4 samples" in p.stdout  # one 44-frame test sequence, 11-frame windows
    assert all(r["params"]["n"] == 11 and r["params"]["t"] == 200 for r in recs.values())
    starts = sorted(int(Path(r["sources"][0]["path"]).stem) for r in recs.values())
    assert starts == [1, 12, 23, 34]  # non-overlapping windows
    assert "t = 200" in (tmp_path / "README.md").read_text()


def test_missing_or_malformed_source_prints_layout_and_download(tmp_path):
    for src in (tmp_path / "nope", tmp_path):
        b = GoProEnlargedBuilder(EnlargedConfig(), src)
        with pytest.raises(MissingSourceError) as ei:
            b.check_source()
        msg = str(ei.value)
        assert "GOPRO_Large_all" in msg and "train/" in msg and "seungjunnah.github.io" in msg


def test_bad_source_reported_per_sequence_rest_builds(tmp_path):
    src = tmp_path / "src"
    seqs = tuple(("train", f"SEQ{i}", "astronaut", "coffee", 30, 1.5, i) for i in range(5))
    write_tree(src, seqs, 48)
    small = cv2.resize(cv2.imread(str(src / "train" / "SEQ4" / "000015.png")), (32, 32))
    cv2.imwrite(str(src / "train" / "SEQ4" / "000015.png"), small)  # size mismatch
    (src / "train" / "SEQ0" / "000012.png").unlink()  # gap
    data = (src / "train" / "SEQ1" / "000010.png").read_bytes()
    (src / "train" / "SEQ1" / "000010.png").write_bytes(data[: len(data) // 3])  # truncated pixel data
    (src / "train" / "SEQ1" / "000020.png").write_bytes(b"not a png at all")  # corrupt header
    (src / "train" / "SEQ2").mkdir(exist_ok=True)
    for p in (src / "train" / "SEQ2").iterdir():
        p.unlink()  # empty sequence folder
    b = GoProTestBuilder(SplitTestConfig(split="train", n=5, stride=1), src)
    s = build(b, tmp_path / "out", progress=False)
    fails = {(f["key"], Path(f["path"]).name): f for f in s.failures}
    assert "missing frame numbers 12" in fails[("source/train/SEQ0", "SEQ0")]["error"]
    assert ("source/train/SEQ1", "000020.png") in fails
    assert "is 32x32" in fails[("source/train/SEQ4", "000015.png")]["error"]
    seq4 = sorted(r["params"]["centre_frame"] for r in mf.read_manifest(tmp_path / "out").values()
                  if r["params"]["sequence"] == "SEQ4")
    assert seq4 == list(range(3, 13)) + list(range(18, 29))  # the odd-sized frame acts as a gap
    assert ("source/train/SEQ2", "SEQ2") in fails and "no numbered PNG" in fails[("source/train/SEQ2", "SEQ2")]["error"]
    # samples needing the truncated frame fail by name; windows never cross a gap
    trunc = [f for f in s.failures if f["key"].startswith("SEQ1/")]
    assert sorted(f["key"] for f in trunc) == [f"SEQ1/{c:06d}_n05" for c in range(8, 13)]
    assert all("000010.png" in f["error"] for f in trunc)
    recs = mf.read_manifest(tmp_path / "out")
    seq0 = sorted(r["params"]["centre_frame"] for r in recs.values() if r["params"]["sequence"] == "SEQ0")
    assert seq0 == list(range(3, 10)) + list(range(15, 29))
    assert sum(r["params"]["sequence"] == "SEQ3" for r in recs.values()) == 26
    assert not any(r["params"]["sequence"] == "SEQ2" for r in recs.values())
    report = s.report()
    assert "SEQ2" in report and "FAILED" in report
    # the enlarged builder also completes on the damaged tree
    s2 = build(make_builder("gopro-enlarged", str(src), ["scale=0.005"]), tmp_path / "enl", progress=False)
    assert s2.produced > 0 and any(f["key"].startswith("source/") for f in s2.failures)


def test_export_hf_roundtrip(embedded_build, tmp_path, cli_env):
    import datasets

    out, _ = embedded_build
    run_cli(["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf")], env=cli_env)
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    recs = mf.read_manifest(out)
    assert len(ds) == len(recs)
    assert isinstance(ds.features["lq"], datasets.Image) and isinstance(ds.features["gt"], datasets.Image)
    row = ds[3]
    rec = recs[row["key"]]
    assert row["params.n"] == rec["params"]["n"] and row["params.t"] == rec["params"]["t"]
    assert json.loads(row["record"]) == rec
    lq = cv2.cvtColor(cv2.imread(str(out / rec["outputs"]["lq"]["path"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(np.asarray(row["lq"].convert("RGB")), lq)


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, benchkit.builders.gopro, benchkit.builders.gopro_source; " \
           "print(any(m in sys.modules for m in ('cv2', 'numpy', 'datasets', 'torch')))"
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert p.stdout.strip() == "False", p.stderr


def test_non_rgb8_frames_are_reencoded_not_copied(tmp_path):
    """RGBA source PNGs: the sharp target is re-encoded from pixels (alpha dropped), blur still matches."""
    src = tmp_path / "src"
    write_tree(src, (("test", "RGBA0", "chelsea", "coffee", 12, 1.5, 3),), 40)
    for p in (src / "test" / "RGBA0").glob("*.png"):
        bgr = cv2.imread(str(p))
        cv2.imwrite(str(p), np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]))
    b = GoProTestBuilder(SplitTestConfig(n=5, stride=3), src)
    build(b, tmp_path / "out", progress=False)
    recs = mf.read_manifest(tmp_path / "out")
    assert len(recs) == 3
    for r in recs.values():
        gt_path = tmp_path / "out" / r["outputs"]["gt"]["path"]
        centre = src / r["sources"][2]["path"]
        assert r["outputs"]["gt"]["sha256"] != r["sources"][2]["sha256"]
        gt = cv2.imread(str(gt_path), cv2.IMREAD_UNCHANGED)
        assert gt.shape == (40, 40, 3) and np.array_equal(gt, cv2.imread(str(centre), cv2.IMREAD_COLOR))
        ref = _independent_average([src / s["path"] for s in r["sources"]], "gamma")
        lq = cv2.imread(str(tmp_path / "out" / r["outputs"]["lq"]["path"]), cv2.IMREAD_COLOR)
        assert np.abs(lq - ref).max() <= 1


def test_segments_never_share_frames_so_each_frame_is_decoded_once(tmp_path):
    """A later centre with a wider window can start before the previous segment ends: segments must merge."""
    run = Run("train", "S", 0, tuple((k, f"train/S/{k:06d}.png") for k in range(1, 60)), 8, 8)

    class Fixed(GoProTestBuilder):
        def scan(self):
            return [run], []

        def groups(self, runs):  # windows [8,12], [15,17], [10,24]
            return [(0, 10, (5,)), (0, 16, (3,)), (0, 17, (15,))]

    jobs = Fixed(source=tmp_path).jobs()
    frames = [f for j in jobs for _, f in j.payload["frames"]]
    assert len(frames) == len(set(frames)), "a source frame is in two segments (decoded twice)"
    assert sorted(k for j in jobs for k in Fixed(source=tmp_path).job_keys(j)) == \
        ["S/000010_n05", "S/000016_n03", "S/000017_n15"]


def test_frame_names_with_non_ascii_digits_are_reported_not_fatal(tmp_path):
    from benchkit.builders.gopro_source import scan_sequence

    seq = tmp_path / "train" / "S"
    seq.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(seq / f"{i:06d}.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(seq / "\u00b9.png"), np.zeros((4, 4, 3), np.uint8))  # '¹'.isdigit() is True, int() fails
    runs, problems = scan_sequence(tmp_path, "train", seq)
    assert [len(r) for r in runs] == [3]
    assert any("\u00b9.png" in p["error"] for p in problems)


def test_resume_hashes_each_existing_output_once(embedded_build, tmp_path, monkeypatch):
    """A resume trusts unchanged files by size and mtime (reads none); with verify=True it re-hashes each file
    once, even the sharp frame shared by >= 3 levels of its group."""
    import shutil

    from benchkit import fsio

    out, source = embedded_build
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    calls = Counter()
    real = fsio.sha256_file

    def counting(p, *a, **k):
        p = Path(p)
        calls[p.relative_to(copy).as_posix() if p.is_relative_to(copy) else "source:" + p.relative_to(source).as_posix()] += 1
        return real(p, *a, **k)

    monkeypatch.setattr(fsio, "sha256_file", counting)
    b = make_builder("gopro-enlarged", str(source), ["scale=0.01"])
    s = build(b, copy, seed=7, workers=1, progress=False)
    assert s.produced == 0 and s.skipped > 0
    assert not calls, calls.most_common(3)  # nothing re-read
    s = build(make_builder("gopro-enlarged", str(source), ["scale=0.01"]), copy, seed=7, workers=1, progress=False,
              verify=True)
    assert s.produced == 0 and s.skipped > 0
    assert any(r.startswith("gt/") for r in calls) and any(r.startswith("source:") for r in calls)
    assert max(calls.values()) == 1, calls.most_common(3)
    assert _tree(copy) == _tree(out)


def test_empty_plan_and_zero_stride_are_config_errors():
    from benchkit.errors import ConfigError

    # validated when the config is made (issue 8: at load, before any work), naming the key and the range
    for plan in ({}, {5: 0, 7: 0}):
        with pytest.raises(ConfigError, match="plan: no n has a count > 0"):
            EnlargedConfig(plan=plan)
    with pytest.raises(ConfigError, match=r"stride = 0: must be an integer in \[1, 100000\]"):
        SplitTestConfig(n=5, stride=0)
