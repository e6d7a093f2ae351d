"""The method interface the harness drives, with a model lifecycle.

A method restores a batch of degraded inputs (float32 RGB ``HxWx3`` in ``[0, 1]``)::

    m = MethodClass(**options)
    m.setup(weights_dir=None)                 # cheap: records paths
    ok, reason = m.availability()             # False + a reason (missing weights, no code released...)
    m.load(device="cpu", dtype="float32")     # heavy loading, outside every timed region
    outs = m.restore(inputs, contexts, scale) # one float32 image per input, scale x the input size
    m.unload()                                # release memory (the harness keeps one model resident)

``contexts`` holds one dict per input: ``key``, ``record`` (the sample's manifest record),
``dataset_dir``, ``aux`` ({aux output name: path}), ``meta`` (typed per-sample metadata), ``psf``
(the recorded blur kernel as a float32 array, or ``None``) and, for every method, ``seed`` (an int
derived from (root seed, sample key, method name)) and ``generator`` (a callable returning a
``torch.Generator`` on the method's device seeded with ``seed``: stochastic methods draw only from it).
The harness checks every output (count, size = scale x input, finite values, range) itself.
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
    batch_size: ClassVar[int] = 1  # images per restore() call the method prefers (the benchmark may cap it)
    concurrent: ClassVar[bool] = True  # restore() may be called from several threads at once
    stochastic: ClassVar[bool] = False  # draws random numbers (only from context['generator'] / ['seed'])
    devices: ClassVar[tuple] = ("cpu",)  # devices it can run on; 'cuda' matches every cuda:N
    dtypes: ClassVar[tuple] = ("float32",)  # compute dtypes it supports
    trace_memory: ClassVar[bool] = True  # harness measures the Python/numpy peak with tracemalloc (slow for torch)
    oracle: ClassVar[bool] = False  # uses ground-truth information (e.g. the recorded PSF): marked on leaderboards

    def __init__(self, **options):
        unknown = set(options) - set(self.default_options())
        if unknown:
            from benchkit.errors import ConfigError

            raise ConfigError(f"method {self.name}: unknown options {sorted(unknown)}; "
                              f"allowed {sorted(self.default_options())}")
        defaults = self.default_options()
        for k, v in options.items():  # values of the type the default has (numbers and switches); others as given
            d = defaults[k]
            numeric = isinstance(d, (int, float)) and not isinstance(d, bool)
            bad = (isinstance(d, bool) and not isinstance(v, bool)) or \
                (numeric and (isinstance(v, bool) or not isinstance(v, (int, float))))
            if bad:
                from benchkit.errors import ConfigError

                kind = "true or false" if isinstance(d, bool) else "a number"
                raise ConfigError(f"method {self.name}: option {k} must be {kind} (default {d!r}), got {v!r}")
        self.options = {**defaults, **options}
        self.device = "cpu"
        self.dtype = "float32"
        self.weights_dir: Path | None = None
        self.loaded = False

    @classmethod
    def default_options(cls) -> dict:
        """Every option with its default (all recorded in :meth:`info`)."""
        return {}

    def setup(self, device: str | None = None, weights_dir=None) -> None:
        """Record the weights folder (and optionally the device); must stay cheap (models load in :meth:`load`)."""
        from benchkit.safety import safe_name

        safe_name("method", self.name)  # it names <weights root>/methods/<name> and output folders
        if device is not None:
            self.device = self.effective_device(device)
        self.weights_dir = Path(weights_dir) if weights_dir else None

    def effective_device(self, device: str) -> str:
        """The device this method really runs on when asked for ``device`` (numpy methods: always 'cpu')."""
        device = str(device or "cpu")
        kind = device.split(":")[0]
        if device in self.devices or kind in self.devices:
            return device
        return self.devices[0]

    def effective_dtype(self, dtype: str) -> str:
        dtype = str(dtype or "float32")
        return dtype if dtype in self.dtypes else self.dtypes[0]

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        """Load the model onto ``device`` in ``dtype`` (heavy; the harness calls it outside timed regions).

        Subclasses with models override :meth:`_load` and :meth:`_unload`; this records device and dtype.
        """
        self.device = self.effective_device(device)
        self.dtype = self.effective_dtype(dtype)
        self._load()
        self.loaded = True

    def unload(self) -> None:
        """Release the model and the memory it holds (GPU caches emptied); safe to call twice."""
        if self.loaded:
            self._unload()
        self.loaded = False
        import sys

        torch = sys.modules.get("torch")
        if torch is not None and str(self.device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load(self) -> None:
        """Heavy loading (override); weight-free methods need nothing."""

    def _unload(self) -> None:
        """Drop references to models (override)."""

    def weight_path(self, w: str) -> Path:
        """``weights_dir / w``; ConfigError if the NAME leaves ``weights_dir`` (``..``, absolute).

        The file itself may be a symlink (checkpoints often live on shared storage and are linked into
        the weights root: that link is the user's own choice, and every file is still loaded with
        ``weights_only`` / safetensors and checked key by key)."""
        rel = Path(w)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            from benchkit.errors import ConfigError

            raise ConfigError(f"method {self.name!r} weight file {w!r} would resolve outside {self.weights_dir}; "
                              f"it must stay inside that folder (fix: a relative name without '..')")
        return self.weights_dir / rel

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

    def uses_oracle(self, aux_names) -> bool:
        """True when, on a dataset with these aux outputs, the method reads ground-truth information."""
        return bool(self.oracle)

    def weight_hashes(self) -> dict:
        out = {}
        for w in self.weight_files:
            p = self.weight_path(w) if self.weights_dir else None
            out[w] = _sha256_cached(p) if p is not None and p.is_file() else None
        return out

    def info(self) -> dict:
        """Everything that identifies the outputs: version, code commit, weight hashes, options."""
        return {
            "name": self.name, "version": self.version, "task": self.task, "scales": list(self.scales),
            "steps": self.steps, "commit": None, "weights": self.weight_hashes(), "options": dict(self.options),
            "license": self.license, "description": self.description, "oracle": bool(self.oracle),
            "stochastic": bool(self.stochastic), "device": self.device, "dtype": self.dtype,
        }

    def tag(self) -> str:
        """Cache identity: name, version and a fingerprint of everything that changes outputs: options,
        weight hashes, effective device kind and dtype (a CPU-fp32 output is never reused for a GPU-fp16 run;
        outputs from cuda:0 and cuda:1 are interchangeable, so multi-device runs share one cache).

        Weight-free CPU-only fp32 methods keep the 0.1.0 fingerprint (device/dtype cannot vary there), so
        their cached outputs stay valid."""
        from benchkit.config import fingerprint

        info = self.info()
        ident = {k: v for k, v in info.items() if k not in ("device", "dtype", "oracle", "stochastic")}
        if tuple(self.devices) != ("cpu",) or tuple(self.dtypes) != ("float32",):
            ident.update(device=str(self.device).split(":")[0], dtype=self.dtype)  # kind: cuda:0 == cuda:1
        return f"{self.name}@{self.version}#{fingerprint(ident)[:10]}"


_HASHES: dict = {}


def _sha256_cached(p: Path) -> str:
    """sha256 of a weight file, re-read only when its (device, inode, size, mtime) changes: ``info()`` runs for
    every tag and real checkpoints reach gigabytes."""
    from benchkit.fsio import sha256_file

    st = p.stat()
    key = (str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    h = _HASHES.get(key)
    if h is None:
        h = _HASHES[key] = sha256_file(p)
    return h


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
