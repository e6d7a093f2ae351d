"""The one job engine behind ``degrade``, ``build-dataset`` and replay.

A :class:`Producer` turns sorted :class:`Job` s into files + manifest records.
:func:`run_producer` gives every producer the same guarantees:

- deterministic: per-sample seeds come from (root seed, key); the manifest is
  re-sorted by key at the end, so ``--workers 1`` and ``--workers N`` write
  identical bytes;
- resumable: samples whose outputs exist with their recorded sha256 are skipped;
  a killed run leaves only ``*.tmp`` files (cleaned) and at most one truncated
  manifest line (ignored);
- isolated failures: a bad item becomes a line in ``failures.jsonl`` naming the
  file and the fix, and the rest of the run completes;
- parallel through joblib (``loky`` processes by default, ``threading``, or
  ``dask`` with ``scheduler=ADDRESS`` for an existing distributed cluster);
- ``workers=1`` (default backend) computes in ONE process, plus one I/O thread that
  overlaps I/O with compute: it encodes, hashes and atomically writes a finished
  sample's outputs, and prefetches the next job's input through the optional
  :meth:`Producer.load` hook, while the main thread computes (OpenCV's codecs, hashlib
  and file I/O release the GIL). At most two samples wait to be written; a sample is
  recorded in the manifest only after its files are written. ``backend="sequential"``
  runs everything on the calling thread.

Multi-sample jobs: ``produce`` may return (or yield) :class:`Sample` /
:class:`SampleFailure` items instead of one ``(fields, outputs)`` pair, so one
job (e.g. a chunk of a video sequence whose frames are decoded once) emits many
manifest records. Such producers list each job's sample keys in
:meth:`Producer.job_keys`; resume, ``--limit`` and progress then count samples,
and a partly done job is re-run with its finished samples skipped (not
re-encoded or re-written). Outputs are written by the worker as each sample is
yielded, so a job never holds more than one sample's arrays (two while the I/O
thread writes the previous one). Output arrays handed to the runner must not be
modified afterwards (they may still be being encoded on the I/O thread).

A failure while writing a sample (encoding, disk) fails that sample only; the job
goes on with its next samples.
"""

from __future__ import annotations

import io
import os
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from benchkit import manifest as mf
from benchkit.errors import BadInputError, BenchkitError
from benchkit.fsio import atomic_write_bytes, clean_tmp, sha256_bytes


@dataclass(frozen=True, order=True)
class Job:
    """One unit of work, ordered by key. ``payload`` must be JSON-able (paths as strings)."""

    key: str
    payload: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Sample:
    """One sub-sample of a multi-sample job: manifest ``key``, record ``fields``, ``{name: array}`` outputs."""

    key: str
    fields: dict
    outputs: dict


@dataclass
class SampleFailure:
    """A sub-sample that could not be produced (the rest of its job continues)."""

    key: str
    path: str
    problem: str
    fix: str = ""


