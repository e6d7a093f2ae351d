"""SinSR (Wang et al. 2024, wyf0912/SinSR): one-step x4 SR distilled from ResShift, run from the user's checkout.

The code and weights are CC BY-NC-SA 4.0, so benchkit ships none of SinSR's model code: the Swin-UNet
(``models.unet.UNetModelSwin``), the ResShift diffusion (``models.script_util.create_gaussian_diffusion``) and
the VQ-f4 autoencoder (``ldm.models.autoencoder.VQModelTorch``) are imported from the user's clone
(:mod:`benchkit.methods.checkout`: option ``code_dir`` > ``$BENCHKIT_SINSR_CODE`` >
``<weights root>/methods/sinsr/code``). benchkit's own parts:

- config: the checkout's ``configs/SinSR.yaml`` (option ``config``) read with ``yaml.safe_load``; the
  ``target``/``params`` of ``model``, ``diffusion`` and ``autoencoder`` are used as the official
  ``instantiate_from_config`` uses them, with ``diffusion.params.timestep_respacing = steps`` and ``sf = 4``
  as ``inference.py`` sets them (its ``--steps`` default 15 = the config's ``steps``);
- weights: ``SinSR_v1.pth`` and ``autoencoder_vq_f4.pth`` under ``<weights root>/methods/sinsr/``, read with
  ``torch.load(weights_only=True)``; a ``state_dict`` entry and ``module.`` prefixes are unwrapped as the
  official ``Sampler.load_model``/``reload_model`` do, then every key and shape must match (strict);
- the official chopping (``inference.py``/``sampler.py``): LR patches of ``chop_size`` (512, stride 448; or 256,
  stride 224) when a side exceeds ``chop_size``, start positions as ``ImageSpliterTh.extract_starts``, outputs
  averaged uniformly over overlaps (:func:`chop_starts`, :func:`chopped`);
- per patch (``Sampler.sample_func``): ``[-1, 1]``, reflect padding bottom/right to a multiple of 64, the
  one-step path of ``p_sample_loop(one_step=True)`` called part by part on the checkout's diffusion object
  (``encode_first_stage`` with bicubic x4, ``prior_sample`` with explicit noise, ``p_mean_variance`` at the
  last timestep, ``decode_first_stage``), crop to exactly 4x, clamp to ``[-1, 1]``; output ``x/2 + 1/2``.

Randomness: the prior noise is drawn from the harness's per-image generator only (``ctx["generator"]()``).
The official loop also draws, inside ``p_sample``, a second normal tensor of the latent's shape that it never
uses; benchkit draws (and drops) it from the same generator so each patch consumes the stream as the official
script does: with the generator seeded like the official ``--seed`` (right before sampling), outputs agree.
benchkit never touches the global RNG (model construction runs under ``torch.random.fork_rng``).

Precision: ``float32`` (default) runs both networks in float32. ``float16`` is the official ``inference.py``
setting: the UNet torso via the checkout's ``convert_to_fp16`` and the VQ model in half precision when the
config says ``autoencoder.use_fp16`` (it does). On CPU fp16 works but the VQ model is ~2x slower.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from benchkit.errors import ConfigError
from benchkit.methods.base import Method
from benchkit.methods.checkout import Checkout, CheckoutError, resolve_code_dir

CODE_REPO = "wyf0912/SinSR"
CONFIG = "configs/SinSR.yaml"
# files the adapter imports from (the config's default targets live in them)
REQUIRED = ("models/unet.py", "models/script_util.py", "models/gaussian_diffusion.py", "ldm/models/autoencoder.py")
MODEL_FILE, VQ_FILE = "SinSR_v1.pth", "autoencoder_vq_f4.pth"
CHOP_STRIDES = {512: 448, 256: 224}  # inference.py get_configs: --chop_size choices and their strides
PAD_MULTIPLE = 64  # BaseSampler(desired_min_size=64)
SCALE = 4


def chop_starts(length: int, size: int, stride: int) -> list[int]:
    """Patch starts along one side, as the official ``ImageSpliterTh.extract_starts``: ``[0]`` when the side
    fits in one patch, else ``0, stride, 2*stride, ...`` with each start that would overrun moved to
    ``length - size``, duplicates dropped (first occurrence kept)."""
    if length <= size:
        return [0]
    starts = [min(s, length - size) for s in range(0, length, stride)]
    return list(dict.fromkeys(starts))


def chopped(x, size: int, stride: int, sf: int, fn):
    """Run ``fn`` on overlapping LR patches of ``x`` (B,C,H,W) in row-major order and average its ``sf``-times
    larger outputs uniformly where patches overlap (sum / count, as ``ImageSpliterTh.update/gather``)."""
    import torch

    b, c, h, w = x.shape
    acc = count = None
    for i in chop_starts(h, size, stride):
        for j in chop_starts(w, size, stride):
            out = fn(x[:, :, i:i + size, j:j + size])
            if acc is None:
                acc = torch.zeros((b, out.shape[1], h * sf, w * sf), dtype=x.dtype, device=x.device)
                count = torch.zeros_like(acc)
            ph, pw = min(size, h - i), min(size, w - j)
            acc[:, :, i * sf:(i + ph) * sf, j * sf:(j + pw) * sf] += out
            count[:, :, i * sf:(i + ph) * sf, j * sf:(j + pw) * sf] += 1
    return acc.div(count)


def read_config(path: Path) -> dict:
    """The checkout's YAML config (``yaml.safe_load``); CheckoutError if unreadable or without the sections."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise CheckoutError(f"sinsr: cannot read the config {path} ({type(e).__name__}: {e})") from e
    problems = [s for s in ("model", "diffusion") if not isinstance((cfg or {}).get(s), dict)
                or not isinstance(cfg[s].get("target"), str)]
    if not isinstance(cfg, dict) or problems:
        raise CheckoutError(f"sinsr: config {path} lacks a 'target' in section(s) {problems or ['model']} "
                            f"(fix: use the official configs/SinSR.yaml)")
    return cfg


