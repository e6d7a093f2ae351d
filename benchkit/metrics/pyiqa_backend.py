"""Metrics computed by pyiqa (IQA-PyTorch, PolyForm-Noncommercial; weights CC BY-NC-SA).

pyiqa downloads missing weights on construction. benchkit never lets it: availability
is decided from the files under the weights root first, and while pyiqa runs
(:func:`pyiqa_context`) its cache folders point into the weights root, Hugging Face
is offline, and every download function pyiqa/torch.hub/CLIP would call raises
:class:`UnavailableError`. Checkpoints pyiqa loads through ``load_pretrained_network``
(including its ``strict=False`` loads for LPIPS/DISTS/TOPIQ) are checked key by key and
shape by shape before they are applied.

No code from files: inside :func:`pyiqa_context` (on the thread that entered it) every
``torch.load`` -- pyiqa's own, ``torch.hub.load_state_dict_from_url`` (torchvision backbones,
ARNIQA's encoder; pyiqa passes ``weights_only=False`` there), timm's, CLIP's -- goes through
:func:`_guarded_load`: the file is hashed (recorded in ``reads``) and unpickled only if its
full sha256 equals the value pinned for its name (:func:`benchkit.metrics.weights.pinned_sha256`);
any other file is loaded with ``weights_only=True`` (plain tensors) or refused with
:class:`WeightsCheckError`. ``torch.jit.load`` (TorchScript) is allowed only for pinned files;
``torch.hub.load`` (hubconf code) and transformers' remote code are refused. LIQE's text-feature
cache (``liqe_text_feat.pt``) is generated in a private temporary folder from the pinned CLIP
weights, never read from the weights root.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from pathlib import Path

from benchkit.errors import BadInputError, BenchkitError, ConfigError, UnavailableError
from benchkit.metrics.base import Metric

_LOCK = threading.RLock()

# psnr/ssim colour handling -> pyiqa kwargs. 'ycbcr': BT.601 limited-range Y (16..235),
# the SR-paper convention; 'yiq': pyiqa's default Y (full range, MATLAB rgb2gray weights).
_COLOR_SPACES = {
    "ycbcr": {"test_y_channel": True, "color_space": "ycbcr"},
    "yiq": {"test_y_channel": True, "color_space": "yiq"},
    "rgb": {"test_y_channel": False},
}

# strict=False loads in pyiqa: the checkpoint holds only the head; these state-dict
# prefixes are filled from other (separately checked) files: torchvision/timm backbones,
# constant buffers.
_ALLOWED_MISSING = {
    "LPIPS": ("net.", "scaling_layer."),
    "DISTS": ("stage", "mean", "std"),
    "CFANet": ("semantic_model.",),
}

# Optional Python dependencies per metric beyond pyiqa itself (module -> pip hint).
_EXTRA_DEPS = {
    "clipiqa": {"pkg_resources": "setuptools<81"},
    "liqe": {"pkg_resources": "setuptools<81"},
}


class WeightsCheckError(BenchkitError):
    """A checkpoint does not match the network it is loaded into (keys or shapes)."""


def _no_download(url, dst=None, *args, **kwargs):
    raise UnavailableError(
        f"pyiqa tried to download {url}" + (f" to {dst}" if dst else "")
        + "; benchkit never downloads weights: place the file there (see `benchkit weights status`)")


def _local_clip(root: Path):
    def _download(url: str, folder: str):
        path = Path(folder) / os.path.basename(url)
        if path.is_file():
            return str(path)
        _no_download(url, path)

    return _download


_GUARD = threading.local()  # .state: the active guard of this thread (root, reads) or None


#: a pyiqa RuntimeError on an image with a side below this (px) is reported as "too small" (NIQE's blocks are 96)
SMALL_SIDE = 96


def _short(e: Exception) -> str:
    """``Type: first line`` of an exception, without terminal escape codes."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {(text[0] if text else '')[:160]}"


