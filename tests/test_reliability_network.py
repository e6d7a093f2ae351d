"""Network guard: `benchkit demo` and `benchkit evaluate` make no connection attempt.

The CLI runs in a subprocess whose ``sitecustomize`` (inherited by every worker process through
PYTHONPATH) replaces ``socket.socket.connect``/``connect_ex``, ``socket.create_connection`` and
``socket.getaddrinfo`` by functions that log the attempt and raise. The demo's one network step,
NIQE provisioning (``pip download basicsr``), is done beforehand: a valid NIQE parameter file is
written into the weights root, so the demo's offline core (datasets, methods, metrics, publish)
is what runs under the guard. AF_UNIX sockets (used by process pools) are allowed.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

GUARD = '''
import os, socket
_LOG = {log!r}
def _deny(what, *args):
    with open(_LOG, "a") as f:
        f.write(f"{{os.getpid()}} {{what}} {{args!r}}\\n")
    raise OSError(f"network guard: {{what}} {{args!r}}")
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
def connect(self, address):
    if self.family == socket.AF_UNIX:
        return _connect(self, address)
    _deny("connect", address)
def connect_ex(self, address):
    if self.family == socket.AF_UNIX:
        return _connect_ex(self, address)
    _deny("connect_ex", address)
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = lambda *a, **k: _deny("getaddrinfo", *a)
socket.create_connection = lambda *a, **k: _deny("create_connection", *a)
'''


def _guard_env(tmp_path, cli_env):
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "net.log"
    (site / "sitecustomize.py").write_text(GUARD.format(log=str(log)))
    env = dict(cli_env)
    env["PYTHONPATH"] = str(site) + ":" + env["PYTHONPATH"]
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(k, None)
    return env, log


def _provision_niqe(root) -> bool:
    """Place NIQE's parameters in ``root``: the real, sha256-pinned file when this machine's default weights
    root has it (True), else a synthetic file that the pin refuses, so the demo runs without NIQE (False)."""
    import shutil

    import scipy.io

    from benchkit.metrics.weights import weights_root

    real = weights_root(None) / "hub" / "pyiqa" / "niqe_modelparameters.mat"
    p = root / "hub" / "pyiqa" / "niqe_modelparameters.mat"
    p.parent.mkdir(parents=True)
    from benchkit.metrics import get_metric

    if real.is_file() and get_metric("niqe", weights_root=weights_root(None)).availability()[0]:
        shutil.copyfile(real, p)
        return True
    rng = np.random.default_rng(0)
    a = rng.normal(size=(36, 36))
    scipy.io.savemat(str(p), {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": a @ a.T + 36 * np.eye(36)})
    return False


def test_guard_catches_a_connection(tmp_path, cli_env):
    """Control: the guard does see and block a connection attempt in the subprocess."""
    env, log = _guard_env(tmp_path, cli_env)
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\nexcept OSError as e:\n    print(e)"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "network guard" in p.stdout and log.read_text().count("create_connection") == 1


@pytest.mark.slow
def test_demo_and_evaluate_make_no_connection(tmp_path, cli_env):
    env, log = _guard_env(tmp_path, cli_env)
    weights = tmp_path / "weights"
    real_niqe = _provision_niqe(weights)
    run, lb = tmp_path / "run", tmp_path / "lb"
    p = subprocess.run([sys.executable, "-m", "benchkit", "demo", "--out", str(run), "--leaderboards", str(lb),
                        "--weights-root", str(weights), "--workers", "1", "--no-progress"],
                       env=env, capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode in (0, 3), p.stdout[-2000:] + p.stderr[-3000:]
    if real_niqe:
        assert "NIQE parameters present" in p.stdout
    else:  # the pinned sha256 refuses the synthetic file; the demo goes on without NIQE, still offline
        assert "continuing without NIQE" in p.stdout
    assert (run / "results.json").is_file() and list(lb.glob("*.csv"))
    assert not log.exists(), log.read_text()
    p = subprocess.run([sys.executable, "-m", "benchkit", "evaluate", "--benchmark", "demo", "--run", str(run),
                        "--weights-root", str(weights), "--methods", "identity,bicubic", "--metrics", "psnr,niqe",
                        "--no-progress"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode in (0, 3), p.stdout[-2000:] + p.stderr[-3000:]
    assert not log.exists(), log.read_text()