def unwrap_state(path, ckpt: dict) -> dict:
    """The state dict inside an official checkpoint: ``ckpt['state_dict']`` when present (training files), a
    ``module.`` prefix removed when every key has it (DataParallel/EMA files), as ``Sampler.load_model``."""
    from benchkit.methods.onestep import core

    sd = ckpt.get("state_dict", ckpt)
    if not isinstance(sd, dict):
        raise core.CheckpointError(path, f"'state_dict' is a {type(sd).__name__}, expected a dict of tensors")
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_strict(path, what: str, module) -> None:
    """Load ``path`` into ``module``: every key present with its shape, none extra (names file and keys)."""
    import torch

    from benchkit.methods.onestep import core

    sd = unwrap_state(path, core.load_checkpoint(path))
    try:
        core.check_state(path, what, {k: v.shape for k, v in module.state_dict().items()}, sd)
    except core.CheckpointError as e:  # a more specific fix than the diffusers adapters' "base model" hint
        raise core.CheckpointError(path, e.problem, f"place the unmodified official {Path(path).name} "
                                   f"({MODEL_FILE}: the UNet, {VQ_FILE}: the VQ-f4 autoencoder) matching the "
                                   "checkout's config") from None
    with torch.no_grad():
        module.load_state_dict(sd, strict=True)


