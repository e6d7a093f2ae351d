"""NAFNet and Restormer: deblurring baselines loaded through ``spandrel`` / ``spandrel-extra-arches``.

The architecture is detected from the checkpoint's state dict by spandrel's own classes (width, block
counts, heads... inferred); benchkit writes no architecture code. Checkpoints are the official
``{'params': state_dict}`` files (BasicSR format) read with ``torch.load(weights_only=True)`` (tensors
only, never an arbitrary unpickle) or ``.safetensors``; anything else is refused naming the file.

- NAFNet (Chen et al. 2022, megvii-research/NAFNet, MIT): ``NAFNet-GoPro-width64.pth``. The official
  GoPro numbers use the test-time local converter (TLC, ``NAFNetLocal`` in ``local_arch.py``): every
  ``AdaptiveAvgPool2d(1)`` becomes a box filter whose size is 1.5x the feature size seen at the training
  size 256x256 (cumsum implementation, replicate-padded back to the input size). Option ``tlc``:
  ``"auto"`` (default: on for GoPro-style datasets, i.e. whose folder, builder or producer mentions
  ``gopro``), ``True`` or ``False``. For inputs no larger than 1.5x the training size every box covers the
  whole feature map and TLC equals the plain model exactly.
- Restormer (Zamir et al. 2022, swz30/Restormer, academic/non-commercial): ``motion_deblurring.pth``.
  Input reflect-padded to a multiple of 8 (bottom/right, as ``demo.py``); option ``tile`` (multiple of 8,
  default off) runs overlapping tiles (``tile_overlap`` px, default 32) averaged uniformly, as ``demo.py``.
"""

from __future__ import annotations

from typing import ClassVar

from benchkit.methods.base import Method, as_float_rgb

TRAIN_SIZE = (256, 256)  # NAFNet GoPro training crop (options/test/GoPro/NAFNet-width64.yml)
BASE_RATIO = 1.5  # NAFNetLocal: base_size = train_size * 1.5


def load_params(path, arch_cls, label: str):
    """``(nn.Module, arch id)`` from an official ``{'params': sd}`` checkpoint at ``path`` via spandrel ``arch_cls``.

    Refuses (BadInputError naming the file) an unreadable file, one that holds more than tensors, a
    dict without ``params`` and a state dict that ``arch_cls`` does not recognise."""
    from pathlib import Path

    import torch

    from benchkit.errors import BadInputError

    path = Path(path)
    fix = f"place the official {label} checkpoint ({{'params': state_dict}} .pth or .safetensors) there"
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            ckpt = {"params": load_file(str(path), device="cpu")}
        else:
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise BadInputError(path, f"cannot read as a tensors-only checkpoint ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''})", fix) from e
    if not isinstance(ckpt, dict) or "params" not in ckpt or not isinstance(ckpt["params"], dict):
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BadInputError(path, f"not an official {label} checkpoint: expected a dict with 'params', "
                            f"found {keys}", fix)
    sd = {k.removeprefix("module."): v for k, v in ckpt["params"].items()}
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BadInputError(path, "'params' holds non-tensor values", fix)
    arch = arch_cls()
    if not arch.detect(sd):
        raise BadInputError(path, f"the state dict is not a {label} architecture (spandrel {arch.id} detection "
                            f"failed; first keys {sorted(sd)[:3]})", fix)
    try:
        desc = arch.load(sd)
    except Exception as e:
        raise BadInputError(path, f"{label} state dict does not load ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]})", fix) from e
    model = desc.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, arch.id


def _to_tensor(imgs, device, dtype):
    import numpy as np
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2)))
    return x.to(device=device, dtype=dtype)


def _to_images(y) -> list:
    y = y.float().clamp_(0, 1).cpu().numpy().transpose(0, 2, 3, 1)
    return [as_float_rgb(a) for a in y]


def _dtype(name):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


