"""OSEDiff prompts from DAPE (RAM tagger) run in-process from the user's checkout; a stub checkout stands in.

The stub has the official import paths and call signatures (``ram.models.ram_lora.ram(pretrained=...,
pretrained_condition=..., image_size=384, vit='swin_l')`` loading both files with ``torch.load``;
``ram.inference_ram(image, model) -> tags``); its tagger names the image's brightness so prompts differ per image.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

STUB_INIT = "from .inference import inference_ram\n"
STUB_INFER = '''import torch


def inference_ram(image, model):
    with torch.no_grad():
        tags, tags_chinese = model.generate_tag(image)
    return tags
'''
STUB_RAM = '''import torch


class RAMLora(torch.nn.Module):
    def __init__(self, image_size=384, vit="swin_l"):
        super().__init__()
        self.head = torch.nn.Linear(3, 1)
        self.seen = []

    def generate_tag(self, image):
        self.seen.append(tuple(image.shape))
        v = float(self.head(image.float().mean(dim=(2, 3)))[0, 0])
        tag = "bright | sky" if v > 0 else "dark | shadow"
        return [tag], [tag]


def ram(pretrained="", pretrained_condition="", **kwargs):
    model = RAMLora(**kwargs)
    if pretrained:
        sd = torch.load(pretrained, map_location="cpu")["model"]
        model.load_state_dict(sd, strict=False)
    if pretrained_condition:
        model.load_state_dict(torch.load(pretrained_condition), strict=False)
    return model
'''


class Boom:  # a pickle that would run code if unpickled
    def __reduce__(self):
        return (print, ("PWNED-BY-PICKLE",))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from benchkit.methods.onestep.tiny import write_osediff_tiny

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dape")
    wdir = write_osediff_tiny(root / "weights")
    code = wdir / "code"
    (code / "ram" / "models").mkdir(parents=True)
    (code / "ram" / "__init__.py").write_text(STUB_INIT)
    (code / "ram" / "inference.py").write_text(STUB_INFER)
    (code / "ram" / "models" / "__init__.py").write_text("")
    (code / "ram" / "models" / "ram_lora.py").write_text(STUB_RAM)
    torch.save({"model": {"head.weight": torch.tensor([[1.0, 1.0, 1.0]]), "head.bias": torch.tensor([-1.5])}},
               wdir / "ram_swin_large_14m.pth")
    torch.save({}, wdir / "DAPE.pth")
    yield wdir
    torch.set_num_threads(n)
    for k in [k for k in sys.modules if k == "ram" or k.startswith("ram.")]:
        del sys.modules[k]


def _method(wdir, **opts):
    from benchkit.methods.onestep.osediff import OSEDiff

    m = OSEDiff(**opts)
    m.setup(weights_dir=wdir)
    return m


def _img(v):
    return np.full((16, 16, 3), v, np.float32)


def test_dape_tags_prompt_like_the_official_script(setup, monkeypatch):
    from benchkit.methods.onestep import dape

    monkeypatch.setattr(dape, "transformers_major", lambda: 4)
    m = _method(setup, prompt="clean")
    assert m.resolved_prompt_source() == "dape" and m.availability() == (True, "")
    assert m.info()["prompt_source"].startswith("dape:") and m.info()["dape"] == "used"
    m.load("cpu", "float32")
    try:
        import torch

        up = torch.full((1, 3, 64, 64), 0.9)
        assert m.prompt_for({"key": "a"}, up) == "bright | sky, clean,"
        assert m.prompt_for({"key": "a"}, up * 0.1) == "dark | shadow, clean,"
        assert m._dape.model.seen[-1] == (1, 3, 384, 384)  # resized to the tagger's input size
        ctx = {"key": "a", "seed": 0, "generator": None}
        bright, dark = m.restore([_img(0.9), _img(0.1)], [ctx, ctx], 4)
        assert bright.shape == (64, 64, 3)
    finally:
        m.unload()
    plain = _method(setup, prompt_source="prompt", prompt="clean")
    plain.load("cpu", "float32")
    try:
        ref = plain.restore([_img(0.9)], [ctx], 4)[0]
    finally:
        plain.unload()
    assert np.abs(ref - bright).max() > 1e-4  # the DAPE prompt reached the UNet
    assert m.tag() != plain.tag()


def test_transformers_5_falls_back_and_says_why(setup, monkeypatch):
    from benchkit.methods.onestep import dape

    monkeypatch.setattr(dape, "transformers_major", lambda: 5)
    m = _method(setup)
    assert m.resolved_prompt_source() == "prompt" and m.availability() == (True, "")
    info = m.info()
    assert info["prompt_source"] == "empty" and "transformers < 5" in info["dape"]
    strict = _method(setup, prompt_source="dape")
    ok, why = strict.availability()
    assert not ok and "transformers < 5" in why and "--save_prompts" in why


def test_missing_dape_weights_or_checkout_are_named(setup, tmp_path, monkeypatch):
    from benchkit.methods.onestep import dape

    monkeypatch.setattr(dape, "transformers_major", lambda: 4)
    m = _method(setup, code_dir=str(tmp_path / "nowhere"))
    assert m.resolved_prompt_source() == "prompt"
    assert "does not exist" in m.info()["dape"] and "cswry/OSEDiff" in m.info()["dape"]
    other = tmp_path / "w"
    other.mkdir()
    shutil.copy(setup / "osediff.pkl", other / "osediff.pkl")
    m = _method(other, code_dir=str(setup / "code"))
    assert "DAPE weights missing: ram_swin_large_14m.pth, DAPE.pth" in m.info()["dape"]


def test_a_pickle_with_code_is_refused_not_run(setup, tmp_path, monkeypatch, capfd):
    from benchkit.methods.onestep import dape
    from benchkit.methods.onestep.core import CheckpointError

    monkeypatch.setattr(dape, "transformers_major", lambda: 4)
    bad = setup.parent / "osediff-bad"  # beside the real folder: same weights root, same base models
    bad.mkdir()
    for f in ("osediff.pkl", "ram_swin_large_14m.pth"):
        shutil.copy(setup / f, bad / f)
    (bad / "DAPE.pth").write_bytes(pickle.dumps({"x": Boom()}))
    m = _method(bad, code_dir=str(setup / "code"))
    with pytest.raises(CheckpointError, match="DAPE"):
        m.load("cpu", "float32")
    assert "PWNED-BY-PICKLE" not in capfd.readouterr().out
    import torch

    assert torch.load.__name__ == "load"  # the weights_only wrapper is removed again


def test_weights_status_lists_the_osediff_checkout(setup):
    from benchkit.methods import method_weight_rows

    rows = [r for r in method_weight_rows(setup.parents[1]) if r["name"] == "osediff"]
    co = [r for r in rows if r["file"].startswith("code checkout")]
    assert co and co[0]["status"] == "unverified" and co[0]["path"] == str((setup / "code").resolve())


def test_dape_parts_are_optional_in_weights_status(tmp_path):
    """Without the clone and DAPE weights OSEDiff still runs (prompt files / option): listed as optional."""
    from benchkit.methods import method_weight_rows
    from benchkit.methods.onestep.tiny import write_osediff_tiny

    write_osediff_tiny(tmp_path / "weights")
    rows = [r for r in method_weight_rows(tmp_path / "weights") if r["name"] == "osediff"]
    status = {r["file"]: r["status"] for r in rows}
    assert status["code checkout (cswry/OSEDiff)"] == "optional"
    assert status["methods/osediff/DAPE.pth"] == status["methods/osediff/ram_swin_large_14m.pth"] == "optional"
    assert status["methods/osediff/osediff.pkl"] == "unverified"
    assert "missing" not in status.values() and "unavailable" not in status.values()
