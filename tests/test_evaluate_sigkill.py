"""SIGKILL during `benchkit evaluate`, then resume: the same output bytes and scores as a clean run, and the
resumed run reuses what the killed one finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest


def _bench(tmp_path, data):
    y = tmp_path / "k.yaml"
    y.write_text("name: kill\nmetrics: [psnr, ssim]\nprimary_metric: psnr\nmethods: [nlmeans, identity]\n"
                 f"datasets: [{{name: blur, kind: folder, path: {data}}}]\n")
    return y


def _cmd(y, run):
    return [sys.executable, "-m", "benchkit", "evaluate", "--benchmark", str(y), "--run", str(run), "--no-progress"]


def _outputs(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted((run / "outputs").rglob("*.png"))}


def _scores(run):
    res = json.loads((run / "results.json").read_text())
    return {(s["method"], s["dataset"]): s["means"] for s in res["summary"]}


@pytest.mark.slow
def test_sigkill_during_evaluate_then_resume_gives_clean_bytes(tmp_path, cli_env):
    from benchkit.harness.toyset import write_toy_dataset

    data = write_toy_dataset(tmp_path / "blur", "blur", n=8, size=96, seed=4)
    y = _bench(tmp_path, data)
    clean = tmp_path / "clean"
    subprocess.run(_cmd(y, clean), check=True, env=cli_env, capture_output=True)

    run = tmp_path / "run"
    index = run / "outputs" / "blur" / "nlmeans" / "index.jsonl"
    proc = subprocess.Popen(_cmd(y, run), env=cli_env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if index.is_file() and len(index.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "evaluate finished before it could be killed (make the work longer)"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(index.read_text().splitlines())
    assert 2 <= done_before < 8 and not (run / "results.json").exists()

    p = subprocess.run(_cmd(y, run), env=cli_env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads((run / "results.json").read_text())
    assert res["counters"]["outputs_reused"] >= done_before  # finished work survived the kill
    assert _outputs(run) == _outputs(clean)
    assert _scores(run) == _scores(clean)