class _SpandrelMethod(Method):
    task, scales, steps = "restore", (1,), 1
    devices: ClassVar[tuple] = ("cpu", "cuda")
    dtypes: ClassVar[tuple] = ("float32", "bfloat16")  # spandrel marks fp16 unverified for both: runs as float32
    concurrent: ClassVar[bool] = False
    label: ClassVar[str] = ""

    def _arch(self):
        raise NotImplementedError

    def _load(self):
        model, self.arch_id = load_params(self.weight_path(self.weight_files[0]), self._arch(), self.label)
        self.model = model.to(device=self.device, dtype=_dtype(self.dtype))

    def _unload(self):
        self.model = None

    def availability(self):
        import importlib.util

        mods = ("spandrel",) + (("spandrel_extra_arches",) if self.name == "restormer" else ())
        for mod in mods:
            if importlib.util.find_spec(mod) is None:
                return False, f"{mod} is not installed (fix: pip install 'benchkit[cnn]')"
        return super().availability()

    def restore(self, lq_batch, context, scale):
        import torch

        from benchkit.errors import BenchkitError, UnavailableError

        if not self.loaded:
            ok, why = self.availability()
            if not ok:
                raise UnavailableError(f"{self.name}: {why}")
            raise BenchkitError(f"method {self.name}: call load() before restore()")
        outs = []
        with torch.inference_mode():
            for i in range(len(lq_batch)):  # sizes may differ within a batch
                x = _to_tensor([lq_batch[i]], self.device, _dtype(self.dtype))
                outs += _to_images(self._forward(x, context[i]))
        return outs


def _is_gopro(ctx) -> bool:
    """A GoPro-style dataset: its folder name, builder or producer mentions 'gopro'."""
    import json
    from pathlib import Path

    d = Path(ctx.get("dataset_dir") or ".")
    text = d.name
    try:
        spec = json.loads((d / "spec.json").read_text(encoding="utf-8"))
        text += json.dumps({k: spec.get(k) for k in ("builder", "producer", "pipeline", "name")}, default=str)
    except (OSError, ValueError):
        pass
    return "gopro" in text.lower()


