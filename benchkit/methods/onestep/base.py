"""The Method subclass every one-step diffusion SR adapter builds on.

Subclasses set ``base`` (a :data:`~benchkit.methods.onestep.core.BASE_FOLDERS` id), ``checkpoint`` (the file
under ``<weights root>/methods/<name>/``), ``base_parts`` and implement :meth:`_build` (load weights) and
:meth:`_forward` (one image tensor in [-1, 1], (1,3,H,W), already upscaled and padded -> output in [-1, 1]).

Per image: official pre-upscaling (PIL bicubic x4 of the 8-bit input) -> pad bottom/right (reflect) to a
multiple of ``pad_multiple`` (the official scripts *resize* to a multiple of 8 instead, which changes the
output size) -> model -> crop to exactly scale x input -> colour fix against the upscaled input.
Modes (``mode`` option, in the tag): ``deterministic`` (latent mode, argmax) or ``official`` (the official
sampling, drawn only from the context's seeded generator).
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar

from benchkit.methods.base import Method
from benchkit.methods.onestep import core


class OneStepSR(Method):
    task, scales, steps = "sr", (4,), 1
    devices = ("cpu", "cuda")
    dtypes = ("float32", "float16")
    batch_size = 1
    concurrent = False
    trace_memory = False  # tracemalloc would slow diffusers' Python code ~1.7x and cannot see torch memory
    base: ClassVar[str] = "sd21-base"
    base_parts: ClassVar[tuple] = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
    checkpoint: ClassVar[str] = ""  # the file under <weights root>/methods/<name>/ (also in weight_files)
    default_mode: ClassVar[str] = "deterministic"
    default_color_fix: ClassVar[str] = "adain"
    pad_multiple: ClassVar[int] = 8
    code_license: ClassVar[str] = ""
    weights_name: ClassVar[str] = ""  # weights folder name when it differs from ``name`` (mode variants)

    def __init__(self, **options):
        super().__init__(**options)
        from benchkit.errors import ConfigError

        if self.options["mode"] not in core.MODES:
            raise ConfigError(f"method {self.name}: mode must be one of {core.MODES}, got {self.options['mode']!r}")
        if self.options["color_fix"] not in core.COLOR_FIXES:
            raise ConfigError(f"method {self.name}: color_fix must be one of {core.COLOR_FIXES}")
        self.model = None

    @classmethod
    def default_options(cls) -> dict:
        return {"mode": cls.default_mode, "color_fix": cls.default_color_fix, "latent_tile": 96,
                "latent_overlap": 32, "vae_encoder_tile": 1024, "vae_decoder_tile": 224}

    @property
    def stochastic(self) -> bool:  # official mode samples (seeded per image from the harness)
        return self.options["mode"] == "official"

    def setup(self, device=None, weights_dir=None) -> None:
        """As :meth:`Method.setup`; a mode variant (``osediff-official``) reads its family's folder."""
        from pathlib import Path

        if weights_dir and self.weights_name and Path(weights_dir).name == self.name:
            weights_dir = Path(weights_dir).parent / self.weights_name
        super().setup(device=device, weights_dir=weights_dir)

    # ------------------------------------------------------------------------------------------ availability
    def base_dir(self):
        return core.base_model_dir(self.base, self.weights_dir)

    def availability(self):
        for mod in ("diffusers", "peft", "transformers", "safetensors"):
            if importlib.util.find_spec(mod) is None:
                return False, f"needs the optional dependency {mod!r} (fix: pip install 'benchkit[diffusion]')"
        ok, why = super().availability()
        if not ok:
            return ok, why
        missing = core.missing_base_parts(self.base_dir(), self.base_parts)
        if missing:
            return False, (f"base model {core.BASE_SOURCES[self.base]} not found as a local diffusers folder: "
                           f"{self.base_dir()} lacks {', '.join(missing)} (fix: place it there, or set "
                           f"${core.BASE_ENV} / --base-models to the folder holding "
                           f"{core.BASE_FOLDERS[self.base]}/)")
        return True, ""

    def info(self) -> dict:
        d = super().info()
        d.update(license=self.code_license, base_model=core.BASE_FOLDERS[self.base],
                 base_model_fingerprint=core.folder_fingerprint(self.base_dir()),
                 stochastic=self.stochastic)
        return d

    # ---------------------------------------------------------------------------------------------- lifecycle
    def torch_dtype(self):
        import torch

        return torch.float16 if self.dtype == "float16" else torch.float32

    def _load(self) -> None:
        import torch

        ckpt_path = self.weights_dir / self.checkpoint
        ckpt = core.load_checkpoint(ckpt_path)  # before the (slower) base model: a bad file fails fast
        parts = core.load_base(self.base_dir(), self.base_parts, self.device, self.dtype)
        import warnings

        with warnings.catch_warnings():  # peft warns on every extra adapter (the official recipe adds several)
            warnings.filterwarnings("ignore", message=".*peft_config.*")
            self._build(parts, ckpt, ckpt_path)
        for p in ("vae", "unet", "text_encoder"):
            m = getattr(parts, p, None)
            if m is not None:  # built in float32 then cast, as the official scripts do
                m.to(self.device) if self.dtype == "float32" else m.to(self.device, dtype=self.torch_dtype())
        self.model = parts
        self.alphas_cumprod = parts.scheduler.alphas_cumprod.to(torch.float64)
        self._after_load()

    def _unload(self) -> None:
        self.model = None

    def _build(self, parts, ckpt: dict, path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _after_load(self) -> None:
        """Hook run once the parts sit on the device (e.g. cache the prompt embedding)."""

    def _forward(self, x, ctx, gen):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------ restore
    def encode_latent(self, x, gen):
        """VAE latent (scaled): mode in ``deterministic`` mode, a seeded sample in ``official`` mode."""
        vae = self.model.vae
        core.configure_vae_tiling(vae, x.shape[-2], x.shape[-1], self.options["vae_encoder_tile"],
                                  self.options["vae_decoder_tile"])
        dist = vae.encode(x.to(self.torch_dtype())).latent_dist
        z = dist.sample(generator=gen) if self.options["mode"] == "official" else dist.mode()
        return z * vae.config.scaling_factor

    def decode_latent(self, z):
        vae = self.model.vae
        return vae.decode((z / vae.config.scaling_factor).to(self.torch_dtype())).sample.clamp(-1, 1)

    def restore_tensor(self, up, ctx):
        """The upscaled image (1,3,H,W) float32 in [0,1] on the device -> output (1,3,H,W) in [0,1]."""
        import torch

        gen = ctx["generator"]() if self.options["mode"] == "official" else None
        with torch.no_grad():
            x, (h, w) = core.pad_multiple(up * 2 - 1, self.pad_multiple)
            out = self._forward(x, ctx, gen)[:, :, :h, :w].float()
            out = (out * 0.5 + 0.5).clamp(0, 1)
            return core.color_fix(self.options["color_fix"], out, up)

    def upscale(self, lq, scale: int):
        """The model's input before padding (float32 HWC in [0, 1], ``scale`` x ``lq``): the official
        pre-upscaling (PIL bicubic of the 8-bit image); x1 methods override it."""
        return core.pil_upscale(lq, scale)

    def require_loaded(self) -> None:
        """Raise :class:`~benchkit.errors.UnavailableError` unless :meth:`load` has run."""
        if self.model is None:
            from benchkit.errors import UnavailableError

            raise UnavailableError(f"{self.name}: model not loaded (call load() first)")

    def to_tensor(self, img):
        """Image (H,W,3) numpy, [0, 1] -> (1,3,H,W) float32 tensor on ``self.device`` (values unchanged)."""
        import numpy as np
        import torch

        chw = np.ascontiguousarray(np.asarray(img, np.float32).transpose(2, 0, 1))
        return torch.from_numpy(chw)[None].to(self.device)

    @staticmethod
    def to_image(t):
        """(1,3,H,W) tensor on any device -> (H,W,3) float32 C-contiguous numpy image (the first item)."""
        import numpy as np

        return np.ascontiguousarray(t[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)

    def restore(self, lq_batch, context, scale):
        self.require_loaded()
        return [self.to_image(self.restore_tensor(self.to_tensor(self.upscale(lq, scale)), ctx))
                for lq, ctx in zip(lq_batch, context)]
