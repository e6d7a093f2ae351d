"""The one job engine behind ``degrade``, ``build-dataset`` and replay.

A :class:`Producer` turns sorted :class:`Job` s into files + manifest records.
:func:`run_producer` gives every producer the same guarantees:

- deterministic: per-sample seeds come from (root seed, key); the manifest is
  re-sorted by key at the end, so ``--workers 1`` and ``--workers N`` write
  identical bytes;
- resumable: a finished sample is recorded (manifest line) as soon as its files are
  written, so a killed run keeps every finished sample (worker processes append to
  per-worker journals under ``.benchkit-journal/``, merged by the next run); a resume
  keeps samples whose outputs and sources are unchanged, checked by recorded size and
  by mtime against the manifest's own mtime (content re-read only for files touched
  since, or for every file with ``verify=True``); a changed source rebuilds its
  samples, with a note. A killed run leaves only ``*.tmp`` files (cleaned) and at
  most one truncated manifest line (ignored);
- safe to resume: the spec (producer, seed, config fingerprint, encoder settings)
  and the source's identity (its relative listing with sizes, not its path) must
  match the folder's, and every manifest line's seed/fingerprint too; otherwise the
  run is refused with the fix;
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

    def adopt_recorded(self, old_spec: dict) -> str | None:
        """Resume hook: ``old_spec`` is the spec.json of the folder being resumed. A producer whose generator made
        that folder at an older version it still replays switches to that version here (so an interrupted build
        continues as it started, after an upgrade) and returns a note saying so; None leaves it unchanged.
        The runner then compares fingerprints as always: anything else that differs still refuses the resume."""
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
        """``<name>/<key><suffix>``; the key's parts and the output name must be safe names
        (:mod:`benchkit.safety`), so no output is ever written outside the dataset folder."""
        from benchkit.safety import safe_key, safe_name

        return f"{safe_name('output', name)}/{safe_key(key)}{suffix}"


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
            atomic_write_bytes(Path(out_dir) / rel, data, fsync=False)  # size/mtime(/sha256)-checked on resume
            written_cache[rel] = (sha256_bytes(data), len(data))
        sha, size = written_cache[rel]
        written[name] = {"path": rel, "sha256": sha, "size": size}
    return {"key": key, **fields, "outputs": written}


def _fail_info(key, path, exc) -> dict:
    if isinstance(exc, BadInputError):
        return {"key": key, "path": exc.path, "error": exc.problem, "fix": exc.fix}
    tb = traceback.format_exc(limit=3)
    return {"key": key, "path": str(path), "error": f"{type(exc).__name__}: {exc}",
            "fix": "unexpected error: its traceback is in failures.jsonl of the output folder (please report it if "
                   "the input is fine)", "traceback": tb}


def _write_safe(producer, key, fields, outs, out_dir, cache, path) -> tuple[dict | None, dict | None]:
    """:func:`_write_sample` that never raises: (record, None) or (None, failure of this sample)."""
    try:
        return _write_sample(producer, key, fields, outs, out_dir, cache), None
    except OSError as e:  # writing into the output folder failed: about the folder, not about this input
        where = ""
        if e.filename:  # named relative to the output folder: failures.jsonl is the same wherever it is built
            try:
                where = f" at {Path(os.fsdecode(e.filename)).resolve().relative_to(Path(out_dir).resolve()).as_posix()}"
            except (ValueError, OSError):
                where = f" at {os.fsdecode(e.filename)}"
        return None, {"key": key, "path": str(path), "error": f"cannot write the output{where} ({type(e).__name__}: "
                      f"{e.strerror or e})", "fix": "make the output folder writable, with room to write (a file "
                      "standing where benchkit needs a folder must be moved away), then rerun to resume",
                      "traceback": traceback.format_exc(limit=3)}
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
        elif fail is not None:  # (None, None): already recorded by the in-process recorder
            failures.append(fail)
    return records, failures


JOURNAL_DIR = ".benchkit-journal"


def _journal_write(out_dir, rec: dict) -> None:
    """Append ``rec`` to this worker's journal (one file per process and thread: single writer each), so a
    killed run keeps samples finished inside a worker before its job ended. Merged and removed by the parent."""
    import json

    d = Path(out_dir) / JOURNAL_DIR
    d.mkdir(exist_ok=True)
    line = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    with open(d / f"{os.getpid()}-{threading.get_ident()}.jsonl", "a", encoding="utf-8") as f:
        f.write(line)


def _write_journaled(producer, key, fields, outs, out_dir, cache, path):
    rec, fail = _write_safe(producer, key, fields, outs, out_dir, cache, path)
    if rec is not None:
        try:
            _journal_write(out_dir, rec)
        except OSError:  # the parent still records it when the job returns
            pass
    return rec, fail


def _process(producer: Producer, job: Job, root_seed: int, out_dir: str, skip=frozenset()):
    """Worker body: never raises for a bad item; returns (records, failures) for the job's samples.

    ``skip``: keys of this job that must not be written (already done, or outside ``--limit``). Each
    finished sample is also appended to this worker's journal as soon as its files are written.
    """
    return _collect(*_run_job(producer, job, root_seed, out_dir, skip, _write_journaled))


class _IOThread:
    """The single-worker path's one background I/O thread (FIFO): writes finished samples (encode, hash,
    atomic write) and prefetches the next job's input while the calling thread computes. At most
    ``max_writes`` samples are queued or being written; :meth:`write` waits beyond that (bounded memory)."""

    def __init__(self, max_writes: int = 2, record=None):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="benchkit-io")
        self.slots = threading.BoundedSemaphore(max_writes)
        self.record = record  # called on the I/O thread with each written record (then not returned)

    def _write(self, *args):
        rec, fail = _write_safe(*args)
        if rec is not None and self.record is not None:
            self.record(rec)
            return None, None
        return rec, fail

    def write(self, *args) -> Future:
        self.slots.acquire()
        try:
            fut = self.pool.submit(self._write, *args)
        except BaseException:
            self.slots.release()
            raise
        fut.add_done_callback(lambda _f: self.slots.release())
        return fut

    def load(self, producer, job) -> Future:
        return self.pool.submit(producer.load, job)

    def close(self):
        self.pool.shutdown(wait=True)


def _iterate_overlapped(producer, todo, seed, out_dir, record=None):
    """Single worker: compute on this thread; write (and prefetch via ``Producer.load``) on one I/O thread.
    Yields (records, failures) per job, in job order, once all of the job's files are written. With
    ``record``, each sample is handed to it on the I/O thread as soon as its files are written (recorded
    while its job still runs) and is not yielded again."""
    io_thread = _IOThread(record=record)
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
    failed: int  # samples that could not be produced (source problems are counted apart)
    seconds: float
    failures: list = field(default_factory=list)  # sample failures and source problems
    fingerprint: str = ""
    source_problems: int = 0  # problems found while listing the source (not samples)
    notes: list = field(default_factory=list)  # what the run decided on its own (workers capped, rebuilds)

    def report(self) -> str:
        lines = [
            f"{self.out_dir}: {self.total} samples: {self.produced} produced, {self.skipped} already done "
            f"(resumed), {self.failed} failed, in {self.seconds:.1f}s"
            + (f"; {self.source_problems} source problem(s) (not samples)" if self.source_problems else ""),
            f"  manifest: {self.out_dir / mf.MANIFEST}",
            f"  spec:     {self.out_dir / mf.SPEC} (dataset fingerprint {self.fingerprint})",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        for f in self.failures[:20]:
            lines.append(f"  FAILED {f['key']}: {f.get('path', '')}: {f['error']}" + (f" (fix: {f['fix']})" if f.get('fix') else ""))
        if len(self.failures) > 20:
            lines.append(f"  ... {len(self.failures) - 20} more in {self.out_dir / mf.FAILURES}")
        return "\n".join(lines)


def encoder_settings() -> dict:
    """What determines output file bytes besides the pixels: PNG settings and the OpenCV build."""
    import cv2

    return {"png": "opencv-defaults", "opencv": cv2.__version__}


# ----------------------------------------------------------------------------- source identity / resume checks


def source_listing(root) -> dict | None:
    """Identity of a source folder by what it holds: ``{"files", "bytes", "sha256"}`` over its sorted relative
    file paths and sizes (names starting with '.' or ending in '.tmp' skipped). Stats every file, reads none.
    None if there is no such folder."""
    import hashlib

    if root is None or not Path(root).is_dir():
        return None
    entries = []
    stack = [(str(root), "")]
    while stack:
        path, prefix = stack.pop()
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.name.startswith(".") or e.name.endswith(".tmp"):  # hidden, or a killed writer's leftover
                        continue
                    rel = prefix + e.name
                    try:
                        if e.is_dir():
                            stack.append((e.path, rel + "/"))
                        elif e.is_file():
                            entries.append((rel, e.stat().st_size))
                    except OSError:
                        continue
        except OSError:
            continue
    entries.sort()
    h = hashlib.sha256()
    for rel, size in entries:
        h.update(f"{rel}\0{size}\n".encode("utf-8", "surrogateescape"))
    return {"files": len(entries), "bytes": sum(s for _, s in entries), "sha256": h.hexdigest()[:16]}


def _source_base(out_dir: Path, src_root, rel: str):
    """Where a manifest ``sources`` path lives: auxiliary-pass results (``aux/...``) inside the dataset,
    everything else below the source folder (None: no source folder known)."""
    if rel.startswith("aux/"):
        return out_dir
    return src_root


class FileCheck:
    """Is a file unchanged since it was recorded? Size first; then an mtime older than ``since`` (the mtime of
    the manifest/journal that recorded it) means unchanged without reading; else (or with ``verify``) its
    sha256. Stats and digests are cached per path (a file shared by many samples is checked once)."""

    def __init__(self, verify: bool):
        self.verify = verify
        self.stats: dict = {}
        self.digests: dict = {}
        self.hashed = 0

    def stat(self, path):
        if path not in self.stats:
            import stat as _stat

            try:
                st = os.stat(path)
                self.stats[path] = st if _stat.S_ISREG(st.st_mode) else None
            except OSError:
                self.stats[path] = None
        return self.stats[path]

    def digest(self, path):
        if path not in self.digests:
            from benchkit.fsio import sha256_file

            try:
                self.digests[path] = sha256_file(path)
            except OSError:
                self.digests[path] = None
            self.hashed += 1
        return self.digests[path]

    def same(self, path, sha, size, since: int) -> bool:
        st = self.stat(path)
        if st is None:
            return False
        if size is not None and st.st_size != size:
            return False
        if not self.verify and size is not None and st.st_mtime_ns < since:
            return True
        return self.digest(path) == sha


_FileCheck = FileCheck  # the name before it was shared with the harness


def _existing_records(out_dir: Path) -> tuple[dict, bool]:
    """(``{key: (record, since_ns)}``, tidy) from the manifest and any journals left by killed workers;
    ``since_ns`` is the mtime of the file that recorded it (files older than that are trusted by size). ``tidy``:
    the manifest holds exactly one complete line per record and there are no journals (no rewrite needed)."""
    found = {}
    tidy = True
    mpath = out_dir / mf.MANIFEST
    if mpath.exists():
        since = mpath.stat().st_mtime_ns
        recs = mf.read_manifest(out_dir)
        with open(mpath, "rb") as f:
            data = f.read()
        tidy = data.count(b"\n") == len(recs) and (not data or data.endswith(b"\n"))
        for k, r in recs.items():
            found[k] = (r, since)
    jdir = out_dir / JOURNAL_DIR
    if jdir.is_dir():
        tidy = False
        for j in sorted(jdir.glob("*.jsonl")):
            since = j.stat().st_mtime_ns
            try:
                recs = mf.read_jsonl(j)
            except ValueError:  # a damaged journal only loses what it alone held: those samples are redone
                continue
            for r in recs:
                if isinstance(r, dict) and isinstance(r.get("key"), str) and isinstance(r.get("outputs"), dict):
                    found[r["key"]] = (r, since)
    return found, tidy


def _adopt_recorded(producer, out_dir: Path) -> str | None:
    """Let ``producer`` take the generator version recorded in ``out_dir``'s spec.json (see
    :meth:`Producer.adopt_recorded`); a missing or unreadable spec changes nothing (the checks report it)."""
    if not (out_dir / mf.SPEC).is_file():
        return None
    try:
        old = mf.read_spec(out_dir)
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or old.get("fingerprint") == producer.spec().get("fingerprint"):
        return None
    if not _existing_records(out_dir)[0]:  # nothing recorded: the folder is started afresh at this version
        return None
    return producer.adopt_recorded(old)


def _check_spec(out_dir: Path, spec: dict, existing: dict, src_root, check=None) -> list[str]:
    """Refuse to resume ``out_dir`` unless what it holds was made by this spec; returns notes.

    A folder with no recorded sample (e.g. left by a failed start) never blocks: its spec is replaced."""
    if not existing:
        return []
    p = out_dir / mf.SPEC
    fix_new = f"build into a new output folder (or delete {out_dir})"
    if not p.exists():
        raise BenchkitError(
            f"{out_dir} holds {len(existing)} recorded sample(s) ({out_dir / mf.MANIFEST}) but no {mf.SPEC}: benchkit "
            f"cannot tell which configuration and seed made them, so it will not resume them; restore {p}, or "
            f"{fix_new}")
    try:
        old = mf.read_spec(out_dir)
    except ValueError as e:
        old = e
    if not isinstance(old, dict):
        why = old if isinstance(old, ValueError) else "not a JSON object"
        raise BenchkitError(f"{p} is damaged ({why}): cannot tell which configuration made this folder; restore it, "
                            f"or {fix_new}")
    diff = [k for k in ("producer", "fingerprint", "seed") if old.get(k) != spec.get(k)]
    if diff:
        what = ", ".join(f"{k} {old.get(k)} vs {spec.get(k)}" for k in diff)
        raise BenchkitError(
            f"{out_dir} already holds output of a different configuration or seed ({what}, folder vs this run); "
            f"rerun with the folder's settings (seed {old.get('seed')}, fingerprint {old.get('fingerprint')}) to "
            f"resume it, or {fix_new}")
    seed, fp = spec.get("seed"), spec.get("fingerprint")
    for key in sorted(existing):
        r = existing[key][0]
        r_seed = r.get("seed", {}).get("root") if isinstance(r.get("seed"), dict) else None
        r_fp = r.get("fingerprint")
        if (isinstance(r_seed, int) and r_seed != seed) or (r_fp is not None and r_fp != fp):
            raise BenchkitError(
                f"{out_dir / mf.MANIFEST}: sample {key!r} was made with seed {r_seed} (config fingerprint {r_fp}) but "
                f"{p} and this run say seed {seed} (fingerprint {fp}): {mf.SPEC} was edited or replaced, and resuming "
                f"would mix samples of two configurations; rerun with --seed {r_seed} and the original configuration, "
                f"or {fix_new}")
    if old.get("encoding") != spec.get("encoding"):
        raise BenchkitError(
            f"{out_dir} was written with other image-encoder settings ({old.get('encoding')} vs "
            f"{spec.get('encoding')}): resuming would mix file bytes; rebuild into a new folder "
            f"(or rerun with the OpenCV version recorded in {p})")
    return _check_source_identity(out_dir, old.get("source"), spec.get("source"), existing, src_root, check)


def _check_source_identity(out_dir, old_src, new_src, existing, src_root, check=None) -> list[str]:
    """Same source by what it holds (its listing with sizes), wherever it is; see module doc."""
    old_src = old_src if isinstance(old_src, dict) else {}
    new_src = new_src if isinstance(new_src, dict) else {}
    old_path, new_path = old_src.get("path"), new_src.get("path")
    old_l, new_l = old_src.get("listing"), new_src.get("listing")
    fix = "pass the original source folder, or build into a new output folder"
    if old_l and new_l:
        if old_l == new_l:
            if old_path == new_path:
                return []
            return [f"source moved: {old_path} -> {new_path} (same files and sizes); resuming"]
        if old_path == new_path:
            return [(f"source {new_path} changed since the last run ({old_l['files']} -> {new_l['files']} files): "
                     f"samples whose source files changed are rebuilt")]
        raise BenchkitError(
            f"{out_dir} was built from source {old_path} ({old_l['files']} files, {old_l['bytes']} bytes, listing "
            f"{old_l['sha256']}), this run reads {new_path} ({new_l['files']} files, {new_l['bytes']} bytes, listing "
            f"{new_l['sha256']}): another source; resuming would keep samples made from the other source; {fix}")
    if old_path == new_path:
        return []
    # folder written before listings were recorded (benchkit 0.1.0): the sha256 of the recorded source files decide
    checked, check = 0, check or FileCheck(verify=True)
    ok = src_root is not None
    for r, _since in (existing.values() if ok else ()):
        for s in r.get("sources") or ():
            if not (isinstance(s, dict) and s.get("path") and s.get("sha256")):
                continue
            base = _source_base(out_dir, src_root, s["path"])
            if not check.same(str(Path(base) / s["path"]), s["sha256"], None, 0):
                ok = False
                break
            checked += 1
        if not ok:
            break
    if ok and checked:
        return [(f"source moved: {old_path} -> {new_path} (the {checked} recorded source file(s) match by "
                 f"sha256); resuming")]
    raise BenchkitError(
        f"{out_dir} was built from source {old_path}, this run reads {new_path}: resuming would keep samples made "
        f"from the other source under this one's name; {fix}")


def _finalize(rec: dict, fingerprint: str, out_dir: Path, src_root, sizes: dict) -> dict:
    """Stamp a written record with the config fingerprint and its source files' sizes (for resume checks)."""
    rec = dict(rec)
    rec["fingerprint"] = fingerprint
    srcs = rec.get("sources")
    if isinstance(srcs, list):
        out = []
        for s in srcs:
            if isinstance(s, dict) and s.get("path") and s.get("sha256") and "size" not in s:
                base = _source_base(out_dir, src_root, s["path"])
                if base is not None:
                    path = str(Path(base) / s["path"])
                    if path not in sizes:
                        try:
                            sizes[path] = os.stat(path).st_size
                        except OSError:
                            sizes[path] = None
                    if sizes[path] is not None:
                        s = {**s, "size": sizes[path]}
            out.append(s)
        rec["sources"] = out
    return rec


