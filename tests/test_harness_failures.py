"""Bad input is reported per item and the leaderboard still publishes for the rest.

Temporary methods/metrics are registered through the documented hook: add a
``name -> "module:Object"`` entry to ``benchkit.registry.METHODS`` / ``METRICS`` (and, for a
metric, its ``MetricInfo`` to ``benchkit.metrics.catalog.BY_NAME``) with ``monkeypatch``.
"""

import csv
import json

import pytest

from benchkit.methods.base import Method
from benchkit.metrics.base import Metric


class Boom(Method):
    """Identity, except it raises on the 'bus' image."""

    name = "boom"

    def restore(self, lq_batch, context, scale):
        if any(c["key"] == "bus" for c in context):
            raise RuntimeError("kaboom on bus")
        return [x.copy() for x in lq_batch]


class HalfSize(Method):
    """Returns outputs of half the required size."""

    name = "halfsize"

    def restore(self, lq_batch, context, scale):
        return [x[::2, ::2].copy() for x in lq_batch]


class NeedsWeights(Method):
    """Needs a weight file that is not there."""

    name = "needsweights"
    weight_files = ("model.pth",)

    def restore(self, lq_batch, context, scale):
        return [x.copy() for x in lq_batch]


class NaNMetric(Metric):
    """An FR metric that returns NaN for every image."""

    def availability(self):
        return True, ""

    def _compute(self, dists, refs):
        return [float("nan")] * len(dists)


@pytest.fixture
def registered(monkeypatch):
    from benchkit import registry
    from benchkit.metrics import catalog
    from benchkit.metrics.catalog import MetricInfo

    mod = __name__
    for n, obj in (("boom", "Boom"), ("halfsize", "HalfSize"), ("needsweights", "NeedsWeights")):
        monkeypatch.setitem(registry.METHODS, n, f"{mod}:{obj}")
    monkeypatch.setitem(registry.METRICS, "nanmetric", f"{mod}:NaNMetric")
    monkeypatch.setitem(catalog.BY_NAME, "nanmetric",
                        MetricInfo(name="nanmetric", kind="FR", higher_is_better=True, version="1",
                                   backend="benchkit"))


def _bench(tmp_path, metrics):
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "blur", "blur", n=3, size=32, seed=2)
    y = tmp_path / "b.yaml"
    y.write_text(f"name: bad\nmetrics: {metrics}\nprimary_metric: psnr\n"
                 f"methods: [identity, boom, halfsize, needsweights]\n"
                 f"plot: {{x: psnr, y: [ssim]}}\n"
                 f"datasets: [{{name: blur, kind: folder, path: {tmp_path / 'blur'}}}]\n")
    return y


