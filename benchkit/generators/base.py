"""The generator contract shared by every degradation.

- ``Config``: a frozen dataclass, loaded strictly from ``benchkit/pipelines/*.yaml``.
- ``sample(rng, ctx) -> Params``: makes EVERY random draw (including seeds for
  pixel noise, stored in Params).
- ``apply(img, params) -> dict[str, ndarray]``: deterministic; ``img`` is float32 RGB
  HxWx3 in [0, 1]; returns named outputs: uint8 images (written as PNG) or float
  arrays (written as .npy), e.g. ``{"lq": ..., "gt": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from abc import ABC, abstractmethod
from typing import ClassVar


@dataclass(frozen=True)
class SampleContext:
    """What sample() may look at besides the RNG: the key and the input size (pixels)."""

    key: str
    height: int
    width: int


class Generator(ABC):
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    Config: ClassVar[type]

    def __init__(self, config=None):
        if config is None:
            config = self.Config()
        self.config = config

    @abstractmethod
    def sample(self, rng, ctx: SampleContext):
        """Draw all random parameters for one sample."""

    @abstractmethod
    def apply(self, img, params) -> dict:
        """Deterministically produce the named outputs from ``img`` and ``params``."""

    def min_input_size(self) -> int:
        """Smallest input side (pixels) this generator accepts; smaller inputs are reported as bad."""
        return 1

    def describe(self) -> dict:
        from benchkit.config import fingerprint, to_plain

        return {
            "generator": self.name,
            "version": self.version,
            "config": to_plain(self.config),
            "fingerprint": fingerprint({"g": self.name, "v": self.version, "c": to_plain(self.config)}),
        }
