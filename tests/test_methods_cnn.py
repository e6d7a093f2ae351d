"""NAFNet / Restormer through spandrel with tiny random checkpoints in the official ``{'params': ...}`` format;
NAFNet's TLC against the official NAFNetLocal recipe; evaluation across devices and on a local Dask cluster."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import run_cli


def _tiny_nafnet(seed=0):
    from spandrel.architectures.NAFNet import NAFNet as Arch

    g = torch.Generator().manual_seed(seed)
    m = Arch(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    with torch.no_grad():
        for p in m.parameters():  # beta/gamma start at 0 (identity blocks): randomise everything
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m.eval()


def _tiny_restormer(seed=0):
    from spandrel_extra_arches.architectures.Restormer.__arch.restormer_arch import (
        Restormer as Arch,
    )

    g = torch.Generator().manual_seed(seed)
    m = Arch(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2])
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return m.eval()


@pytest.fixture(scope="module")
def wroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    for name, file, model in (("nafnet", "NAFNet-GoPro-width64.pth", _tiny_nafnet()),
                              ("restormer", "motion_deblurring.pth", _tiny_restormer())):
        (root / "methods" / name).mkdir(parents=True)
        torch.save({"params": model.state_dict()}, root / "methods" / name / file)
    return root


def _method(name, wroot, **opts):
    from benchkit.registry import resolve

    m = resolve("method", name)(**opts)
    m.setup(weights_dir=wroot / "methods" / name)
    assert m.availability() == (True, "")
    m.load("cpu", "float32")
    return m


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize("name", ["nafnet", "restormer"])
def test_contract_with_tiny_checkpoint(name, wroot):
    from benchkit.testing import contracts

    assert contracts.check_method(name, wroot / "methods" / name) == "ran"


@pytest.mark.parametrize("name", ["nafnet", "restormer"])
def test_detected_model_equals_source_module_and_keeps_size(name, wroot):
    m = _method(name, wroot, **({"tlc": False} if name == "nafnet" else {}))
    src = _tiny_nafnet() if name == "nafnet" else _tiny_restormer()
    file = wroot / "methods" / name / m.weight_files[0]
    src.load_state_dict(torch.load(file, weights_only=True)["params"])  # default inits draw from torch's global RNG
    x = _img(24, 40)  # multiple of 8 and 16: no padding on either side
    out = m.restore([x], [{"dataset_dir": "."}], 1)[0]
    with torch.no_grad():
        ref = src(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())).clamp(0, 1)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    odd = m.restore([_img(21, 35, 1)], [{"dataset_dir": "."}], 1)[0]
    assert odd.shape == (21, 35, 3) and odd.dtype == np.float32


# ---- the official NAFNetLocal converter (megvii-research/NAFNet basicsr/models/archs/local_arch.py, MIT),
# fast_imp=False path, as the reference TLC implementation

class _OfficialAvgPool2d(torch.nn.Module):
    def __init__(self, base_size, train_size):
        super().__init__()
        self.kernel_size, self.base_size, self.train_size = None, base_size, train_size

    def forward(self, x):
        import torch.nn.functional as F

        if self.kernel_size is None:
            self.kernel_size = [x.shape[2] * self.base_size[0] // self.train_size[-2],
                                x.shape[3] * self.base_size[1] // self.train_size[-1]]
        if self.kernel_size[0] >= x.size(-2) and self.kernel_size[1] >= x.size(-1):
            return F.adaptive_avg_pool2d(x, 1)
        h, w = x.shape[-2:]
        s = x.cumsum(dim=-1).cumsum_(dim=-2)
        s = F.pad(s, (1, 0, 1, 0))
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        s1, s2, s3, s4 = s[:, :, :-k1, :-k2], s[:, :, :-k1, k2:], s[:, :, k1:, :-k2], s[:, :, k1:, k2:]
        out = (s4 + s1 - s2 - s3) / (k1 * k2)
        _h, _w = out.shape[2:]
        pad2d = ((w - _w) // 2, (w - _w + 1) // 2, (h - _h) // 2, (h - _h + 1) // 2)
        return F.pad(out, pad2d, mode="replicate")


def _official_local(model, train_size=(1, 3, 256, 256)):
    base = (int(train_size[-2] * 1.5), int(train_size[-1] * 1.5))

    def replace(mod):
        for n, ch in mod.named_children():
            if len(list(ch.children())) > 0:
                replace(ch)
            if isinstance(ch, torch.nn.AdaptiveAvgPool2d):
                setattr(mod, n, _OfficialAvgPool2d(base, train_size))

    replace(model)
    with torch.no_grad():
        model(torch.zeros(train_size))  # the official converter's forward pass (kernel sizes fixed here)
    return model


def test_tlc_equals_official_nafnetlocal_and_plain_model_where_it_must(wroot):
    m_tlc = _method("nafnet", wroot, tlc=True)
    m_plain = _method("nafnet", wroot, tlc=False)
    official = _official_local(copy.deepcopy(_tiny_nafnet()))
    ctx = [{"dataset_dir": "."}]

    def ref(x):
        with torch.no_grad():
            y = official(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())).clamp(0, 1)
        return y[0].numpy().transpose(1, 2, 0)

    small = _img(200, 256, 2)  # no larger than the training size: every box covers the whole map
    a, b = m_tlc.restore([small], ctx, 1)[0], m_plain.restore([small], ctx, 1)[0]
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, ref(small), atol=1e-5)
    big = _img(96, 416, 3)  # wider than 1.5 x 256: local boxes
    a, b = m_tlc.restore([big], ctx, 1)[0], m_plain.restore([big], ctx, 1)[0]
    np.testing.assert_allclose(a, ref(big), atol=1e-5)
    assert np.abs(a - b).max() > 1e-4  # TLC really changes the result there


def test_tlc_auto_follows_gopro_datasets(wroot, tmp_path):
    m = _method("nafnet", wroot)
    (tmp_path / "GoPro-test").mkdir()
    (tmp_path / "blur").mkdir()
    (tmp_path / "blur" / "spec.json").write_text(json.dumps({"producer": {"kind": "dataset", "name": "gopro-test", "version": "1"}}))
    assert m.tlc_for({"dataset_dir": str(tmp_path / "GoPro-test")})
    assert m.tlc_for({"dataset_dir": str(tmp_path / "blur")})
    (tmp_path / "plain").mkdir()
    assert not m.tlc_for({"dataset_dir": str(tmp_path / "plain")})
    from benchkit.errors import ConfigError
    from benchkit.methods.cnn import NAFNet

    with pytest.raises(ConfigError, match="tlc"):
        NAFNet(tlc="yes")


def test_restormer_tiles_and_padding(wroot):
    from benchkit.errors import ConfigError
    from benchkit.methods.cnn import Restormer, pad_reflect

    x = _img(45, 47, 4)  # padded to 48x48: tile 64 -> one 48 px tile (demo.py: tile = min(tile, h, w))
    full = _method("restormer", wroot).restore([x], [{}], 1)[0]
    big_tile = _method("restormer", wroot, tile=64, tile_overlap=8).restore([x], [{}], 1)[0]
    np.testing.assert_allclose(big_tile, full, atol=1e-6)  # one tile covering the (padded) image = untiled
    tiled = _method("restormer", wroot, tile=32, tile_overlap=16).restore([x], [{}], 1)[0]
    assert tiled.shape == x.shape and np.isfinite(tiled).all() and np.abs(tiled - full).max() > 0
    t = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    p = pad_reflect(t, 8)
    assert p.shape[-2:] == (8, 8) and torch.equal(p[..., :5, :7], t)
    assert torch.equal(p[..., 5, :7], t[..., 3, :])  # reflection (not edge repeat) at the bottom
    with pytest.raises(ConfigError):
        Restormer(tile=30)


def test_foreign_checkpoints_refused_naming_the_file(tmp_path):
    from benchkit.errors import BadInputError
    from benchkit.registry import resolve

    d = tmp_path / "methods" / "nafnet"
    d.mkdir(parents=True)
    f = d / "NAFNet-GoPro-width64.pth"
    m = resolve("method", "nafnet")()
    m.setup(weights_dir=d)
    cases = [({"params": _tiny_restormer().state_dict()}, "not a NAFNet architecture"),
             ({"model": _tiny_nafnet().state_dict()}, "expected a dict with 'params'"),
             ({"params": _tiny_nafnet().state_dict(), "extra": copy.deepcopy}, "tensors-only")]
    for obj, msg in cases:
        torch.save(obj, f)
        with pytest.raises(BadInputError, match=msg) as e:
            m.load("cpu", "float32")
        assert str(f) in str(e.value)
    r = resolve("method", "restormer")()
    (tmp_path / "methods" / "restormer").mkdir()
    torch.save({"params": _tiny_nafnet().state_dict()}, tmp_path / "methods" / "restormer" / "motion_deblurring.pth")
    r.setup(weights_dir=tmp_path / "methods" / "restormer")
    with pytest.raises(BadInputError, match="not a Restormer"):
        r.load("cpu", "float32")


def test_weights_status_lists_cnn_files(tmp_path, cli_env):
    rows = json.loads(run_cli(["weights", "status", "--weights-root", str(tmp_path), "--json"], env=cli_env).stdout)
    files = {r["file"]: r["status"] for r in rows["files"] if r["owner"] in ("method:nafnet", "method:restormer")}
    assert files == {"methods/nafnet/NAFNet-GoPro-width64.pth": "missing",
                     "methods/restormer/motion_deblurring.pth": "missing"}


# ---------------------------------------------------------------- evaluation across devices

def _outputs(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in (run / "outputs").rglob("*.png")}


def _board(run):
    res = json.loads((run / "results.json").read_text())
    assert res["failures"] == [], res["failures"]
    return sorted((s["dataset"], s["method"], s["tag"], json.dumps(s["means"], sort_keys=True),
                   s["n_outputs"]) for s in res["summary"])


def _index_tags(run):
    out = {}
    for p in (run / "outputs").rglob("index.jsonl"):
        for line in p.read_text().splitlines():
            r = json.loads(line)
            out[(p.parent.as_posix().split("outputs/")[1], r["key"])] = (r["tag"], r["sha256"], r.get("dataset"))
    return out


def test_evaluate_cli_single_vs_two_cpu_devices(tmp_path, wroot, cli_env):
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "blur", "blur", n=3, size=32, seed=5)
    args = ["evaluate", "--dataset", str(tmp_path / "blur"), "--methods", "identity,unsharp,nafnet,restormer",
            "--metrics", "psnr,ssim", "--weights-root", str(wroot), "--no-progress"]
    run_cli(args + ["--run", str(tmp_path / "one")], env=cli_env)
    p = run_cli(args + ["--run", str(tmp_path / "two"), "--devices", "cpu,cpu"], env=cli_env)
    assert "job(s)" in p.stdout
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert len(one) == 4 * 3 and one == two
    assert _board(tmp_path / "one") == _board(tmp_path / "two")
    assert _index_tags(tmp_path / "one") == _index_tags(tmp_path / "two")
    res = json.loads((tmp_path / "two" / "results.json").read_text())
    assert res["devices"]["method_devices"] == ["cpu", "cpu"]
    from benchkit.images import read_image

    for k in one:
        assert read_image(tmp_path / "one" / k).shape[:2] == (32, 32)
    # a multi-device re-run reuses the single-device cache: nothing is restored again
    p = run_cli(args + ["--run", str(tmp_path / "one"), "--devices", "cpu,cpu"], env=cli_env)
    assert json.loads((tmp_path / "one" / "results.json").read_text())["counters"]["images_restored"] == 0


def test_shards_of_images_on_more_devices_than_methods(tmp_path, wroot):
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "a", "blur", n=3, size=32, seed=6)
    write_toy_dataset(tmp_path / "b", "blur", n=2, size=32, seed=7)
    y = tmp_path / "b.yaml"
    y.write_text("name: sh\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [nafnet]\n"
                 f"datasets: [{{name: a, kind: folder, path: {tmp_path / 'a'}}},\n"
                 f"           {{name: b, kind: folder, path: {tmp_path / 'b'}}}]\n")
    logs = []
    r1 = evaluate(str(y), run_dir=tmp_path / "one", weights_root=wroot, log=lambda *a: None)
    r3 = evaluate(str(y), run_dir=tmp_path / "three", weights_root=wroot, devices="cpu,cpu,cpu", log=logs.append)
    assert any("3 job(s) for 1 method(s)" in str(s) for s in logs), logs
    assert r3.counters.methods_loaded == 3 and r3.counters.images_restored == 5
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "three")
    assert _board(tmp_path / "one") == _board(tmp_path / "three")
    assert r1.counters.images_restored == 5


def test_mixed_device_kinds_refused():
    from benchkit.errors import ConfigError
    from benchkit.harness.devices import parse_devices

    assert parse_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    with pytest.raises(ConfigError, match="mixes device kinds"):
        parse_devices("cpu,cuda:0")


@pytest.mark.slow
def test_dask_local_cluster_same_outputs_and_board(tmp_path, wroot):
    import distributed

    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "blur", "blur", n=3, size=32, seed=8)
    y = tmp_path / "b.yaml"
    y.write_text("name: dk\nmetrics: [psnr, ssim]\nprimary_metric: psnr\nmethods: [identity, unsharp, nafnet]\n"
                 f"datasets: [{{name: blur, kind: folder, path: {tmp_path / 'blur'}}}]\n")
    evaluate(str(y), run_dir=tmp_path / "one", weights_root=wroot, log=lambda *a: None)
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        res = evaluate(str(y), run_dir=tmp_path / "dask", weights_root=wroot, backend="dask",
                       scheduler=cluster.scheduler_address, log=lambda *a: None)
    assert not res.failures, res.failures
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "dask")
    assert _board(tmp_path / "one") == _board(tmp_path / "dask")
    assert _index_tags(tmp_path / "one") == _index_tags(tmp_path / "dask")


def test_device_threads_load_methods_one_at_a_time(monkeypatch):
    """Concurrent imports from two device threads deadlocked spandrel (CI stop 18): loads are serialised."""
    import threading
    import time as _time

    import benchkit.harness.restore as restore_mod
    from benchkit.harness import devices

    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    class Slow:
        name, device, batch_size = "slow", "cpu", 1

        def load(self, device, dtype):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            _time.sleep(0.1)
            with lock:
                state["now"] -= 1

        def unload(self):
            pass

    monkeypatch.setattr(restore_mod, "make_method", lambda *a, **k: Slow())
    jobs = [{"method": "slow", "weights_root": None, "options": None, "dtype": "float32", "batch_size": 1,
             "datasets": [], "root_seed": 0} for _ in range(3)]
    outs = devices._run_local(jobs, ["cpu", "cpu", "cpu"], log=lambda *a: None)
    assert len(outs) == 3 and all(o["load_seconds"] is not None for o in outs)
    assert state["max"] == 1


def test_device_threads_hand_outputs_over_batch_by_batch(tmp_path, monkeypatch):
    """Multi-device runs used to keep every output of a job in memory until the job ended: now a bounded
    queue carries each batch to the writer, so at most a few batches are held, however long the job."""
    import threading

    import benchkit.harness.outputs as outputs_mod
    import benchkit.harness.restore as restore_mod
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    for i, name in enumerate("abc"):  # 3 x 8 images: two jobs of 12
        write_toy_dataset(tmp_path / name, "blur", n=8, size=16, seed=8 + i)
    state = {"held": 0, "max": 0}
    lock = threading.Lock()
    real_batch, real_write = restore_mod.restore_batch, outputs_mod.OutputStore.write

    def counting_batch(*a, **k):
        items = real_batch(*a, **k)
        with lock:
            state["held"] += sum(1 for it in items if it[1] is not None)
            state["max"] = max(state["max"], state["held"])
        return items

    def counting_write(self, *a, **k):
        with lock:
            state["held"] -= 1
        return real_write(self, *a, **k)

    monkeypatch.setattr(restore_mod, "restore_batch", counting_batch)
    monkeypatch.setattr(outputs_mod.OutputStore, "write", counting_write)
    y = tmp_path / "b.yaml"
    y.write_text("name: q\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [unsharp]\n"
                 "datasets: [" + ", ".join(f"{{name: {n}, kind: folder, path: {tmp_path / n}}}" for n in "abc")
                 + "]\n")
    r = evaluate(str(y), run_dir=tmp_path / "two", devices="cpu,cpu", log=lambda *a: None)
    assert r.counters.images_restored == 24 and state["held"] == 0, (r.counters, r.failures[:3])
    # two devices, batch 1, queue of 2 x 2 batches: at most queue + one batch per device + the one being written
    assert state["max"] <= 7, state
    r1 = evaluate(str(y), run_dir=tmp_path / "one", log=lambda *a: None)
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")


def test_dask_jobs_return_file_fields_and_the_client_checks_it_sees_them(tmp_path, monkeypatch):
    """A Dask job writes its PNGs where it runs and returns their fields (no image travels back); an output the
    client cannot see as recorded (run folder not shared) is a failure naming the fix, not an index line."""
    from benchkit.harness import devices
    from benchkit.harness.evaluate import evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "a", "blur", n=3, size=16, seed=9)
    y = tmp_path / "b.yaml"
    y.write_text("name: dk\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [unsharp]\n"
                 f"datasets: [{{name: a, kind: folder, path: {tmp_path / 'a'}}}]\n")
    returned = []

    def in_process(jobs, scheduler, kind, log, lose=None):  # restore_job as a worker runs it
        outs = [devices.restore_job(j) for j in jobs]
        for o in outs:
            for _, items in o["results"]:
                returned.extend(items)
                for rec, f, *_ in items:
                    if lose and isinstance(f, dict):
                        (tmp_path / lose / "outputs" / "a" / "unsharp" / f["path"]).unlink()
        return outs

    monkeypatch.setattr(devices, "_run_dask", in_process)
    monkeypatch.setattr(devices, "n_slots", lambda *a: 2)
    r = evaluate(str(y), run_dir=tmp_path / "dask", backend="dask", scheduler="tcp://x:1", log=lambda *a: None)
    assert not r.failures and r.counters.images_restored == 3
    assert len(returned) == 3 and all(isinstance(f, dict) and set(f) == {"path", "sha256", "size"}
                                      for _, f, *_ in returned)
    evaluate(str(y), run_dir=tmp_path / "one", log=lambda *a: None)
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "dask")
    monkeypatch.setattr(devices, "_run_dask", lambda *a: in_process(*a, lose="lost"))
    r = evaluate(str(y), run_dir=tmp_path / "lost", backend="dask", scheduler="tcp://x:1", log=lambda *a: None)
    assert r.counters.images_restored == 0 and len(r.failures) >= 3
    assert all("cannot see" in f["error"] and "workers share" in f["fix"] for f in r.failures[:3]), r.failures[:3]


def test_a_failing_writer_stops_the_devices_and_a_raising_job_is_a_failure(monkeypatch):
    """The writer raising (or Ctrl-C on it) ends every device thread instead of leaving them blocked on a full
    queue with their models loaded; a job raising outside restore_job's guards becomes a failure and the
    device goes on with its next job."""
    import threading
    import time as _time

    from benchkit.harness import devices

    def fake_job(job, sink=None):
        if job["method"] == "boom":
            raise RuntimeError("broke outside the guards")
        for b in range(20):
            sink("ds", [("item", b)], job["device"])
        return {"results": [("ds", [])], "failures": [], "device": job["device"], "load_seconds": 0.0,
                "cuda_peak": None}

    monkeypatch.setattr(devices, "restore_job", fake_job)
    jobs = [{"method": "m", "device": "cpu"} for _ in range(4)]

    def bad_write(*a):
        raise KeyError("writer broke")

    with pytest.raises(KeyError, match="writer broke"):
        devices._run_local(jobs, ["cpu", "cpu"], log=lambda *a: None, write=bad_write)
    deadline = _time.time() + 5
    while any(t.name.startswith("benchkit-device-") for t in threading.enumerate()) and _time.time() < deadline:
        _time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("benchkit-device-")]

    got = []
    outs = devices._run_local([{"method": "boom", "device": "cpu"}, {"method": "m", "device": "cpu"}], ["cpu"],
                              log=lambda *a: None, write=lambda *a: got.append(a))
    assert "broke outside the guards" in outs[0]["failures"][0]["error"] and outs[0]["load_seconds"] is None
    assert outs[1]["load_seconds"] == 0.0 and len(got) == 20
