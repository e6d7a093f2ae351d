"""The generator contract shared by every degradation.

- ``Config``: a frozen dataclass, loaded strictly from ``benchkit/pipelines/*.yaml``.
- ``sample(rng, ctx) -> Params``: makes EVERY random draw (including seeds for
  pixel noise, stored in Params).
- ``apply(img, params, ctx) -> dict[str, ndarray]``: deterministic; ``img`` is float32 RGB
  HxWx3 in [0, 1]; returns named outputs: uint8 images (written as PNG) or float
  arrays (written as .npy), e.g. ``{"lq": ..., "gt": ...}``.
- ``ctx`` (:class:`SampleContext`): the sample key, the input size and ``aux``, the per-image
  results of the auxiliary passes the generator lists in ``aux_passes`` (names in
  ``benchkit.registry.AUX_PASSES``, e.g. ``"parts"``: an HxW uint8 label map), computed once
  per source image and cached by the producer (:mod:`benchkit.builders.generator_producer`).
- ``version`` / ``replay_versions``: new builds use ``version``; a class that keeps an earlier version's
  ``apply`` lists it in ``replay_versions`` and runs it when constructed with ``version=`` (replay and resume
  of datasets whose spec.json records it).
- ``roles``: each output's role (``input``/``target``/``aux``, :mod:`benchkit.datasets.roles`),
  written to spec.json; ``metadata``: typed per-sample fields of the manifest line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class SampleContext:
    """What sample()/apply() may look at besides the RNG and the image: the sample key, the input
    size (pixels) and ``aux``: auxiliary-pass name -> per-image array (same height/width as the input)."""

    key: str
    height: int
    width: int
    aux: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def need(self, name: str):
        """The ``aux`` result ``name``; a clear error when the producer did not supply it."""
        if name not in self.aux:
            from benchkit.errors import BenchkitError

            raise BenchkitError(f"sample {self.key!r}: auxiliary pass {name!r} was not computed (have "
                                f"{sorted(self.aux) or 'none'}); list it in the generator's aux_passes")
        return self.aux[name]


def context_for(key: str, img, aux=None) -> SampleContext:
    """The context of ``img`` (HxW[xC]) for sample ``key``."""
    return SampleContext(key, int(img.shape[0]), int(img.shape[1]), dict(aux or {}))


class Generator(ABC):
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    Config: ClassVar[type]
    #: auxiliary passes (names in ``benchkit.registry.AUX_PASSES``) whose results ``ctx.aux`` must hold
    aux_passes: ClassVar[tuple[str, ...]] = ()
    #: output name -> role (``input``, ``target``, ``aux``)
    roles: ClassVar[dict[str, str]] = {"lq": "input", "gt": "target"}
    #: typed per-sample manifest fields (``meta`` key): field -> type name
    metadata: ClassVar[dict[str, str]] = {}
    #: earlier versions whose ``apply`` this class still runs, for datasets made with them (``version`` above
    #: is what new builds use)
    replay_versions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config=None, version: str | None = None):
        """``version``: run an earlier version listed in ``replay_versions`` (the instance's ``version``, as
        recorded in spec.json); None = the current one."""
        if config is None:
            config = self.Config()
        self.config = config
        if version is not None and str(version) != type(self).version:
            if str(version) not in self.replay_versions:
                from benchkit.errors import ConfigError

                known = [type(self).version, *self.replay_versions]
                raise ConfigError(f"generator {self.name!r} has no version {version!r}; this benchkit runs "
                                  f"{', '.join(known)}")
            self.version = str(version)

    @abstractmethod
    def sample(self, rng, ctx: SampleContext):
        """Draw all random parameters for one sample."""

    @abstractmethod
    def apply(self, img, params, ctx: SampleContext | None = None) -> dict:
        """Deterministically produce the named outputs from ``img``, ``params`` and ``ctx`` (no draws).
        ``ctx`` may be omitted only for generators without ``aux_passes``."""

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
