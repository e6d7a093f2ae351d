"""DAPE, OSEDiff's prompt extractor (RAM Swin-L tagger + LoRA), run in-process from the user's OSEDiff checkout.

OSEDiff's ``test_osediff.py`` prompts the UNet with ``f"{tags}, {prompt},"`` where ``tags`` come from
``ram.inference_ram`` on the x4-upscaled input resized to 384x384 (bilinear, antialiased, as torchvision's
``Resize`` on a tensor) and ImageNet-normalised. The RAM/DAPE code is vendored in the OSEDiff repository
(``ram/``, Apache-2.0); benchkit imports it from the user's clone (:mod:`benchkit.methods.checkout`) rather than
shipping a copy.

Needs (else OSEDiff falls back to prompt files or the ``prompt`` option, and says why in ``info()``):

- the clone (``code_dir`` option > ``$BENCHKIT_OSEDIFF_CODE`` > ``<weights root>/methods/osediff/code``) with
  ``ram/models/ram_lora.py`` and ``ram/inference.py``;
- ``ram_swin_large_14m.pth`` (RAM) and ``DAPE.pth`` (OSEDiff's LoRA fine-tune) in ``<weights root>/methods/osediff/``;
- **transformers < 5**: ``ram/models/bert_lora.py`` imports ``apply_chunking_to_forward``,
  ``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` from ``transformers.modeling_utils``, which
  transformers 5 removed (REFERENCE-wave2 1d). benchkit's own environment resolves transformers 5, so DAPE runs
  only in an environment pinned to ``transformers<5`` (plus ``loralib``, ``fairscale``, ``timm``).

The RAM loader calls ``torch.load`` itself; benchkit runs it with ``weights_only=True`` forced, so a checkpoint
holding anything but tensors is refused, never unpickled.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

DAPE_FILES = ("ram_swin_large_14m.pth", "DAPE.pth")
REQUIRED = ("ram/models/ram_lora.py", "ram/inference.py", "ram/__init__.py")
MEAN, STD, SIZE = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 384


def transformers_major() -> int | None:
    import importlib.metadata as md

    try:
        return int(md.version("transformers").split(".")[0])
    except (md.PackageNotFoundError, ValueError):
        return None


def problem(checkout, weights_dir) -> str:
    """'' when DAPE can run here, else why not (naming the files / version and the fix)."""
    why = checkout.problem()
    if why:
        return why
    missing = [f for f in DAPE_FILES if weights_dir is None or not (Path(weights_dir) / f).is_file()]
    if missing:
        return (f"DAPE weights missing: {', '.join(missing)} (fix: place them in "
                f"{weights_dir or '<weights root>/methods/osediff'})")
    major = transformers_major()
    if major is None or major >= 5:
        return (f"DAPE (OSEDiff's RAM tagger) needs transformers < 5, found "
                f"{'none' if major is None else major}: its ram/models/bert_lora.py imports helpers transformers 5 "
                "removed (fix: run benchkit in an environment with 'transformers<5' loralib fairscale timm, or "
                "write the prompts once with the official test_osediff.py --save_prompts and place its txt/ "
                "folder as <weights>/methods/osediff/prompts/)")
    return ""


_PATCH_LOCK = threading.Lock()  # torch.load is process-wide; multi-device runs load methods from threads


@contextlib.contextmanager
def _weights_only_torch_load():
    """``torch.load`` with ``weights_only=True`` forced for code we call but do not own (restored after)."""
    with _PATCH_LOCK:
        yield from _patched_load()


def _patched_load():
    import torch

    orig = torch.load

    def safe(f, *a, **k):
        k["weights_only"] = True
        k.setdefault("map_location", "cpu")
        return orig(f, *a, **k)

    torch.load = safe
    try:
        yield
    finally:
        torch.load = orig


class DapeTagger:
    """The RAM+LoRA tagger from the checkout; ``tags(up)`` -> the tag string for one upscaled image."""

    def __init__(self, checkout, weights_dir, device, dtype):
        from benchkit.methods.onestep.core import CheckpointError

        ram_lora = checkout.import_module("ram.models.ram_lora")
        self._infer = checkout.import_module("ram").inference_ram
        w = Path(weights_dir)
        try:
            with _weights_only_torch_load():
                model = ram_lora.ram(pretrained=str(w / DAPE_FILES[0]), pretrained_condition=str(w / DAPE_FILES[1]),
                                     image_size=SIZE, vit="swin_l")
        except Exception as e:  # the checkout's own loader: name both files
            raise CheckpointError(w / DAPE_FILES[0], f"the DAPE/RAM weights ({', '.join(DAPE_FILES)}) did not "
                                  f"load: {type(e).__name__}: {e}") from e
        self.model = model.eval().to(device, dtype=dtype)
        self.dtype = dtype

    def tags(self, up) -> str:
        """``up``: (1,3,H,W) float in [0,1] on the device (the x4 upscale the UNet sees)."""
        import torch
        import torch.nn.functional as F

        x = F.interpolate(up.float(), size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(self.dtype)
        with torch.no_grad():
            return str(self._infer(x, self.model)[0])
