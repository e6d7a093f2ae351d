"""The papers' models not runnable in this release: known to benchkit, listed by ``--methods all``.

(OSEDiff and Hero-SR have adapters: :mod:`benchkit.methods.onestep`.)

Two kinds of entry, both with ``availability() == (False, reason)`` and a :meth:`restore`
that raises :class:`~benchkit.errors.UnavailableError` (benchkit never fakes their outputs):

- :class:`PendingAdapter`: code and weights are public but the adapter is not in this
  release; the reason lists the weight files (under ``<weights root>/methods/<name>/``),
  the base model folder it will need (a local diffusers-layout folder: Stability removed
  the SD-2.x repositories from the Hugging Face hub) and the licence.
- :class:`UnreleasedMethod`: paper only, no code or weights released.

Facts from REFERENCE.md section 9.
"""

from __future__ import annotations

from typing import ClassVar

from benchkit.methods.base import Method


class PendingAdapter(Method):
    """A released model whose benchkit adapter has not landed yet."""

    base_model: ClassVar[str] = ""
    code_license: ClassVar[str] = ""
    notes: ClassVar[str] = ""

    def availability(self):
        where = self.weights_dir or f"<weights root>/methods/{self.name}"
        missing = self.missing_weights()
        have = "present" if not missing else f"missing: {', '.join(missing)}"
        base = f"; base model: {self.base_model} as a local diffusers-layout folder" if self.base_model else ""
        return False, (f"adapter not implemented in this benchkit release (planned); needs weights "
                       f"{', '.join(self.weight_files)} in {where} ({have}){base}; licence: {self.code_license}")

    def restore(self, lq_batch, context, scale):
        from benchkit.errors import UnavailableError

        raise UnavailableError(self.availability()[1])

    def info(self):
        d = super().info()
        d.update(base_model=self.base_model, notes=self.notes, license=self.code_license)
        return d


class UnreleasedMethod(Method):
    """A paper whose code and weights are not released: listed for completeness, never run."""

    base_model: ClassVar[str] = ""

    def availability(self):
        return False, "paper only, no code or weights released"

    def restore(self, lq_batch, context, scale):
        from benchkit.errors import UnavailableError

        raise UnavailableError(f"{self.name}: paper only, no code or weights released")


SD21 = "stabilityai/stable-diffusion-2-1-base (vae, unet, scheduler)"
SDTURBO = "stabilityai/sd-turbo"


class HAODiff(PendingAdapter):
    name, task, scales, steps = "haodiff", "restore", (1,), 1
    weight_files = ("img_encoder_weights.pth", "pytorch_lora_weights.safetensors")
    base_model, code_license = SD21, "no licence file in the release (ask the authors before redistribution)"
    notes = "t=199, CFG 3.5, wavelet colour fix, latent tiles 64/overlap 5, dual prompts from a Swin image encoder"


class S3Diff(PendingAdapter):
    name, task, scales, steps = "s3diff", "sr", (4,), 1
    weight_files = ("s3diff.pkl", "de_net.pth")
    base_model, code_license = SDTURBO, "Apache-2.0"
    notes = "bilinear x4, pad to 64, CFG 1.07, degradation-modulated LoRA"


class InvSR(PendingAdapter):
    name, task, scales, steps = "invsr", "sr", (4,), 1
    weight_files = ("noise_predictor_sd_turbo_v5.pth",)
    base_model, code_license = SDTURBO, "non-commercial"
    notes = "t=200"


class SinSR(PendingAdapter):
    name, task, scales, steps = "sinsr", "sr", (4,), 1
    weight_files = ("SinSR_v1.pth", "autoencoder_vq_f4.pth")
    base_model, code_license = "", "CC BY-NC-SA 4.0"
    notes = "ResShift-based, own VQ autoencoder"


# NAFNet and Restormer are runnable (spandrel adapters in benchkit.methods.cnn); re-exported so the
# registry entries ``benchkit.methods.external:NAFNet`` / ``:Restormer`` keep resolving.
from benchkit.methods.cnn import NAFNet, Restormer


class OSDD(UnreleasedMethod):
    name, task, scales, steps, base_model = "osdd", "restore", (1,), 1, "SD-2.1"


class FideDiff(UnreleasedMethod):
    name, task, scales, steps, base_model = "fidediff", "restore", (1,), 1, "SD-2.1"


class Face2Scene(UnreleasedMethod):
    name, task, scales, steps, base_model = "face2scene", "restore", (1,), 1, "SD-Turbo"