class Producer(ABC):
    """Something that turns jobs into output files and manifest records."""

    kind: ClassVar[str] = "pipeline"  # "pipeline" (benchkit degrade) or "dataset" (build-dataset)
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    #: root seed of the current run; set by :func:`run_producer` BEFORE ``jobs()`` is called, for
    #: producers whose job list (e.g. which frames are sampled) depends on the seed.
    root_seed: int = 0
    #: the output folder (absolute), set by :func:`run_producer` and :func:`replay` before any job runs, for
    #: producers that keep per-source files in the dataset (e.g. cached auxiliary-pass results).
    out_dir: Path | None = None

    @abstractmethod
    def spec(self) -> dict:
        """JSON description of everything that determines the outputs; must hold 'fingerprint'."""

    @abstractmethod
    def jobs(self) -> list[Job]:
        """All jobs, sorted by key."""

    @abstractmethod
    def produce(self, job: Job, root_seed: int):
        """Return (record fields without 'key'/'outputs', {output_name: array}) for one job, or an
        iterable of :class:`Sample` / :class:`SampleFailure` for a multi-sample job (see job_keys)."""

    def load(self, job: Job):
        """Optional prefetch hook: read + decode ``job``'s inputs, with no side effects.

        A producer that overrides it must accept ``produce(job, root_seed, loaded=...)``, where ``loaded`` is
        what ``load(job)`` returned, and must still work when called as ``produce(job, root_seed)`` (what the
        multi-worker paths, replay, and a failed prefetch do). The single-worker runner calls it on its I/O
        thread for the NEXT job while the current one computes; if it raises, the runner calls
        ``produce(job, root_seed)`` so the error is reported exactly as without prefetching.

        The base implementation prefetches nothing (returns None); the runner only calls overrides.
        """
        return None

    def job_keys(self, job: Job) -> list[str]:
        """Manifest keys ``job`` produces (sorted); default: the job's own key (one sample per job)."""
        return [job.key]

    def source_problems(self) -> list[dict]:
        """Problems found while listing the source (``{"key", "path", "error", "fix"}``), reported in
        failures.jsonl next to sample failures; call after ``jobs()``. Default: none."""
        return []

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: dict, source_override=None) -> "Producer":
        """Rebuild the producer that wrote ``spec`` (for replay)."""

    def job_for(self, record: dict) -> Job:
        """The job that produced ``record`` (for replay); default: look the key up in jobs()/job_keys()."""
        for j in self.jobs():
            if j.key == record["key"] or record["key"] in self.job_keys(j):
                return j
        raise BenchkitError(f"sample {record['key']!r} is not among this source's jobs")

    def output_relpath(self, key: str, name: str, suffix: str) -> str:
        return f"{name}/{key}{suffix}"


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Encoded:
    """An output that is already encoded (e.g. a source PNG copied verbatim): written as-is with ``suffix``."""

    suffix: str
    data: bytes


@dataclass(frozen=True)
class Deferred:
    """An output whose encoding is left to the runner's writer (the I/O thread in the single-worker path):
    ``encode()`` returns the bytes written with ``suffix``. What it encodes must not change afterwards."""

    suffix: str
    encode: Callable[[], bytes]


def encode_output(arr) -> tuple[str, bytes]:
    """uint8 image -> ('.png', bytes); any other array -> ('.npy', bytes); bytes pass through as '.bin';
    :class:`Encoded` as (its suffix, its bytes); :class:`Deferred` as (its suffix, ``encode()``)."""
    import numpy as np

    from benchkit.images import encode_png

    if isinstance(arr, Encoded):
        return arr.suffix, arr.data
    if isinstance(arr, Deferred):
        return arr.suffix, arr.encode()
    if isinstance(arr, (bytes, bytearray)):
        return ".bin", bytes(arr)
    arr = np.asarray(arr)
    if arr.dtype == np.uint8 and arr.ndim in (2, 3):
        return ".png", encode_png(arr)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return ".npy", buf.getvalue()


def encode_outputs(producer: Producer, key: str, outs: dict) -> dict[str, tuple[str, bytes]]:
    res = {}
    for name in sorted(outs):
        suffix, data = encode_output(outs[name])
        res[name] = (producer.output_relpath(key, name, suffix), data)
    return res


def _output_suffix(arr) -> str:
    import numpy as np

    if isinstance(arr, (Encoded, Deferred)):
        return arr.suffix
    if isinstance(arr, (bytes, bytearray)):
        return ".bin"
    return ".png" if getattr(arr, "dtype", None) == np.uint8 and np.ndim(arr) in (2, 3) else ".npy"


