"""``evaluate`` trusts unchanged files by size and mtime (the rule of a build's resume) and re-hashes with
``--verify``: a cached re-run reads no dataset file or output, and a same-size edit dated back in time is seen
only with ``verify``, an ordinary edit always."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def built(tmp_path):
    out = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "benchkit", "degrade", "embedded", str(out), "--pipeline",
                    "realesrgan_x1", "--limit", "3", "--no-progress"], check=True, env=env, capture_output=True)
    bench = tmp_path / "b.yaml"
    bench.write_text(f"name: v\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [identity, unsharp]\n"
                     f"datasets:\n  - {{name: ds, kind: folder, path: {out}}}\n")
    return out, bench


def _run(bench, run, **kw):
    from benchkit.harness.evaluate import evaluate

    return evaluate(str(bench), run_dir=run, log=lambda *a: None, **kw)


def _hash_counter(monkeypatch):
    import benchkit.fsio as fsio

    calls = []
    real = fsio.sha256_file

    def counting(p, *a, **k):
        calls.append(str(p))
        return real(p, *a, **k)

    monkeypatch.setattr(fsio, "sha256_file", counting)
    return calls


def _edit_same_size(p: Path, older_than: Path | None = None):
    """Flip a byte (same size); with ``older_than`` date the file 10 s before that record file (an edit that
    kept an old mtime: only a re-hash can see it; coarse timestamps could otherwise tie with the record)."""
    data = bytearray(p.read_bytes())
    data[-20] ^= 0xFF  # inside the PNG's last chunk: same size, other bytes
    p.write_bytes(bytes(data))
    if older_than is not None:
        t = older_than.stat().st_mtime_ns - 10**10
        os.utime(p, ns=(t, t))


def test_cached_rerun_reads_no_file(built, tmp_path, monkeypatch):
    _, bench = built
    first = _run(bench, tmp_path / "run")
    assert first.counters.images_restored == 6 and not first.failures
    calls = _hash_counter(monkeypatch)
    again = _run(bench, tmp_path / "run")
    assert again.counters.outputs_reused == 6 and again.counters.images_restored == 0
    # neither the dataset's files nor the outputs were read; on kernels with coarse timestamps a file may share
    # its record's mtime tick, and only such a file may be re-hashed (the rule trusts strictly older files)
    ds_dir = built[0]
    tied = {str(p) for rec_file, files in ((ds_dir / "manifest.jsonl", ds_dir.rglob("*.png")),
                                          *[(d / "index.jsonl", d.glob("*.png")) for d in
                                            (tmp_path / "run" / "outputs" / "ds").iterdir()])
            for p in files if p.stat().st_mtime_ns >= rec_file.stat().st_mtime_ns}
    assert set(calls) <= tied, sorted(set(calls) - tied)
    _run(bench, tmp_path / "run", verify=True)
    assert len([c for c in calls if "/outputs/" in c]) == 6 and len([c for c in calls if "/ds/" in c]) >= 6


def test_dataset_edits(built, tmp_path):
    ds, bench = built
    _run(bench, tmp_path / "run")
    lq = sorted((ds / "lq").rglob("*.png"))
    _edit_same_size(lq[0])  # an ordinary edit: newer than the manifest -> re-hashed
    res = _run(bench, tmp_path / "run")
    assert any("sha256" in str(f) and lq[0].name in str(f) for f in res.failures)
    _edit_same_size(lq[1], older_than=ds / "manifest.jsonl")  # same size, old mtime: trusted unless --verify
    res = _run(bench, tmp_path / "run")
    assert not any(lq[1].name in str(f) for f in res.failures)
    res = _run(bench, tmp_path / "run", verify=True)
    assert any("sha256" in str(f) and lq[1].name in str(f) for f in res.failures)


def test_output_edits(built, tmp_path):
    _, bench = built
    _run(bench, tmp_path / "run")
    d = tmp_path / "run" / "outputs" / "ds" / "identity"
    outs = sorted(d.glob("**/*.png"))
    _edit_same_size(outs[0], older_than=d / "index.jsonl")
    assert _run(bench, tmp_path / "run").counters.images_restored == 0  # trusted by size and mtime
    assert _run(bench, tmp_path / "run", verify=True).counters.images_restored == 1  # re-hashed: redone
    outs = sorted(d.glob("**/*.png"))
    _edit_same_size(outs[1])
    assert _run(bench, tmp_path / "run").counters.images_restored == 1  # newer than the index: re-hashed


def test_damaged_index_and_manifest_lines(tmp_path):
    """A damaged line of a method's output index costs only that output (redone, with a notice), not the method;
    a cut last line of a dataset's manifest is reported (the sample count in spec.json tells), not silently
    dropped; a damaged middle line of a manifest names the file and one fix."""
    from benchkit.harness.evaluate import adhoc_benchmark, evaluate
    from benchkit.harness.toyset import write_toy_dataset

    ds = write_toy_dataset(tmp_path / "ds", "blur", n=4, size=16)
    bench = adhoc_benchmark([str(ds)], metrics=["psnr"])
    run = tmp_path / "run"
    r0 = evaluate(bench, run_dir=run, methods=["identity", "unsharp"], log=lambda *a: None)
    assert not r0.failures
    idx = run / "outputs" / "ds" / "unsharp" / "index.jsonl"
    lines = idx.read_text().splitlines()
    idx.write_text("\n".join([lines[0], "{garbage", *lines[2:]]) + "\n")
    r1 = evaluate(bench, run_dir=run, methods=["identity", "unsharp"], log=lambda *a: None)
    assert not r1.failures and r1.counters.images_restored == 1 and r1.counters.outputs_reused == 7
    assert "{garbage" not in idx.read_text()  # rewritten
    man = ds / "manifest.jsonl"
    mlines = man.read_text().splitlines()
    man.write_text("\n".join(mlines[:-1]) + "\n" + mlines[-1][:40])  # a cut last line
    r2 = evaluate(adhoc_benchmark([str(ds)], metrics=["psnr"]), run_dir=tmp_path / "run2", methods=["identity"],
                  log=lambda *a: None)
    assert len(r2.failures) == 1 and "3 of the 4 samples" in r2.failures[0]["error"], r2.failures
    man.write_text("\n".join([mlines[0], "{not json", *mlines[2:]]) + "\n")
    r3 = evaluate(adhoc_benchmark([str(ds)], metrics=["psnr"]), run_dir=tmp_path / "run3", methods=["identity"],
                  log=lambda *a: None)
    f = r3.failures[0]
    assert "line 2 is not valid JSON" in f["error"] and f["fix"].startswith("delete that line") and \
        "fix:" not in f["error"], f
