"""End to end: evaluate + publish on tiny datasets; numbers recomputed independently; caching counters."""

import csv
import json

import numpy as np
import pytest

from conftest import run_cli

BENCH = """\
name: tiny
description: tiny end-to-end benchmark for tests
metrics: [psnr, ssim, psnr_rgb]
primary_metric: psnr
methods: [all]
plot: {{x: psnr, y: [niqe, ssim]}}
datasets:
  - {{name: blur, kind: folder, path: {blur}}}
  - {{name: sr, kind: folder, path: {sr}}}
  - {{name: not-yet, kind: builder, builder: no-such-builder}}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from benchkit.harness.toyset import write_toy_dataset

    root = tmp_path_factory.mktemp("tiny")
    write_toy_dataset(root / "blur", "blur", n=3, size=48, seed=1)
    write_toy_dataset(root / "sr", "x4", n=2, size=48, seed=1)
    yaml = root / "tiny.yaml"
    yaml.write_text(BENCH.format(blur=root / "blur", sr=root / "sr"))
    return root, yaml


@pytest.fixture(scope="module")
def evaluated(tiny):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish

    root, yaml = tiny
    res = evaluate(str(yaml), run_dir=root / "run", weights_root=root / "weights", log=lambda *a: None)
    pub = publish(root / "run", root / "lb")
    return root, res, pub


def _y(img):
    from skimage.color import rgb2ycbcr

    return rgb2ycbcr(img)[..., 0]  # BT.601 limited range, [16, 235]


def test_leaderboard_files_and_real_numbers(evaluated):
    from benchkit.images import read_image
    from skimage.metrics import peak_signal_noise_ratio

    root, res, pub = evaluated
    lb = root / "lb"
    for name in ("blur.csv", "blur.md", "blur.png", "sr.csv", "sr.md", "sr.png", "meta.json"):
        assert (lb / name).is_file(), name
    assert (lb / "blur.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((lb / "blur.csv").open()))
    assert list(rows[0]) == ["method", "oracle", "steps", "seconds_per_image", "psnr", "ssim", "psnr_rgb",
                             "n_images", "n_failed"]
    assert {r["method"]: r["oracle"] for r in rows if r["method"] in ("wiener", "identity")} == \
        {"wiener": "yes", "identity": "no"}  # the blur toy set records its PSF
    assert [r["method"] for r in rows] == sorted([r["method"] for r in rows],
                                                 key=lambda m: -float(next(x for x in rows if x["method"] == m)["psnr"]))
    assert {r["method"] for r in rows} == {"identity", "unsharp", "nlmeans", "wiener", "richardson-lucy"}
    assert all(len(r["psnr"].split(".")[1]) == 4 for r in rows)

    # recompute the wiener row independently from the written outputs and the targets
    ds = root / "blur"
    man = {json.loads(x)["key"]: json.loads(x) for x in (ds / "manifest.jsonl").read_text().splitlines()}
    ys, rgbs = [], []
    for key, rec in man.items():
        out = read_image(root / "run" / "outputs" / "blur" / "wiener" / f"{key}.png")
        gt = read_image(ds / rec["outputs"]["gt"]["path"])
        ys.append(peak_signal_noise_ratio(_y(gt), _y(out), data_range=255))
        rgbs.append(peak_signal_noise_ratio(gt, out, data_range=1.0))
    row = next(r for r in rows if r["method"] == "wiener")
    assert float(row["psnr"]) == pytest.approx(np.mean(ys), abs=2e-3)
    assert float(row["psnr_rgb"]) == pytest.approx(np.mean(rgbs), abs=2e-3)
    assert int(row["n_images"]) == 3 and int(row["n_failed"]) == 0

    # bicubic is the only runnable method on the x4 set; output sizes are 4x the input
    sr = list(csv.DictReader((lb / "sr.csv").open()))
    assert [r["method"] for r in sr] == ["bicubic"]
    assert read_image(root / "run" / "outputs" / "sr" / "bicubic" / "astronaut.png").shape == (48, 48, 3)

    md = (lb / "blur.md").read_text()
    best = rows[0]["psnr"]
    assert f"**{best}**" in md and f"<u>{rows[1]['psnr']}</u>" in md
    assert "paper only, no code or weights released" in md


def test_all_methods_listed_and_failures_reported(evaluated):
    from benchkit.registry import METHODS

    root, res, pub = evaluated
    skipped = {s["name"] for s in res.skipped if s["what"] == "method" and not s.get("dataset")}
    ran = {s["method"] for s in res.summary}
    assert skipped | ran == set(METHODS)
    for name in ("osdd", "fidediff", "face2scene"):
        assert any(s["name"] == name and "paper only" in s["reason"] for s in res.skipped)
    assert any(s["name"] == "haodiff" and "img_encoder_weights.pth" in s["reason"] for s in res.skipped)
    # the not-yet-importable dataset is a reported failure, not a crash
    assert [f["dataset"] for f in res.failures if f["stage"] == "dataset"] == ["not-yet"]


def test_results_provenance(evaluated):
    root, res, pub = evaluated
    r = json.loads((root / "run" / "results.json").read_text())
    for k in ("benchkit_version", "git_sha", "seeds", "environment", "metrics", "datasets", "methods", "failures"):
        assert k in r, k
    assert r["git_sha"] != ""
    for k in ("python", "numpy", "torch", "pyiqa", "device"):
        assert k in r["environment"]
    assert r["metrics"]["psnr"]["settings"]["color_space"] == "ycbcr"  # BT.601 Y, SR-paper convention
    assert r["datasets"]["blur"]["fingerprint"] == json.loads((root / "blur" / "spec.json").read_text())[
        "dataset_fingerprint"]
    assert r["methods"]["wiener"]["options"]["nsr"] > 0
    summ = next(s for s in r["summary"] if s["method"] == "wiener")
    assert summ["seconds_per_image"] > 0 and summ["peak_mem_mb"] > 0
    per = list(csv.DictReader((root / "run" / "per_image.csv").open()))
    assert len([p for p in per if p["dataset"] == "blur"]) == 3 * 5
    row = next(p for p in per if p["dataset"] == "blur" and p["method"] == "wiener")
    assert row["dataset_fingerprint"] == r["datasets"]["blur"]["fingerprint"]
    assert row["method_tag"].startswith("wiener@") or "wiener" in row["method_tag"]
    assert row["git_sha"] == r["git_sha"] and row["benchkit_version"] == r["benchkit_version"]
    assert row["environment_id"] == r["environment_id"] and "psnr=" in row["metric_versions"]
    meta = json.loads((root / "lb" / "meta.json").read_text())
    for f in ("meta.json", "blur.md"):  # no local weights path in published files
        assert r["weights_root"] not in (root / "lb" / f).read_text()
    assert meta["git_sha"] == r["git_sha"] and meta["datasets"]["blur"]["fingerprint"]


def test_rerun_recomputes_nothing(evaluated):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish

    root, first, _ = evaluated
    assert first.counters.methods_run == 6 and first.counters.images_restored == 3 * 5 + 2
    assert first.counters.metric_evaluations == (3 * 5 + 2) * 3
    again = evaluate(str(root / "tiny.yaml"), run_dir=root / "run", weights_root=root / "weights",
                     log=lambda *a: None)
    c = again.counters
    assert (c.methods_run, c.images_restored, c.metric_evaluations, c.datasets_built) == (0, 0, 0, 0)
    assert c.outputs_reused == 17 and c.scores_cached == 17 * 3
    before = (root / "lb" / "blur.csv").read_text()
    publish(root / "run", root / "lb")
    after = (root / "lb" / "blur.csv").read_text()
    assert before == after  # same cached numbers and timings -> identical leaderboard


def test_cli_evaluate_and_publish(tiny, tmp_path, cli_env):
    root, yaml = tiny
    run = tmp_path / "run"
    p = run_cli(["evaluate", "--benchmark", str(yaml), "--methods", "identity,wiener", "--metrics", "psnr",
                 "--run", str(run), "--no-progress", "--workers", "2", "--weights-root", str(tmp_path / "w")], env=cli_env,
                check=False)
    assert p.returncode == 3, p.stderr  # the not-yet dataset failed: reported, exit status 3
    assert "computed: 0 datasets built, 2 method runs, 6 images restored" in p.stdout
    assert "FAILED dataset dataset=not-yet" in p.stdout
    p = run_cli(["publish", "--run", str(run), "--out", str(tmp_path / "lb")], env=cli_env)
    rows = list(csv.DictReader((tmp_path / "lb" / "blur.csv").open()))
    assert [r["method"] for r in rows] == ["wiener", "identity"]
    assert str(tmp_path / "lb" / "blur.csv") in p.stdout


def test_benchmark_config_is_strict(tmp_path):
    from benchkit.errors import ConfigError
    from benchkit.harness.benchmark import load_benchmark

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmetrics: [psnr]\ndatasets: []\nmetrix: [ssim]\n")
    with pytest.raises(ConfigError, match="metrix"):
        load_benchmark(str(bad))
    bad.write_text("name: bad\nmetrics: [psnrr]\nprimary_metric: psnrr\ndatasets: []\n")
    with pytest.raises(ConfigError, match="psnr"):
        load_benchmark(str(bad))
    bad.write_text("name: bad\ndatasets: [{name: a, kind: builder}]\n")
    with pytest.raises(ConfigError, match="needs 'builder'"):
        load_benchmark(str(bad))


def test_demo_benchmark_config_loads():
    from benchkit.harness.benchmark import load_benchmark

    cfg, path = load_benchmark("demo")
    assert path.name == "demo.yaml" and cfg.primary_metric in cfg.metrics
    assert {d.name for d in cfg.datasets} >= {"realesrgan_x1", "blur-synth", "gopro-test"}