def _write_sample(producer: Producer, key: str, fields: dict, outs: dict, out_dir: str, written_cache: dict):
    """Encode + atomically write one sample's outputs; returns its manifest record.

    ``written_cache`` maps relative paths already written by this job to their sha256: producers may
    map several samples' output to ONE file (e.g. the shared sharp frame of a trajectory group) and
    must then give it identical content; it is encoded and written once per job.
    """
    written = {}
    for name in sorted(outs):
        rel = producer.output_relpath(key, name, _output_suffix(outs[name]))
        if rel not in written_cache:
            _suffix, data = encode_output(outs[name])
            atomic_write_bytes(Path(out_dir) / rel, data, fsync=False)  # sha256-verified on resume
            written_cache[rel] = sha256_bytes(data)
        written[name] = {"path": rel, "sha256": written_cache[rel]}
    return {"key": key, **fields, "outputs": written}


def _fail_info(key, path, exc) -> dict:
    if isinstance(exc, BadInputError):
        return {"key": key, "path": exc.path, "error": exc.problem, "fix": exc.fix}
    tb = traceback.format_exc(limit=3)
    return {"key": key, "path": str(path), "error": f"{type(exc).__name__}: {exc}", "fix": "see traceback",
            "traceback": tb}


def _write_safe(producer, key, fields, outs, out_dir, cache, path) -> tuple[dict | None, dict | None]:
    """:func:`_write_sample` that never raises: (record, None) or (None, failure of this sample)."""
    try:
        return _write_sample(producer, key, fields, outs, out_dir, cache), None
    except Exception as e:
        return None, _fail_info(key, path, e)


def _has_load(producer) -> bool:
    return type(producer).load is not Producer.load


_NOT_LOADED = object()


def _run_job(producer, job, root_seed, out_dir, skip, write, loaded=_NOT_LOADED):
    """Produce ``job``; each sample to write goes through ``write(*_write_safe args)`` (its result, or a
    future of it). Never raises for a bad item; returns (write results/futures, failures)."""
    writes, failures, cache, emitted = [], [], {}, set()
    path = job.payload.get("path", "") if isinstance(job.payload, dict) else ""
    current = job.key
    try:
        res = producer.produce(job, root_seed) if loaded is _NOT_LOADED \
            else producer.produce(job, root_seed, loaded=loaded)
        if isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], dict):
            fields, outs = res
            if job.key not in skip:
                writes.append(write(producer, job.key, fields, outs, out_dir, cache, path))
            return writes, failures
        for item in res:
            if isinstance(item, SampleFailure):
                if item.key not in skip:
                    failures.append({"key": item.key, "path": item.path, "error": item.problem, "fix": item.fix})
                    emitted.add(item.key)
                continue
            current = item.key
            if item.key in skip:
                continue
            writes.append(write(producer, item.key, item.fields, item.outputs, out_dir, cache, path))
            emitted.add(item.key)
    except Exception as e:  # one bad item must not kill the run
        keys = [k for k in producer.job_keys(job) if k not in skip and k not in emitted] or [current]
        info = _fail_info(current, path, e)
        failures += [{**info, "key": k} for k in keys]
    return writes, failures


def _collect(writes, failures) -> tuple[list, list]:
    """(records, failures) once every write of a job is done (waits for futures)."""
    records, failures = [], list(failures)
    for w in writes:
        rec, fail = w.result() if isinstance(w, Future) else w
        if rec is not None:
            records.append(rec)
        else:
            failures.append(fail)
    return records, failures


def _process(producer: Producer, job: Job, root_seed: int, out_dir: str, skip=frozenset()):
    """Worker body: never raises for a bad item; returns (records, failures) for the job's samples.

    ``skip``: keys of this job that must not be written (already done, or outside ``--limit``).
    """
    return _collect(*_run_job(producer, job, root_seed, out_dir, skip, _write_safe))


class _IOThread:
    """The single-worker path's one background I/O thread (FIFO): writes finished samples (encode, hash,
    atomic write) and prefetches the next job's input while the calling thread computes. At most
    ``max_writes`` samples are queued or being written; :meth:`write` waits beyond that (bounded memory)."""

    def __init__(self, max_writes: int = 2):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="benchkit-io")
        self.slots = threading.BoundedSemaphore(max_writes)

    def write(self, *args) -> Future:
        self.slots.acquire()
        try:
            fut = self.pool.submit(_write_safe, *args)
        except BaseException:
            self.slots.release()
            raise
        fut.add_done_callback(lambda _f: self.slots.release())
        return fut

    def load(self, producer, job) -> Future:
        return self.pool.submit(producer.load, job)

    def close(self):
        self.pool.shutdown(wait=True)


