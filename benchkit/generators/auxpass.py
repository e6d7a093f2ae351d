"""Auxiliary passes: per-image, model-backed inputs of a generator (body-part masks, face boxes, ...).

An :class:`AuxPass` has a ``name`` (its key in ``benchkit.registry.AUX_PASSES`` and in
``SampleContext.aux``), its own ``version`` (bump it when its output for the same model file changes),
an optional ``model_file()`` whose sha256 identifies the model, ``compute(img) -> ndarray`` and an
output encoding: ``png`` (lossless: uint8/uint16, HxW or HxWx3/4) or ``npy`` (any dtype, no pickle).

A pass runs ONCE per source image (:func:`cached_result`): its encoded result is kept

- inside the dataset, ``<out>/aux/<pass>/<source key>.<ext>``, listed in the sample's manifest
  ``sources`` as ``{"aux": pass, "version", "model_sha256", "path", "sha256"}`` (replay reads this file
  and verifies its sha256: :func:`load_recorded`; the model is not needed to replay);
- in a shared cache, ``$BENCHKIT_CACHE/aux/<pass>@<version>/<model sha256[:16]>/<source sha256>.<ext>``
  (``nomodel`` for passes without a model file), so a rebuild with another seed into another folder,
  or a resume, does not run the model again. Entries are keyed by content (source bytes, model bytes,
  pass version), so a moved or renamed source still hits and a changed one never does.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

ENCODINGS = ("png", "npy")


class AuxPass(ABC):
    """One auxiliary pass; subclasses set ``name``, ``version``, ``encoding`` and implement ``compute``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    encoding: ClassVar[str] = "png"  # "png" or "npy"

    def model_file(self) -> Path | None:
        """The model weights file this pass reads (None: no model)."""
        return None

    def model_sha256(self) -> str:
        """sha256 of :meth:`model_file` ('' without a model); computed once per instance. A missing file is a
        clear error naming it."""
        cached = getattr(self, "_model_sha256", None)
        if cached is not None:
            return cached
        path = self.model_file()
        if path is None:
            sha = ""
        else:
            from benchkit.errors import UnavailableError
            from benchkit.fsio import sha256_file

            path = Path(path)
            if not path.is_file():
                raise UnavailableError(f"auxiliary pass {self.name!r}: model file {path} not found; place it "
                                          f"there (see `benchkit weights status`)")
            sha = sha256_file(path)
        self._model_sha256 = sha
        return sha

    @abstractmethod
    def compute(self, img):
        """Per-image result for a float32 RGB HxWx3 image in [0, 1]: an HxW[xC] array (same H, W)."""

    # -- encoding ---------------------------------------------------------------------------------
    @property
    def suffix(self) -> str:
        return "." + self.encoding

    def encode(self, arr) -> bytes:
        """Lossless bytes of a :meth:`compute` result."""
        import io

        import numpy as np

        if self.encoding == "png":
            import cv2

            from benchkit.images import png_params

            a = np.asarray(arr)
            if a.dtype not in (np.uint8, np.uint16) or a.ndim not in (2, 3):
                raise ValueError(f"auxiliary pass {self.name!r}: png encoding needs a uint8/uint16 HxW[xC] array, "
                                 f"got {a.dtype} {a.shape}; use encoding = 'npy'")
            if a.ndim == 3 and a.shape[2] in (3, 4):
                a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR if a.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(a), png_params())
            if not ok:
                raise RuntimeError(f"auxiliary pass {self.name!r}: PNG encoding failed")
            return buf.tobytes()
        if self.encoding == "npy":
            buf = io.BytesIO()
            np.save(buf, np.asarray(arr), allow_pickle=False)
            return buf.getvalue()
        raise ValueError(f"auxiliary pass {self.name!r}: encoding must be one of {ENCODINGS}, got {self.encoding!r}")

    def decode(self, data: bytes, where: str = "<bytes>"):
        """Inverse of :meth:`encode` (never unpickles)."""
        import io

        import numpy as np

        from benchkit.errors import BenchkitError

        if self.encoding == "png":
            import cv2

            a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if a is None:
                raise BenchkitError(f"{where}: not a readable PNG; delete it to recompute")
            if a.ndim == 3 and a.shape[2] in (3, 4):
                a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
            return a
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as e:
            raise BenchkitError(f"{where}: not a readable .npy array ({e}); delete it to recompute") from e

    def describe(self) -> dict:
        """What identifies this pass's results (listed in spec.json)."""
        return {"name": self.name, "version": self.version, "model_sha256": self.model_sha256(),
                "encoding": self.encoding}


def make_aux_pass(name: str) -> AuxPass:
    """An instance of the pass registered as ``name`` in ``benchkit.registry.AUX_PASSES``."""
    from benchkit.registry import resolve

    return resolve("aux_pass", name)()


