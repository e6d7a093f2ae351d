"""Single-worker runner with its I/O thread (writes + prefetch overlapped with compute): same bytes and
manifest as inline and multi-process runs, per-sample write failures, bounded samples in flight."""

import threading
import time

import numpy as np

from benchkit import manifest as mf
from benchkit import runner
from benchkit.errors import BadInputError
from benchkit.runner import Job, Producer, run_producer
from benchkit.seeding import rng_for


class LoadingProducer(Producer):
    """Toy producer with a ``load`` prefetch hook; job s05 is unreadable (fails in load)."""

    kind = "dataset"
    name = "toy-loading"
    version = "1"

    def __init__(self, n=8):
        self.n = n
        self.load_threads = []
        self.produced = 0
        self.in_flight = []  # samples produced but not yet written, seen at each produce() call

    def spec(self):
        return {"fingerprint": f"loading{self.n}"}

    def jobs(self):
        return [Job(f"s{i:02d}", {"path": f"src/s{i:02d}.png", "i": i}) for i in range(self.n)]

    def load(self, job):
        self.load_threads.append(threading.current_thread().name)
        return self._read(job)

    def _read(self, job):
        if job.key == "s05":
            raise BadInputError(job.payload["path"], "cannot decode image", "re-export it")
        return (rng_for(7, job.key).random((24, 20, 3)) * 255).astype(np.uint8)

    def produce(self, job, root_seed, loaded=None):
        if loaded is None:
            loaded = self.load(job) if type(self).load is not Producer.load else self._read(job)
        self.in_flight.append(self.produced - _WRITTEN["n"])
        self.produced += 1
        noise = rng_for(root_seed, job.key).integers(0, 9, loaded.shape, dtype=np.uint8)
        return {"i": job.payload["i"]}, {"gt": loaded, "lq": loaded // 2 + noise,
                                         "psf": np.full((3, 3), job.payload["i"], np.float32)}

    @classmethod
    def from_spec(cls, spec, source_override=None):
        return cls()


class PlainProducer(LoadingProducer):
    """The same without the prefetch hook."""

    load = Producer.load


_WRITTEN = {"n": 0, "threads": [], "sleep": 0.0}


def _counting_write_sample(orig):
    def wrapped(*args, **kw):
        _WRITTEN["threads"].append(threading.current_thread().name)
        time.sleep(_WRITTEN["sleep"])
        rec = orig(*args, **kw)
        _WRITTEN["n"] += 1
        return rec
    return wrapped


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "spec.json"}


def test_io_thread_gives_identical_bytes_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_write_sample", _counting_write_sample(runner._write_sample))
    monkeypatch.setitem(_WRITTEN, "n", 0)
    monkeypatch.setitem(_WRITTEN, "threads", [])
    p1 = LoadingProducer()
    s1 = run_producer(p1, tmp_path / "w1", seed=5, workers=1, progress=False)
    assert (s1.produced, s1.failed) == (7, 1)
    # the one worker process wrote on its I/O thread and prefetched through load() there
    assert set(_WRITTEN["threads"]) == {"benchkit-io_0"}
    assert p1.load_threads and set(p1.load_threads) == {"benchkit-io_0", "MainThread"}  # s05 re-run inline
    s_seq = run_producer(LoadingProducer(), tmp_path / "seq", seed=5, workers=1, backend="sequential",
                         progress=False)
    s2 = run_producer(LoadingProducer(), tmp_path / "w2", seed=5, workers=2, progress=False)
    assert s_seq.produced == s2.produced == 7
    t1 = _tree(tmp_path / "w1")
    assert t1 == _tree(tmp_path / "seq") == _tree(tmp_path / "w2")
    assert {"manifest.jsonl", "failures.jsonl", "gt/s00.png", "lq/s07.png", "psf/s03.npy"} <= set(t1)
    fail = mf.read_jsonl(tmp_path / "w1" / mf.FAILURES)
    assert fail == [{"key": "s05", "path": "src/s05.png", "error": "cannot decode image", "fix": "re-export it"}]
    for name in ("w1", "seq", "w2"):
        spec = mf.read_spec(tmp_path / name)
        assert spec["dataset_fingerprint"] == mf.read_spec(tmp_path / "w1")["dataset_fingerprint"]
        assert not list((tmp_path / name).rglob(".benchkit-tmp-*"))


