"""No code from files: a pickle with a side effect planted under every weight file name benchkit or pyiqa
may read, for every registered metric, never executes; the metric fails with a clear error instead."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from benchkit.errors import BenchkitError
from benchkit.metrics.catalog import CATALOG

pytest.importorskip("pyiqa")

# names pyiqa reads besides the catalog's weight files (generated caches, alternative checkpoints)
EXTRA = ("hub/pyiqa/liqe_text_feat.pt", "hub/pyiqa/liqe_text_feat_mix.pt", "hub/checkpoints/ARNIQA.pth",
         "hub/pyiqa/regressor_koniq10k.pth", "hub/pyiqa/ARNIQA.pth")
HF_FILES = ("pytorch_model.bin", "open_clip_pytorch_model.bin", "pytorch_model-00001-of-00002.bin")


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'a').write('executed\\n')",))


def _plant(root: Path, marker: Path) -> list[Path]:
    data = pickle.dumps(_Payload(marker), protocol=2)
    rels = {w for info in CATALOG for w in info.weights} | set(EXTRA)
    names = {Path(r).name for r in rels if not r.startswith("huggingface/")}
    for n in names:  # every file name in both torch.hub folders pyiqa looks in
        rels |= {f"hub/pyiqa/{n}", f"hub/checkpoints/{n}"}
    planted = []
    for rel in sorted(rels):
        if rel.startswith("huggingface/hub/models--"):
            folder = root / rel
            (folder / "refs").mkdir(parents=True, exist_ok=True)
            (folder / "refs" / "main").write_text("0" * 40)
            snap = folder / "snapshots" / ("0" * 40)
            snap.mkdir(parents=True, exist_ok=True)
            for f in HF_FILES:
                (snap / f).write_bytes(data)
                planted.append(snap / f)
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        planted.append(p)
    return planted


def test_planted_payload_is_live(tmp_path):
    """Control: the planted file does run code when unpickled (so the tests below can fail)."""
    marker = tmp_path / "marker"
    files = _plant(tmp_path / "w", marker)
    with open(files[0], "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "executed\n"


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
def test_no_metric_executes_a_planted_pickle(tmp_path, verify):
    from benchkit.metrics import get_metric

    marker = tmp_path / "marker"
    root = tmp_path / "weights"
    planted = _plant(root, marker)
    before = {p: p.read_bytes() for p in planted}
    img = np.full((32, 32, 3), 0.5, np.float32)
    outcomes = {}
    for info in CATALOG:
        m = get_metric(info.name, weights_root=root, verify_weights=verify)
        try:
            if info.kind == "dataset":
                d = tmp_path / "imgs"
                d.mkdir(exist_ok=True)
                m.score_folders(d, d)
            else:
                m.score_batch([img], [img] if info.kind == "FR" else None)
            outcomes[info.name] = "scored"
        except BenchkitError as e:
            outcomes[info.name] = str(e)
        assert not marker.exists(), f"metric {info.name}: planted pickle executed ({outcomes[info.name]})"
    assert not marker.exists()
    assert {p: p.read_bytes() for p in planted} == before  # nothing rewritten
    for name, msg in outcomes.items():
        info = next(i for i in CATALOG if i.name == name)
        if not info.weights:
            continue  # weight-free metrics (psnr, ssim, msswd) read no weight file
        assert msg != "scored", f"{name} scored with planted files"
        # a clear error naming the file (or weights root) and the fix
        assert str(root) in msg and any(w in msg for w in ("fix", "replace", "place", "pip install", "re-run")), \
            (name, msg)
    if not verify:  # the files reach pyiqa's loaders: the guard's own message
        assert any("refusing to unpickle" in m or "matches no pinned value" in m for m in outcomes.values()), outcomes


def test_guard_unpickles_only_files_matching_a_full_pin(tmp_path, monkeypatch):
    import torch

    from benchkit.metrics import catalog
    from benchkit.metrics.pyiqa_backend import WeightsCheckError, pyiqa_context

    marker = tmp_path / "marker"
    root = tmp_path / "w"
    evil = root / "hub" / "pyiqa" / "evil.pth"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    plain = root / "hub" / "pyiqa" / "plain.pth"
    torch.save({"w": torch.ones(2)}, plain)
    reads: dict = {}
    with pyiqa_context(root, reads=reads):
        with pytest.raises(WeightsCheckError, match=r"evil\.pth: cannot be loaded as plain tensors.*fix: replace"):
            torch.load(str(evil), map_location="cpu", weights_only=False)  # what pyiqa/torch.hub pass
        with pytest.raises(WeightsCheckError, match="matches no pinned value"):
            torch.jit.load(str(evil))
        with pytest.raises(WeightsCheckError, match="never runs code"):
            torch.hub.load("facebookresearch/dinov2:main", "dinov2_vitl14", trust_repo=True)
        assert torch.equal(torch.load(str(plain), weights_only=False)["w"], torch.ones(2))
    assert not marker.exists()
    from benchkit.fsio import sha256_file

    assert reads[str(evil)] == sha256_file(evil) and reads[str(plain)] == sha256_file(plain)
    assert torch.load is not None and "guard" not in getattr(torch.load, "__qualname__", "")  # restored
    # a full pinned sha256 is what allows unpickling (a short name prefix is not enough)
    monkeypatch.setitem(catalog.KNOWN_SHA256, "hub/pyiqa/evil.pth", sha256_file(evil))
    with pyiqa_context(root), pytest.raises(RuntimeError, match="magic number"):
        torch.load(str(evil), map_location="cpu", weights_only=False)  # unpickled: the payload runs
    assert marker.exists()


def test_arniqa_with_planted_encoder_is_refused_via_cli(tmp_path, cli_env):
    """The issue's case: a planted hub/checkpoints/ARNIQA.pth (no published hash) with `score --metrics arniqa`."""
    import subprocess
    import sys

    import cv2

    marker = tmp_path / "marker"
    root = tmp_path / "w"
    _plant(root, marker)
    d = tmp_path / "imgs"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), np.full((32, 32, 3), 100, np.uint8))
    p = subprocess.run([sys.executable, "-m", "benchkit", "score", "--metrics", "arniqa,liqe,psnr", str(d), str(d),
                        "--weights-root", str(root), "--out", str(tmp_path / "res")],
                       env=cli_env, capture_output=True, text=True)
    assert not marker.exists()
    text = p.stdout + p.stderr
    assert "Traceback" not in text
    assert "regressor_koniq10k.pth [no pinned sha256]" in text and "never loads code" in text, text[-2000:]
