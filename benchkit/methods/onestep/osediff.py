"""OSEDiff (Wu et al., NeurIPS 2024; cswry/OSEDiff, Apache-2.0): one-step x4 SR on SD-2.1-base.

Checkpoint ``osediff.pkl`` (``osediff.py`` ``save_model``): ``unet_lora_{encoder,decoder,others}_modules``,
``vae_lora_encoder_modules``, ``rank_unet``, ``rank_vae``, ``state_dict_unet`` (every LoRA weight + the
LoRA-wrapped ``conv_in``: ``conv_in.base_layer.weight``...), ``state_dict_vae`` (encoder LoRA weights).
Built as ``OSEDiff_test.load_ckpt``: three UNet adapters ``default_encoder/decoder/others`` and the VAE
adapter ``default_encoder`` (peft ``LoraConfig(r, gaussian)``, alpha 8), all active.
Per image: latent of the x4 bicubic upscale, UNet at t=999 (tiles 96/32), closed-form x0, decode, AdaIN.

Prompt: the official script prompts with DAPE tags (RAM Swin-L + LoRA; its code needs transformers < 5) +
``--prompt``. benchkit reads per-image prompts from ``<weights>/methods/osediff/prompts/<key>.txt`` when that
folder exists (the ``txt/`` folder the official script writes with ``--save_prompts``), else uses the
``prompt`` option (default: the empty prompt). The source is recorded in ``info()['prompt_source']``.
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

    @classmethod
    def default_options(cls) -> dict:
        return {**super().default_options(), "prompt": ""}

    def prompts_dir(self):
        return self.weights_dir / "prompts" if self.weights_dir else None

    def prompt_source(self) -> str:
        d = self.prompts_dir()
        if d is not None and d.is_dir():
            return f"files:prompts/ ({core.folder_fingerprint(d)})"
        return "option:prompt" if self.options["prompt"] else "empty"

    def info(self):
        d = super().info()
        d["prompt_source"] = self.prompt_source()
        d["dape"] = "not run in-process (needs transformers<5); precomputed prompts/<key>.txt are used"
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

    def prompt_for(self, ctx) -> str:
        d = self.prompts_dir()
        if d is not None and d.is_dir():
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

        emb = self.embedding(self.prompt_for(ctx))
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