def test_write_failure_is_that_samples_failure_and_the_rest_completes(tmp_path, monkeypatch):
    orig = runner.atomic_write_bytes

    def failing_write(path, data, **kw):
        if "s03" in str(path) and str(path).endswith(".npy"):
            raise OSError(28, "No space left on device")
        return orig(path, data, **kw)

    monkeypatch.setattr(runner, "atomic_write_bytes", failing_write)
    out = tmp_path / "o"
    s = run_producer(LoadingProducer(), out, seed=5, workers=1, progress=False)
    assert (s.produced, s.failed) == (6, 2)
    recs = mf.read_manifest(out)
    assert sorted(recs) == ["s00", "s01", "s02", "s04", "s06", "s07"]
    fails = {f["key"]: f for f in mf.read_jsonl(out / mf.FAILURES)}
    assert sorted(fails) == ["s03", "s05"]
    assert fails["s03"]["error"] == "cannot write the output (OSError: No space left on device)"
    assert fails["s03"]["fix"].startswith("make the output folder writable")
    assert fails["s03"]["path"] == "src/s03.png" and "failing_write" in fails["s03"]["traceback"]
    assert not list(out.rglob(".benchkit-tmp-*"))
    # the same failure record without the I/O thread
    s_seq = run_producer(LoadingProducer(), tmp_path / "seq", seed=5, backend="sequential", progress=False)
    assert s_seq.failures == s.failures
    # resume once the disk is fine again: only the failed write is redone
    monkeypatch.setattr(runner, "atomic_write_bytes", orig)
    s = run_producer(LoadingProducer(), out, seed=5, workers=1, progress=False)
    assert (s.skipped, s.produced, s.failed) == (6, 1, 1)
    ref = tmp_path / "ref"
    run_producer(LoadingProducer(), ref, seed=5, workers=2, progress=False)
    assert _tree(out) == _tree(ref)


def test_multi_sample_write_failure_fails_only_that_sample(tmp_path, monkeypatch):
    from test_builders_runner import ChunkProducer

    orig = runner.atomic_write_bytes

    def failing_write(path, data, **kw):
        if str(path).endswith("c2/s1.png"):
            raise OSError(5, "Input/output error")
        return orig(path, data, **kw)

    monkeypatch.setattr(runner, "atomic_write_bytes", failing_write)
    for name, kw in (("w1", {"workers": 1}), ("seq", {"backend": "sequential"})):
        s = run_producer(ChunkProducer(), tmp_path / name, seed=3, progress=False, **kw)
        assert (s.produced, s.failed) == (10, 2), name
        assert [f["key"] for f in s.failures] == ["c1/s2", "c2/s1"]
        assert "c2/s2" in mf.read_manifest(tmp_path / name)
    assert _tree(tmp_path / "w1") == _tree(tmp_path / "seq")


def test_at_most_two_samples_wait_for_the_io_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_write_sample", _counting_write_sample(runner._write_sample))
    monkeypatch.setitem(_WRITTEN, "n", 0)
    monkeypatch.setitem(_WRITTEN, "sleep", 0.02)  # writing is slower than computing
    plain, loading = PlainProducer(n=10), LoadingProducer(n=10)
    for name, p in (("plain", plain), ("loading", loading)):
        s = run_producer(p, tmp_path / name, seed=1, workers=1, progress=False)
        assert s.produced == 9
    assert max(plain.in_flight) == 2  # writes back up: the producer waits for a free slot
    assert max(loading.in_flight) <= 2  # the next job's prefetch queues behind the writes, too
    assert _tree(tmp_path / "plain") == _tree(tmp_path / "loading")
