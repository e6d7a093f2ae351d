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