class _Recorder:
    """Appends each finished sample's manifest line (and flushes) as soon as its files are written; thread-safe
    (the single-worker path records from its I/O thread)."""

    def __init__(self, mfile, records: dict, fingerprint: str, out_dir: Path, src_root):
        self.mfile, self.records, self.fingerprint = mfile, records, fingerprint
        self.out_dir, self.src_root = out_dir, src_root
        self.sizes: dict = {}
        self.lock = threading.Lock()
        self.n = 0

    def __call__(self, rec: dict) -> None:
        with self.lock:
            rec = _finalize(rec, self.fingerprint, self.out_dir, self.src_root, self.sizes)
            self.mfile.write(mf.dumps_line(rec) + "\n")
            self.mfile.flush()
            self.records[rec["key"]] = rec
            self.n += 1


def _verify_existing(out_dir: Path, existing: dict, src_root, check: FileCheck):
    """Split recorded samples into kept ``{key: record}`` and notes on the ones to rebuild (an output missing or
    changed, a source file changed). Cost: stats, plus reads only of files touched after they were recorded."""
    kept, changed_src, changed_out = {}, [], []
    out_s = str(out_dir)
    src_s = str(src_root) if src_root is not None else None
    join = os.path.join
    for key in sorted(existing):
        rec, since = existing[key]
        outs = rec.get("outputs") if isinstance(rec.get("outputs"), dict) else {}
        ok = bool(outs)
        for o in outs.values():
            if not check.same(join(out_s, o["path"]), o.get("sha256"), o.get("size"), since):
                changed_out.append((key, o["path"]))
                ok = False
                break
        if ok and src_s is not None:
            for src in rec.get("sources") or ():
                if not (isinstance(src, dict) and src.get("path") and src.get("sha256")):
                    continue
                rel = src["path"]
                path = join(out_s if rel.startswith("aux/") else src_s, rel)
                if not check.same(path, src["sha256"], src.get("size"), since):
                    st = check.stat(path)
                    now = check.digests.get(path) if st is not None else None
                    if st is not None and now is None and src.get("size") is not None:
                        now = f"size {st.st_size} B, recorded {src['size']} B"  # the size told: not hashed
                    changed_src.append((key, path, src["sha256"], now))
                    ok = False
                    break
        if ok:
            if any("size" not in o for o in outs.values()):  # verified by content (older manifest): record sizes
                rec = {**rec, "outputs": {n: {**o, "size": check.stat(join(out_s, o["path"])).st_size}
                                          for n, o in outs.items()}}
            kept[key] = rec
    notes = []
    for key, path, was, now in changed_src[:10]:
        if now is None and not os.path.isfile(path):
            state = "is missing"
        else:
            state = (f"changed since the build ({now})" if str(now).startswith("size ") else
                     f"changed since the build (sha256 {str(now)[:12]}, recorded {was[:12]})")
        notes.append(f"source {path} {state}: sample {key} is rebuilt from the current file "
                     f"(restore the original file to keep the old sample)")
    if len(changed_src) > 10:
        notes.append(f"... {len(changed_src) - 10} more samples rebuilt because their source changed")
    for key, rel in changed_out[:5]:
        notes.append(f"output {out_dir / rel} is missing or changed: sample {key} is rebuilt")
    if len(changed_out) > 5:
        notes.append(f"... {len(changed_out) - 5} more samples rebuilt because an output was missing or changed")
    return kept, notes, check.hashed


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def cap_workers(workers: int, n_jobs: int, backend: str, scheduler) -> tuple[int, str | None]:
    """Workers actually started: at most one per job to run and (except on an external dask cluster) per usable
    CPU core; returns (count, note or None)."""
    workers = max(1, int(workers))
    external = backend == "dask" and scheduler
    cores = usable_cores()
    cap = max(1, n_jobs) if external else max(1, min(n_jobs, cores))
    if workers <= cap:
        return workers, None
    why = f"{n_jobs} job(s) to run" + ("" if external else f", {cores} usable CPU core(s)")
    return cap, f"--workers {workers} capped to {cap} ({why})"


