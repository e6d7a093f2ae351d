"""Leaderboard uncertainty: bootstrap CIs against an independent computation, paired significance marks against an
independent paired test, the NTIRE 2025 score, FID without an interval, byte-identical re-publishing, figures."""

import csv
import hashlib
import json

import numpy as np
import pytest
from fake_run import write_fake_run


def _independent_ci(x, seed, resamples, conf=0.95):
    """Percentile bootstrap written out with a loop (the documented draws: SeedSequence([seed, n]))."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, n])))
    idx = rng.integers(0, n, size=(resamples, n))
    means = []
    for b in range(resamples):
        means.append(sum(x[i] for i in idx[b]) / n)
    a = (1 - conf) / 2
    return np.percentile(means, 100 * a), np.percentile(means, 100 * (1 - a))


def test_mean_ci_equals_independent_bootstrap():
    from benchkit.harness.stats import Bootstrap, mean_ci

    x = np.random.default_rng(5).normal(30, 2, 37)
    for seed in (0, 11):
        m, lo, hi = mean_ci(x, Bootstrap(seed=seed, resamples=500))
        elo, ehi = _independent_ci(x, seed, 500)
        assert m == pytest.approx(x.mean(), abs=1e-12)
        assert (lo, hi) == pytest.approx((elo, ehi), abs=1e-10)
        assert lo < m < hi
    # another seed draws other resamples
    assert mean_ci(x, Bootstrap(seed=0, resamples=500))[1] != mean_ci(x, Bootstrap(seed=1, resamples=500))[1]


@pytest.fixture
def clear_and_tie(tmp_path):
    """psnr: 'winner' is 2 dB above 'base' on every image; 'twin' equals 'winner' +- 0.3 with zero mean
    difference (a tie); 'base' is clearly worse. ssim: all three identical up to tiny symmetric noise."""
    rng = np.random.default_rng(3)
    n = 12
    base = rng.normal(25, 1.5, n)
    winner = base + 2.0 + rng.normal(0, 0.1, n)
    eps = np.tile([0.3, -0.3], n // 2)
    twin = winner + eps
    ssim = rng.uniform(0.6, 0.8, n)
    scores = {"winner": {"psnr": winner.tolist(), "ssim": ssim.tolist()},
              "twin": {"psnr": twin.tolist(), "ssim": (ssim + eps / 1000).tolist()},
              "base": {"psnr": base.tolist(), "ssim": (ssim - eps / 1000).tolist()}}
    run = write_fake_run(tmp_path, scores, n=n, size=32, outputs=False)
    return run, scores


def test_published_cis_and_significance_match_independent_tests(clear_and_tie, tmp_path):
    from scipy import stats as sps

    from benchkit.harness.publish import publish
    from benchkit.harness.stats import Bootstrap

    run, scores = clear_and_tie
    pub = publish(run, tmp_path / "lb", bootstrap=Bootstrap(seed=7, resamples=1000))
    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "lb" / "toy.csv").open())}
    for m, per in scores.items():
        for metric, vals in per.items():
            lo, hi = _independent_ci(vals, 7, 1000)
            assert float(rows[m][f"{metric}_ci_low"]) == pytest.approx(lo, abs=6e-5), (m, metric)
            assert float(rows[m][f"{metric}_ci_high"]) == pytest.approx(hi, abs=6e-5), (m, metric)
    meta = json.loads((tmp_path / "lb" / "meta.json").read_text())
    assert meta["bootstrap"]["seed"] == 7 and meta["bootstrap"]["resamples"] == 1000
    assert meta["intervals"]["toy"]["psnr"]["best"] in ("winner", "twin")

    # independent paired t-tests on the same scores decide the same way
    best = meta["intervals"]["toy"]["psnr"]["best"]
    other = "twin" if best == "winner" else "winner"
    p_tie = sps.ttest_rel(scores[other]["psnr"], scores[best]["psnr"]).pvalue
    p_clear = sps.ttest_rel(scores["base"]["psnr"], scores[best]["psnr"]).pvalue
    assert p_tie > 0.2 and p_clear < 1e-6
    tests = meta["intervals"]["toy"]["psnr"]["tests"]
    assert tests[other]["significant"] is False and tests["base"]["significant"] is True
    sig = {r["method"]: r["_sig"]["psnr"] for r in pub.tables["toy"][1]}
    assert sig == {best: "best", other: "tie", "base": "worse"}

    md = (tmp_path / "lb" / "toy.md").read_text()
    line = {m: next(x for x in md.splitlines() if x.startswith(f"| {m} ")) for m in scores}
    psnr_cell = {m: line[m].split("|")[5] for m in scores}
    assert "\u2248" in psnr_cell[other] and "\u2248" not in psnr_cell["base"] and "\u2248" not in psnr_cell[best]
    lo, hi, _ = next(r for r in pub.tables["toy"][1] if r["method"] == "base")["_ci"]["psnr"]
    plain = psnr_cell["base"].replace("<u>", "").replace("</u>", "")
    assert f"{float(rows['base']['psnr']):.4f} \u00b1 {(hi - lo) / 2:.4f}" in plain
    # ssim: identical up to symmetric noise -> every other method is a tie
    assert [r["_sig"]["ssim"] for r in pub.tables["toy"][1]].count("tie") == 2


def test_ntire_score_and_dataset_level_metric(tmp_path):
    from benchkit.harness.publish import publish

    rng = np.random.default_rng(0)
    n = 6
    per = lambda lo, hi: rng.uniform(lo, hi, n).tolist()
    scores = {m: {"lpips": per(0.1, 0.4), "dists": per(0.1, 0.3), "clipiqa": per(0.4, 0.8),
                  "maniqa": per(0.3, 0.6), "musiq": per(40, 70), "niqe": per(3, 12)} for m in ("a", "b")}
    run = write_fake_run(tmp_path, scores, n=n, size=32, outputs=False,
                         dataset_metrics={"a": {"fid": 30.0}, "b": {"fid": 25.0}})
    pub = publish(run, tmp_path / "lb")
    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "lb" / "toy.csv").open())}
    for m, s in scores.items():
        mean = {k: np.mean(v) for k, v in s.items()}
        want = ((1 - mean["lpips"]) + (1 - mean["dists"]) + mean["clipiqa"] + mean["maniqa"] + mean["musiq"] / 100
                + max(0.0, (10 - mean["niqe"]) / 10))
        assert float(rows[m]["ntire2025"]) == pytest.approx(want, abs=6e-5)
        assert float(rows[m]["ntire2025_ci_low"]) < float(rows[m]["ntire2025"]) < float(rows[m]["ntire2025_ci_high"])
        assert rows[m]["fid"] and "fid_ci_low" not in rows[m]  # dataset-level: no interval columns
    meta = json.loads((tmp_path / "lb" / "meta.json").read_text())
    assert "no interval" in meta["intervals"]["toy"]["fid"]["note"]
    md = (tmp_path / "lb" / "toy.md").read_text()
    assert "NTIRE 2025" in md and "FID and other dataset-level metrics have no interval" in md
    assert pub.stats["toy"]["ntire2025"]["kind"] == "derived"


def _tree(d):
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_republish_is_byte_identical_and_site_is_relative(tmp_path):
    from benchkit.harness.publish import publish

    rng = np.random.default_rng(1)
    scores = {m: {"psnr": rng.normal(25 + i, 1, 3).tolist(), "ssim": rng.uniform(0.5, 0.9, 3).tolist()}
              for i, m in enumerate(["alpha", "beta", "gamma"])}
    run = write_fake_run(tmp_path, scores, n=3, size=48)
    lb = tmp_path / "lb"
    publish(run, lb, html=True)
    first = _tree(lb)
    publish(run, lb, html=True)
    assert _tree(lb) == first
    site = lb / "html"
    assert (site / "index.html").is_file() and (site / "report.js").is_file()
    pages = sorted((site / "pages").rglob("*.html"))
    assert len(pages) == 3
    import re

    for page in [site / "index.html"] + pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and str(tmp_path) not in text
        for ref in re.findall(r'(?:src|href)="([^"#]+)"', text):
            assert (page.parent / ref).resolve().is_file(), (page, ref)  # every reference resolves in the site
    for digest in first:
        assert "timestamp" not in digest
    # a stale file from an earlier publication is removed
    (site / "pages" / "stale.html").write_text("old")
    publish(run, lb, html=True)
    assert not (site / "pages" / "stale.html").exists() and _tree(lb) == first


def test_figure_png_and_pdf(tmp_path, cli_env):
    from conftest import run_cli

    rng = np.random.default_rng(2)
    scores = {m: {"psnr": rng.normal(25, 1, 3).tolist(), "ssim": rng.uniform(0.5, 0.9, 3).tolist()}
              for m in ["alpha", "beta"]}
    run = write_fake_run(tmp_path, scores, n=3, size=48)
    key = sorted(json.loads(x)["key"] for x in (tmp_path / "data" / "manifest.jsonl").read_text().splitlines())[0]
    out = tmp_path / "figs" / "cmp.pdf"
    args = ["figure", "--run", str(run), "--dataset", "toy", "--key", key, "--crop", "8,8,24,24",
            "--methods", "beta,alpha", "--scores", "psnr,ssim", "--out", str(out)]
    p = run_cli(args, env=cli_env)
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.read_bytes()[:5] == b"%PDF-"
    first = (png.read_bytes(), out.read_bytes())
    run_cli(args, env=cli_env)
    assert (png.read_bytes(), out.read_bytes()) == first  # no timestamps
    assert str(png) in p.stdout
    bad = run_cli(args[:8] + ["0,0,100,100"] + args[9:], env=cli_env, check=False)
    assert bad.returncode != 0 and "leaves the 48x48 output grid" in bad.stderr


def test_publish_cli_html_and_bad_bootstrap(tmp_path, cli_env):
    from conftest import run_cli

    scores = {m: {"psnr": [20.0 + i, 21.0, 22.5], "ssim": [0.5, 0.6, 0.7 + i / 10]} for i, m in enumerate("ab")}
    run = write_fake_run(tmp_path, scores, n=3, size=32, outputs=False)
    p = run_cli(["publish", "--run", str(run), "--out", str(tmp_path / "lb"), "--html", "--ci-seed", "3",
                 "--resamples", "300"], env=cli_env)
    assert "index.html" in p.stdout and (tmp_path / "lb" / "html" / "index.html").is_file()
    meta = json.loads((tmp_path / "lb" / "meta.json").read_text())
    assert (meta["bootstrap"]["seed"], meta["bootstrap"]["resamples"]) == (3, 300)
    # the dataset folder does not exist: the tables are still published, the page says why there are no images
    assert "images not available" in (tmp_path / "lb" / "html" / "index.html").read_text()
    bad = run_cli(["publish", "--run", str(run), "--out", str(tmp_path / "lb"), "--resamples", "5"], env=cli_env,
                  check=False)
    assert bad.returncode != 0 and "resamples must be an int >= 100" in bad.stderr
