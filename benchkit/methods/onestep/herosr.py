"""Hero-SR (W-JG/Hero-SR, MIT): one-step x4 SR on SD-Turbo with a learned timestep.

Checkpoint ``hero_sr_model.pkl`` (``src/hero_sr.py``): ``rank_unet``, ``unet_lora_target_modules``,
``state_dict_unet``, ``rank_vae``, ``vae_lora_target_modules``, ``state_dict_vae``,
``state_dict_time_adaptive``. Built as the official ``HeroSR.__init__``: UNet adapter ``default`` and VAE
adapter ``vae`` (peft ``LoraConfig(r, gaussian)`` without ``lora_alpha`` -> the peft default 8, passed
explicitly here), the file's weights written over the model's state dict. benchkit is stricter than the
official ``load_state_dict`` of the merged dict: every LoRA weight of the model must be in the file (a
missing one would silently stay random), and every key of the file must exist in the model.

Per image: ``TimeAdaptive`` (a BN ResNet on the nearest-resized 128x128 input) scores 101 timesteps
{1, 9, 19, ..., 999}; the official code picks one with ``gumbel_softmax(hard=True)`` (``official`` mode,
Gumbel noise from the seeded generator) - ``deterministic`` mode takes the argmax. The UNet gets the float
timestep, x0 uses ``alphas_cumprod[t.long()]``; prompt ``" "``; latent tiles 96/32; AdaIN colour fix.
"""

from __future__ import annotations

from benchkit.methods.onestep import core
from benchkit.methods.onestep.base import OneStepSR

TIME_LIST = [1] + list(range(9, 1000, 10))  # 101 timesteps, src/model.py TimeAdaptive


def time_adaptive_module(channel: int = 64, num_block: int = 3, pool: int = 7, n_times: int = len(TIME_LIST)):
    """A module with the parameter/buffer names of Hero-SR's ``TimeAdaptive`` (written for benchkit).

    ``forward(x)`` returns the 101 logits (LayerNorm output) for a (B,3,H,W) image in [-1, 1]."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            out = F.silu(self.bn1(self.conv1(x)))
            return F.silu(self.bn2(self.conv2(out)) + x)

    class TimeAdaptive(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("time_list", torch.as_tensor(TIME_LIST, dtype=torch.float32))
            self.conv1 = nn.Sequential(nn.Conv2d(3, channel, 3, 1, 1), nn.BatchNorm2d(channel), nn.SiLU())
            self.blocks = nn.Sequential(*[Block(channel) for _ in range(num_block)])
            self.conv2 = nn.Sequential(nn.Conv2d(channel, channel, 3, 1, 1), nn.BatchNorm2d(channel), nn.SiLU())
            self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
            self.fc = nn.Sequential(nn.Linear(channel * pool * pool, 1000), nn.SiLU(), nn.Linear(1000, n_times),
                                    nn.LayerNorm(n_times))

        def forward(self, x):
            x = F.interpolate(x, size=(128, 128))  # nearest, as the official forward
            x = self.conv2(self.blocks(self.conv1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return TimeAdaptive()


def pick_timestep(logits, time_list, gen=None):
    """argmax (``gen`` None) or the hard Gumbel-softmax draw ``argmax(logits + Gumbel)`` (tau 1) with Gumbel
    noise ``-log(Exp(1))`` from ``gen``: the forward value of ``F.gumbel_softmax(hard=True)``."""
    import torch

    if gen is not None:
        e = torch.empty(logits.shape, dtype=torch.float32, device=logits.device).exponential_(generator=gen)
        logits = logits.float() - e.log()
    return time_list[torch.argmax(logits, dim=1)]


def merge_strict(path, what: str, module, given: dict) -> None:
    """Write ``given`` over ``module``'s state dict: keys must exist with the same shapes, and every LoRA
    weight of the module must be given."""
    import torch

    if not isinstance(given, dict):
        raise core.CheckpointError(path, f"{what} is a {type(given).__name__}, expected a dict of tensors")
    sd = module.state_dict()
    lora = {k for k in sd if "lora" in k}
    expected = {k: sd[k].shape for k in lora | (set(given) & set(sd))}
    core.check_state(path, what, expected, given)
    sd.update({k: v for k, v in given.items()})
    with torch.no_grad():
        module.load_state_dict(sd, strict=True)


class HeroSR(OneStepSR):
    name = "hero-sr"
    description = "Hero-SR one-step diffusion SR (SD-Turbo + LoRA, learned timestep), AdaIN colour fix"
    weight_files = ("hero_sr_model.pkl",)
    checkpoint = "hero_sr_model.pkl"
    base = "sd-turbo"
    code_license = "MIT (code and weights); base model: Stability AI Community licence (sd-turbo)"
    prompt = " "

    def _build(self, parts, ckpt, path):
        core.require_keys(path, ckpt, ["rank_unet", "unet_lora_target_modules", "state_dict_unet", "rank_vae",
                                       "vae_lora_target_modules", "state_dict_vae", "state_dict_time_adaptive"],
                          {"rank_unet": int, "rank_vae": int})
        try:
            parts.unet.add_adapter(core.lora_config(ckpt["rank_unet"], ckpt["unet_lora_target_modules"]))
            parts.vae.add_adapter(core.lora_config(ckpt["rank_vae"], ckpt["vae_lora_target_modules"]),
                                  adapter_name="vae")
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise core.CheckpointError(path, f"its LoRA target modules do not fit the base model ({e})") from e
        merge_strict(path, "state_dict_unet", parts.unet, ckpt["state_dict_unet"])
        merge_strict(path, "state_dict_vae", parts.vae, ckpt["state_dict_vae"])
        ta = time_adaptive_module()
        given = ckpt["state_dict_time_adaptive"]
        core.check_state(path, "state_dict_time_adaptive", {k: v.shape for k, v in ta.state_dict().items()}, given)
        ta.load_state_dict(given, strict=True)
        ta.requires_grad_(False)
        ta.eval()
        parts.time_adaptive = ta

    def _after_load(self):
        self.model.time_adaptive.to(self.device)  # float32 (BatchNorm statistics)
        self._emb = core.encode_prompt(self.model.tokenizer, self.model.text_encoder, self.prompt)

    def _forward(self, x, ctx, gen):
        ta = self.model.time_adaptive
        t = pick_timestep(ta(x.float()), ta.time_list, gen)  # gumbel draw first, then the latent sample
        z = self.encode_latent(x, gen)
        unet = self.model.unet
        tu = t.to(self.torch_dtype())
        eps = core.tiled_eps(lambda zt: unet(zt, tu, encoder_hidden_states=self._emb).sample, z,
                             self.options["latent_tile"], self.options["latent_overlap"])
        x0 = core.x0_from_eps(z, eps, self.alphas_cumprod, t.long())
        return self.decode_latent(x0)


class HeroSROfficial(HeroSR):
    """Hero-SR with the official sampling (Gumbel timestep draw and VAE latent sample, seeded per image)."""

    name = "hero-sr-official"
    weights_name = "hero-sr"
    default_mode = "official"