class SinSR(Method):
    name = "sinsr"
    task, scales, steps = "sr", (SCALE,), 1
    description = "SinSR one-step x4 SR (ResShift distilled; Swin-UNet + VQ-f4), run from the user's checkout"
    license = "CC BY-NC-SA 4.0 (wyf0912/SinSR code and weights; imported from the user's checkout)"
    weight_files = (MODEL_FILE, VQ_FILE)
    devices = ("cpu", "cuda")
    dtypes = ("float32", "float16")
    batch_size = 1
    concurrent = False
    stochastic = True
    trace_memory = False  # tracemalloc slows the Python-heavy model code and cannot see torch memory
    code_globs: ClassVar[tuple] = ("models/*.py", "ldm/**/*.py")  # fingerprinted when the checkout is no git clone

    def __init__(self, **options):
        super().__init__(**options)
        size, stride = self.options["chop_size"], self.options["chop_stride"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"method sinsr: chop_size must be a positive int (official 512 or 256), got {size!r}")
        if stride is None and size not in CHOP_STRIDES:
            raise ConfigError(f"method sinsr: chop_size {size} has no official stride ({CHOP_STRIDES}); "
                              f"give chop_stride")
        if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool) or not 0 < stride <= size):
            raise ConfigError(f"method sinsr: chop_stride must be an int in 1..chop_size, got {stride!r}")
        self.model = self.autoencoder = self.diffusion = None

    @classmethod
    def default_options(cls) -> dict:
        return {"code_dir": None, "config": CONFIG, "chop_size": 512, "chop_stride": None}

    @property
    def chop_stride(self) -> int:
        s = self.options["chop_stride"]
        return int(s) if s is not None else CHOP_STRIDES[self.options["chop_size"]]

    # ------------------------------------------------------------------------------------------ the checkout
    def config_path(self) -> Path | None:
        p = Path(str(self.options["config"])).expanduser()
        if p.is_absolute():
            return p
        root = self.checkout().root
        return root / p if root is not None else None

    def checkout(self) -> Checkout:
        root, how = resolve_code_dir(self.name, self.options["code_dir"], self.weights_dir)
        cfg = Path(str(self.options["config"]))
        req = REQUIRED + (() if cfg.is_absolute() else (cfg.as_posix(),))
        return Checkout(self.name, root, req, CODE_REPO, how)

    def availability(self):
        ok, why = super().availability()
        if not ok:
            return ok, why
        why = self.checkout().problem()
        if why:
            return False, why
        cfg = self.config_path()
        if cfg is None or not cfg.is_file():
            return False, f"sinsr: config file {cfg} not found (fix: option config = a path in the checkout)"
        return True, ""

    def code_fingerprint(self) -> str | None:
        """sha256 (16 hex) over the checkout's model code (``models/``, ``ldm/``) and the config; None if absent."""
        return self.checkout().fingerprint(self.code_globs, extra=[self.config_path()])

    def info(self) -> dict:
        d = super().info()
        co = self.checkout()
        d.update(commit=co.commit(), code_repo=CODE_REPO, code_fingerprint=self.code_fingerprint(),
                 chop={"size": self.options["chop_size"], "stride": self.chop_stride}, pad_multiple=PAD_MULTIPLE)
        return d

    def _import(self, co: Checkout, target: str):
        module, _, attr = str(target).rpartition(".")
        if not module:
            raise CheckoutError(f"sinsr: config target {target!r} is not 'module.Object'")
        mod = co.import_module(module)
        obj = getattr(mod, attr, None)
        if obj is None:
            raise CheckoutError(f"sinsr: {module} in the checkout {co.root} has no {attr!r} (the config's target "
                                f"{target}; fix: {co.fix()} at the official commit)")
        return obj

    # ---------------------------------------------------------------------------------------------- lifecycle
    def _load(self) -> None:
        import copy
        import warnings

        import torch

        co = self.checkout()
        why = co.problem()
        if why:
            raise CheckoutError(why)
        cfg = read_config(self.config_path())
        with warnings.catch_warnings():  # timm.models.layers' deprecation notice on import
            warnings.filterwarnings("ignore", category=FutureWarning)
            make_diffusion = self._import(co, cfg["diffusion"]["target"])
            make_model = self._import(co, cfg["model"]["target"])
            ae_cfg = cfg.get("autoencoder")
            make_ae = self._import(co, ae_cfg["target"]) if ae_cfg else None
        dparams = copy.deepcopy(cfg["diffusion"].get("params") or {})
        dparams["timestep_respacing"] = int(dparams.get("steps", 15))  # inference.py: infer_steps = --steps (15)
        dparams["sf"] = SCALE
        fp16 = self.dtype == "float16"
        with torch.random.fork_rng(devices=[]):  # random init of the modules must not move the global RNG
            diffusion = make_diffusion(**dparams)
            model = make_model(**copy.deepcopy(cfg["model"].get("params") or {}))
            ae = make_ae(**copy.deepcopy(ae_cfg.get("params") or {})) if make_ae else None
        load_strict(self.weight_path(MODEL_FILE), "the SinSR UNet state dict", model)
        model.to(self.device)
        if fp16:  # sampler.py build_model with use_fp16=True (inference.py)
            model.dtype = torch.float16
            model.convert_to_fp16()
        model.requires_grad_(False)
        self.model = model.eval()
        if ae is not None:
            load_strict(self.weight_path(VQ_FILE), "the VQ-f4 autoencoder state dict", ae)
            ae.to(self.device)
            if fp16 and ae_cfg.get("use_fp16"):
                ae = ae.half()
            ae.requires_grad_(False)
            ae = ae.eval()
        self.autoencoder, self.diffusion = ae, diffusion
        self.cond_lq = bool((cfg["model"].get("params") or {}).get("cond_lq"))

    def _unload(self) -> None:
        self.model = self.autoencoder = self.diffusion = None

    # ------------------------------------------------------------------------------------------------ restore
    def sample_patch(self, y, gen):
        """One LR patch (B,3,h,w) in [-1, 1] -> (B,3,4h,4w) in [-1, 1] (``Sampler.sample_func``, one step)."""
        import torch

        from benchkit.methods.onestep import core

        d, ae = self.diffusion, self.autoencoder
        yp, (h, w) = core.pad_multiple(y, PAD_MULTIPLE)  # reflect (replicate only where reflect cannot reach)
        z_y = d.encode_first_stage(yp, ae, up_sample=True)
        noise = torch.randn(z_y.shape, generator=gen, dtype=z_y.dtype, device=z_y.device)
        torch.randn(z_y.shape, generator=gen, dtype=z_y.dtype, device=z_y.device)  # official p_sample's unused draw
        z_t = d.prior_sample(z_y, noise)
        t = torch.full((yp.shape[0],), d.num_timesteps - 1, dtype=torch.long, device=yp.device)
        out = d.p_mean_variance(self.model, z_t, z_y, t, clip_denoised=ae is None, denoised_fn=None,
                                model_kwargs={"lq": yp} if self.cond_lq else None)
        x = d.decode_first_stage(out["pred_xstart"], ae)
        return x[:, :, :h * SCALE, :w * SCALE].float().clamp(-1.0, 1.0)

    def restore_tensor(self, lq, gen):
        """(B,3,H,W) float32 in [0, 1] on the device -> (B,3,4H,4W) in [0, 1], chopped as the official script."""
        import torch

        with torch.no_grad():
            out = chopped(lq, self.options["chop_size"], self.chop_stride, SCALE,
                          lambda p: self.sample_patch((p - 0.5) / 0.5, gen))
            return (out * 0.5 + 0.5).clamp(0.0, 1.0)

    def restore(self, lq_batch, context, scale):
        import numpy as np
        import torch

        from benchkit.errors import UnavailableError

        if self.model is None:
            raise UnavailableError("sinsr: model not loaded (call load() first)")
        if scale != SCALE:
            raise ConfigError(f"sinsr is x{SCALE} only, asked for x{scale}")
        outs = []
        for lq, ctx in zip(lq_batch, context):
            x = torch.from_numpy(np.ascontiguousarray(np.asarray(lq, np.float32).transpose(2, 0, 1)))[None]
            y = self.restore_tensor(x.to(self.device), ctx["generator"]())
            outs.append(np.ascontiguousarray(y[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32))
        return outs
