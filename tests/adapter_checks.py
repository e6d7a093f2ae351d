"""Checks shared by the method-adapter tests (``tests/test_adapters_*.py``): fixture factories and plain functions.

Imported like ``conftest`` (``from adapter_checks import ...``): pytest puts ``tests/`` on ``sys.path`` (rootdir
conftest, no ``__init__.py``). Each test module keeps its own ``tiny`` fixture (its weights, dataset and run
folder) and passes it in; a module makes its fixtures with ``one_thread = one_thread_fixture()`` and
``cli_run = cli_run_fixture(METHODS)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


# ------------------------------------------------------------------------------------------------ fixtures
def one_thread_fixture():
    """A module-scoped autouse fixture: one torch intra-op thread while the module runs (restored after)."""

    @pytest.fixture(scope="module", autouse=True)
    def one_thread():
        """Tiny models: thread start-up dominates and a shared CPU makes intra-op threads 50x slower."""
        import torch

        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)

    return one_thread


def cli_run_fixture(methods, scope="session", unset=("BENCHKIT_BASE_MODELS",), timeout=900):
    """A ``cli_run`` fixture (of ``scope``, needing the module's ``tiny``): one ``benchkit evaluate`` of
    ``methods`` over ``tiny["ds"]`` with ``tiny["weights"]`` into ``tiny["root"]/run_cli`` -> (process, run)."""

    @pytest.fixture(scope=scope)
    def cli_run(tiny):
        run = tiny["root"] / "run_cli"
        r = benchkit_cli(["evaluate", "--dataset", str(tiny["ds"]), "--methods", ",".join(methods), "--metrics",
                          "psnr", "--weights-root", str(tiny["weights"]), "--run", str(run), "--no-progress"],
                         unset=unset, timeout=timeout)
        return r, run

    return cli_run


# ----------------------------------------------------------------------------------------- plain functions
def benchkit_cli(args, unset=(), timeout=900):
    """``python -m benchkit ARGS`` in a subprocess from the repository root (this checkout on ``PYTHONPATH``,
    one OpenMP thread, the ``unset`` environment variables removed); the finished process, not checked."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for k in unset:
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "benchkit", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout, check=False)


def git_commit_all(folder) -> str:
    """Make ``folder`` a git clone with one commit of everything in it (a stub checkout); its commit sha."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "stub"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=GIT_ENV, capture_output=True)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True, env=GIT_ENV).stdout.strip()


def make_method(name, weights, **opts):
    """The registered method ``name`` with ``opts``, set up on ``<weights>/methods/<name>`` (not loaded)."""
    from benchkit.registry import resolve

    m = resolve("method", name)(**opts)
    m.setup(weights_dir=Path(weights) / "methods" / name)
    return m


def seeded_ctx(seed, key="a"):
    """A restore context as the harness builds it: ``generator()`` is a fresh CPU generator seeded ``seed``."""
    from benchkit.harness.restore import _torch_generator

    return {"key": key, "seed": seed, "generator": lambda: _torch_generator("cpu", seed)}


def stats(a, step=(7, 5)):
    """Golden statistics of an output image: mean, std and the sum of every ``step`` pixel (rows, columns)."""
    return [float(a.mean()), float(a.std()), float(a[::step[0], ::step[1]].sum())]


def check_golden(path, got, rtol=2e-3, atol=2e-3):
    """``got`` (name -> statistics) == the JSON golden file ``path`` (same names, within ``rtol``/``atol``);
    ``BENCHKIT_WRITE_GOLDEN=1`` rewrites the file first."""
    if os.environ.get("BENCHKIT_WRITE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(path.read_text())
    assert set(want) == set(got)
    for name, vals in want.items():
        assert np.allclose(got[name], vals, rtol=rtol, atol=atol), (name, got[name], vals)


def output_index(run, ds, name):
    """(output folder, key -> index record) of method ``name`` on dataset folder ``ds`` in the run ``run``."""
    d = run / "outputs" / ds.name / name
    return d, {r["key"]: r for r in map(json.loads, (d / "index.jsonl").read_text().splitlines())}


def check_evaluate_outputs(cli_run, ds, methods, scale, also_ok=(), seeded=None, each=None):
    """A ``cli_run`` result: the command succeeded; every method in ``methods`` wrote both images of ``ds`` at
    ``scale`` x the input; a seed is recorded exactly for the ``seeded`` names (default: the ``-official``
    modes); the summary's ok methods are ``methods`` + ``also_ok``. ``each(name, rec, lq, out)``: extra checks."""
    from benchkit.images import read_image

    r, run = cli_run
    assert r.returncode == 0, r.stdout + r.stderr
    seeded = {n for n in methods if n.endswith("-official")} if seeded is None else set(seeded)
    for name in methods:
        d, idx = output_index(run, ds, name)
        assert len(idx) == 2
        for key, rec in idx.items():
            lq = read_image(ds / "lq" / f"{key}.png")
            out = read_image(d / rec["path"])
            assert out.shape == (lq.shape[0] * scale, lq.shape[1] * scale, 3)
            assert ("seed" in rec) == (name in seeded)
            if each is not None:
                each(name, rec, lq, out)
    summary = json.loads((run / "results.json").read_text())["summary"]
    assert {s["method"] for s in summary if s["status"] == "ok"} == set(methods) | set(also_ok)


