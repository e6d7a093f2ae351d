"""The :class:`Metric` interface every metric implementation follows (no heavy imports).

The harness talks to metrics with typed requests::

    req = ScoreRequest(key, output=..., input=..., target=None, aux={...}, meta={...})
    metric.score_requests([req, ...]) -> [float | NA, ...]

:data:`NA` ("not applicable": an FR metric on a dataset without targets, no face on the target...)
is a first-class result, counted apart from failures and shown as ``n/a``.

Dataset-level metrics (``info.kind == "dataset"``: FID, HMB-R) accumulate: ``partials(requests)``
gives one state per item (cached per image), ``reference_partials(requests)`` the method-independent
states of the reference side (FID: the targets; HMB-R: the inputs), computed once per dataset and
cached, and ``aggregate(partials, reference_partials)`` the dataset value.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchkit.errors import BadInputError, BenchkitError, UnavailableError


class _NotApplicable:
    """Singleton result: the metric does not apply to this item (never a failure, never a number)."""

    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "n/a"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_NotApplicable, ())


NA = _NotApplicable()


def is_na(v) -> bool:
    return v is NA


def _lazy(v):
    return v() if callable(v) else v


@dataclass
class ScoreRequest:
    """What a metric may look at for one item. Images are float32 RGB HxWx3 in [0, 1], loaded lazily:
    ``output``/``input``/``target`` may be arrays or zero-argument callables (see the properties);
    ``*_path`` are the files they come from (None when there is no such image); ``aux`` maps aux output
    names to paths; ``meta`` is the sample's typed metadata."""

    key: str
    output_src: Any = None
    input_src: Any = None
    target_src: Any = None
    output_path: Path | None = None
    input_path: Path | None = None
    target_path: Path | None = None
    aux: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def _get(self, name):
        if name not in self._cache:
            self._cache[name] = _lazy(getattr(self, name + "_src"))
        return self._cache[name]

    @property
    def output(self):
        return self._get("output")

    @property
    def input(self):
        return self._get("input")

    @property
    def target(self):
        return self._get("target")

    @property
    def has_target(self) -> bool:
        return self.target_src is not None