def test_failures_isolated_and_listed(registered, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish

    y = _bench(tmp_path, "[psnr, ssim, nanmetric, lpips]")
    res = evaluate(str(y), run_dir=tmp_path / "run", weights_root=tmp_path / "empty-weights", log=lambda *a: None)
    by = {(f["stage"], f.get("method"), f.get("metric"), f.get("key")): f for f in res.failures}
    # a method raising on one image: that image fails, its other images are scored
    assert "kaboom on bus" in by[("method", "boom", None, "bus")]["error"]
    # wrong output size: reported per image with the expected size
    f = by[("output", "halfsize", None, "astronaut")]
    assert "expected 32x32x3" in f["error"] and "x1" in f["error"]
    # missing weight file: the method is skipped with the reason
    sk = next(s for s in res.skipped if s["name"] == "needsweights")
    assert "missing weight file(s) model.pth" in sk["reason"]
    # a metric whose weights are missing is reported as unavailable
    assert any(s["what"] == "metric" and s["name"] == "lpips" and "LPIPS" in s["reason"] for s in res.skipped)
    # NaN scores are failures, never numbers
    nan = [f for f in res.failures if f.get("metric") == "nanmetric"]
    assert len(nan) == 3 + 2 and all("nan" in f["error"].lower() for f in nan)

    publish(tmp_path / "run", tmp_path / "lb")
    ordered = list(csv.DictReader((tmp_path / "lb" / "blur.csv").open()))
    # boom skipped its hardest image, so its mean is higher, but an incomplete row never outranks a complete one
    assert [r["method"] for r in ordered] == ["identity", "boom"]
    assert float(ordered[1]["psnr"]) > float(ordered[0]["psnr"])
    rows = {r["method"]: r for r in ordered}
    assert set(rows) == {"identity", "boom"}  # halfsize produced nothing; needsweights skipped
    assert "nanmetric" not in next(iter(rows.values())) and "lpips" not in next(iter(rows.values()))
    assert rows["boom"]["n_images"] == "2" and rows["boom"]["n_failed"] == "1"
    assert rows["identity"]["n_images"] == "3"
    md = (tmp_path / "lb" / "blur.md").read_text()
    assert f"**{rows['identity']['psnr']}**" in md and "| boom \u2020 |" in md
    for text in ("kaboom on bus", "expected 32x32x3", "model.pth", "nanmetric", "lpips"):
        assert text in md, text
    meta = json.loads((tmp_path / "lb" / "meta.json").read_text())
    assert len(meta["failures"]) == len(res.failures)


def test_corrupt_files(registered, tmp_path):
    from benchkit.harness.evaluate import evaluate

    y = _bench(tmp_path, "[psnr]")
    run = tmp_path / "run"
    evaluate(str(y), run_dir=run, methods=["identity"], log=lambda *a: None)
    # a corrupted cached output is detected by its sha256 and regenerated (and said so)
    out = run / "outputs" / "blur" / "identity" / "chelsea.png"
    out.write_bytes(b"not a png")
    res = evaluate(str(y), run_dir=run, methods=["identity"], log=lambda *a: None)
    assert res.counters.images_restored == 1 and res.counters.metric_evaluations == 0  # same bytes: cached score
    notices = json.loads((run / "results.json").read_text())["notices"]
    assert any("chelsea" in n and "sha256" in n for n in notices)
    assert out.read_bytes()[:4] == b"\x89PNG"
    # a corrupt degraded input and a corrupt target: reported per image, the rest completes
    (tmp_path / "blur" / "lq" / "bus.png").write_bytes(b"\x89PNG truncated")
    (tmp_path / "blur" / "gt" / "astronaut.png").write_bytes(b"")
    res = evaluate(str(y), run_dir=run, methods=["identity", "boom"], log=lambda *a: None)
    fails = {f["key"]: f for f in res.failures}
    assert set(fails) == {"bus", "astronaut"} and all(f["stage"] == "input" for f in fails.values())
    assert "lq/bus.png" in fails["bus"]["error"] and "sha256" in fails["bus"]["error"]
    assert "gt/astronaut.png" in fails["astronaut"]["error"]
    summ = {s["method"]: s for s in res.summary}
    assert summ["boom"]["n_scored"] == summ["identity"]["n_scored"] == 1  # chelsea only
    assert summ["identity"]["n_images"] == 3


def test_a_too_small_image_for_a_pyiqa_metric_says_so():
    """NIQE on a 32-px image: pyiqa raises a bare tensor-shape RuntimeError; benchkit names the size and the fix."""
    import numpy as np
    import pytest

    from benchkit.errors import BadInputError
    from benchkit.metrics import get_metric

    m = get_metric("niqe")
    ok, why = m.availability()
    if not ok:
        pytest.skip(f"NIQE parameters not provisioned here: {why}")
    with pytest.raises(BadInputError, match="failed on a 32x32 image") as e:
        m.score(np.random.default_rng(0).random((32, 32, 3), dtype=np.float32))
    assert "at least 96x96 px" in e.value.fix
    assert np.isfinite(m.score(np.random.default_rng(0).random((128, 128, 3), dtype=np.float32)))