def _iterate_overlapped(producer, todo, seed, out_dir):
    """Single worker: compute on this thread; write (and prefetch via ``Producer.load``) on one I/O thread.
    Yields (records, failures) per job, in job order, once all of the job's files are written."""
    io_thread = _IOThread()
    prefetch = _has_load(producer)
    pending = deque()  # (write futures, failures) of jobs whose writes may still run
    try:
        nxt = io_thread.load(producer, todo[0][0]) if prefetch and todo else None
        for i, (job, skip) in enumerate(todo):
            loaded = _NOT_LOADED
            if nxt is not None:
                try:
                    loaded = nxt.result()
                except Exception:  # re-run inline by produce(): reported exactly as without prefetch
                    loaded = _NOT_LOADED
                nxt = io_thread.load(producer, todo[i + 1][0]) if i + 1 < len(todo) else None
            pending.append(_run_job(producer, job, seed, str(out_dir), skip, io_thread.write, loaded))
            while pending and all(f.done() for f in pending[0][0]):
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())
    finally:
        io_thread.close()


# ----------------------------------------------------------------------------- run


@dataclass
class RunSummary:
    out_dir: Path
    total: int
    produced: int
    skipped: int
    failed: int
    seconds: float
    failures: list = field(default_factory=list)
    fingerprint: str = ""

    def report(self) -> str:
        lines = [
            f"{self.out_dir}: {self.total} samples: {self.produced} produced, {self.skipped} already done "
            f"(resumed), {self.failed} failed, in {self.seconds:.1f}s",
            f"  manifest: {self.out_dir / mf.MANIFEST}",
            f"  spec:     {self.out_dir / mf.SPEC} (dataset fingerprint {self.fingerprint})",
        ]
        for f in self.failures[:20]:
            lines.append(f"  FAILED {f['key']}: {f.get('path', '')}: {f['error']}" + (f" (fix: {f['fix']})" if f.get('fix') else ""))
        if len(self.failures) > 20:
            lines.append(f"  ... {len(self.failures) - 20} more in {self.out_dir / mf.FAILURES}")
        return "\n".join(lines)


def encoder_settings() -> dict:
    """What determines output file bytes besides the pixels: PNG settings and the OpenCV build."""
    import cv2

    return {"png": "opencv-defaults", "opencv": cv2.__version__}


def _check_spec(out_dir: Path, spec: dict) -> None:
    p = out_dir / mf.SPEC
    if not p.exists():
        return
    old = mf.read_spec(out_dir)
    same = all(old.get(k) == spec.get(k) for k in ("fingerprint", "seed", "producer"))
    if not same:
        raise BenchkitError(
            f"{out_dir} already holds output of a different configuration or seed "
            f"(fingerprint {old.get('fingerprint')} seed {old.get('seed')} vs {spec.get('fingerprint')} "
            f"seed {spec.get('seed')}); choose a new output folder or delete it"
        )
    if old.get("source") != spec.get("source"):
        raise BenchkitError(
            f"{out_dir} was built from source {(old.get('source') or {}).get('path')}, this run reads "
            f"{(spec.get('source') or {}).get('path')}: resuming would keep samples made from the other source "
            f"under this one's name; pass the original source folder, or choose a new output folder")
    if old.get("encoding") != spec.get("encoding"):
        raise BenchkitError(
            f"{out_dir} was written with other image-encoder settings ({old.get('encoding')} vs "
            f"{spec.get('encoding')}): resuming would mix file bytes; rebuild into a new folder")


