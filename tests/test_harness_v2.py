"""Architecture v2 of the harness: input-only datasets (n/a, never failures), the method lifecycle
(method-major, one model resident, load outside timing), device/dtype in the cache tag, seeded
stochastic methods, typed requests, and reference-side states computed once per dataset."""

import json

import numpy as np
import pytest

from benchkit.methods.base import Method
from benchkit.metrics.base import NA, Metric, ScoreRequest

EVENTS: list = []


class Recorder(Method):
    """Records its lifecycle; load() sleeps so a timing that includes it would show."""

    name = "recorder"
    batch_size = 8  # the harness honours it: one restore() call per dataset here
    devices = ("cpu", "cuda")
    dtypes = ("float32", "float16")

    def _load(self):
        import time

        EVENTS.append(("load", self.name, self.device, self.dtype))
        time.sleep(0.3)

    def _unload(self):
        EVENTS.append(("unload", self.name))

    def restore(self, inputs, contexts, scale):
        EVENTS.append(("restore", self.name, len(inputs)))
        assert self.loaded, "restore before load"
        return [x.copy() for x in inputs]


class Recorder2(Recorder):
    name = "recorder2"


class Noisy(Method):
    """Stochastic: draws only from the context's seed."""

    name = "noisy"
    stochastic = True

    def restore(self, inputs, contexts, scale):
        outs = []
        for x, c in zip(inputs, contexts):
            rng = np.random.default_rng(c["seed"])
            outs.append(np.clip(x + rng.normal(0, 0.02, x.shape).astype(np.float32), 0, 1))
        return outs


class InputCounter(Metric):
    """HMB-R-like stand-in: dataset-level ratio of totals, reference side = the inputs; counts calls."""

    reference_role = "input"
    calls = {"ref": 0, "out": 0}

    def availability(self):
        return True, ""

    def _compute(self, dists, refs):
        raise AssertionError("dataset-level")

    def partials(self, requests):
        InputCounter.calls["out"] += len(requests)
        return [float(r.output.mean() > 0.3) + 1.0 for r in requests]

    def reference_partials(self, requests):
        InputCounter.calls["ref"] += len(requests)
        return [float(r.input.mean() > 0.3) + 1.0 for r in requests]

    def aggregate(self, partials, refs):
        return float(sum(float(p) for p in partials) / sum(float(r) for r in refs))


class NeedsMeta(Metric):
    """A per-image metric that is n/a where the sample has no 'face' metadata (like the identity score)."""

    def availability(self):
        return True, ""

    def _compute(self, dists, refs):
        return [float(d.mean()) for d in dists]

    def score_requests(self, requests):
        return [NA if "face" not in r.meta else float(r.output.mean()) for r in requests]


@pytest.fixture
def registered(monkeypatch):
    from benchkit import registry
    from benchkit.metrics import catalog
    from benchkit.metrics.catalog import MetricInfo

    EVENTS.clear()
    InputCounter.calls.update(ref=0, out=0)
    for n, cls in (("recorder", "Recorder"), ("recorder2", "Recorder2"), ("noisy", "Noisy")):
        monkeypatch.setitem(registry.METHODS, n, f"{__name__}:{cls}")
    monkeypatch.setitem(registry.METRICS, "inputcount", f"{__name__}:InputCounter")
    monkeypatch.setitem(catalog.BY_NAME, "inputcount", MetricInfo(name="inputcount", kind="dataset",
                                                                  higher_is_better=True, version="1",
                                                                  backend="benchkit"))
    monkeypatch.setitem(registry.METRICS, "needsmeta", f"{__name__}:NeedsMeta")
    monkeypatch.setitem(catalog.BY_NAME, "needsmeta", MetricInfo(name="needsmeta", kind="NR",
                                                                 higher_is_better=True, version="1",
                                                                 backend="benchkit"))


def _plain_folder(d, n=3, size=24):
    from benchkit.images import write_png

    rng = np.random.default_rng(1)
    d.mkdir(parents=True)
    for i in range(n):
        write_png(d / f"im{i}.png", rng.random((size, size + 8, 3), dtype=np.float32))
    return d


def _bench(tmp_path, body):
    y = tmp_path / "b.yaml"
    y.write_text(body)
    return str(y)


