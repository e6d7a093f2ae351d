"""``benchkit bench adapters``: every model adapter with weights has a tiny stand-in, and the bench runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_adapter_with_weights_is_benched():
    from benchkit.bench.adapters import TINY
    from benchkit.methods.external import UnreleasedMethod
    from benchkit.registry import METHODS, resolve

    needed = set()
    for name in METHODS:
        cls = resolve("method", name)
        if issubclass(cls, UnreleasedMethod) or not getattr(cls, "weight_files", ()):
            continue
        if getattr(cls, "weights_name", ""):  # mode variants (osediff-official) share their family's model
            continue
        needed.add(name)
    needed -= {"nafnet", "restormer"}  # CNN baselines: no diffusion harness overhead to bound (own tests)
    assert needed <= set(TINY), f"adapters without a tiny stand-in in bench adapters: {sorted(needed - set(TINY))}"


def test_bench_adapters_runs_and_reports_wall_and_cpu(tmp_path):
    """Every tiny stand-in loads and restores through both paths (one image each)."""
    from benchkit.bench.adapters import TINY

    r = subprocess.run([sys.executable, "-m", "benchkit", "bench", "adapters", "--quick", "--n", "1"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bench"] == "adapters" and set(out["methods"]) == set(TINY) and "machine" in out
    for name, m in out["methods"].items():
        assert m["images"] == 1 and m["scale"] == (4 if TINY[name][1] == "x4" else 1), name
        for k in ("direct_ms_per_img", "harness_ms_per_img", "direct_cpu_ms_per_img", "harness_cpu_ms_per_img"):
            assert m[k] > 0, (name, k)
    assert out["ratio"] == max(m["ratio"] for m in out["methods"].values())
    bad = subprocess.run([sys.executable, "-m", "benchkit", "bench", "adapters", "--methods", "nope"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "no tiny stand-in" in bad.stderr
