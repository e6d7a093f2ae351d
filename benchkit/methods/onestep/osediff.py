"""OSEDiff (Wu et al., NeurIPS 2024; cswry/OSEDiff, Apache-2.0): one-step x4 SR on SD-2.1-base.

Checkpoint ``osediff.pkl`` (``osediff.py`` ``save_model``): ``unet_lora_{encoder,decoder,others}_modules``,
``vae_lora_encoder_modules``, ``rank_unet``, ``rank_vae``, ``state_dict_unet`` (every LoRA weight + the
LoRA-wrapped ``conv_in``: ``conv_in.base_layer.weight``...), ``state_dict_vae`` (encoder LoRA weights).
Built as ``OSEDiff_test.load_ckpt``: three UNet adapters ``default_encoder/decoder/others`` and the VAE
adapter ``default_encoder`` (peft ``LoraConfig(r, gaussian)``, alpha 8), all active.
Per image: latent of the x4 bicubic upscale, UNet at t=999 (tiles 96/32), closed-form x0, decode, AdaIN.

Prompt (option ``prompt_source``, recorded in ``info()['prompt_source']`` and so in the method tag):

- ``dape``: as the official script, ``f"{tags}, {prompt},"`` with DAPE tags (RAM Swin-L + LoRA) computed in-process
  from the user's OSEDiff checkout (:mod:`benchkit.methods.onestep.dape`; needs transformers < 5);
- ``files``: ``<weights>/methods/osediff/prompts/<key>.txt`` (the ``txt/`` folder the official script writes with
  ``--save_prompts``), used verbatim;
- ``prompt``: the ``prompt`` option alone (default: the empty prompt);
- ``auto`` (default): ``dape`` when it can run, else ``files`` when that folder exists, else ``prompt``; the reason
  DAPE was not used is recorded in ``info()['dape']``.
"""

from __future__ import annotations

from benchkit.methods.onestep import core
from benchkit.methods.onestep.base import OneStepSR

UNET_GROUPS = ("encoder", "decoder", "others")