def test_plain_image_folder_is_input_only_and_fr_metrics_are_na(tmp_path, cli_env):
    from conftest import run_cli

    src = _plain_folder(tmp_path / "photos")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    p = run_cli(["evaluate", "--dataset", str(src), "--methods", "identity,unsharp", "--metrics", "psnr,ssim",
                 "--run", str(tmp_path / "run"), "--no-progress"], env=cli_env)
    assert "psnr n/a" in p.stdout and "FAILED" not in p.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["failures"] == []
    for s in res["summary"]:
        assert s["means"]["psnr"] is None and s["na_counts"]["psnr"] == 3 and s["n_outputs"] == 3
    rows = (tmp_path / "run" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3 and all(",n/a,n/a," in r for r in rows[1:])
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # the source is only read
    assert res["datasets"]["photos"]["has_target"] is False


def test_published_leaderboard_shows_na_and_oracle(tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.publish import publish
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "blur", "blur", n=2, size=32, seed=3)
    _plain_folder(tmp_path / "photos", n=2)
    b = _bench(tmp_path, "name: mix\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [identity, wiener]\n"
                         f"datasets: [{{name: blur, kind: folder, path: {tmp_path / 'blur'}}},\n"
                         f"           {{name: photos, kind: folder, path: {tmp_path / 'photos'}}}]\n")
    res = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert not res.failures, res.failures
    pub = publish(tmp_path / "run", tmp_path / "lb")
    blur = (tmp_path / "lb" / "blur.csv").read_text().splitlines()
    assert blur[0].startswith("method,oracle,steps,seconds_per_image,psnr")
    rows = {r.split(",")[0]: r.split(",") for r in blur[1:]}
    assert rows["wiener"][1] == "yes" and rows["identity"][1] == "no"
    md = (tmp_path / "lb" / "blur.md").read_text()
    assert "wiener \u00a7" in md and "oracle" in md
    photos = (tmp_path / "lb" / "photos.csv").read_text().splitlines()
    prow = {r.split(",")[0]: r.split(",") for r in photos[1:]}
    assert prow["identity"][4] == "n/a" and prow["wiener"][1] == "no"  # no PSF there: blind, not oracle
    assert pub.csvs


def test_method_major_lifecycle_one_model_resident(registered, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "a", "blur", n=2, size=32, seed=1)
    write_toy_dataset(tmp_path / "b", "blur", n=3, size=32, seed=2)
    b = _bench(tmp_path, "name: life\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [recorder, recorder2]\n"
                         f"datasets: [{{name: a, kind: folder, path: {tmp_path / 'a'}}},\n"
                         f"           {{name: b, kind: folder, path: {tmp_path / 'b'}}}]\n")
    res = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert not res.failures
    kinds = [(e[0], e[1]) for e in EVENTS]
    assert kinds == [("load", "recorder"), ("restore", "recorder"), ("restore", "recorder"), ("unload", "recorder"),
                     ("load", "recorder2"), ("restore", "recorder2"), ("restore", "recorder2"),
                     ("unload", "recorder2")], kinds
    for s in res.summary:  # the 0.3 s load is outside the per-image seconds
        assert s["seconds_per_image"] < 0.25 and s["load_seconds"] >= 0.3
    assert res.counters.methods_loaded == 2
    EVENTS.clear()
    res2 = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)  # all cached: nothing is loaded
    assert EVENTS == [] and res2.counters.methods_loaded == 0 and res2.counters.images_restored == 0


def test_cache_tag_covers_device_and_dtype(registered):
    from benchkit.methods.base import Method
    from benchkit.registry import resolve

    m = resolve("method", "recorder")()
    m.device, m.dtype = m.effective_device("cpu"), m.effective_dtype("float32")
    t32 = m.tag()
    m.dtype = m.effective_dtype("float16")
    t16 = m.tag()
    m.device = m.effective_device("cuda:0")
    tcuda = m.tag()
    assert len({t32, t16, tcuda}) == 3
    ident = resolve("method", "identity")()  # numpy method: runs on cpu whatever is asked
    assert ident.effective_device("cuda:1") == "cpu" and ident.effective_dtype("float16") == "float32"
    assert issubclass(type(ident), Method)