def _iterate(producer, todo, seed, out_dir, workers, backend, scheduler):
    """Yield (records, failures) per job; ``todo`` holds (job, skip-set) pairs."""
    if workers <= 1 and backend == "sequential":
        for job, skip in todo:
            yield _process(producer, job, seed, str(out_dir), skip)
        return
    if workers <= 1 and backend == "loky":
        yield from _iterate_overlapped(producer, list(todo), seed, out_dir)
        return
    import joblib

    if backend == "dask":
        from dask.distributed import Client

        client = Client(scheduler) if scheduler else Client(processes=True, n_workers=max(1, workers),
                                                               threads_per_worker=1, dashboard_address=None)
        try:
            with joblib.parallel_config(backend="dask"):
                par = joblib.Parallel(n_jobs=-1, return_as="generator_unordered")
                yield from par(joblib.delayed(_process)(producer, j, seed, str(out_dir), sk) for j, sk in todo)
        finally:
            client.close()
        return
    par = joblib.Parallel(n_jobs=workers, backend=backend, return_as="generator_unordered")
    yield from par(joblib.delayed(_process)(producer, j, seed, str(out_dir), sk) for j, sk in todo)


def run_producer(producer: Producer, out_dir, seed: int = 0, workers: int = 1, backend: str = "loky",
                 scheduler: str | None = None, limit: int | None = None, progress: bool = True,
                 extra_spec: dict | None = None) -> RunSummary:
    """Produce every job of ``producer`` into ``out_dir`` (resumable, deterministic, parallel)."""
    from benchkit import __version__

    t0 = time.perf_counter()
    if limit is not None and int(limit) < 0:
        raise BenchkitError(f"--limit must be >= 0 (number of samples, sorted by key), got {limit}")
    out_dir = Path(out_dir)
    pspec = producer.spec()
    spec = {
        "benchkit_version": __version__,
        "producer": {"kind": producer.kind, "name": producer.name, "version": producer.version},
        "seed": int(seed),
        "fingerprint": pspec["fingerprint"],
        "encoding": encoder_settings(),
        **{k: v for k, v in pspec.items() if k != "fingerprint"},
        **(extra_spec or {}),
    }
    src = spec["source"].get("path") if isinstance(spec.get("source"), dict) else None
    if src and out_dir.resolve().is_relative_to(Path(src).resolve()):
        raise BenchkitError(f"output folder {out_dir} is inside the source folder {src}: the next run would read "
                            f"its own outputs as inputs; choose an output folder outside the source")
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_spec(out_dir, spec)
    clean_tmp(out_dir)  # only once the folder is known to be ours (or new): never in a refused folder
    mf.write_spec(out_dir, spec)

    producer.root_seed = int(seed)
    producer.out_dir = out_dir.resolve()
    jobs = producer.jobs()
    job_keys = {j.key: producer.job_keys(j) for j in jobs}
    all_keys = sorted(k for ks in job_keys.values() for k in ks)
    wanted = set(all_keys[: int(limit)] if limit is not None else all_keys)
    existing = mf.read_manifest(out_dir)
    hashes: dict = {}  # each existing output file is hashed once, even when several samples share it
    done = {k: r for k, r in existing.items() if k in wanted and mf.outputs_intact(out_dir, r, hashes)}
    # samples already built beyond --limit stay in the manifest as they are (not re-verified here; a run
    # without --limit verifies them): limiting a run never shrinks a folder
    all_set = set(all_keys)
    beyond = {k: r for k, r in existing.items() if k in all_set and k not in wanted}
    todo = []
    for j in jobs:
        left = [k for k in job_keys[j.key] if k in wanted and k not in done]
        if left:
            todo.append((j, frozenset(job_keys[j.key]) - frozenset(left)))
    n_todo = sum(len(job_keys[j.key]) - len(sk) for j, sk in todo)
    mpath = out_dir / mf.MANIFEST
    mf.write_sorted(mpath, [*done.values(), *beyond.values()])
    failures = [dict(p) for p in producer.source_problems()]
    records = {**beyond, **done}
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(total=n_todo, desc=f"{producer.name}", unit="sample", disable=not progress or tqdm is None,
               dynamic_ncols=True) if tqdm else None
    with open(mpath, "a", encoding="utf-8") as mfile:
        # absolute: workers of an existing dask cluster (--scheduler) do not share this process's cwd
        for recs, fails in _iterate(producer, todo, int(seed), out_dir.resolve(), int(workers), backend,
                                    scheduler):
            for rec in recs:
                mfile.write(mf.dumps_line(rec) + "\n")
                records[rec["key"]] = rec
            mfile.flush()
            failures += fails
            if bar is not None:
                bar.update(len(recs) + len(fails))
                if failures:
                    bar.set_postfix(failed=len(failures))
    if bar is not None:
        bar.close()
    mf.write_sorted(mpath, records.values())
    fpath = out_dir / mf.FAILURES
    if failures:
        mf.write_sorted(fpath, failures)
    elif fpath.exists():
        os.unlink(fpath)
    spec["n_samples"] = len(records)
    spec["n_failed"] = len(failures)
    spec["complete"] = all_set <= set(records)
    spec["dataset_fingerprint"] = mf.dataset_fingerprint(spec["fingerprint"], records.values())
    mf.write_spec(out_dir, spec)
    produced = len(records) - len(done) - len(beyond)
    return RunSummary(out_dir, len(wanted), produced, len(done), len(failures),
                      time.perf_counter() - t0, sorted(failures, key=lambda r: r["key"]),
                      spec["dataset_fingerprint"])


