"""One-step diffusion super-resolution adapters (OSEDiff, Hero-SR) on diffusers + peft.

:mod:`.core` holds what they share: base models from local diffusers-layout folders, strict checkpoint
loading, closed-form x0, the official Gaussian latent tiling, colour fixes, padding/cropping and the
``deterministic`` / ``official`` modes. Needs the ``diffusion`` extra (``pip install benchkit[diffusion]``);
nothing heavy is imported before :meth:`~benchkit.methods.base.Method.load`.
"""