def test_stochastic_method_seeded_per_sample(registered, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.manifest import read_jsonl

    write_toy_dataset(tmp_path / "a", "blur", n=3, size=32, seed=1)

    def run(seed, out, workers=1):
        b = _bench(tmp_path, f"name: st\nseed: {seed}\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [noisy]\n"
                             f"datasets: [{{name: a, kind: folder, path: {tmp_path / 'a'}}}]\n")
        evaluate(b, run_dir=tmp_path / out, workers=workers, log=lambda *a: None)
        return {r["key"]: (r["sha256"], r["seed"]) for r in read_jsonl(tmp_path / out / "outputs" / "a" / "noisy"
                                                                         / "index.jsonl")}

    a, b, c = run(0, "r1"), run(0, "r2", workers=2), run(1, "r3")
    assert a == b  # same seed: identical bytes, any worker count
    assert all(a[k][0] != c[k][0] and a[k][1] != c[k][1] for k in a)  # another seed: other draws, recorded


def test_reference_states_once_per_dataset_and_meta_na(registered, tmp_path):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "a", "blur", n=4, size=32, seed=1)
    b = _bench(tmp_path, "name: hr\nmetrics: [inputcount, needsmeta]\nprimary_metric: inputcount\n"
                         "methods: [identity, unsharp, bicubic]\n"
                         f"datasets: [{{name: a, kind: folder, path: {tmp_path / 'a'}}}]\n")
    res = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert not res.failures, res.failures
    assert InputCounter.calls == {"ref": 4, "out": 8}  # inputs once for the dataset; outputs per method
    summ = {s["method"]: s for s in res.summary}
    assert summ["identity"]["means"]["inputcount"] == pytest.approx(1.0)  # identity output == input
    assert summ["identity"]["na_counts"]["needsmeta"] == 4 and summ["identity"]["means"]["needsmeta"] is None
    res2 = evaluate(b, run_dir=tmp_path / "run", log=lambda *a: None)
    assert InputCounter.calls == {"ref": 4, "out": 8} and res2.counters.metric_evaluations == 0


def test_score_request_loads_lazily_once():
    calls = []

    def load():
        calls.append(1)
        return np.zeros((2, 2, 3), np.float32)

    r = ScoreRequest("k", output_src=load)
    assert calls == [] and not r.has_target
    r.output, r.output
    assert calls == [1]


def test_overlapped_writes_keep_outputs_order_and_errors(tmp_path):
    """Methods with ``trace_memory = False`` get their outputs written by one thread while the next batch
    restores: same files and index as the sequential path, and a failed write is raised, not lost."""
    import numpy as np
    import pytest

    from benchkit.harness.benchmark import DatasetSpec, open_dataset
    from benchkit.harness.restore import execute, plan_run
    from benchkit.harness.results import Counters
    from benchkit.harness.toyset import write_toy_dataset
    from benchkit.methods.base import PerImageMethod

    class Flip(PerImageMethod):
        name, task, scales = "flip-test", "restore", (1,)

        def restore_one(self, lq, context, scale):
            return np.ascontiguousarray(lq[::-1])

    class FlipUntraced(Flip):
        trace_memory = False

    ds_dir = write_toy_dataset(tmp_path / "ds", "blur", n=4, size=24)

    def planned(cls, run_dir):
        """(method loaded on the CPU, dataset, run, store, todo) of ``cls`` over the toy set into ``run_dir``."""
        ds = open_dataset(DatasetSpec(name="ds", kind="folder", path=str(ds_dir)), run_dir, tmp_path)
        m = cls()
        m.setup()
        m.load("cpu", "float32")
        return (m, ds, *plan_run(m, ds, run_dir, []))

    results = {}
    for cls in (Flip, FlipUntraced):
        m, ds, run, store, todo = planned(cls, tmp_path / cls.__name__)
        failures = []
        execute(m, ds, run, store, todo, 1, 1, 0, Counters(), failures)
        assert not failures and run.restored == 4
        files = sorted((store.dir).glob("*.png"))
        results[cls.__name__] = ([f.read_bytes() for f in files], list(store.index))
    assert results["Flip"] == results["FlipUntraced"]

    m, ds, run, store, todo = planned(FlipUntraced, tmp_path / "fail")
    calls = []

    def full_disk(key, img, **fields):
        calls.append(key)
        raise OSError(28, "No space left on device")

    store.write = full_disk
    with pytest.raises(OSError, match="No space"):
        execute(m, ds, run, store, todo, 1, 1, 0, Counters(), [])
    assert len(calls) <= 2  # stopped at the first failed write (at most one more batch restored meanwhile)