def _path_of(f):
    """The file path behind a torch.load/jit.load argument, or None (in-memory buffer)."""
    if isinstance(f, (str, os.PathLike)):
        return Path(f)
    name = getattr(f, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        return Path(name)
    return None


def _pin_check(root: Path, path: Path) -> tuple[bool, str, str | None]:
    """(matches a full pinned sha256, its sha256, the pinned value or None) for ``path``."""
    from benchkit.metrics.weights import file_sha256, pinned_sha256

    real = Path(path).resolve()
    sha = file_sha256(real)
    try:
        rel = real.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        rel = None
    pin = pinned_sha256(rel) if rel else None
    return (pin is not None and sha == pin), sha, pin


def _refuse_code(path, sha, what: str):
    return WeightsCheckError(
        f"{path}: {what}, and its sha256 {sha[:16]}... matches no pinned value; benchkit never runs "
        f"code or unpickles objects from a file it has not verified (fix: replace the file by the "
        f"published release whose full sha256 is pinned in benchkit/metrics/catalog.py KNOWN_SHA256, "
        f"or remove it and leave this metric unavailable)")


def _guarded_load(orig):
    """torch.load replacement: unpickle only files with a matching pinned sha256, else weights_only=True."""
    def load(f, *args, **kwargs):
        g = getattr(_GUARD, "state", None)
        if g is None:  # another thread, outside pyiqa: untouched
            return orig(f, *args, **kwargs)
        path = _path_of(f)
        trusted, sha = False, None
        if path is not None:
            trusted, sha, _pin = _pin_check(g["root"], path)
            g["reads"][str(path)] = sha
        if trusted:
            return orig(f, *args, **kwargs)
        args = args[:1]  # (map_location,); a custom pickle_module is never honoured for unverified files
        kwargs.pop("pickle_module", None)
        kwargs["weights_only"] = True
        try:
            return orig(f, *args, **kwargs)
        except Exception as e:  # torch raises UnpicklingError / RuntimeError variants
            where = path if path is not None else "<in-memory buffer>"
            raise WeightsCheckError(
                f"{where}: cannot be loaded as plain tensors (weights_only=True: {_short(e)}); refusing to unpickle a file whose full sha256 is not pinned (fix: "
                f"replace it by the published release, pinned in benchkit/metrics/catalog.py KNOWN_SHA256, "
                f"or remove it)") from e
    return load


def _guarded_jit_load(orig):
    def jit_load(f, *args, **kwargs):
        g = getattr(_GUARD, "state", None)
        if g is None:
            return orig(f, *args, **kwargs)
        path = _path_of(f)
        if path is None:
            raise WeightsCheckError("TorchScript from an in-memory buffer: refused (fix: none; report it)")
        trusted, sha, _pin = _pin_check(g["root"], path)
        g["reads"][str(path)] = sha
        if not trusted:
            raise _refuse_code(path, sha, "a TorchScript archive (code and pickled objects)")
        return orig(f, *args, **kwargs)
    return jit_load


def _refuse_hub_code(*args, **kwargs):
    raise WeightsCheckError(f"pyiqa tried to run repository code ({args[:1]}) through torch.hub.load / "
                            f"trust_remote_code; benchkit never runs code from downloaded or cached files "
                            f"(fix: use another metric)")


def _read_checkpoint(path: Path, trusted: bool):
    """torch.load with weights_only=True; pickled objects only for files matching a full pinned sha256."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsCheckError:  # raised by the guard (already names the file and the fix)
        if not trusted:
            raise
    except Exception as e:  # unpickling errors come in many types
        if not trusted:
            raise WeightsCheckError(
                f"{path}: cannot be loaded as plain tensors ({_short(e)}); refusing to unpickle a file whose "
                f"full sha256 is not pinned (fix: replace it by the published release, or remove it)") from e
    return torch.load(str(path), map_location="cpu", weights_only=False)


def check_state_dict(net, state: dict, strict: bool, source) -> None:
    """Raise WeightsCheckError unless ``state`` fits ``net`` exactly (strict) or covers all
    keys outside the backbone prefixes allowed for that architecture (non-strict)."""
    own = net.state_dict(keep_vars=True)
    unexpected = sorted(set(state) - set(own))
    # A module registered twice (e.g. LPIPS lin0 and lins.0) appears under two keys that
    # share one tensor; loading either key fills both.
    alias: dict = {}
    for k, t in own.items():
        alias.setdefault((t.data_ptr(), tuple(t.shape), t.dtype), []).append(k)
    covered = set(state)
    for keys in alias.values():
        if covered.intersection(keys):
            covered.update(keys)
    missing = sorted(set(own) - covered)
    if not strict:
        allowed = _ALLOWED_MISSING.get(type(net).__name__)
        if allowed is None:
            raise WeightsCheckError(f"{source}: non-strict load into {type(net).__name__} is not "
                                    f"covered by benchkit's key checks")
        missing = [k for k in missing if not k.startswith(allowed)]
    bad_shape = [f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
                 for k in state if k in own and hasattr(state[k], "shape")
                 and tuple(state[k].shape) != tuple(own[k].shape)]
    if unexpected or missing or bad_shape:
        parts = []
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) {unexpected[:5]}")
        if missing:
            parts.append(f"{len(missing)} missing key(s) {missing[:5]}")
        if bad_shape:
            parts.append(f"shape mismatch {bad_shape[:3]}")
        raise WeightsCheckError(f"{source} does not match {type(net).__name__}: " + "; ".join(parts)
                                + ". The file is not the expected checkpoint; replace it.")


def _make_checked_loader(root: Path, trusted_paths: set):
    def load_pretrained_network(net, model_path, strict=True, weight_keys=None):
        from pyiqa.archs.arch_util import clean_state_dict

        if str(model_path).startswith(("http://", "https://")):
            path = root / "hub" / "pyiqa" / os.path.basename(str(model_path).split("?")[0])
            if not path.is_file():
                _no_download(model_path, path)
        else:
            path = Path(model_path)
        state = _read_checkpoint(path, trusted=str(path) in trusted_paths)
        if weight_keys is not None:
            if not isinstance(state, dict) or weight_keys not in state:
                raise WeightsCheckError(f"{path}: no {weight_keys!r} entry in the checkpoint")
            state = state[weight_keys]
        if not isinstance(state, dict):
            raise WeightsCheckError(f"{path}: not a state dict ({type(state).__name__})")
        state = clean_state_dict(state)
        check_state_dict(net, state, strict, path)
        net.load_state_dict(state, strict=False)  # keys were checked above

    return load_pretrained_network


_SCANS: dict = {}  # prefix -> (names of sys.modules when scanned, the names starting with prefix)


def _modules_named(prefix: str) -> list:
    """The loaded modules whose name starts with ``prefix``, in ``sys.modules`` order.

    :func:`pyiqa_context` is entered once per scored batch (once per image on the CPU); scanning the ~3,000
    names of ``sys.modules`` in Python each time cost about 2 ms per image (``bench evaluate-scale``). The scan
    is redone only when the tuple of loaded module names differs (a C-level comparison); modules are looked up
    by name each time, so a re-imported module is the one patched."""
    names = tuple(sys.modules)
    hit = _SCANS.get(prefix)
    if hit is None or hit[0] != names:
        hit = (names, [n for n in names if n.startswith(prefix)])
        _SCANS[prefix] = hit
    return [m for n in hit[1] if (m := sys.modules.get(n))]


@contextlib.contextmanager
def pyiqa_context(root: Path, trusted_paths: set = frozenset(), reads: dict | None = None):
    """Run pyiqa with its caches under ``root`` and every download path disabled.

    Sets TORCH_HOME=root, HF_HOME=root/huggingface, HF_HUB_OFFLINE=1 (restored on exit)
    before pyiqa is imported, and patches (for the duration) the cache/download globals of
    torch.hub, huggingface_hub, pyiqa and pyiqa's checkpoint loader, and the file loaders
    (``torch.load``, ``torch.jit.load``, ``torch.hub.load``, transformers remote code; see the
    module docstring). ``reads`` (if given) collects {path: sha256} of every file loaded.
    """
    import shutil
    import tempfile

    root = Path(root)
    env = {"TORCH_HOME": str(root), "HF_HOME": str(root / "huggingface"),
           "HF_HUB_CACHE": str(root / "huggingface" / "hub"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    with _LOCK:
        old_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        patches: list = []

        def patch(obj, name, value):
            if hasattr(obj, name):
                patches.append((obj, name, getattr(obj, name)))
                setattr(obj, name, value)

        old_guard = getattr(_GUARD, "state", None)
        private = None
        try:
            import torch
            import torch.hub
            import torch.jit

            _GUARD.state = {"root": root, "reads": reads if reads is not None else {}}
            patch(torch, "load", _guarded_load(torch.load))
            patch(torch.jit, "load", _guarded_jit_load(torch.jit.load))
            patch(torch.hub, "load", _refuse_hub_code)
            patch(torch.hub, "_hub_dir", str(root / "hub"))  # what torch.hub.set_dir() sets
            patch(torch.hub, "download_url_to_file", _no_download)
            import huggingface_hub.constants as hfc

            patch(hfc, "HF_HUB_OFFLINE", True)
            patch(hfc, "HF_HUB_CACHE", str(root / "huggingface" / "hub"))
            with contextlib.redirect_stdout(io.StringIO()):
                import pyiqa  # noqa: F401  (imports every pyiqa arch module)
            loader = _make_checked_loader(root, set(trusted_paths))
            pyiqa_cache = str(root / "hub" / "pyiqa")
            for mod in _modules_named("pyiqa"):
                if hasattr(mod, "DEFAULT_CACHE_DIR"):
                    patch(mod, "DEFAULT_CACHE_DIR", pyiqa_cache)
                if hasattr(mod, "load_pretrained_network"):
                    patch(mod, "load_pretrained_network", loader)
                if hasattr(mod, "download_url_to_file"):
                    patch(mod, "download_url_to_file", _no_download)
                if mod.__name__.endswith("clip_model") and hasattr(mod, "_download"):
                    patch(mod, "_download", _local_clip(root))
                if mod.__name__.endswith("liqe_arch") and hasattr(mod, "DEFAULT_CACHE_DIR"):
                    # text features are regenerated from the pinned CLIP weights, never read from the root
                    private = private or tempfile.mkdtemp(prefix="benchkit-liqe-")
                    patch(mod, "DEFAULT_CACHE_DIR", private)
            for mod in _modules_named("transformers"):
                if hasattr(mod, "get_class_from_dynamic_module"):
                    patch(mod, "get_class_from_dynamic_module", _refuse_hub_code)
            yield
        finally:
            for obj, name, value in reversed(patches):
                setattr(obj, name, value)
            _GUARD.state = old_guard
            if private:
                shutil.rmtree(private, ignore_errors=True)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _to_tensor(imgs):
    import numpy as np
    import torch

    arr = np.stack([np.asarray(i, dtype=np.float32) for i in imgs])
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-4 or hi > 1 + 1e-4 or not np.isfinite(arr).all():
        raise BadInputError("<image>", f"pixel values outside [0, 1] (min {lo:.4g}, max {hi:.4g})",
                            "pass float32 RGB in [0, 1] (benchkit.images.read_image)")
    arr = np.clip(arr, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


class PyiqaMetric(Metric):
    """A catalog metric computed by ``pyiqa.create_metric(settings['pyiqa_name'], ...)``."""

    batch_size = 8

    def __init__(self, info, device="cpu", weights_root=None, verify_weights=True, **settings):
        super().__init__(info, device, weights_root, verify_weights, **settings)
        self._model = None

    # -- availability ---------------------------------------------------------------
    def availability(self) -> tuple[bool, str]:
        import importlib.util

        from benchkit.metrics.weights import check_file

        if importlib.util.find_spec("pyiqa") is None:
            return False, "pyiqa is not installed: pip install 'benchkit[metrics]' (checked with pyiqa 0.1.16)"
        for mod, hint in _EXTRA_DEPS.get(self.info.name, {}).items():
            if importlib.util.find_spec(mod) is None:
                return False, f"python module {mod!r} missing: pip install '{hint}'"
        from benchkit.metrics.catalog import TORCHSCRIPT
        from benchkit.metrics.weights import pinned_sha256

        problems = []
        for rel in self.info.weights:
            if rel in TORCHSCRIPT and pinned_sha256(rel) is None:
                problems.append(f"{rel} [no pinned sha256]: a TorchScript archive (code) with no published "
                                f"sha256; benchkit never loads code from an unverified file (fix: none until a "
                                f"hash is pinned in benchkit/metrics/catalog.py KNOWN_SHA256)")
                continue
            status, detail = check_file(self.root, rel, self.verify_weights)
            if status not in ("ok", "unverified"):
                problems.append(f"{rel} [{status}]: {detail}")
        if problems:
            return False, "weight files not usable under " + str(self.root) + ": " + " | ".join(problems)
        return True, ""

    def _trusted(self) -> set:
        """Weight files whose full pinned sha256 matches (the only ones that may be unpickled)."""
        return {str(self.root / rel) for rel in self.info.weights
                if (self.root / rel).is_file() and _pin_check(self.root, self.root / rel)[0]}

    @property
    def reads(self) -> dict:
        """{path: sha256} of every file pyiqa loaded through torch for this metric (hashed on load)."""
        return self.__dict__.setdefault("_reads", {})

    # -- loading ----------------------------------------------------------------------
    def load(self):
        """Build the pyiqa model (once); raises UnavailableError / WeightsCheckError."""
        if self._model is not None:
            return self._model
        self.require()
        kwargs = dict(self.info.settings.get("pyiqa_kwargs", {}))
        st = self.info.settings
        if "crop_border" in st:
            cb = int(st["crop_border"])
            if cb < 0:
                raise ConfigError(f"metric {self.info.name!r}: crop_border must be >= 0, got {cb}")
            kwargs["crop_border"] = cb
        if "color_space" in st:
            cs = st["color_space"]
            if cs not in _COLOR_SPACES:
                raise ConfigError(f"metric {self.info.name!r}: color_space must be one of "
                                  f"{sorted(_COLOR_SPACES)}, got {cs!r}")
            kwargs.update(_COLOR_SPACES[cs])
        with pyiqa_context(self.root, self._trusted(), self.reads), contextlib.redirect_stdout(io.StringIO()):
            import pyiqa
            import torch

            try:
                model = pyiqa.create_metric(self.info.settings["pyiqa_name"], device=torch.device(self.device),
                                            **kwargs)
            except BenchkitError:
                raise
            except Exception as e:
                raise UnavailableError(f"metric {self.info.name!r}: pyiqa could not build it here "
                                       f"({type(e).__name__}: {str(e)[:300]}); its weight files under "
                                       f"{self.root}: {', '.join(self.info.weights)} (fix: check them with "
                                       f"`benchkit weights status` and replace damaged ones)") from e
        model.eval()
        self._model = model
        return model

    # -- scoring ----------------------------------------------------------------------
    def _compute(self, dists, refs):
        import torch

        model = self.load()
        out: list[float] = []
        shapes = {d.shape for d in dists}
        # batches on an accelerator; on the CPU one image per call: torch's CPU kernels already spread one image
        # over the cores, and a batch keeps them less busy (bench harness: pyiqa SSIM on 5 images of 512 px,
        # 2.04 s wall / 3.37 s CPU batched vs 1.85 s / 3.51 s one by one); the values are the same either way
        step = self.batch_size if len(shapes) == 1 and not self.device.startswith("cpu") else 1
        with pyiqa_context(self.root, self._trusted(), self.reads), torch.no_grad():
            for i in range(0, len(dists), step):
                x = _to_tensor(dists[i:i + step]).to(self.device)
                try:
                    if refs is not None:
                        y = _to_tensor(refs[i:i + step]).to(self.device)
                        v = model(x, y)
                    else:
                        v = model(x)
                except RuntimeError as e:  # e.g. NIQE's 96-px blocks leave nothing of a 32-px image
                    h, w = x.shape[-2:]
                    if min(h, w) >= SMALL_SIDE:
                        raise
                    raise BadInputError("<image>", f"metric {self.info.name!r} failed on a {w}x{h} image "
                                        f"({_short(e)})", f"small images are the usual cause: use images of "
                                        f"at least {SMALL_SIDE}x{SMALL_SIDE} px, or leave this metric out") from e
                v = torch.as_tensor(v).detach().float().cpu().reshape(-1)
                if v.numel() != x.shape[0]:
                    raise BenchkitError(f"metric {self.info.name!r}: pyiqa returned {v.numel()} "
                                        f"values for {x.shape[0]} images")
                out.extend(float(t) for t in v)
        return out

    # -- dataset-level: FID as per-image Inception features + a Frechet aggregate ----------------
    def _features(self, paths: list) -> list:
        """pyiqa's Inception pool3 features (its clean-fid resize) of the image files ``paths``, one
        float64 vector per file, in order: exactly pyiqa's ``get_folder_features`` on a staged folder."""
        import os
        import tempfile

        import torch
        from pyiqa.archs.fid_arch import get_folder_features

        model = self.load()
        net = model.net
        with tempfile.TemporaryDirectory(prefix="benchkit-fid-") as tmp:
            for i, p in enumerate(paths):
                p = Path(p)
                dst = Path(tmp) / f"{i:08d}{p.suffix.lower() or '.png'}"
                try:
                    os.symlink(p.resolve(), dst)
                except OSError:
                    import shutil

                    shutil.copyfile(p, dst)
            with pyiqa_context(self.root, self._trusted()), torch.no_grad(), \
                    contextlib.redirect_stdout(io.StringIO()):
                feats = get_folder_features(tmp, net.model, num_workers=0, batch_size=8,
                                            test_img_size=net.test_img_size, device=torch.device(self.device),
                                            mode=self.info.settings.get("fid_mode", "clean"), verbose=False)
        if len(feats) != len(paths):
            raise BenchkitError(f"metric {self.info.name!r}: {len(feats)} features for {len(paths)} images")
        return [f.astype("float64") for f in feats]

    def partials(self, requests: list) -> list:
        if self.info.kind != "dataset":
            return super().partials(requests)
        return self._features([r.output_path for r in requests])

    def reference_partials(self, requests: list) -> list:
        if self.info.kind != "dataset":
            return super().reference_partials(requests)
        return self._features([r.target_path if self.reference_role == "target" else r.input_path
                               for r in requests])

    def aggregate(self, partials: list, reference_partials: list) -> float:
        """Frechet distance between Gaussians fitted to the two feature sets (pyiqa's formula)."""
        import math

        import numpy as np
        from pyiqa.archs.fid_arch import frechet_distance

        if self.info.kind != "dataset":
            return super().aggregate(partials, reference_partials)
        if len(partials) < 2 or len(reference_partials) < 2:
            raise BenchkitError(f"metric {self.info.name!r} needs at least 2 images per side, got "
                                f"{len(partials)} and {len(reference_partials)}")
        a, b = np.stack(partials), np.stack(reference_partials)
        v = float(frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))
        if not math.isfinite(v):
            raise BenchkitError(f"metric {self.info.name!r} returned {v}")
        return v

    def score_folders(self, dist_dir, ref_dir) -> float:
        """FID between the images of ``dist_dir`` and ``ref_dir`` (dataset-level metrics only)."""
        import math

        if self.info.kind != "dataset":
            return super().score_folders(dist_dir, ref_dir)
        for d in (dist_dir, ref_dir):
            if not Path(d).is_dir():
                raise BadInputError(d, "not a folder", "pass two image folders")
        model = self.load()
        import torch

        with pyiqa_context(self.root, self._trusted(), self.reads), torch.no_grad(), \
                contextlib.redirect_stdout(io.StringIO()):
            v = float(model(str(dist_dir), str(ref_dir), mode=self.info.settings.get("fid_mode", "clean"),
                            num_workers=0, verbose=False))
        if not math.isfinite(v):
            raise BenchkitError(f"metric {self.info.name!r} returned {v}")
        return v