class OSEDiff(OneStepSR):
    name = "osediff"
    description = "OSEDiff one-step diffusion SR (SD-2.1-base + LoRA), t=999, AdaIN colour fix"
    weight_files = ("osediff.pkl",)
    checkpoint = "osediff.pkl"
    base = "sd21-base"
    code_license = "Apache-2.0 (code and weights); base model: CreativeML Open RAIL++-M"
    timestep = 999

    PROMPT_SOURCES = ("auto", "dape", "files", "prompt")
    checkout_optional = "DAPE prompts; without it: prompts/ files or the prompt option"
    optional_weight_files = {"ram_swin_large_14m.pth": "DAPE prompts (RAM Swin-L)", "DAPE.pth": "DAPE prompts (LoRA)"}

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["prompt_source"] not in self.PROMPT_SOURCES:
            from benchkit.errors import ConfigError

            raise ConfigError(f"method {self.name}: prompt_source must be one of {self.PROMPT_SOURCES}, "
                              f"got {self.options['prompt_source']!r}")
        self._dape = None

    @classmethod
    def default_options(cls) -> dict:
        return {**super().default_options(), "prompt": "", "prompt_source": "auto", "code_dir": None}

    def checkout(self):
        """The user's OSEDiff clone (for DAPE's ``ram/`` code); listed by ``benchkit weights status``."""
        from benchkit.methods.checkout import Checkout, resolve_code_dir
        from benchkit.methods.onestep import dape

        root, how = resolve_code_dir("osediff", self.options["code_dir"], self.weights_dir)
        return Checkout("osediff", root, dape.REQUIRED, "cswry/OSEDiff", how)

    def prompts_dir(self):
        return self.weights_dir / "prompts" if self.weights_dir else None

    def dape_problem(self) -> str:
        from benchkit.methods.onestep import dape

        return dape.problem(self.checkout(), self.weights_dir)

    def resolved_prompt_source(self) -> str:
        """'dape', 'files' or 'prompt' (what ``auto`` resolves to here)."""
        src = self.options["prompt_source"]
        if src != "auto":
            return src
        if not self.dape_problem():
            return "dape"
        d = self.prompts_dir()
        return "files" if d is not None and d.is_dir() else "prompt"

    def availability(self):
        ok, why = super().availability()
        if not ok:
            return ok, why
        src = self.options["prompt_source"]
        if src == "dape" and self.dape_problem():
            return False, f"prompt_source dape: {self.dape_problem()}"
        if src == "files" and not (self.prompts_dir() and self.prompts_dir().is_dir()):
            return False, (f"prompt_source files: no folder {self.prompts_dir()} (fix: place the official "
                           "script's txt/ folder there, or use prompt_source auto/prompt)")
        return True, ""

    def prompt_source(self) -> str:
        src = self.resolved_prompt_source()
        if src == "dape":
            from benchkit.methods.onestep import dape

            co = self.checkout()
            sizes = "+".join(str((self.weights_dir / f).stat().st_size) for f in dape.DAPE_FILES)
            return f"dape:{co.commit() or 'no-git'}:{sizes}" + (f" + {self.options['prompt']!r}"
                                                                  if self.options["prompt"] else "")
        if src == "files":
            return f"files:prompts/ ({core.folder_fingerprint(self.prompts_dir())})"
        return "option:prompt" if self.options["prompt"] else "empty"

    def info(self):
        d = super().info()
        d["prompt_source"] = self.prompt_source()
        d["dape"] = "used" if d["prompt_source"].startswith("dape") else (self.dape_problem() or "not requested")
        return d

    def _build(self, parts, ckpt, path):
        import torch

        core.require_keys(path, ckpt, ["rank_unet", "rank_vae", "state_dict_unet", "state_dict_vae",
                                       "vae_lora_encoder_modules"] +
                          [f"unet_lora_{g}_modules" for g in UNET_GROUPS],
                          {"rank_unet": int, "rank_vae": int, "state_dict_unet": dict, "state_dict_vae": dict})
        unet, vae = parts.unet, parts.vae
        try:
            for g in UNET_GROUPS:
                unet.add_adapter(core.lora_config(ckpt["rank_unet"], ckpt[f"unet_lora_{g}_modules"]),
                                 adapter_name=f"default_{g}")
            vae.add_adapter(core.lora_config(ckpt["rank_vae"], ckpt["vae_lora_encoder_modules"]),
                            adapter_name="default_encoder")
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise core.CheckpointError(path, f"its LoRA target modules do not fit the base model ({e})") from e
        sel_u = {n: p for n, p in unet.named_parameters() if "lora" in n or "conv_in" in n}
        sel_v = {n: p for n, p in vae.named_parameters() if "lora" in n}
        core.check_state(path, "state_dict_unet", {n: p.shape for n, p in sel_u.items()}, ckpt["state_dict_unet"])
        core.check_state(path, "state_dict_vae", {n: p.shape for n, p in sel_v.items()}, ckpt["state_dict_vae"])
        with torch.no_grad():
            for n, p in sel_u.items():
                p.copy_(ckpt["state_dict_unet"][n])
            for n, p in sel_v.items():
                p.copy_(ckpt["state_dict_vae"][n])
        unet.set_adapter([f"default_{g}" for g in UNET_GROUPS])
        vae.set_adapter(["default_encoder"])

    def _after_load(self):
        self._emb_cache = {}
        self._source = self.resolved_prompt_source()
        if self._source == "dape":
            from benchkit.methods.onestep.dape import DapeTagger

            self._dape = DapeTagger(self.checkout(), self.weights_dir, self.device, self.torch_dtype())

    def _unload(self):
        self._dape = None
        super()._unload()

    def restore_tensor(self, up, ctx):
        return super().restore_tensor(up, {**ctx, "prompt": self.prompt_for(ctx, up)})

    def prompt_for(self, ctx, up=None) -> str:
        if self._source == "dape":  # test_osediff.py get_validation_prompt
            return f"{self._dape.tags(up)}, {self.options['prompt']},"
        if self._source == "files":
            d = self.prompts_dir()
            p = d / f"{ctx['key']}.txt"
            if not p.is_file():
                from benchkit.errors import BadInputError

                raise BadInputError(p, "no prompt for this image while prompts/ exists",
                                    "add the file (the official script's txt/<name>.txt) or remove prompts/")
            return p.read_text(encoding="utf-8").strip()
        return self.options["prompt"]

    def embedding(self, prompt: str):
        emb = self._emb_cache.get(prompt)
        if emb is None:
            emb = core.encode_prompt(self.model.tokenizer, self.model.text_encoder, prompt)
            if len(self._emb_cache) < 64:
                self._emb_cache[prompt] = emb
        return emb

    def _forward(self, x, ctx, gen):
        import torch

        emb = self.embedding(ctx["prompt"])
        z = self.encode_latent(x, gen)
        t = torch.tensor([self.timestep], device=z.device, dtype=torch.long)
        unet = self.model.unet
        eps = core.tiled_eps(lambda zt: unet(zt, t, encoder_hidden_states=emb.expand(zt.shape[0], -1, -1)).sample,
                             z, self.options["latent_tile"], self.options["latent_overlap"])
        x0 = core.x0_from_eps(z, eps, self.alphas_cumprod, t)
        return self.decode_latent(x0)


class OSEDiffOfficial(OSEDiff):
    """OSEDiff with the official sampling (VAE latent sampled, seeded per image by the harness)."""

    name = "osediff-official"
    weights_name = "osediff"
    default_mode = "official"