def _local_pool_cls():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _LocalAvgPool(nn.Module):
        """NAFNetLocal's ``AvgPool2d`` (fast_imp=False): box mean of ``kernel`` px, replicate-padded to the input
        size; global mean (= ``AdaptiveAvgPool2d(1)``) when disabled or when the box covers the whole map."""

        def __init__(self, kernel):
            super().__init__()
            self.kernel = tuple(int(k) for k in kernel)
            self.enabled = True

        def forward(self, x):
            h, w = x.shape[-2:]
            if not self.enabled or (self.kernel[0] >= h and self.kernel[1] >= w):
                return F.adaptive_avg_pool2d(x, 1)
            s = x.cumsum(dim=-1).cumsum_(dim=-2)
            s = F.pad(s, (1, 0, 1, 0))
            k1, k2 = min(h, self.kernel[0]), min(w, self.kernel[1])
            out = s[:, :, k1:, k2:] + s[:, :, :-k1, :-k2] - s[:, :, :-k1, k2:] - s[:, :, k1:, :-k2]
            out = out / (k1 * k2)
            _h, _w = out.shape[-2:]
            pad = ((w - _w) // 2, (w - _w + 1) // 2, (h - _h) // 2, (h - _h + 1) // 2)
            return F.pad(out, pad, mode="replicate")

    return _LocalAvgPool, nn, torch


def convert_local(model, train_size=TRAIN_SIZE, base_ratio=BASE_RATIO):
    """Replace every ``AdaptiveAvgPool2d(1)`` of a spandrel NAFNet by the TLC box filter, in place.

    Kernel of a pool at downsampling factor f: ``(Ht/f) * int(1.5 Ht) // Ht`` (Ht = training size padded
    to the model's multiple), as NAFNetLocal computes it on its conversion forward pass at the training
    size. Returns the list of new pool modules (their ``enabled`` flag switches TLC)."""
    pool_cls, nn, _ = _local_pool_cls()
    pad = int(model.padder_size)
    th = [(t + pad - 1) // pad * pad for t in train_size]
    base = [int(t * base_ratio) for t in train_size]
    groups = [(2 ** i, enc) for i, enc in enumerate(model.encoders)]
    groups += [(2 ** len(model.encoders), model.middle_blks)]
    groups += [(2 ** (len(model.encoders) - 1 - j), dec) for j, dec in enumerate(model.decoders)]
    pools = []
    for f, group in groups:
        k = tuple((th[i] // f) * base[i] // train_size[i] for i in range(2))
        for mod in group.modules():
            for n, child in list(mod.named_children()):
                if isinstance(child, nn.AdaptiveAvgPool2d):
                    if child.output_size not in (1, (1, 1)):
                        raise ValueError(f"unexpected AdaptiveAvgPool2d({child.output_size}) in NAFNet")
                    p = pool_cls(k)
                    setattr(mod, n, p)
                    pools.append(p)
    return pools


class NAFNet(_SpandrelMethod):
    """NAFNet (Chen et al., ECCV 2022) through spandrel, with the test-time local converter (TLC)."""

    name = "nafnet"
    label = "NAFNet"
    weight_files = ("NAFNet-GoPro-width64.pth",)
    license = "MIT (megvii-research/NAFNet; weights on Google Drive)"
    description = "NAFNet-width64 GoPro deblurring CNN (spandrel), TLC on GoPro-style datasets"

    @classmethod
    def default_options(cls):
        return {"tlc": "auto"}

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["tlc"] not in ("auto", True, False):
            from benchkit.errors import ConfigError

            raise ConfigError(f"method nafnet: option tlc must be 'auto', true or false, not {self.options['tlc']!r}")

    def _arch(self):
        from spandrel.architectures.NAFNet import NAFNetArch

        return NAFNetArch

    def _load(self):
        super()._load()
        self.pools = convert_local(self.model)

    def _unload(self):
        self.model, self.pools = None, []

    def tlc_for(self, ctx) -> bool:
        t = self.options["tlc"]
        return _is_gopro(ctx) if t == "auto" else bool(t)

    def _forward(self, x, ctx):
        on = self.tlc_for(ctx)
        for p in self.pools:
            p.enabled = on
        return self.model(x)  # spandrel's NAFNet zero-pads to its multiple and crops, like the official one


def pad_reflect(x, multiple: int):
    """Pad bottom/right to a multiple of ``multiple`` by reflection (replicate beyond what reflection allows)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    if rh or rw:
        x = F.pad(x, (0, rw, 0, rh), mode="reflect")
    if ph - rh or pw - rw:
        x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x


class Restormer(_SpandrelMethod):
    """Restormer (Zamir et al., CVPR 2022) motion deblurring through spandrel-extra-arches."""

    name = "restormer"
    label = "Restormer"
    weight_files = ("motion_deblurring.pth",)
    license = "Academic/non-commercial (swz30/Restormer; weights on Google Drive)"
    description = "Restormer motion-deblurring transformer (spandrel-extra-arches), reflect pad x8, optional tiles"

    @classmethod
    def default_options(cls):
        return {"tile": None, "tile_overlap": 32}

    def __init__(self, **options):
        super().__init__(**options)
        from benchkit.errors import ConfigError

        t, o = self.options["tile"], self.options["tile_overlap"]
        if t is not None and (not isinstance(t, int) or t <= 0 or t % 8):
            raise ConfigError(f"method restormer: tile must be a positive multiple of 8 or null, not {t!r}")
        if not isinstance(o, int) or o < 0 or (t is not None and o >= t):
            raise ConfigError(f"method restormer: tile_overlap must be an int in [0, tile), not {o!r}")

    def _arch(self):
        from spandrel_extra_arches.architectures.Restormer import RestormerArch

        return RestormerArch

    def _forward(self, x, ctx):
        h, w = x.shape[-2:]
        xp = pad_reflect(x, 8)
        t = self.options["tile"]
        if t is None:
            y = self.model(xp)
        else:
            y = tiled(self.model, xp, t, self.options["tile_overlap"])
        return y[..., :h, :w]


def tiled(model, x, tile: int, overlap: int):
    """``demo.py``'s overlapping tiles: ``tile`` px squares at stride ``tile - overlap``, outputs averaged."""
    import torch

    H, W = x.shape[-2:]
    t = min(tile, H, W)
    stride = max(1, t - overlap)
    hs = list(range(0, H - t, stride)) + [H - t]
    ws = list(range(0, W - t, stride)) + [W - t]
    E = torch.zeros_like(x)
    Wt = torch.zeros_like(x)
    for i in hs:
        for j in ws:
            E[..., i:i + t, j:j + t] += model(x[..., i:i + t, j:j + t])
            Wt[..., i:i + t, j:j + t] += 1
    return E / Wt