class Metric(abc.ABC):
    """One configured metric bound to a device and a weights root.

    Images are float32 RGB ``HxWx3`` numpy arrays in ``[0, 1]``. FR metrics need
    ``ref`` (same shape as ``dist``); NR metrics ignore it. Results are finite
    floats: a NaN/inf result raises :class:`BenchkitError` instead of being returned.
    """

    def __init__(self, info, device: str = "cpu", weights_root=None, verify_weights: bool = True,
                 **settings):
        import dataclasses

        from benchkit.errors import ConfigError
        from benchkit.metrics.weights import weights_root as _root

        unknown = sorted(set(settings) - set(info.settings))
        if unknown:
            raise ConfigError(f"metric {info.name!r}: unknown setting(s) {unknown}; "
                              f"settable: {sorted(info.settings)}")
        if settings:
            info = dataclasses.replace(info, settings={**info.settings, **settings})
        self.info = info
        self.device = str(device)
        self.root: Path = _root(weights_root)
        # verify_weights=False skips the sha256 check of weight files (keys and shapes
        # are still checked on load); for tests that build their own checkpoints.
        self.verify_weights = bool(verify_weights)

    # -- availability ---------------------------------------------------------------
    @abc.abstractmethod
    def availability(self) -> tuple[bool, str]:
        """(True, '') when the metric can run here, else (False, what to place/install).

        Never downloads anything.
        """

    def require(self) -> None:
        ok, why = self.availability()
        if not ok:
            raise UnavailableError(f"metric {self.info.name!r} is unavailable: {why}")

    # -- scoring --------------------------------------------------------------------
    def score(self, dist, ref=None) -> float:
        """Score one image (FR: ``dist`` against ``ref``; NR: ``dist`` alone)."""
        return self.score_batch([dist], None if ref is None else [ref])[0]

    def score_batch(self, dists, refs=None) -> list[float]:
        """Score a list of images; returns one finite float per image, in order."""
        if self.info.kind == "dataset":
            raise BenchkitError(f"metric {self.info.name!r} is dataset-level: use score_folders()")
        self.require()
        dists = list(dists)
        if self.info.kind == "FR":
            if refs is None:
                raise BenchkitError(f"metric {self.info.name!r} is full-reference: pass ref images")
            refs = list(refs)
            if len(refs) != len(dists):
                raise BenchkitError(f"{len(dists)} images but {len(refs)} references")
            for i, (d, r) in enumerate(zip(dists, refs)):
                _check_image(d, f"dist[{i}]")
                _check_image(r, f"ref[{i}]")
                if d.shape != r.shape:
                    raise BadInputError(f"dist[{i}]", f"shape {d.shape} differs from reference {r.shape}",
                                        "crop/resize the result to the reference size")
        else:
            refs = None
            for i, d in enumerate(dists):
                _check_image(d, f"dist[{i}]")
        out = [float(v) for v in self._compute(dists, refs)]
        for i, v in enumerate(out):
            if not math.isfinite(v):
                raise BenchkitError(f"metric {self.info.name!r} returned {v} for image {i}")
        return out

    def score_requests(self, requests: list) -> list:
        """One finite float or :data:`NA` per :class:`ScoreRequest`, in order.

        Default: FR metrics score ``output`` against ``target`` (NA where the item has no target), NR
        metrics score ``output``. Metrics that need the input, aux files or metadata override this."""
        if self.info.kind == "dataset":
            raise BenchkitError(f"metric {self.info.name!r} is dataset-level: use partials()/aggregate()")
        out: list = [NA] * len(requests)
        idx = [i for i, r in enumerate(requests) if self.info.kind != "FR" or r.has_target]
        if not idx:
            return out
        dists = [requests[i].output for i in idx]
        refs = [requests[i].target for i in idx] if self.info.kind == "FR" else None
        for i, v in zip(idx, self.score_batch(dists, refs)):
            out[i] = v
        return out

    # -- dataset-level (accumulating) metrics ------------------------------------------
    reference_role = "target"  # which image of a request the reference side uses ("target" or "input")

    def applicable(self, has_target: bool) -> bool:
        """False when the metric cannot apply to a dataset (FR and FID-like metrics need targets)."""
        if self.info.kind == "FR" or (self.info.kind == "dataset" and self.reference_role == "target"):
            return has_target
        return True

    # Default for dataset-level metrics that only implement score_folders(dist_dir, ref_dir): the per-item
    # "state" is the image file's path, and aggregate() stages exactly those files into two folders.
    def partials(self, requests: list) -> list:
        """Per-item states of the outputs (dataset-level metrics): numpy arrays or numbers, never pickled."""
        self._dataset_only()
        return [str(r.output_path) for r in requests]

    def reference_partials(self, requests: list) -> list:
        """Per-item states of the reference side (method independent; cached once per dataset)."""
        self._dataset_only()
        return [str(r.target_path if self.reference_role == "target" else r.input_path) for r in requests]

    def aggregate(self, partials: list, reference_partials: list) -> float:
        """The dataset value from the per-item states of the outputs and of the reference side."""
        import os
        import shutil
        import tempfile

        self._dataset_only()
        with tempfile.TemporaryDirectory(prefix="benchkit-dataset-metric-") as tmp:
            dirs = (Path(tmp) / "dist", Path(tmp) / "ref")
            for d, paths in zip(dirs, (partials, reference_partials)):
                d.mkdir()
                for i, p in enumerate(paths):
                    src = Path(str(p))
                    dst = d / f"{i:08d}{src.suffix}"
                    try:
                        os.symlink(src.resolve(), dst)
                    except OSError:
                        shutil.copyfile(src, dst)
            return float(self.score_folders(*dirs))

    def item_columns(self, partial, reference_partial) -> dict:
        """Extra ``per_image.csv`` columns {name: value} of one item from its two states (default none;
        HMB-R: the detection counts on input and output)."""
        return {}

    def _dataset_only(self) -> None:
        if self.info.kind != "dataset":
            raise BenchkitError(f"metric {self.info.name!r} is not dataset-level")

    def score_folders(self, dist_dir, ref_dir) -> float:
        """Dataset-level score of the images in ``dist_dir`` against ``ref_dir``."""
        raise BenchkitError(f"metric {self.info.name!r} is per-image: use score()/score_batch()")

    @abc.abstractmethod
    def _compute(self, dists: list, refs: list | None) -> list[float]:
        """Backend computation on validated inputs (refs is None for NR)."""

    def __repr__(self) -> str:
        return f"<Metric {self.info.name} on {self.device}, weights {self.root}>"


def _check_image(img, label: str) -> None:
    import numpy as np

    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise BadInputError(label, f"expected an HxWx3 numpy array, got {getattr(img, 'shape', type(img))}",
                            "read images with benchkit.images.read_image")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise BadInputError(label, f"empty image {img.shape}")