def _iterate(producer, todo, seed, out_dir, workers, backend, scheduler, record):
    """Yield (records, failures) per job; ``todo`` holds (job, skip-set) pairs. In-process paths hand each
    record to ``record`` as soon as its files are written (and yield only failures); worker paths journal
    each record as it is written and yield the job's records when it ends."""
    if workers <= 1 and backend == "sequential":
        def write(*a):
            rec, fail = _write_safe(*a)
            if rec is not None:
                record(rec)
                return None, None
            return rec, fail

        for job, skip in todo:
            yield _collect(*_run_job(producer, job, seed, str(out_dir), skip, write))
        return
    if workers <= 1 and backend == "loky":
        yield from _iterate_overlapped(producer, list(todo), seed, out_dir, record)
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
                 extra_spec: dict | None = None, verify: bool = False) -> RunSummary:
    """Produce every job of ``producer`` into ``out_dir`` (resumable, deterministic, parallel).

    ``verify``: on resume, re-read every recorded output and source file and compare sha256 (default: sizes,
    and contents only of files modified after they were recorded)."""
    import shutil
    import sys

    from benchkit import __version__

    t0 = time.perf_counter()
    if limit is not None and int(limit) < 0:
        raise BenchkitError(f"--limit must be >= 0 (number of samples, sorted by key), got {limit}")
    if int(workers) < 1:
        raise BenchkitError(f"--workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    adopted = _adopt_recorded(producer, out_dir)
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
    src_root = Path(src) if src else None
    listing = source_listing(src_root)
    if listing is not None:
        spec["source"] = {**spec["source"], "listing": listing}

    # list the work BEFORE writing anything: a missing/empty source leaves no folder or spec behind
    producer.root_seed = int(seed)
    producer.out_dir = out_dir.resolve()
    jobs = producer.jobs()
    job_keys = {j.key: producer.job_keys(j) for j in jobs}
    all_keys = sorted(k for ks in job_keys.values() for k in ks)
    problems = [dict(p) for p in producer.source_problems()]
    if not all_keys and problems:
        detail = "; ".join(f"{p.get('path', '')}: {p.get('error', '')}" for p in problems[:5])
        raise BadInputError(src or out_dir, f"no sample can be made from this source ({detail})",
                            problems[0].get("fix") or "check the source folder")
    wanted = set(all_keys[: int(limit)] if limit is not None else all_keys)

    existing, tidy = _existing_records(out_dir) if out_dir.is_dir() else ({}, True)
    check = FileCheck(verify)
    notes = _check_spec(out_dir, spec, existing, src_root, check)
    if adopted:
        notes.insert(0, adopted)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_tmp(out_dir)  # only once the folder is known to be ours (or new): never in a refused folder
    mf.write_spec(out_dir, spec)

    all_set = set(all_keys)
    gone = sorted(k for k in existing if k not in all_set)
    if gone:
        notes.append(f"{len(gone)} recorded sample(s) have no source any more (e.g. {gone[0]!r}): left out of the "
                     f"manifest, their files stay in {out_dir} (restore the source and rerun to list them again)")
    kept, vnotes, hashed = _verify_existing(out_dir, {k: v for k, v in existing.items() if k in all_set},
                                            src_root, check)
    notes += vnotes
    sizes: dict = {}
    tidy = tidy and len(kept) == len(existing) and all(kept[k] is existing[k][0] for k in kept)
    kept = {k: (_finalize(r, spec["fingerprint"], out_dir, src_root, sizes) if "fingerprint" not in r else r)
            for k, r in kept.items()}
    tidy = tidy and all(kept[k] is existing[k][0] for k in kept)
    done = {k: r for k, r in kept.items() if k in wanted}
    # samples already built beyond --limit stay in the manifest (checked like the others): limiting a run never
    # shrinks a folder
    beyond = {k: r for k, r in kept.items() if k not in wanted}
    todo = []
    for j in jobs:
        left = [k for k in job_keys[j.key] if k in wanted and k not in done]
        if left:
            todo.append((j, frozenset(job_keys[j.key]) - frozenset(left)))
    n_todo = sum(len(job_keys[j.key]) - len(sk) for j, sk in todo)
    workers, note = cap_workers(workers, len(todo), backend, scheduler)
    if note:
        notes.append(note)
    if progress:
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
    mpath = out_dir / mf.MANIFEST
    if not tidy:  # records dropped, upgraded or merged from journals (an unchanged manifest is not rewritten)
        mf.write_sorted(mpath, [*done.values(), *beyond.values()])
    elif hashed and mpath.exists():  # files newer than the manifest were just verified by content: trust them
        os.utime(mpath)  # by mtime from now on (e.g. a source copied elsewhere is hashed once, not every resume)
    jdir = out_dir / JOURNAL_DIR
    if jdir.exists():  # its records are in the manifest now
        shutil.rmtree(jdir, ignore_errors=True)
    failures = list(problems)  # a copy: sample failures must not count as source problems
    sample_failures = 0
    records = {**beyond, **done}
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(total=n_todo, desc=f"{producer.name}", unit="sample", disable=not progress or tqdm is None,
               dynamic_ncols=True) if tqdm else None
    with open(mpath, "a", encoding="utf-8") as mfile:
        recorder = _Recorder(mfile, records, spec["fingerprint"], out_dir, src_root)
        # absolute: workers of an existing dask cluster (--scheduler) do not share this process's cwd
        for recs, fails in _iterate(producer, todo, int(seed), out_dir.resolve(), int(workers), backend,
                                    scheduler, recorder):
            for rec in recs:
                recorder(rec)
            failures += fails
            sample_failures += len(fails)
            if bar is not None:
                bar.n = min(n_todo, recorder.n + sample_failures)
                bar.refresh()
                if failures:
                    bar.set_postfix(failed=len(failures))
    if bar is not None:
        bar.close()
    if recorder.n or not tidy or not mpath.exists():
        mf.write_sorted(mpath, records.values())
    if jdir.exists():
        shutil.rmtree(jdir, ignore_errors=True)
    fpath = out_dir / mf.FAILURES
    if failures:
        mf.write_sorted(fpath, failures)
    elif fpath.exists():
        os.unlink(fpath)
    spec["n_samples"] = len(records)
    spec["n_failed"] = sample_failures
    if problems:
        spec["n_source_problems"] = len(problems)
    spec["complete"] = all_set <= set(records)
    spec["dataset_fingerprint"] = mf.dataset_fingerprint(spec["fingerprint"], records.values())
    mf.write_spec(out_dir, spec)
    produced = len(records) - len(done) - len(beyond)
    return RunSummary(out_dir, len(wanted), produced, len(done), sample_failures,
                      time.perf_counter() - t0, sorted(failures, key=lambda r: r["key"]),
                      spec["dataset_fingerprint"], len(problems), notes)


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
    src = spec["source"].get("path") if isinstance(spec.get("source"), dict) else None
    if source_override is None and src and not Path(src).exists():
        raise BenchkitError(f"the source folder {src} recorded in {out_dir / mf.SPEC} is not there (replay reads the "
                            f"original inputs): pass its new location with --source NEW_PATH (a dataset built from the "
                            f"embedded demo source: --source embedded)")
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