def shared_cache_path(p: AuxPass, source_sha256: str, cache_dir=None) -> Path:
    """``<cache_dir>/aux/<pass>@<version>/<model sha16 | nomodel>/<source sha256>.<ext>``; ``cache_dir``
    defaults to ``$BENCHKIT_CACHE`` (``~/.cache/benchkit``)."""
    from benchkit.embedded import cache_root

    model = p.model_sha256()[:16] or "nomodel"
    return Path(cache_dir if cache_dir is not None else cache_root()) / "aux" / f"{p.name}@{p.version}" / model / f"{source_sha256}{p.suffix}"


def dataset_relpath(p: AuxPass, source_key: str) -> str:
    """Where a dataset keeps a source image's result: ``aux/<pass>/<source key>.<ext>``."""
    return f"aux/{p.name}/{source_key}{p.suffix}"


_MEMO = threading.local()  # last result per pass on this thread: consecutive patches of one image share it


def _check_shape(p: AuxPass, arr, img, where: str):
    import numpy as np

    a = np.asarray(arr)
    if a.ndim not in (2, 3) or a.shape[:2] != img.shape[:2]:
        from benchkit.errors import BenchkitError

        raise BenchkitError(f"{where}: auxiliary pass {p.name!r} gave shape {a.shape}, the image is "
                            f"{img.shape[0]}x{img.shape[1]}: a pass result must be HxW[xC] like its image")
    return a


def cached_result(p: AuxPass, img, source_sha256: str, out_dir, source_key: str, cache_dir=None):
    """(result array, manifest ``sources`` entry) of pass ``p`` on ``img``: from this thread's last result,
    else from the shared cache, else computed (once) and stored there; the dataset copy
    ``<out_dir>/aux/<pass>/<source key>.<ext>`` is written when missing or different. Writes are atomic.
    ``cache_dir``: the shared cache root (default ``$BENCHKIT_CACHE``; producers pass the parent's, since
    reused worker processes keep the environment they started with)."""
    from benchkit.fsio import atomic_write_bytes, sha256_bytes

    rel = dataset_relpath(p, source_key)
    memo_key = (p.name, p.version, p.model_sha256(), source_sha256, str(cache_dir))
    memo = getattr(_MEMO, "entries", None)
    if memo is None:
        memo = _MEMO.entries = {}
    hit = memo.get(p.name)
    if hit is not None and hit[0] == memo_key:
        arr, data, sha = hit[1]
    else:
        shared = shared_cache_path(p, source_sha256, cache_dir)
        arr = data = None
        if shared.is_file():
            data = shared.read_bytes()
            try:
                arr = _check_shape(p, p.decode(data, str(shared)), img, str(shared))
            except Exception:  # a damaged cache entry is recomputed and replaced
                arr = data = None
        if arr is None:
            keyed = getattr(p, "compute_for", None)  # passes that read per-source files (precomputed masks)
            res = keyed(img, source_key, source_sha256) if keyed is not None else p.compute(img)
            arr = _check_shape(p, res, img, rel)
            data = p.encode(arr)
            arr = p.decode(data, rel)  # exactly what a later run (or replay) will read back
            atomic_write_bytes(shared, data, fsync=False)
        sha = sha256_bytes(data)
        memo[p.name] = (memo_key, (arr, data, sha))
    if out_dir is not None:
        dest = Path(out_dir) / rel
        if not dest.is_file() or dest.stat().st_size != len(data) or dest.read_bytes() != data:
            atomic_write_bytes(dest, data, fsync=False)
    record = {"aux": p.name, "version": p.version, "model_sha256": p.model_sha256(), "path": rel, "sha256": sha}
    return arr, record


def load_recorded(p: AuxPass | None, out_dir, record: dict):
    """The result recorded in a manifest ``sources`` entry, read from the dataset and verified by sha256
    (a mismatch or a missing file is a clear error naming the file). ``p`` decodes it (None: by suffix)."""
    from benchkit.errors import BenchkitError
    from benchkit.fsio import sha256_bytes

    path = Path(out_dir) / record["path"]
    if not path.is_file():
        raise BenchkitError(f"{path}: cached auxiliary result {record['aux']!r} is missing; restore it from a copy "
                            f"of the dataset, or rebuild into a new folder (the shared cache makes that cheap)")
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != record["sha256"]:
        raise BenchkitError(f"{path}: cached auxiliary result {record['aux']!r} was modified (sha256 {got[:12]} != "
                            f"recorded {record['sha256'][:12]}); restore it from a copy of the dataset, or rebuild into a new folder")
    if p is None:
        p = _by_suffix(record)
    return p.decode(data, str(path))


def _by_suffix(record: dict) -> AuxPass:
    enc = Path(record["path"]).suffix.lstrip(".")

    class _Reader(AuxPass):
        name = record["aux"]
        encoding = enc

        def compute(self, img):  # pragma: no cover - only reads
            raise NotImplementedError

    return _Reader()