def check_harness_parity(m, run, ds, name, scale):
    """The harness's output of each image of ``ds`` is exactly (same PNG bytes) the direct call of the loaded
    method ``m`` with the harness's seed for that image."""
    from benchkit.fsio import sha256_bytes
    from benchkit.harness.restore import method_seed
    from benchkit.images import encode_png, read_image

    _, idx = output_index(run, ds, name)
    for key, rec in idx.items():
        x = read_image(ds / "lq" / f"{key}.png")
        direct = m.restore([x], [seeded_ctx(method_seed(0, key, name), key)], scale)[0]
        assert sha256_bytes(encode_png(direct)) == rec["sha256"], (name, key)


@contextlib.contextmanager
def loaded(name, weights, dtype="float32", **opts):
    """:func:`make_method`, loaded on the CPU in ``dtype`` for the ``with`` block and unloaded after it."""
    m = make_method(name, weights, **opts)
    m.load("cpu", dtype)
    try:
        yield m
    finally:
        m.unload()


def check_mode_seeds_and_parity(m, name, lq, scale, cli_run, ds, seed_diff):
    """The loaded method ``m`` (registered as ``name``) on ``lq``: its ``mode`` option is ``official`` for
    ``-official`` names, else ``deterministic``; float32 output at ``scale`` x the input; the same seed gives the
    same PNG bytes; another seed changes the output by more than ``seed_diff`` in ``-official`` modes and nothing
    otherwise; harness parity with ``cli_run`` (:func:`check_harness_parity`). Returns the seed-1 output."""
    from benchkit.images import encode_png

    assert m.info()["options"]["mode"] == ("official" if name.endswith("-official") else "deterministic")
    a = m.restore([lq], [seeded_ctx(1)], scale)[0]
    b = m.restore([lq], [seeded_ctx(1)], scale)[0]
    c = m.restore([lq], [seeded_ctx(2)], scale)[0]
    assert a.shape == (lq.shape[0] * scale, lq.shape[1] * scale, 3) and a.dtype == np.float32
    assert encode_png(a) == encode_png(b)  # identical bytes (deterministic, or the same seed)
    if name.endswith("-official"):
        assert np.abs(a - c).max() > seed_diff  # another seed, another draw
    else:
        assert np.array_equal(a, c)  # seeds are ignored
    check_harness_parity(m, cli_run[1], ds, name, scale)
    return a


def float16_and_float32(name, weights, lq, scale, each=None):
    """``lq`` restored (seed 1) by ``name`` loaded in float32 and in float16 -> dtype -> output; the two tags
    differ (the dtype is part of the cache identity). ``each(m, dtype)``: checks of the loaded method."""
    out, tags = {}, {}
    for dtype in ("float32", "float16"):
        with loaded(name, weights, dtype) as m:
            if each is not None:
                each(m, dtype)
            out[dtype] = m.restore([lq], [seeded_ctx(1)], scale)[0]
            tags[dtype] = m.tag()
    assert tags["float32"] != tags["float16"]
    return out


def load_outcome(res):
    """(ok method names, method -> skip reason, method -> load error) of an in-process ``evaluate`` result."""
    ok = {s["method"] for s in res.summary if s["status"] == "ok"}
    skipped = {s["name"]: s["reason"] for s in res.skipped if s["what"] == "method"}
    errors = {f["method"]: f["error"] for f in res.failures if f.get("stage") == "load"}
    return ok, skipped, errors


def evaluate_in_process(ds, weights_root, run_dir, methods):
    """``evaluate`` (in this process, PSNR only, silent) of ``methods`` on the dataset folder ``ds``."""
    from benchkit.harness.evaluate import adhoc_benchmark, evaluate

    return evaluate(adhoc_benchmark([ds], metrics=["psnr"]), run_dir=run_dir, methods=list(methods),
                    metrics=["psnr"], weights_root=weights_root, log=lambda *a: None)
