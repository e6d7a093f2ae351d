"""The method interface the harness drives.

A method restores a batch of degraded inputs (float32 RGB ``HxWx3`` in ``[0, 1]``)::

    m = MethodClass(**options)
    m.setup(device="cpu", weights_dir=None)   # cheap: records paths; heavy loading happens lazily
    ok, reason = m.availability()             # False + a reason (missing weights, no code released...)
    outs = m.restore(lq_batch, context, scale)  # one float32 image per input, scale x the input size

``context`` holds one dict per input: ``key``, ``record`` (the sample's manifest record),
``dataset_dir`` and ``psf`` (the recorded blur kernel as a float32 array, or ``None``).
The harness checks every output (count, size = scale x input, finite values) itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

TASKS = ("restore", "sr")


class Method(ABC):
    """Base class; subclasses set the class attributes and implement :meth:`restore`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    task: ClassVar[str] = "restore"  # 'restore' (x1) or 'sr' (upscaling)
    scales: ClassVar[tuple] = (1,)  # output/input size ratios this method supports
    steps: ClassVar[int] = 0  # network evaluations per image for leaderboards (0 for classical filters)
    description: ClassVar[str] = ""
    license: ClassVar[str] = "Apache-2.0 (benchkit)"
    weight_files: ClassVar[tuple] = ()  # paths relative to ``weights_dir`` that must exist

    def __init__(self, **options):
        unknown = set(options) - set(self.default_options())
        if unknown:
            from benchkit.errors import ConfigError

            raise ConfigError(f"method {self.name}: unknown options {sorted(unknown)}; "
                              f"allowed {sorted(self.default_options())}")
        self.options = {**self.default_options(), **options}
        self.device = "cpu"
        self.weights_dir: Path | None = None

    @classmethod
    def default_options(cls) -> dict:
        """Every option with its default (all recorded in :meth:`info`)."""
        return {}

    def setup(self, device: str = "cpu", weights_dir=None) -> None:
        """Record the device and weights folder; must stay cheap (load models on first restore)."""
        from benchkit.safety import safe_name

        safe_name("method", self.name)  # it names <weights root>/methods/<name> and output folders
        self.device = device
        self.weights_dir = Path(weights_dir) if weights_dir else None

    def weight_path(self, w: str) -> Path:
        """``weights_dir / w``, resolved; ConfigError if it leaves ``weights_dir`` (``..``, absolute, symlink)."""
        from benchkit.safety import contained

        return contained(self.weights_dir, self.weights_dir / w, f"method {self.name!r} weight file")

    def missing_weights(self) -> list[str]:
        if not self.weight_files:
            return []
        root = self.weights_dir
        return [w for w in self.weight_files if root is None or not self.weight_path(w).is_file()]

    def availability(self) -> tuple[bool, str]:
        """(True, '') if :meth:`restore` can run here, else (False, reason with the fix)."""
        missing = self.missing_weights()
        if missing:
            where = self.weights_dir or "<weights root>/methods/" + self.name
            return False, f"missing weight file(s) {', '.join(missing)} in {where} (fix: place them there " \
                          f"or pass --weights-root)"
        return True, ""

    def supports(self, scale: int) -> tuple[bool, str]:
        if scale in self.scales:
            return True, ""
        return False, f"{self.name} supports scale(s) {', '.join(f'x{s}' for s in self.scales)}, dataset is x{scale}"

    @abstractmethod
    def restore(self, lq_batch: list, context: list, scale: int) -> list:
        """Return one float32 RGB image (scale x the input size) per input image."""

    def weight_hashes(self) -> dict:
        from benchkit.fsio import sha256_file

        out = {}
        for w in self.weight_files:
            p = self.weight_path(w) if self.weights_dir else None
            out[w] = sha256_file(p) if p is not None and p.is_file() else None
        return out

    def info(self) -> dict:
        """Everything that identifies the outputs: version, code commit, weight hashes, options."""
        return {
            "name": self.name, "version": self.version, "task": self.task, "scales": list(self.scales),
            "steps": self.steps, "commit": None, "weights": self.weight_hashes(), "options": dict(self.options),
            "license": self.license, "description": self.description,
        }

    def tag(self) -> str:
        """Cache identity: name, version and a fingerprint of :meth:`info` (options, weights)."""
        from benchkit.config import fingerprint

        return f"{self.name}@{self.version}#{fingerprint(self.info())[:10]}"


def as_float_rgb(img):
    """Clip to [0, 1] and return float32 (methods call this on their outputs)."""
    import numpy as np

    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


class PerImageMethod(Method):
    """A method that restores images one at a time: implement :meth:`restore_one`; the batch loop lives here."""

    def restore(self, lq_batch: list, context: list, scale: int) -> list:
        return [self.restore_one(x, ctx, scale) for x, ctx in zip(lq_batch, context)]

    @abstractmethod
    def restore_one(self, lq, context: dict, scale: int):
        """Restore one float32 RGB image; ``context`` is that sample's dict (key, record, psf)."""
