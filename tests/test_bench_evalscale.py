"""``benchkit bench evaluate-scale`` runs and reports its fields; the per-image fast paths it led to keep their
contracts (``fsio.inside`` still refuses symbolic links out of the root; pyiqa_context still patches every pyiqa
module, also one imported after an earlier call)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from argparse import Namespace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROW = ("samples", "first_wall_s", "first_cpu_s", "cached_wall_s", "cached_cpu_s", "first_us_per_image",
       "first_cpu_us_per_image", "cached_us_per_image", "cached_cpu_us_per_image", "cached_fraction",
       "score_cache_bytes")


def test_bench_reports_per_image_times_and_growth(monkeypatch):
    import torch

    torch.set_num_threads(1)
    from benchkit.bench import evalscale

    monkeypatch.setattr(evalscale, "SIZES", (12, 24))
    monkeypatch.setattr(evalscale, "WARMUP", 4)
    out = evalscale.run(Namespace(n=None, quick=False))
    assert out["bench"] == "evaluate-scale" and set(out["sizes"]) == {"12", "24"}
    for n, row in out["sizes"].items():
        assert row["samples"] == int(n)
        for k in ROW:
            assert row[k] > 0, (n, k)
        assert row["first_us_per_image"] == pytest.approx(1e6 * row["first_wall_s"] / int(n), rel=1e-2)
    g = out["growth"]
    assert g["samples"] == 2
    for k in ("first_us_per_image", "first_cpu_us_per_image", "cached_us_per_image", "cached_cpu_us_per_image"):
        assert g[k] == pytest.approx(out["sizes"]["24"][k] / out["sizes"]["12"][k], rel=1e-2)
    assert out["growth_ok"] == all(v <= out["target_growth_max"] for k, v in g.items() if k != "samples")

    from benchkit.bench.readme import render

    text = render({"evaluate-scale": {**out, "date": "2026-01-01T00:00:00Z", "machine": {}}})
    assert "`evaluate-scale`" in text and "12 images: first run" in text and "cached re-run x" in text


def test_bench_cli_last_line_is_json(tmp_path):
    r = subprocess.run([sys.executable, "-m", "benchkit", "bench", "evaluate-scale", "--n", "8"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bench"] == "evaluate-scale" and list(out["sizes"]) == ["8"] and "growth" not in out
    assert {"date", "machine", "bench_wall_s", "bench_cpu_s"} <= set(out)
    assert out["sizes"]["8"]["first_us_per_image"] > 0


def test_inside_fast_path_keeps_the_symlink_check(tmp_path):
    from benchkit.errors import BenchkitError
    from benchkit.fsio import inside

    root = tmp_path / "root"
    (root / "gt").mkdir(parents=True)
    (root / "gt" / "a.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "b.png").write_bytes(b"y")
    assert inside(root, "gt/a.png") == root / "gt" / "a.png"
    assert inside(root, "gt/missing.png") == root / "gt" / "missing.png"
    (root / "alias").symlink_to(root / "gt")  # a link that stays inside: accepted
    assert inside(root, "alias/a.png") == root / "alias" / "a.png"
    (root / "out").symlink_to(tmp_path / "outside")  # a directory link leaving the root
    (root / "gt" / "b.png").symlink_to(tmp_path / "outside" / "b.png")  # a file link leaving the root
    for rel in ("out/b.png", "gt/b.png", "../outside/b.png", str(tmp_path / "outside" / "b.png")):
        with pytest.raises(BenchkitError):
            inside(root, rel)
    linked_root = tmp_path / "linked"  # the root itself through a link: still inside
    linked_root.symlink_to(root)
    assert inside(linked_root, "gt/a.png") == linked_root / "gt" / "a.png"


def test_module_scan_sees_modules_imported_later(monkeypatch):
    from benchkit.metrics import pyiqa_backend as pb

    first = pb._modules_named("benchkit_evalscale_probe")
    assert first == []
    mod = types.ModuleType("benchkit_evalscale_probe_x")
    monkeypatch.setitem(sys.modules, "benchkit_evalscale_probe_x", mod)
    assert pb._modules_named("benchkit_evalscale_probe") == [mod]
    again = types.ModuleType("benchkit_evalscale_probe_x")  # re-imported under the same name
    monkeypatch.setitem(sys.modules, "benchkit_evalscale_probe_x", again)
    assert pb._modules_named("benchkit_evalscale_probe") == [again]
    monkeypatch.delitem(sys.modules, "benchkit_evalscale_probe_x")
    assert pb._modules_named("benchkit_evalscale_probe") == []