# ----------------------------------------------------------------------------- replay


def producer_for_spec(spec: dict, source_override=None) -> Producer:
    """The producer that wrote ``spec``: kind "dataset" through ``registry.BUILDERS`` (by name), any other kind
    through ``registry.PRODUCERS`` (resolved lazily: the runner imports no producer module)."""
    from benchkit.registry import resolve

    kind = spec["producer"]["kind"]
    cls = resolve("builder", spec["producer"]["name"]) if kind == "dataset" else resolve("producer", kind)
    return cls.from_spec(spec, source_override)


def replay(out_dir, key: str, source_override=None, write_dir=None) -> dict:
    """Regenerate one sample from its manifest line; returns {name: (recorded sha, replayed sha)} (replayed
    sha None for a recorded output that replay no longer produces)."""
    out_dir = Path(out_dir)
    spec = mf.read_spec(out_dir)
    records = mf.read_manifest(out_dir)
    if key not in records:
        from benchkit.registry import suggest

        raise BenchkitError(f"no sample {key!r} in {out_dir / mf.MANIFEST}.{suggest(key, records)}")
    rec = records[key]
    producer = producer_for_spec(spec, source_override)
    producer.root_seed = int(spec["seed"])
    producer.out_dir = out_dir.resolve()
    job = producer.job_for(rec)
    res = producer.produce_replay(job, rec, spec["seed"]) if hasattr(producer, "produce_replay") \
        else producer.produce(job, spec["seed"])
    if isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], dict):
        outs = res[1]
    else:  # multi-sample job: pick this key
        outs = None
        for item in res:
            if isinstance(item, Sample) and item.key == key:
                outs = item.outputs
                break
            if isinstance(item, SampleFailure) and item.key == key:
                raise BenchkitError(f"{key}: {item.path}: {item.problem}")
        if outs is None:
            raise BenchkitError(f"replaying {key!r}: its job no longer produces this key")
    result = {}
    for name, (rel, data) in encode_outputs(producer, key, outs).items():
        recorded = rec["outputs"].get(name, {}).get("sha256")
        result[name] = (recorded, sha256_bytes(data))
        if write_dir is not None:
            atomic_write_bytes(Path(write_dir) / rel, data)
    for name in sorted(set(rec.get("outputs", {})) - set(result)):  # recorded but no longer produced
        result[name] = (rec["outputs"][name].get("sha256"), None)
    return result
